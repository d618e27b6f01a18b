"""Time-to-quality curve of Stage I: the mesh's quality after 75, 150, 300, 600 and 900 s of training, for the
current defaults of `nero-shape` against the previous ones, on two generated scenes.

    python benchmarks/curve_benchmark.py                         # both scenes, current and previous, one by one
    python benchmarks/curve_benchmark.py --parallel              # the variants of a scene side by side, 1 thread each
    python benchmarks/curve_benchmark.py --quick --results-dir /tmp/curve    # smoke run, a few minutes

Scenes (generated once, floor and distractors, trained without masks): the metallic knot of shape_benchmark.py
(metallic 1, roughness 0.1) and a glossy dielectric blob with concave dimples (metallic 0, roughness 0.1). Each
variant trains ONCE per scene, with `--max-train-seconds <last mark> --checkpoint-at-seconds <marks>`; the checkpoint
kept at each mark is exported (`ns-export nero-mesh` on a copy of config.yml with `load_step` set, which nerfstudio's
eval_setup honours) and scored (`nero-eval geometry`). Prints per scene the steps, Chamfer, normal error and F@0.01
of every variant at every mark side by side, with the steps/s and peak memory of each training. Writes
RESULTS_DIR/<date>-<commit>.json (every row, the command line, the commit) and a markdown table beside it.
"""

from __future__ import annotations

import datetime
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
from rich.table import Table

from common import SceneSize, SceneSpec, console, generate_scene, run_command, train_stage
from nero_ns.engine.trainer import TIME_CHECKPOINTS_FILE

ROOT = Path(__file__).resolve().parents[1]
SCENES: Tuple[SceneSpec, ...] = (
    SceneSpec("metal-knot", "knot", metallic=1.0, roughness=0.1, base_color=(0.95, 0.7, 0.4)),
    SceneSpec("glossy-blob", "blob", metallic=0.0, roughness=0.1, base_color=(0.2, 0.45, 0.8)),
)
# The "previous" variant is nero-shape as it was at this commit (its defaults and its code: nerfstudio's hash grid,
# autograd double backward, 1024 rays per step), run from an extracted copy of that commit's `nero_ns` with today's
# trainer dropped in, since --checkpoint-at-seconds is what makes a curve from one run (the trainer does not touch
# the model). Move it forward when a new set of defaults lands.
PREVIOUS_COMMIT = "38cac48"
VARIANTS: Dict[str, Tuple[str, ...]] = {"current": (), "previous": ()}
METRICS: Tuple[Tuple[str, str, str], ...] = (
    # (nero-eval geometry key, column title, format)
    ("chamfer", "Chamfer", ".4f"),
    ("normal_error_deg", "normal err", ".1f"),
    ("fscore", "F@0.01", ".3f"),
)


@dataclass
class CurveBenchmark:
    output_dir: Path = Path("benchmark-output/curve")
    """Where scenes, runs, meshes and logs go (scenes are reused when already there, runs are trained anew)."""
    results_dir: Optional[Path] = None
    """Where <date>-<commit>.json and .md go; None: benchmarks/results/curve, or OUTPUT_DIR with --quick."""
    marks: Tuple[float, ...] = (75.0, 150.0, 300.0, 600.0, 900.0)
    """Training seconds at which each run is scored; the last one is its training budget."""
    scenes: Tuple[str, ...] = tuple(spec.name for spec in SCENES)
    """Scenes to run, among metal-knot, glossy-blob."""
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
    """Smoke-run preset: the knot only, 48 px, 12 views, 8 spp, 256 rays, marks at 10 and 20 s, meshes at 64."""

    def apply_quick_preset(self) -> None:
        if self.quick:
            self.scenes, self.marks = ("metal-knot",), (10.0, 20.0)
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


