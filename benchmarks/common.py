"""Shared steps of the nero-ns benchmarks: generate a scene, train a stage, render held-out views, read logs.

Every heavy step runs the real command-line tool (`nero-synth`, `ns-train`, `ns-export`, `nero-eval`) in its own
process, as a user would, so each gets a clean interpreter and its peak memory is measured with `os.wait4`.
Held-out views are rendered by this file run as a script (`python benchmarks/common.py render ...`): nerfstudio's
`eval_setup` + `get_outputs_for_camera` on the cameras of a transforms.json given in the scene's own frame.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from rich.console import Console
from rich.table import Table

# Imported here, in the main thread: a first import of torch from two benchmark threads at once (--parallel)
# corrupts the heap ("malloc_consolidate(): unaligned fastbin chunk detected" at exit).
from nero_ns.evaluation.geometry import GeometryMetrics
from nero_ns.evaluation.images import match_images, read_image, read_mask
from nero_ns.evaluation.materials import psnr
from nero_ns.errors import NeroInputError
from nero_ns.exporters.mesh_export import NO_SURFACE_MESSAGE
from nero_ns.synthetic.scene_set import resolve_scenes

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
class SceneSize:
    """How big a generated scene is."""

    resolution: int = 128
    num_views: int = 48
    num_test_views: int = 8
    spp: int = 64


def generate_scene(name: str, size: SceneSize, folder: Path, log: Path) -> Path:
    """Render the named scene (`nero-synth --scene NAME`, seed 0, see docs/scenes.md) unless `folder` holds it.

    Masks are written because the GT folders (gt/test, gt/relight) need them for object-only scores; training
    never reads them (see `train_stage`), so the runs see the same unmasked photos as with --no-masks.
    """
    if not (folder / "transforms.json").exists():
        run_command([
            "nero-synth", "--scene", name, "--output-dir", str(folder), "--resolution", str(size.resolution),
            "--num-train-views", str(size.num_views), "--num-test-views", str(size.num_test_views),
            "--spp", str(size.spp), "--overwrite",
        ], log)
    return folder


def scene_names(selection: Optional[str], default: str) -> List[str]:
    """The scenes of `--scenes` (quick, full or NAME,NAME; None: `default`), checked against the scene set."""
    try:
        return resolve_scenes(selection or default)
    except NeroInputError as error:
        raise SystemExit(str(error)) from error


NERFSTUDIO_SEED = 42
"""nerfstudio's default `--machine.seed`: repeat 0 of every benchmark trains with it, as the runs before --repeats."""


def training_seed(repeat: int) -> int:
    """`--machine.seed` of repeat `repeat` (0, 1, ...) of a training."""
    return NERFSTUDIO_SEED + repeat


