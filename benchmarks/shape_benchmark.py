"""nero-shape quality and speed on generated shiny scenes, against the plain-radiance ablation, in one run.

    python benchmarks/shape_benchmark.py --budget-seconds 900
    python benchmarks/shape_benchmark.py --scenes quick --repeats 3      # three scenes, three training seeds
    python benchmarks/shape_benchmark.py --quick                         # smoke run: 20 s per variant, 48 px

Generates (once) each scene of `--scenes` (default the metallic knot: roughness 0.1, 128 px, 48 views, floor and
distractors outside the sphere), trains `nero-shape` on it without masks with NeRO's shading and with the plain
view-dependent radiance head for the same wall-clock budget, exports both meshes and scores Chamfer / normal error /
F-score against the ground truth, with steps/s, rays/s and peak memory of each training process. Each variant
trains in its own process, one after the other with all cores, or with `--parallel` side by side with one CPU
thread each (same machine, same moment: the fairest ratio on a noisy machine, at a lower step rate). `--repeats`
trains every variant with training seeds 42, 43, ...; the tables give medians over them with their range, per
scene, then the median and the worst over the scenes. Writes RESULTS_DIR/<date>-<commit>.json and .md.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import tyro
import yaml

from common import (
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
    training_seed,
    write_results,
)

METRICS: Tuple[Metric, ...] = (
    Metric("steps", "steps", ".0f", higher_is_better=True),
    Metric("steps_per_second", "steps/s", ".2f", higher_is_better=True),
    Metric("peak_memory_mib", "peak MiB", ".0f"),
    Metric("chamfer", "Chamfer", ".4f"),
    Metric("normal_error_deg", "normal err", ".1f"),
    Metric("fscore", "F@0.01", ".3f", higher_is_better=True),
)
RATIO = Metric("chamfer_ratio", "Chamfer nero / plain", ".2f")


@dataclass
class ShapeBenchmark:
    output_dir: Path = Path("benchmark-output/shape")
    """Where the scenes, runs and meshes go."""
    results_dir: Optional[Path] = None
    """Where <date>-<commit>.json and .md go; None: benchmarks/results/shape, or OUTPUT_DIR with --quick."""
    budget_seconds: float = 900.0
    """Wall-clock training budget of each variant."""
    variants: Tuple[str, ...] = ("nero", "plain")
    """Shading variants to compare (nero = split-sum + occlusion, plain = NeuS-style radiance)."""
    scenes: Optional[str] = None
    """Scenes of the scene set (docs/scenes.md): quick, full, or names separated by commas; None: metal-knot."""
    repeats: int = 1
    """Trainings of every variant on every scene, with training seeds 42, 43, ... (nerfstudio's --machine.seed)."""
    resolution: int = 128
    """Image size."""
    num_views: int = 48
    """Training views."""
    spp: int = 64
    """Samples per pixel of the generated images."""
    mesh_resolution: int = 256
    """Marching-cubes resolution of the exported meshes."""
    rays_per_batch: Optional[int] = None
    """Training rays per step (None: nero-shape's default)."""
    parallel: bool = False
    """Train all variants at once, one CPU thread each, instead of one after the other with all threads."""
    quick: bool = False
    """Smoke-run preset: 20 s per variant, 48 px, 12 views, 8 spp, 256 rays, meshes at 64."""

    def apply_quick_preset(self) -> None:
        if self.quick:
            self.budget_seconds, self.resolution, self.num_views, self.spp = 20.0, 48, 12, 8
            self.rays_per_batch, self.mesh_resolution = 256, 64


def run_variant(
    config: ShapeBenchmark, scene_name: str, scene: Path, variant: str, threads: Optional[int], repeat: int
) -> Dict:
    """Train one shading variant for the budget, export its mesh, score it; the row of the table."""
    output = config.output_dir.resolve() / scene_name
    name = run_name(variant, repeat)
    trained = train_stage(
        "nero-shape", scene, output / "runs", name, config.budget_seconds, config.rays_per_batch,
        output / f"train-{name}.log", extra=("--pipeline.model.shading", variant), threads=threads, repeat=repeat,
    )
    run_config = yaml.load(trained.config.read_text(), Loader=yaml.Loader)
    rays_per_batch = run_config.pipeline.datamanager.train_num_rays_per_batch
    scores = export_and_score_mesh(
        trained.config, scene, output / f"mesh-{name}", config.mesh_resolution, output, name, threads
    )
    seconds = min(trained.seconds, config.budget_seconds)
    return {
        "scene": scene_name, "variant": variant, "repeat": repeat, "seed": training_seed(repeat),
        "threads": threads or os.cpu_count(), "steps": trained.steps, "train_seconds": seconds,
        "steps_per_second": trained.steps / seconds, "rays_per_batch": rays_per_batch,
        "rays_per_second": trained.steps * rays_per_batch / seconds, "peak_memory_mib": trained.peak_mib,
        **scores,
    }


def chamfer_ratios(rows: List[Dict]) -> List[Dict]:
    """Per scene and repeat, nero's Chamfer over plain's (when both ran): below 0.7 is the 30% target."""
    by_key = {(row["scene"], row["repeat"], row["variant"]): row["chamfer"] for row in rows}
    return [
        {"scene": scene, "repeat": repeat, "variant": "nero / plain", "chamfer_ratio": chamfer / by_key[plain]}
        for (scene, repeat, variant), chamfer in by_key.items()
        if variant == "nero" and (plain := (scene, repeat, "plain")) in by_key
    ]


def markdown(results: Dict, mode: str) -> str:
    """What ran, a line per scene and variant, the Chamfer ratios, then the median and worst over scenes."""
    columns = ["scene", "variant", "repeats", *(metric.title for metric in METRICS)]
    cells = [
        [row["scene"], row["variant"], str(row["repeats"]), *(spread_cell(row, metric) for metric in METRICS)]
        for row in results["per_scene"]
    ]
    lines = [
        f"# nero-shape, NeRO shading against plain radiance, {results['date']}, commit {results['commit']}"
        + (" (uncommitted changes)" if results["dirty"] else ""),
        "", f"`{results['command']}`", "",
        f"{results['budget_seconds']:.0f} s per variant ({mode}); {results['repeats']} training seed(s) each; "
        "per scene, the median over seeds (and their range).", "", markdown_table(columns, cells),
    ]
    if results["ratio_per_scene"]:
        ratio_cells = [[row["scene"], spread_cell(row, RATIO)] for row in results["ratio_per_scene"]]
        lines += ["", markdown_table(["scene", RATIO.title + " (target < 0.7)"], ratio_cells)]
    header, summary_cells = summary_table(results["summary"], (*METRICS, RATIO), ("variant",))
    lines += ["", "## Over the scenes: median and worst", "", markdown_table(header, summary_cells)]
    return "\n".join(lines) + "\n"


def main(config: ShapeBenchmark) -> None:
    run_record()  # the commit and command that train, recorded before anything runs
    config.apply_quick_preset()
    scenes = scene_names(config.scenes, "metal-knot")
    output = config.output_dir.resolve()
    size = SceneSize(resolution=config.resolution, num_views=config.num_views, num_test_views=1, spp=config.spp)
    threads = 1 if config.parallel else None
    mode = "side by side, 1 thread each" if config.parallel else f"one after the other, {os.cpu_count()} cores"
    rows: List[Dict] = []
    for name in scenes:
        scene = generate_scene(name, size, output / name / "scene", output / name / "synth.log")
        for repeat in range(config.repeats):
            with ThreadPoolExecutor(max_workers=len(config.variants) if config.parallel else 1) as pool:
                rows += pool.map(lambda variant: run_variant(config, name, scene, variant, threads, repeat),
                                 config.variants)

    scene_rows = per_scene(rows, METRICS, ("variant",))
    ratios = per_scene(chamfer_ratios(rows), (RATIO,), ("variant",))
    results = {
        **run_record(), "config": asdict(config), "budget_seconds": config.budget_seconds,
        "repeats": config.repeats, "scenes": scenes, "scene_size": asdict(size), "rows": rows,
        "per_scene": scene_rows, "ratio_per_scene": ratios,
        "summary": summary(scene_rows, METRICS, ("variant",)) + summary(ratios, (RATIO,), ("variant",)),
    }
    columns = ["scene", "variant", *(metric.title for metric in METRICS)]
    print_table(
        f"nero-shape, {config.budget_seconds:.0f} s budget per variant ({mode})", columns,
        [[row["scene"], row["variant"], *(spread_cell(row, metric) for metric in METRICS)] for row in scene_rows],
    )
    header, cells = summary_table(results["summary"], (*METRICS, RATIO), ("variant",))
    print_table(f"over {len(scenes)} scene(s): median and worst", header, cells)
    write_results("shape", results, markdown(results, mode), config.results_dir, config.quick, config.output_dir)


if __name__ == "__main__":
    main(tyro.cli(ShapeBenchmark))
    sys.exit(0)
