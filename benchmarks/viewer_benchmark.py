"""Seconds per ns-viewer frame of nero-material on the CPU: the relighting panel's split-sum preview against the
model's Monte Carlo render, as ratios measured in one run.

    python benchmarks/viewer_benchmark.py              # the tests' tiny scene, 256 x 256, 2 threads
    python benchmarks/viewer_benchmark.py --load-config outputs/.../nero-material/.../config.yml

Renders one camera of the run at `--size` x `--size` pixels, as the viewer asks for it (`get_outputs_for_camera`):
the preview under a built-in studio light and under the learned light (their prefiltering, done once when a light is
chosen, is timed apart as "choosing the light"), and the training render (Monte Carlo, `eval_pixel_samples` rays per
pixel). Variants are interleaved round by round; the table gives the median seconds and the ratio to the training
render. Without `--load-config` it builds the tests' tiny scene with an untrained nero-shape run (a sphere) and a
nero-material run at the default mesh resolution: the cost of a frame depends on the mesh and the share of pixels on
the object, not on training.
Results go to benchmarks/results/viewer/<date>-<commit>.json (and .md).
"""

from __future__ import annotations

import copy
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import tyro
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.pipelines.base_pipeline import Pipeline
from nerfstudio.utils.eval_utils import eval_setup

from common import markdown_table, print_table, run_record, write_results

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS.parent)]
from conftest import tiny_scene_config  # noqa: E402  (the tests' tiny scene)
from tests.models.test_shape_run import write_shape_run  # noqa: E402
from tests.nero_runs import setup_trainer  # noqa: E402

from nero_ns.method_configs import nero_material  # noqa: E402
from nero_ns.models.nero_material import NeroMaterialModel  # noqa: E402
from nero_ns.synthetic import generate_scene  # noqa: E402
from nero_ns.viewer.material_controls import LEARNED_LIGHT, TRAINING_RENDER  # noqa: E402

STUDIO_LIGHT = "Studio: sunny sky"
"""The built-in light timed (a sun: the hardest for the prefiltering)."""


@dataclass
class ViewerBenchmark:
    load_config: Optional[Path] = None
    """A trained nero-material run (None: the tests' tiny scene with an untrained nero-shape sphere, built in a
    temporary folder)."""
    size: int = 256
    """Width and height of the frame, in pixels."""
    camera_index: int = 0
    """Training camera whose view is rendered."""
    rounds: int = 5
    """Timed rounds of each preview (after one warm-up), interleaved."""
    monte_carlo_rounds: int = 1
    """Timed rounds of the training render (slow on a CPU)."""
    threads: int = 2
    """torch CPU threads."""
    results_dir: Optional[Path] = None
    """Where <date>-<commit>.json and .md go (None: benchmarks/results/viewer)."""


def untrained_run(folder: Path) -> Path:
    """The tests' tiny scene, an untrained nero-shape run on it and a nero-material run with no training step
    (config.yml and a checkpoint each), at nero-material's default mesh resolution; returns the nero-material
    config.yml."""
    scene = generate_scene(tiny_scene_config(folder / "scene"))
    shape_config = write_shape_run(scene, folder / "shape")
    config = copy.deepcopy(nero_material.config)
    config.pipeline.datamanager.data = scene
    config.shape_config = shape_config
    config.copy_shape_config()
    config.pipeline.model.warm_start_steps = 0
    config.output_dir = folder / "material"
    config.vis = "tensorboard"
    config.machine.device_type = "cpu"
    setup_trainer(config).save_checkpoint(0)
    return config.get_base_dir() / "config.yml"


def frame_camera(pipeline: Pipeline, index: int, size: int) -> Cameras:
    """Training camera `index` with its intrinsics scaled to a size x size image."""
    camera = pipeline.datamanager.train_dataset.cameras[index : index + 1]
    width, height = float(camera.width[0, 0]), float(camera.height[0, 0])
    return Cameras(
        camera_to_worlds=camera.camera_to_worlds, fx=camera.fx * size / width, fy=camera.fy * size / height,
        cx=camera.cx * size / width, cy=camera.cy * size / height, width=size, height=size,
        camera_type=camera.camera_type,
    ).to(pipeline.model.device)


def seconds(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main(options: ViewerBenchmark) -> None:
    record = run_record()
    torch.set_num_threads(options.threads)
    with tempfile.TemporaryDirectory() as temporary:
        config_path = options.load_config or untrained_run(Path(temporary))
        _, pipeline, _, _ = eval_setup(config_path, test_mode="test")
        model = pipeline.model
        assert isinstance(model, NeroMaterialModel), f"{config_path} is not a nero-material run"
        panel = pipeline.panel
        camera = frame_camera(pipeline, options.camera_index, options.size)

        def choose(light: str) -> None:
            """What the Light menu does: the model gets the light, prefiltered once."""
            panel.light.value = light
            panel.apply()

        def frame() -> Dict[str, torch.Tensor]:
            """What the viewer asks for at each camera move."""
            return model.get_outputs_for_camera(camera)

        model.environment_map(8)  # extracts the ray-casting mesh and the floor's sky visibility once, untimed
        prefilter = {light: seconds(lambda: choose(light)) for light in (STUDIO_LIGHT, LEARNED_LIGHT)}
        choose(STUDIO_LIGHT)
        covered = float((frame()["accumulation"] > 0).float().mean())  # also the warm-up
        times: Dict[str, List[float]] = {STUDIO_LIGHT: [], LEARNED_LIGHT: [], TRAINING_RENDER: []}
        for round_index in range(options.rounds):
            with_monte_carlo = round_index < options.monte_carlo_rounds
            for light in [STUDIO_LIGHT, LEARNED_LIGHT] + ([TRAINING_RENDER] if with_monte_carlo else []):
                choose(light)
                times[light].append(seconds(frame))

    medians = {light: statistics.median(values) for light, values in times.items()}
    rows = []
    for light, label in ((TRAINING_RENDER, "training render: Monte Carlo"), (STUDIO_LIGHT, f"preview: {STUDIO_LIGHT}"),
                         (LEARNED_LIGHT, "preview: learned light")):
        prefiltering = f"{prefilter[light]:.2f}" if light in prefilter else "-"
        rows.append([label, f"{medians[light]:.2f}", f"{medians[TRAINING_RENDER] / medians[light]:.1f}x",
                     prefiltering, str(len(times[light]))])
    header = ["frame", "s / frame (median)", "speed-up", "choosing the light (s)", "rounds"]
    caption = (f"{options.size} x {options.size} px, {options.threads} threads, {100 * covered:.0f}% of the pixels on "
               f"the object, ray-casting mesh of {len(model.geometry.mesh_faces)} faces")
    print_table("ns-viewer frame of nero-material", header, rows, caption)
    results = {**record, "run": str(options.load_config or "tiny scene, untrained nero-shape sphere"),
               "size": options.size, "threads": options.threads, "object_share": covered,
               "seconds": times, "median_seconds": medians, "prefilter_seconds": prefilter}
    markdown = f"# ns-viewer frame of nero-material ({record['date']}, {record['commit']})\n\n"
    markdown += markdown_table(header, rows) + f"\n\n{caption}\n"
    write_results("viewer", results, markdown, options.results_dir, quick=False, output_dir=Path("."))


if __name__ == "__main__":
    main(tyro.cli(ViewerBenchmark))
