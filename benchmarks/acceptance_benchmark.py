"""Behaviour before and after a change: nero-shape and nero-material trained with the code of two commits for the
same fixed number of steps, on the same scenes, on this machine in one run, beside the spread of a second seed.

    git worktree add --detach ../before 7d666db
    python benchmarks/acceptance_benchmark.py --before-source ../before     # nero_ns there against this checkout
    python benchmarks/acceptance_benchmark.py --before-source ../before --quick --results-dir /tmp/acceptance

Steps, not seconds: a change that makes steps faster (or slower) then shows only what it changes in what a step does.
Each code trains in its own `ns-train` process with its own `nero_ns` (PYTHONPATH) and its own defaults: nero-shape
on every scene of `--scenes` (the "before" code with seed 42, the "after" code, this checkout, with seeds 42, 43,
... `--repeats`), each mesh exported by the code that trained it and scored by this checkout's `nero-eval geometry`;
then nero-material on ONE nero-shape run (the before code's seed-42 run of `--material-scene`: a run of the older
code is what both codes can load), before once and after `--repeats` times, each exported, scored and rendered as
benchmarks/material_benchmark.py does. Prints a table per stage and scene (each training, the after-before difference
at seed 42 and the seed spread of the after code) and writes RESULTS_DIR/<date>-<commit>.json and .md.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import tyro

from common import (
    Metric,
    SceneSize,
    TrainResult,
    console,
    export_and_score_mesh,
    generate_scene,
    markdown_table,
    print_table,
    run_name,
    run_record,
    scene_names,
    train_stage,
    trained_steps,
    training_seed,
    write_results,
)
from curve_benchmark import METRICS as CURVE_METRICS
from material_benchmark import METRICS as MATERIAL_BENCHMARK_METRICS
from material_benchmark import MaterialBenchmark, material_training_options, score_material_run

DEFAULT_SCENES = "metal-knot,glossy-blob"
SHAPE_METRICS = CURVE_METRICS
MATERIAL_METRICS: Tuple[Metric, ...] = (
    *MATERIAL_BENCHMARK_METRICS[:4],  # metallic MAE, roughness MAE, albedo PSNR, test PSNR
    Metric("material_object_psnr", "object PSNR", ".2f", higher_is_better=True),
)


@dataclass
class AcceptanceBenchmark:
    before_source: Path
    """A checkout of the commit to compare against (`git worktree add --detach DIR COMMIT`): its `nero_ns` trains
    the "before" runs."""
    output_dir: Path = Path("benchmark-output/acceptance")
    """Where scenes, runs, exports and logs go (scenes are reused when already there, runs are trained anew)."""
    results_dir: Optional[Path] = None
    """Where <date>-<commit>.json and .md go; None: benchmarks/results/acceptance, or OUTPUT_DIR with --quick."""
    scenes: Optional[str] = None
    """nero-shape's scenes (docs/scenes.md): quick, full, or names separated by commas; None: metal-knot and
    glossy-blob."""
    material_scene: Optional[str] = "metal-knot"
    """The scene nero-material trains on (one of --scenes); None: no nero-material runs."""
    repeats: int = 2
    """Trainings of the after code per scene, with seeds 42, 43, ...: their spread is the run-to-run noise."""
    shape_steps: int = 600
    """Training steps of every nero-shape run."""
    material_steps: int = 300
    """Training steps of every nero-material run."""
    resolution: int = 128
    """Image size of the generated scenes."""
    num_views: int = 48
    """Training views."""
    num_test_views: int = 1
    """Held-out views (gt/test) nero-material is rendered from."""
    spp: int = 64
    """Samples per pixel of the generated images."""
    mesh_resolution: int = 256
    """Marching-cubes resolution of the exported meshes and of nero-material's ray-casting mesh."""
    texture_size: int = 512
    """Baked texture size of nero-material's export."""
    render_monte_carlo: Tuple[int, int] = (4, 1)
    """Rays per pixel and sample multiplier of nero-material's held-out renders."""
    reuse_runs: bool = False
    """Keep the runs in OUTPUT_DIR that an earlier (interrupted) benchmark trained for the same steps, and train only
    the missing ones; every run is scored again."""
    quick: bool = False
    """Smoke-run preset: the knot, 48 px, 12 views, 8 spp, 20 + 10 steps, meshes and textures at 64."""

    def apply_quick_preset(self) -> None:
        if self.quick:
            self.scenes, self.resolution, self.num_views, self.spp = self.scenes or "metal-knot", 48, 12, 8
            self.shape_steps, self.material_steps, self.mesh_resolution, self.texture_size = 20, 10, 64, 64


