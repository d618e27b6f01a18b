"""Time-to-quality curve of nero-shape: the mesh's quality after 75, 150, 300, 600 and 900 s of training, for the
current defaults of `nero-shape` against the previous ones, on named scenes of the scene set (docs/scenes.md).

    python benchmarks/curve_benchmark.py                         # metal-knot and glossy-blob, variants one by one
    python benchmarks/curve_benchmark.py --scenes full --repeats 2   # every scene of `full`, two training seeds
    python benchmarks/curve_benchmark.py --parallel              # the variants of a scene side by side, 1 thread each
    python benchmarks/curve_benchmark.py --quick --results-dir /tmp/curve    # smoke run, a few minutes

Scenes (generated once, floor and distractors, trained without masks): `--scenes` (quick, full or NAME,NAME;
default the metallic knot and the glossy blob of before the scene set). Each variant trains ONCE per scene and
repeat (`--repeats`: training seeds 42, 43, ...), with `--max-train-seconds <last mark> --checkpoint-at-seconds
<marks>`; the checkpoint kept at each mark is exported (`ns-export nero-mesh` on a copy of config.yml with
`load_step` set, which nerfstudio's eval_setup honours) and scored (`nero-eval geometry`). Prints per scene the
steps, Chamfer, normal error and F@0.01 of every variant at every mark side by side (medians over repeats, with
their range), with the steps/s and peak memory of each training, then per variant and mark the median and the
worst over the scenes. Writes RESULTS_DIR/<date>-<commit>.json (every row, the command line, the commit) and the
markdown tables beside it.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import tyro
import yaml

from common import (
    ROOT,
    Metric,
    SceneSize,
    export_and_score_mesh,
    generate_scene,
    markdown_table,
    per_scene,
    print_table,
    run_name,
    run_record,
    scene_names,
    spread_cell,
    summary,
    summary_table,
    train_stage,
    write_results,
)
from nero_ns.engine.trainer import TIME_CHECKPOINTS_FILE

DEFAULT_SCENES = "metal-knot,glossy-blob"
# The "previous" variant is nero-shape as it was at this commit (its defaults and its code: nerfstudio's hash grid,
# autograd double backward, 1024 rays per step), run from an extracted copy of that commit's `nero_ns` with today's
# trainer dropped in, since --checkpoint-at-seconds is what makes a curve from one run (the trainer does not touch
# the model). Move it forward when a new set of defaults lands.
PREVIOUS_COMMIT = "38cac48"
# Today's trainer (its --checkpoint-at-seconds marks the curve) and the modules it imports that PREVIOUS_COMMIT lacks.
TODAYS_TRAINER = ("engine/trainer.py", "components/hash_grid_cpu.py", "components/nero_hash_grid.cpp")
VARIANTS: Dict[str, Tuple[str, ...]] = {"current": (), "previous": ()}
METRICS: Tuple[Metric, ...] = (
    # nero-eval geometry keys
    Metric("chamfer", "Chamfer", ".4f"),
    Metric("normal_error_deg", "normal err", ".1f"),
    Metric("fscore", "F@0.01", ".3f", higher_is_better=True),
)
GROUP = ("variant", "seconds")


@dataclass
class CurveBenchmark:
    output_dir: Path = Path("benchmark-output/curve")
    """Where scenes, runs, meshes and logs go (scenes are reused when already there, runs are trained anew)."""
    results_dir: Optional[Path] = None
    """Where <date>-<commit>.json and .md go; None: benchmarks/results/curve, or OUTPUT_DIR with --quick."""
    marks: Tuple[float, ...] = (75.0, 150.0, 300.0, 600.0, 900.0)
    """Training seconds at which each run is scored; the last one is its training budget."""
    scenes: Optional[str] = None
    """Scenes of the scene set (docs/scenes.md): quick, full, or names separated by commas; None: metal-knot and
    glossy-blob (metal-knot alone with --quick)."""
    repeats: int = 1
    """Trainings of every variant on every scene, with training seeds 42, 43, ... (nerfstudio's --machine.seed):
    the tables give medians over them and their range."""
    variants: Tuple[str, ...] = ("current", "previous")
    """Variants to run, among current (nero-shape's defaults) and previous (nero-shape at PREVIOUS_COMMIT)."""
    extra_variants: Tuple[str, ...] = ()
    """More variants as NAME=OPTIONS, OPTIONS being `ns-train nero-shape` options in one shell-quoted string, e.g.
    `--extra-variants "plain=--pipeline.model.shading plain"`."""
    resolution: int = 128
    """Image size of the generated scenes."""
    num_views: int = 48
    """Training views."""
    spp: int = 64
    """Samples per pixel of the generated images."""
    rays_per_batch: Optional[int] = None
    """Training rays per step of every variant whose options do not set them (None: nero-shape's default)."""
    mesh_resolution: int = 256
    """Marching-cubes resolution of the exported meshes."""
    parallel: bool = False
    """Train the variants of a scene side by side, one CPU thread each, instead of one after the other with all
    threads (same machine, same moment: the fairest comparison on a noisy machine, at a lower step rate)."""
    quick: bool = False
    """Smoke-run preset: the knot only (unless --scenes), 48 px, 12 views, 8 spp, 256 rays, marks at 10 and 20 s,
    meshes at 64."""

    def apply_quick_preset(self) -> None:
        if self.quick:
            self.scenes, self.marks = self.scenes or "metal-knot", (10.0, 20.0)
            self.resolution, self.num_views, self.spp = 48, 12, 8
            self.rays_per_batch, self.mesh_resolution = 256, 64


def selected_variants(config: CurveBenchmark) -> Dict[str, Tuple[str, ...]]:
    """Name -> extra `ns-train` options of every variant to run, in order."""
    unknown = [name for name in config.variants if name not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; choose among {', '.join(VARIANTS)}")
    variants = {name: VARIANTS[name] for name in config.variants}
    for spec in config.extra_variants:
        name, separator, options = spec.partition("=")
        if not separator or not name or name in variants:
            raise SystemExit(f"--extra-variants {spec!r}: write NAME=OPTIONS with a new NAME")
        variants[name] = tuple(shlex.split(options))
    return variants


@functools.cache
def previous_source(output: Path) -> Path:
    """A folder holding `nero_ns` as it was at PREVIOUS_COMMIT, with today's trainer and what it imports that the
    old code lacks (extracted and import-checked once per benchmark run, whatever the number of trainings)."""
    folder = output / f"nero-ns-{PREVIOUS_COMMIT}"
    if not (folder / "nero_ns").is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", PREVIOUS_COMMIT, "nero_ns"], capture_output=True, check=False
        )
        if archive.returncode != 0:
            raise SystemExit(f"git archive {PREVIOUS_COMMIT} failed (the previous variant needs this repository's "
                             f"history): {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
        for today in TODAYS_TRAINER:
            shutil.copy(ROOT / "nero_ns" / today, folder / "nero_ns" / today)
    # Fail now, not after the other variants have trained: the old code with today's trainer must import.
    check = subprocess.run([sys.executable, "-c", "import nero_ns.method_configs"], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(folder)}, check=False)
    if check.returncode != 0:
        raise SystemExit(f"{folder} does not import with today's trainer (extend TODAYS_TRAINER): "
                         f"{check.stderr.strip().splitlines()[-1]}")
    return folder


def config_at_step(run_config: Path, step: int) -> Path:
    """A copy of a run's config.yml that loads the checkpoint of `step` (eval_setup honours `load_step`); it sits
    beside the original, where `ns-export nero-mesh` looks for the run's checkpoints."""
    config = yaml.load(run_config.read_text(), Loader=yaml.Loader)
    config.load_step = step
    path = run_config.with_name(f"config-step-{step:09d}.yml")
    path.write_text(yaml.dump(config))
    return path


def run_variant(
    config: CurveBenchmark, scene_name: str, scene: Path, variant: str, options: Tuple[str, ...],
    threads: Optional[int], repeat: int,
) -> Tuple[Dict, List[Dict]]:
    """Train one variant (repeat `repeat`) until the last mark, then export and score the checkpoint of every mark:
    its training (steps/s, peak memory) and its rows (one per mark)."""
    output = config.output_dir.resolve() / scene_name
    runs = output / "runs"
    name = run_name(variant, repeat)
    shutil.rmtree(runs / name, ignore_errors=True)  # no checkpoints or marks left from an earlier benchmark
    marks = sorted(config.marks)
    source = previous_source(config.output_dir.resolve()) if variant == "previous" else None
    trained = train_stage(
        "nero-shape", scene, runs, name, marks[-1], config.rays_per_batch, output / f"train-{name}.log",
        extra=("--checkpoint-at-seconds", *(str(mark) for mark in marks), *options), threads=threads, source=source,
        repeat=repeat,
    )
    # The seed the run trained with: a variant's options may set their own --machine.seed after the repeat's.
    seed = yaml.load(trained.config.read_text(), Loader=yaml.Loader).machine.seed
    timed = json.loads((trained.config.parent / TIME_CHECKPOINTS_FILE).read_text())
    if [row["seconds"] for row in timed] != marks:
        raise SystemExit(f"{scene_name}/{name}: checkpoints at {timed}, not at every mark; see train-{name}.log")
    rows = []
    for row in timed:
        label = f"{name}-{row['seconds']:g}s"
        scores = export_and_score_mesh(
            config_at_step(trained.config, row["step"]), scene, output / f"mesh-{label}", config.mesh_resolution,
            output, label, threads, source,
        )
        rows.append({
            "scene": scene_name, "variant": variant, "repeat": repeat, "seed": seed,
            "seconds": row["seconds"], "elapsed": row["elapsed"], "steps": row["step"] + 1, **scores,
        })
    training = {
        "scene": scene_name, "variant": variant, "repeat": repeat, "seed": seed,
        "options": list(options), "threads": threads or os.cpu_count(),
        "code": PREVIOUS_COMMIT if source is not None else "this checkout",
        "steps_per_second": rows[-1]["steps"] / rows[-1]["elapsed"], "peak_memory_mib": trained.peak_mib,
        "process_seconds": trained.seconds,
    }
    return training, rows


def scene_table(scene: str, trainings: List[Dict], scene_rows: List[Dict]) -> Tuple[List[str], List[List[str]], str]:
    """Columns, cells and caption of one scene's table: a line per mark, the variants side by side (medians over
    repeats, with their range when there are several)."""
    variants = list(dict.fromkeys(training["variant"] for training in trainings if training["scene"] == scene))
    columns = ["mark (s)"] + [
        f"{variant} {title}" for variant in variants for title in ["steps"] + [metric.title for metric in METRICS]
    ]
    by_key = {(row["variant"], row["seconds"]): row for row in scene_rows if row["scene"] == scene}
    cells = []
    for mark in sorted({row["seconds"] for row in scene_rows if row["scene"] == scene}):
        line = [f"{mark:g}"]
        for variant in variants:
            row = by_key[(variant, mark)]
            line += [f"{row['steps']:.0f}"] + [spread_cell(row, metric) for metric in METRICS]
        cells.append(line)
    caption = "; ".join(
        f"{training['variant']} (seed {training['seed']}): {training['steps_per_second']:.2f} steps/s, "
        f"peak {training['peak_memory_mib']:.0f} MiB"
        for training in trainings if training["scene"] == scene
    )
    return columns, cells, caption


def markdown(results: Dict, mode: str) -> str:
    """The results as a markdown page: what ran, one table per scene, then the summary over scenes."""
    lines = [
        f"# nero-shape time-to-quality curve, {results['date']}, commit {results['commit']}"
        + (" (uncommitted changes)" if results["dirty"] else ""),
        "", f"`{results['command']}`", "", f"Variants {mode}; {results['repeats']} training seed(s) each.", "",
    ]
    for name, options in results["variants"].items():
        code = f"nero-shape at commit {results['previous_commit']}" if name == "previous" else "this commit"
        lines.append(f"- {name}: {code}, {' '.join(options) if options else 'no extra options'}")
    for scene in results["scenes"]:
        columns, cells, caption = scene_table(scene, results["trainings"], results["per_scene"])
        lines += ["", f"## {scene}", "", markdown_table(columns, cells), "", caption]
    header, cells = summary_table(results["summary"], METRICS, GROUP)
    lines += ["", "## Over the scenes: median and worst", "", markdown_table(header, cells)]
    return "\n".join(lines) + "\n"


def write_curve_results(
    config: CurveBenchmark, scenes: List[str], size: SceneSize, variants: Dict[str, Tuple[str, ...]],
    trainings: List[Dict], rows: List[Dict], mode: str,
) -> None:
    """RESULTS_DIR/<date>-<commit>.json with every row so far, and the markdown tables beside it."""
    done = [scene for scene in scenes if any(row["scene"] == scene for row in rows)]
    scene_rows = per_scene(rows, (Metric("steps", "steps", ".0f"), *METRICS), GROUP)
    results = {
        **run_record(), "parallel": config.parallel, "repeats": config.repeats,
        "marks": sorted(config.marks), "mesh_resolution": config.mesh_resolution,
        "scenes": done, "scene_size": asdict(size),
        "variants": {name: list(options) for name, options in variants.items()},
        "previous_commit": PREVIOUS_COMMIT, "trainings": trainings, "rows": rows,
        "per_scene": scene_rows, "summary": summary(scene_rows, METRICS, GROUP),
    }
    write_results("curve", results, markdown(results, mode), config.results_dir, config.quick, config.output_dir)


def main(config: CurveBenchmark) -> None:
    run_record()  # the commit and command that train, recorded before anything runs
    config.apply_quick_preset()
    variants = selected_variants(config)
    scenes = scene_names(config.scenes, DEFAULT_SCENES)
    output = config.output_dir.resolve()
    if "previous" in variants:
        previous_source(output)  # extracted and import-checked before anything trains
    size = SceneSize(resolution=config.resolution, num_views=config.num_views, num_test_views=1, spp=config.spp)
    threads = 1 if config.parallel else None
    mode = "side by side, 1 CPU thread each" if config.parallel else f"one after the other, {os.cpu_count()} cores"
    trainings: List[Dict] = []
    rows: List[Dict] = []
    for name in scenes:
        scene = generate_scene(name, size, output / name / "scene", output / name / "synth.log")
        for repeat in range(config.repeats):
            with ThreadPoolExecutor(max_workers=len(variants) if config.parallel else 1) as pool:
                done = list(pool.map(
                    lambda variant: run_variant(config, name, scene, variant, variants[variant], threads, repeat),
                    variants,
                ))
            trainings += [training for training, _ in done]
            rows += [row for _, variant_rows in done for row in variant_rows]
        scene_rows = per_scene(rows, (Metric("steps", "steps", ".0f"), *METRICS), GROUP)
        columns, cells, caption = scene_table(name, trainings, scene_rows)
        print_table(
            f"nero-shape time to quality, {name}, {config.resolution} px, variants {mode}", columns, cells, caption
        )
        # After every scene, so that a run stopped midway keeps the scenes it finished.
        write_curve_results(config, scenes, size, variants, trainings, rows, mode)
    header, cells = summary_table(summary(scene_rows, METRICS, GROUP), METRICS, GROUP)
    print_table(f"nero-shape time to quality over {len(scenes)} scene(s): median and worst", header, cells)


if __name__ == "__main__":
    main(tyro.cli(CurveBenchmark))
    sys.exit(0)
