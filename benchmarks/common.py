"""Shared steps of the nero-ns benchmarks: generate a scene, train a stage, render held-out views, read logs.

Every heavy step runs the real command-line tool (`nero-synth`, `ns-train`, `ns-export`, `nero-eval`) in its own
process, as a user would, so each gets a clean interpreter and its peak memory is measured with `os.wait4`.
Held-out views are rendered by this file run as a script (`python benchmarks/common.py render ...`): nerfstudio's
`eval_setup` + `get_outputs_for_camera` on the cameras of a transforms.json given in the scene's own frame.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from rich.console import Console

# Imported here, in the main thread: a first import of torch from two benchmark threads at once (--parallel)
# corrupts the heap ("malloc_consolidate(): unaligned fastbin chunk detected" at exit).
from nero_ns.evaluation.images import match_images, read_image, read_mask
from nero_ns.evaluation.materials import psnr

console = Console(width=None if sys.stdout.isatty() else 160)
"""Wide tables in log files too (rich falls back to 80 columns when the output is not a terminal)."""

NEVER = "1000000"
"""A step interval no benchmark run reaches (evaluation and intermediate checkpoints are switched off)."""


@dataclass(frozen=True)
class CommandResult:
    """Wall-clock seconds and peak resident memory (MiB) of one finished command."""

    seconds: float
    peak_mib: float


def run_command(
    arguments: List[str], log: Path, threads: Optional[int] = None, source: Optional[Path] = None
) -> CommandResult:
    """Run a command with its output in `log`; stop the benchmark with a pointer to the log if it fails.

    `threads` caps the command's CPU threads (OMP_NUM_THREADS), for commands that run side by side; `source`, a
    folder holding another version of the `nero_ns` package, runs the command with that version (PYTHONPATH).
    """
    console.print(f"$ {' '.join(arguments)}")
    log.parent.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ}
    if threads:
        environment["OMP_NUM_THREADS"] = str(threads)
    if source is not None:
        environment["PYTHONPATH"] = str(source)
    started = time.perf_counter()
    with log.open("w") as handle:
        process = subprocess.Popen(arguments, stdout=handle, stderr=subprocess.STDOUT, env=environment)
        _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{arguments[0]} failed; see {log}")
    return CommandResult(time.perf_counter() - started, usage.ru_maxrss / 1024.0)


@dataclass(frozen=True)
class SceneSpec:
    """A generated object and its (constant) material."""

    name: str
    shape: str
    metallic: float
    roughness: float
    base_color: Tuple[float, float, float] = (0.95, 0.7, 0.4)


@dataclass(frozen=True)
class SceneSize:
    """How big a generated scene is."""

    resolution: int = 128
    num_views: int = 48
    num_test_views: int = 8
    spp: int = 64


def generate_scene(spec: SceneSpec, size: SceneSize, folder: Path, log: Path) -> Path:
    """Render the scene with nero-synth (floor and distractors) unless `folder` already holds it.

    Masks are written because the GT folders (gt/test, gt/relight) need them for object-only scores; training
    never reads them (see `train_stage`), so the runs see the same unmasked photos as with --no-masks.
    """
    if not (folder / "transforms.json").exists():
        run_command([
            "nero-synth", "--output-dir", str(folder), "--shape", spec.shape,
            "--metallic", str(spec.metallic), "--roughness", str(spec.roughness),
            "--base-color", *(str(c) for c in spec.base_color), "--resolution", str(size.resolution),
            "--num-train-views", str(size.num_views), "--num-test-views", str(size.num_test_views),
            "--spp", str(size.spp), "--overwrite",
        ], log)
    return folder


@dataclass(frozen=True)
class TrainResult:
    """A finished `ns-train` run."""

    config: Path
    """Its config.yml."""
    steps: int
    seconds: float
    """Wall-clock seconds of the whole process (start-up, training, final checkpoint)."""
    peak_mib: float


def train_stage(
    method: str, scene: Path, runs: Path, name: str, budget_seconds: float, rays_per_batch: Optional[int], log: Path,
    steps_per_log: int = 10, extra: Tuple[str, ...] = (), threads: Optional[int] = None, source: Optional[Path] = None,
) -> TrainResult:
    """`ns-train METHOD` for a wall-clock budget without masks, evaluation or intermediate checkpoints;
    `rays_per_batch` None keeps the method's default, `threads` None lets torch use every core."""
    rays = ["--pipeline.datamanager.train-num-rays-per-batch", str(rays_per_batch)] if rays_per_batch else []
    result = run_command([
        "ns-train", method, "--data", str(scene), "--output-dir", str(runs), "--experiment-name", name,
        "--timestamp", "bench", "--max-num-iterations", NEVER, "--max-train-seconds", str(budget_seconds),
        "--vis", "tensorboard", "--steps-per-eval-batch", NEVER, "--steps-per-eval-image", NEVER,
        "--steps-per-eval-all-images", NEVER, "--steps-per-save", NEVER,
        "--logging.steps-per-log", str(steps_per_log),
        *rays, "--pipeline.datamanager.dataparser.use-masks", "False", *extra,
    ], log, threads, source)
    run_dir = runs / name / method / "bench"
    steps = trained_steps(run_dir)
    if steps is None:
        raise SystemExit(f"ns-train {method} saved no checkpoint in {run_dir}; see {log}")
    return TrainResult(run_dir / "config.yml", steps, result.seconds, result.peak_mib)