def source_commit(source: Path) -> str:
    """The short commit checked out in `source`, refused when its tracked files differ from it."""
    def git(*arguments: str) -> str:
        completed = subprocess.run(["git", "-C", str(source), *arguments], capture_output=True, text=True)
        if completed.returncode != 0:
            raise SystemExit(f"{source} is not a git checkout; pass --before-source a `git worktree add` folder")
        return completed.stdout.strip()

    if git("status", "--porcelain", "--untracked-files=no"):
        raise SystemExit(f"{source} has uncommitted changes; compare against a clean checkout of a commit")
    return git("rev-parse", "--short", "HEAD")


def trainings(config: AcceptanceBenchmark) -> List[Tuple[str, int]]:
    """(code, repeat) of every training of a scene: the before code once, the after code `repeats` times."""
    return [("before", 0)] + [("after", repeat) for repeat in range(config.repeats)]


def reused_run(config: AcceptanceBenchmark, runs: Path, label: str, method: str, steps: int) -> Optional[TrainResult]:
    """With --reuse-runs, the run RUNS/LABEL of an earlier benchmark when it trained `steps` steps (its seconds and
    memory unknown: None)."""
    run_dir = runs / label / method / "bench"
    if not config.reuse_runs or trained_steps(run_dir) != steps:
        return None
    console.print(f"reusing {run_dir}")
    return TrainResult(run_dir / "config.yml", steps, None, None)  # type: ignore[arg-type]


def shape_run_config(output: Path, label: str) -> Path:
    """config.yml of the nero-shape run LABEL of a scene's output folder."""
    return output / "runs" / label / "nero-shape" / "bench" / "config.yml"


def shape_rows(config: AcceptanceBenchmark, name: str, scene: Path, commits: Dict[str, str]) -> Iterator[Dict]:
    """Every nero-shape training of a scene, exported and scored: a row each, as each ends. A run reused with
    --reuse-runs keeps the scores of its mesh when an earlier benchmark wrote them."""
    output = config.output_dir.resolve() / name
    for code, repeat in trainings(config):
        label = run_name(f"shape-{code}", repeat)
        source = config.before_source.resolve() if code == "before" else None
        trained = reused_run(config, output / "runs", label, "nero-shape", config.shape_steps) or train_stage(
            "nero-shape", scene, output / "runs", label, None, None, output / f"train-{label}.log", source=source,
            repeat=repeat, max_steps=config.shape_steps,
        )
        scored = output / f"mesh-{label}" / "geometry.json"
        if trained.seconds is None and scored.is_file():
            scores = json.loads(scored.read_text())
        else:
            scores = export_and_score_mesh(
                trained.config, scene, output / f"mesh-{label}", config.mesh_resolution, output, label, source=source
            )
        yield {
            **scores, "stage": "shape", "scene": name, "code": code, "commit": commits[code],
            "seed": training_seed(repeat), "steps": trained.steps, "seconds": trained.seconds,
            "peak_mib": trained.peak_mib,
        }  # the training's seed, not nero-eval's sampling seed


def material_rows(config: AcceptanceBenchmark, name: str, scene: Path, commits: Dict[str, str]) -> Iterator[Dict]:
    """Every nero-material training on the before code's seed-42 nero-shape run of the scene, exported, scored and
    rendered: a row each, as each ends."""
    output = config.output_dir.resolve() / name
    scoring = MaterialBenchmark(
        mesh_resolution=config.mesh_resolution, texture_size=config.texture_size,
        render_monte_carlo=config.render_monte_carlo,
    )
    shape_run = shape_run_config(output, "shape-before")
    for code, repeat in trainings(config):
        label = run_name(f"material-{code}", repeat)
        source = config.before_source.resolve() if code == "before" else None
        trained = reused_run(config, output / "runs", label, "nero-material", config.material_steps) or train_stage(
            "nero-material", scene, output / "runs", label, None, None, output / label / "logs" / "train.log",
            extra=material_training_options(shape_run, scoring), source=source, repeat=repeat,
            max_steps=config.material_steps,
        )
        scores = score_material_run(trained.config, scene, output / label, scoring, None, source)
        yield {
            **scores["seen"], "stage": "material", "scene": name, "code": code, "commit": commits[code],
            "seed": training_seed(repeat), "steps": trained.steps, "seconds": trained.seconds,
            "peak_mib": trained.peak_mib, "mean_metallic": scores["mean_metallic"],
            **{key: scores[key] for key in ("material_psnr", "material_object_psnr")},
        }