def run_name(name: str, repeat: int) -> str:
    """Run folder name of a repeat: `name` itself for repeat 0 (the layout of the runs before --repeats)."""
    return name if repeat == 0 else f"{name}-seed{training_seed(repeat)}"


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
    method: str, scene: Path, runs: Path, name: str, budget_seconds: Optional[float], rays_per_batch: Optional[int],
    log: Path, steps_per_log: int = 10, extra: Tuple[str, ...] = (), threads: Optional[int] = None,
    source: Optional[Path] = None, repeat: int = 0, max_steps: Optional[int] = None,
) -> TrainResult:
    """`ns-train METHOD` for a wall-clock budget (or, with `budget_seconds` None, for `max_steps` steps) without
    masks, evaluation or intermediate checkpoints; `rays_per_batch` None keeps the method's default, `threads` None
    lets torch use every core, `repeat` picks the training seed (`training_seed`)."""
    if (budget_seconds is None) == (max_steps is None):
        raise ValueError("train_stage: give a wall-clock budget or a number of steps, not both")
    rays = ["--pipeline.datamanager.train-num-rays-per-batch", str(rays_per_batch)] if rays_per_batch else []
    length = (
        ["--max-num-iterations", NEVER, "--max-train-seconds", str(budget_seconds)] if budget_seconds is not None
        else ["--max-num-iterations", str(max_steps)]
    )
    result = run_command([
        "ns-train", method, "--data", str(scene), "--output-dir", str(runs), "--experiment-name", name,
        "--timestamp", "bench", *length,
        "--vis", "tensorboard", "--steps-per-eval-batch", NEVER, "--steps-per-eval-image", NEVER,
        "--steps-per-eval-all-images", NEVER, "--steps-per-save", NEVER,
        "--logging.steps-per-log", str(steps_per_log),
        "--machine.seed", str(training_seed(repeat)), *rays, "--pipeline.datamanager.dataparser.use-masks", "False",
        *extra,
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


def export_and_score_mesh(
    run_config: Path, scene: Path, export: Path, resolution: int, logs: Path, label: str,
    threads: Optional[int] = None, source: Optional[Path] = None,
) -> Dict[str, float]:
    """`ns-export nero-mesh` of a nero-shape run into `export` (with the `nero_ns` of `source`, None: this one), then
    `nero-eval geometry` against the scene's GT mesh (always this checkout's scoring); its metrics (Chamfer, normal
    error, F-score). Logs go to LOGS/export-LABEL.log and LOGS/eval-LABEL.log. An SDF with no surface yet (the export
    says so) scores None on every metric, with "no_surface" set: a result, not a failure of the benchmark."""
    export_log = logs / f"export-{label}.log"
    try:
        run_command([
            "ns-export", "nero-mesh", "--load-config", str(run_config), "--output-dir", str(export),
            "--resolution", str(resolution),
        ], export_log, threads, source)
    except SystemExit:
        if NO_SURFACE_MESSAGE not in export_log.read_text():
            raise
        console.print(f"{label}: no surface to export yet (see {export_log})")
        return {**dict.fromkeys(field.name for field in dataclasses.fields(GeometryMetrics)), "no_surface": True}
    metrics_file = export / "geometry.json"
    run_command([
        "nero-eval", "geometry", "--mesh", str(export / "mesh.ply"), "--gt", str(scene / "gt" / "mesh.ply"),
        "--json", str(metrics_file),
    ], logs / f"eval-{label}.log", threads)
    # The metrics only: the file's bookkeeping (its sampling "seed", the mesh paths) would overwrite a row's own keys.
    scores = json.loads(metrics_file.read_text())
    return {field.name: scores[field.name] for field in dataclasses.fields(GeometryMetrics)}


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


ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Metric:
    """A scored figure of a benchmark's rows: its key, column title, number format and which way is better."""

    key: str
    title: str
    format: str
    higher_is_better: bool = False


def per_scene(rows: List[Dict], metrics: Sequence[Metric], group: Sequence[str]) -> List[Dict]:
    """A row per group (e.g. variant and mark) and scene: every metric's median over the repeats, its spread over
    them (min and max) and the number of repeats. Groups and scenes keep the order of `rows`."""
    keyed: Dict[Tuple, List[Dict]] = {}
    for row in rows:
        keyed.setdefault((*(row[key] for key in group), row["scene"]), []).append(row)
    out = []
    for key, repeats in keyed.items():
        line: Dict[str, Any] = {
            **dict(zip((*group, "scene"), key)), "repeats": len(repeats),
            "no_surface": sum(bool(row.get("no_surface")) for row in repeats),
        }
        for metric in metrics:
            values = [row[metric.key] for row in repeats if row[metric.key] is not None]
            if values:
                line[metric.key] = float(np.median(values))
                line[f"{metric.key}_min"], line[f"{metric.key}_max"] = float(min(values)), float(max(values))
            else:
                line[metric.key] = None
        out.append(line)
    return out


def summary(scene_rows: List[Dict], metrics: Sequence[Metric], group: Sequence[str]) -> List[Dict]:
    """A row per group over its scenes (each scene counting with its median over repeats): every metric's median
    and its worst value, with the scene that has it. A scene whose runs had no surface counts as the worst value
    there is (infinite, or minus infinite for a metric where higher is better)."""
    keyed: Dict[Tuple, List[Dict]] = {}
    for row in scene_rows:
        keyed.setdefault(tuple(row[key] for key in group), []).append(row)
    out = []
    for key, rows in keyed.items():
        line: Dict[str, Any] = {**dict(zip(group, key)), "scenes": len(rows)}
        for metric in metrics:
            failed = -np.inf if metric.higher_is_better else np.inf
            scored = [
                (row[metric.key] if row[metric.key] is not None else failed, row["scene"])
                for row in rows if row[metric.key] is not None or row.get("no_surface")
            ]
            if not scored:
                continue
            pick = max if not metric.higher_is_better else min
            worst = pick(scored, key=lambda value_scene: value_scene[0])
            line[f"{metric.key}_median"] = float(np.median([value for value, _ in scored]))
            line[f"{metric.key}_worst"], line[f"{metric.key}_worst_scene"] = worst
        out.append(line)
    return out


def spread_cell(row: Dict, metric: Metric) -> str:
    """A per-scene figure: the median over repeats, with their range when there are several ('-' when unscored)."""
    if row.get(metric.key) is None:
        return "no surface" if row.get("no_surface") else "-"
    cell = format(row[metric.key], metric.format)
    if row["repeats"] > 1:
        cell += f" ({format(row[metric.key + '_min'], metric.format)}-{format(row[metric.key + '_max'], metric.format)})"
    return cell


def summary_table(summary_rows: List[Dict], metrics: Sequence[Metric], group: Sequence[str]) -> Tuple[List[str], List[List[str]]]:
    """Header and cells of the summary: per group, every metric's median over scenes and its worst (scene)."""
    header = [*group, "scenes"] + [f"{metric.title} {what}" for metric in metrics for what in ("median", "worst")]
    cells = []
    for row in summary_rows:
        line = [str(row[key]) for key in group] + [str(row["scenes"])]
        for metric in metrics:
            if f"{metric.key}_median" not in row:
                line += ["-", "-"]
                continue
            line += [
                summary_figure(row[f"{metric.key}_median"], metric),
                f"{summary_figure(row[f'{metric.key}_worst'], metric)} ({row[f'{metric.key}_worst_scene']})",
            ]
        cells.append(line)
    return header, cells


def summary_figure(value: float, metric: Metric) -> str:
    """A summary's median or worst: the number, or "no surface" where scenes without one decide it."""
    return "no surface" if np.isinf(value) else format(value, metric.format)


def markdown_table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def print_table(title: str, header: List[str], rows: List[List[str]], caption: Optional[str] = None) -> None:
    table = Table(title=title, caption=caption)
    for column in header:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def git_state() -> Tuple[str, bool]:
    """The short commit of this checkout ("unknown" outside git) and whether tracked files differ from it."""
    def git(*arguments: str) -> Optional[str]:
        completed = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True)
        return completed.stdout.strip() if completed.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    return commit or "unknown", bool(git("status", "--porcelain", "--untracked-files=no"))


@functools.cache
def run_record() -> Dict[str, Any]:
    """What every results file starts with: the date, the commit, whether the checkout had uncommitted changes,
    and the full command line. Taken once per process, at the first call: each benchmark's main calls it before
    any training, so a file names the commit that trained, not the one checked out when the run ended."""
    commit, dirty = git_state()
    return {
        "date": datetime.date.today().isoformat(), "commit": commit, "dirty": dirty,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
    }


def write_results(
    benchmark: str, results: Dict, markdown: str, results_dir: Optional[Path], quick: bool, output_dir: Path
) -> Path:
    """RESULTS_DIR/<date>-<commit>.json and the markdown beside it. RESULTS_DIR None: benchmarks/results/BENCHMARK,
    or OUTPUT_DIR for a --quick run (smoke runs and tests never write into the repository)."""
    default = output_dir.resolve() if quick else ROOT / "benchmarks" / "results" / benchmark
    directory = (results_dir or default).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{results['date']}-{results['commit']}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    path.with_suffix(".md").write_text(markdown)
    console.print(f"results: {path} and {path.with_suffix('.md')}")
    return path


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