def trained_steps(run_dir: Path) -> Optional[int]:
    """Steps trained by the run in `run_dir` (its newest checkpoint's step + 1), or None without a checkpoint."""
    checkpoints = sorted((run_dir / "nerfstudio_models").glob("step-*.ckpt"))
    return int(checkpoints[-1].stem.split("-")[-1]) + 1 if checkpoints else None


def render_views_command(
    load_config: Path, cameras: Path, output_dir: Path, monte_carlo: Optional[Tuple[int, int]] = None
) -> List[str]:
    """Command line rendering a trained run from the cameras of a transforms.json into OUTPUT_DIR/<frame>.png;
    `monte_carlo` (rays per pixel, sample multiplier) overrides a nero-material run's render settings."""
    command = [
        sys.executable, str(Path(__file__).resolve()), "render", "--load-config", str(load_config),
        "--cameras", str(cameras), "--output-dir", str(output_dir),
    ]
    if monte_carlo is not None:
        command += ["--monte-carlo", str(monte_carlo[0]), str(monte_carlo[1])]
    return command


def render_views(
    load_config: Path, cameras: Path, output_dir: Path, monte_carlo: Optional[Tuple[int, int]] = None
) -> None:
    """Render the "rgb" output of a trained nero run from every camera of `cameras` (a transforms.json in the
    training data's frame, e.g. SCENE/gt/test), mapped into the run's normalized frame like the training views.
    `monte_carlo` = (eval-pixel-samples, eval-sample-multiplier) of a nero-material run, in place of its own."""
    import imageio.v3 as iio
    import torch
    from nerfstudio.cameras.cameras import Cameras, CameraType
    from nerfstudio.utils.eval_utils import eval_setup

    from nero_ns.datamanagers.normalization import normalize_poses
    from nero_ns.models.nero_material import NeroMaterialModel
    from nero_ns.relight.cameras import read_transforms_cameras

    _, pipeline, _, _ = eval_setup(load_config, test_mode="inference")
    if monte_carlo is not None:
        if not isinstance(pipeline.model, NeroMaterialModel):
            raise SystemExit(f"{load_config}: --monte-carlo applies to nero-material runs only; leave it out")
        pipeline.model.config.eval_pixel_samples, pipeline.model.config.eval_sample_multiplier = monte_carlo
    dataparser_outputs = pipeline.datamanager.train_dataparser_outputs
    views = read_transforms_cameras(cameras)
    camera_to_worlds = torch.tensor(np.stack([view.c2w[:3] for view in views]), dtype=torch.float32)
    poses = normalize_poses(
        camera_to_worlds, dataparser_outputs.dataparser_transform, float(dataparser_outputs.dataparser_scale)
    )

    def intrinsic(name: str) -> torch.Tensor:
        return torch.tensor([[getattr(view, name)] for view in views], dtype=torch.float32)

    nerfstudio_cameras = Cameras(
        camera_to_worlds=poses, fx=intrinsic("fl_x"), fy=intrinsic("fl_y"), cx=intrinsic("cx"), cy=intrinsic("cy"),
        width=intrinsic("width").long(), height=intrinsic("height").long(), camera_type=CameraType.PERSPECTIVE,
    ).to(pipeline.device)
    output_dir.mkdir(parents=True, exist_ok=True)
    pipeline.eval()
    for index, view in enumerate(views):
        outputs = pipeline.model.get_outputs_for_camera(nerfstudio_cameras[index : index + 1])
        rgb = outputs["rgb"].clamp(0.0, 1.0).cpu().numpy()
        iio.imwrite(output_dir / f"{Path(view.name).stem}.png", np.round(rgb * 255.0).astype(np.uint8))
        console.print(f"rendered {view.name} ({index + 1}/{len(views)})")


def object_psnr(renders: Path, gt_transforms: Path) -> float:
    """Mean PSNR over the GT object mask of each render named like a frame of `gt_transforms` (which must name
    mask_path for its frames, as nero-synth's gt/test does)."""
    values = []
    for pair in match_images(renders, gt_transforms):
        if pair.gt_mask is None:
            raise SystemExit(f"{gt_transforms}: its frames name no mask_path; generate the scene with masks")
        mask = read_mask(pair.gt_mask)
        values.append(psnr(read_image(pair.render)[..., :3][mask], read_image(pair.gt)[..., :3][mask]))
    return float(np.mean(values))


def read_scalars(run_dir: Path, tag: str) -> Tuple[List[int], List[float]]:
    """(steps, values) of one scalar that nerfstudio wrote to the tensorboard event files of `run_dir`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    accumulator.Reload()
    if tag not in accumulator.Tags()["scalars"]:
        return [], []
    events = accumulator.Scalars(tag)
    return [event.step for event in events], [event.value for event in events]


@dataclass
class RenderViews:
    """Render a trained nero run (nero-shape or nero-material) from the cameras of a transforms.json."""

    load_config: Path
    """config.yml of the run."""
    cameras: Path
    """transforms.json in the frame of the run's training data (e.g. SCENE/gt/test/transforms.json)."""
    output_dir: Path
    """Where <frame name>.png go."""
    monte_carlo: Optional[Tuple[int, int]] = None
    """Rays per pixel and sample multiplier of a nero-material run's renders (its eval-pixel-samples and
    eval-sample-multiplier), in place of those it was trained with."""


def _render_entrypoint() -> None:
    import tyro

    from nero_ns.errors import friendly_errors

    options = tyro.cli(RenderViews, args=sys.argv[2:])
    with friendly_errors():
        render_views(options.load_config, options.cameras, options.output_dir, options.monte_carlo)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "render":
        raise SystemExit("usage: python benchmarks/common.py render --load-config C --cameras T --output-dir D")
    _render_entrypoint()