def stage_table(rows: List[Dict], stage: str, scene: str, metrics: Tuple[Metric, ...]) -> Tuple[List[str], List[List[str]]]:
    """One scene's trainings of a stage, then after - before at seed 42 and the after code's seed spread (largest
    minus smallest over its seeds)."""
    mine = [row for row in rows if row["stage"] == stage and row["scene"] == scene]
    header = ["code (commit)", "seed", "steps", "seconds", *(metric.title for metric in metrics)]
    cells = [
        [f"{row['code']} ({row['commit']})", str(row["seed"]), str(row["steps"]),
         "reused" if row["seconds"] is None else f"{row['seconds']:.0f}",
         *(format(row[metric.key], metric.format) for metric in metrics)]
        for row in mine
    ]
    first = {row["code"]: row for row in reversed(mine)}  # each code's seed-42 row
    if "before" in first and "after" in first:
        cells.append(["after - before", "42", "", "", *(
            format(first["after"][metric.key] - first["before"][metric.key], "+" + metric.format) for metric in metrics
        )])
    after = [row for row in mine if row["code"] == "after"]
    if len(after) > 1:
        cells.append([f"after: seed spread ({len(after)} seeds)", "", "", "", *(
            format(max(row[m.key] for row in after) - min(row[m.key] for row in after), m.format) for m in metrics
        )])
    return header, cells


def tables(results: Dict) -> List[Tuple[str, List[str], List[List[str]]]]:
    """(title, header, cells) of every stage and scene."""
    out = []
    for stage, metrics in (("shape", SHAPE_METRICS), ("material", MATERIAL_METRICS)):
        steps = results["config"][f"{stage}_steps"]
        for scene in dict.fromkeys(row["scene"] for row in results["rows"] if row["stage"] == stage):
            out.append((f"nero-{stage}, {scene}, {steps} steps", *stage_table(results["rows"], stage, scene, metrics)))
    return out


def markdown(results: Dict) -> str:
    lines = [
        f"# Before and after, {results['date']}: {results['before_commit']} against {results['commit']}"
        + (" (uncommitted changes)" if results["dirty"] else ""),
        "", f"`{results['command']}`", "",
        f"Every training for a fixed number of steps, one after the other on this machine (OMP_NUM_THREADS "
        f"{results['omp_num_threads'] or 'unset'}); nero-material on the before "
        f"code's seed-42 nero-shape run of {results['config']['material_scene']}. Materials scored at the vertices a "
        "training camera sees; test and object PSNR of nero-material's held-out renders at "
        f"{results['config']['render_monte_carlo'][0]} rays per pixel.",
    ]
    for title, header, cells in tables(results):
        lines += ["", f"## {title}", "", markdown_table(header, cells)]
    return "\n".join(lines) + "\n"


def main(config: AcceptanceBenchmark) -> None:
    record = run_record()  # the commit and command that train, recorded before anything runs
    config.apply_quick_preset()
    commits = {"before": source_commit(config.before_source), "after": record["commit"]}
    scenes = scene_names(config.scenes, DEFAULT_SCENES)
    if config.material_scene is not None and config.material_scene not in scenes:
        raise SystemExit(f"--material-scene {config.material_scene} is not among --scenes {', '.join(scenes)}")
    output = config.output_dir.resolve()
    size = SceneSize(config.resolution, config.num_views, config.num_test_views, config.spp)
    rows: List[Dict] = []
    results: Dict = {}
    for name in scenes:
        scene = generate_scene(name, size, output / name / "scene", output / name / "synth.log")
        trained = shape_rows(config, name, scene, commits)
        if name == config.material_scene:
            trained = itertools.chain(trained, material_rows(config, name, scene, commits))
        for row in trained:
            rows.append(row)
            results = {
                **record, "before_commit": commits["before"], "config": asdict(config), "scenes": scenes,
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "scene_size": asdict(size), "rows": rows,
            }
            # After every training, so that a run stopped midway keeps what it finished (and --reuse-runs resumes).
            write_results(
                "acceptance", results, markdown(results), config.results_dir, config.quick, config.output_dir
            )
    for title, header, cells in tables(results):
        print_table(title, header, cells)


if __name__ == "__main__":
    main(tyro.cli(AcceptanceBenchmark))
    sys.exit(0)