def previous_source(output: Path) -> Path:
    """A folder holding `nero_ns` as it was at PREVIOUS_COMMIT, with today's trainer (extracted once)."""
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
        shutil.copy(ROOT / "nero_ns" / "engine" / "trainer.py", folder / "nero_ns" / "engine" / "trainer.py")
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
    config: CurveBenchmark, spec: SceneSpec, scene: Path, name: str, options: Tuple[str, ...], threads: Optional[int]
) -> Tuple[Dict, List[Dict]]:
    """Train one variant until the last mark, then export and score the checkpoint of every mark: its training
    (steps/s, peak memory) and its rows (one per mark)."""
    output = config.output_dir.resolve() / spec.name
    runs = output / "runs"
    shutil.rmtree(runs / name, ignore_errors=True)  # no checkpoints or marks left from an earlier benchmark
    marks = sorted(config.marks)
    source = previous_source(config.output_dir.resolve()) if name == "previous" else None
    trained = train_stage(
        "nero-shape", scene, runs, name, marks[-1], config.rays_per_batch, output / f"train-{name}.log",
        extra=("--checkpoint-at-seconds", *(str(mark) for mark in marks), *options), threads=threads, source=source,
    )
    timed = json.loads((trained.config.parent / TIME_CHECKPOINTS_FILE).read_text())
    if [row["seconds"] for row in timed] != marks:
        raise SystemExit(f"{spec.name}/{name}: checkpoints at {timed}, not at every mark; see train-{name}.log")
    rows = []
    for row in timed:
        export = output / f"mesh-{name}-{row['seconds']:g}s"
        run_command([
            "ns-export", "nero-mesh", "--load-config", str(config_at_step(trained.config, row["step"])),
            "--output-dir", str(export), "--resolution", str(config.mesh_resolution),
        ], output / f"export-{name}-{row['seconds']:g}s.log", threads, source)
        metrics_file = export / "geometry.json"
        run_command([
            "nero-eval", "geometry", "--mesh", str(export / "mesh.ply"), "--gt", str(scene / "gt" / "mesh.ply"),
            "--json", str(metrics_file),
        ], output / f"eval-{name}-{row['seconds']:g}s.log", threads)
        rows.append({
            "scene": spec.name, "variant": name, "seconds": row["seconds"], "elapsed": row["elapsed"],
            "steps": row["step"] + 1, **json.loads(metrics_file.read_text()),
        })
    training = {
        "scene": spec.name, "variant": name, "options": list(options), "threads": threads or os.cpu_count(),
        "code": PREVIOUS_COMMIT if source is not None else "this checkout",
        "steps_per_second": rows[-1]["steps"] / rows[-1]["elapsed"], "peak_memory_mib": trained.peak_mib,
        "process_seconds": trained.seconds,
    }
    return training, rows


def scene_table(scene: str, trainings: List[Dict], rows: List[Dict]) -> Tuple[List[str], List[List[str]], str]:
    """Columns, cells and caption of one scene's table: a line per mark, the variants side by side."""
    variants = [training["variant"] for training in trainings]
    columns = ["mark (s)"] + [
        f"{variant} {title}" for variant in variants for title in ["steps"] + [title for _, title, _ in METRICS]
    ]
    by_key = {(row["variant"], row["seconds"]): row for row in rows if row["scene"] == scene}
    cells = []
    for mark in sorted({row["seconds"] for row in rows if row["scene"] == scene}):
        line = [f"{mark:g}"]
        for variant in variants:
            row = by_key[(variant, mark)]
            line += [str(row["steps"])] + [format(row[key], spec) for key, _, spec in METRICS]
        cells.append(line)
    caption = "; ".join(
        f"{training['variant']}: {training['steps_per_second']:.2f} steps/s, peak {training['peak_memory_mib']:.0f} MiB"
        for training in trainings
    )
    return columns, cells, caption


def markdown(results: Dict, mode: str) -> str:
    """The results as a markdown page: what ran, then one table per scene."""
    lines = [
        f"# nero-shape time-to-quality curve, {results['date']}, commit {results['commit']}"
        + (" (uncommitted changes)" if results["dirty"] else ""),
        "", f"`{results['command']}`", "", f"Variants {mode}.", "",
    ]
    for name, options in results["variants"].items():
        code = f"nero-shape at commit {results['previous_commit']}" if name == "previous" else "this commit"
        lines.append(f"- {name}: {code}, {' '.join(options) if options else 'no extra options'}")
    for scene in results["scenes"]:
        trainings = [training for training in results["trainings"] if training["scene"] == scene]
        columns, cells, caption = scene_table(scene, trainings, results["rows"])
        lines += ["", f"## {scene}", "", "| " + " | ".join(columns) + " |", "|" + "---:|" * len(columns)]
        lines += ["| " + " | ".join(line) + " |" for line in cells]
        lines += ["", caption]
    return "\n".join(lines) + "\n"


def git_state() -> Tuple[str, bool]:
    """The short commit of this checkout ("unknown" outside git) and whether tracked files differ from it."""
    def git(*arguments: str) -> Optional[str]:
        completed = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, text=True)
        return completed.stdout.strip() if completed.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    return commit or "unknown", bool(git("status", "--porcelain", "--untracked-files=no"))


def write_results(
    config: CurveBenchmark, specs: Dict[str, SceneSpec], size: SceneSize, variants: Dict[str, Tuple[str, ...]],
    trainings: List[Dict], rows: List[Dict], mode: str,
) -> None:
    """RESULTS_DIR/<date>-<commit>.json with every row so far, and the markdown tables beside it."""
    commit, dirty = git_state()
    date = datetime.date.today().isoformat()
    scenes = sorted({row["scene"] for row in rows}, key=list(config.scenes).index)
    results = {
        "date": date, "commit": commit, "dirty": dirty,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]), "parallel": config.parallel,
        "marks": sorted(config.marks), "mesh_resolution": config.mesh_resolution,
        "scenes": scenes, "scene_specs": [asdict(specs[name]) for name in scenes],
        "scene_size": asdict(size), "variants": {name: list(options) for name, options in variants.items()},
        "previous_commit": PREVIOUS_COMMIT, "trainings": trainings, "rows": rows,
    }
    default_results = config.output_dir.resolve() if config.quick else ROOT / "benchmarks" / "results" / "curve"
    results_dir = (config.results_dir or default_results).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{date}-{commit}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    path.with_suffix(".md").write_text(markdown(results, mode))
    console.print(f"results: {path} and {path.with_suffix('.md')}")


def main(config: CurveBenchmark) -> None:
    config.apply_quick_preset()
    variants = selected_variants(config)
    specs = {spec.name: spec for spec in SCENES}
    unknown = [name for name in config.scenes if name not in specs]
    if unknown:
        raise SystemExit(f"unknown scene(s) {', '.join(unknown)}; choose among {', '.join(specs)}")
    output = config.output_dir.resolve()
    size = SceneSize(resolution=config.resolution, num_views=config.num_views, num_test_views=1, spp=config.spp)
    threads = 1 if config.parallel else None
    mode = "side by side, 1 CPU thread each" if config.parallel else f"one after the other, {os.cpu_count()} cores"
    trainings: List[Dict] = []
    rows: List[Dict] = []
    for name in config.scenes:
        spec = specs[name]
        scene = generate_scene(spec, size, output / name / "scene", output / name / "synth.log")
        with ThreadPoolExecutor(max_workers=len(variants) if config.parallel else 1) as pool:
            done = list(pool.map(
                lambda variant: run_variant(config, spec, scene, variant, variants[variant], threads), variants
            ))
        trainings += [training for training, _ in done]
        rows += [row for _, scene_rows in done for row in scene_rows]
        columns, cells, caption = scene_table(name, [training for training, _ in done], rows)
        table = Table(
            title=f"nero-shape time to quality, {name}, {config.resolution} px, variants {mode}", caption=caption
        )
        for column in columns:
            table.add_column(column, justify="right")
        for line in cells:
            table.add_row(*line)
        console.print(table)
        # After every scene, so that a run stopped midway keeps the scenes it finished.
        write_results(config, specs, size, variants, trainings, rows, mode)


if __name__ == "__main__":
    main(tyro.cli(CurveBenchmark))
    sys.exit(0)
