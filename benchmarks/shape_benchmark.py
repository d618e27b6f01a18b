"""Stage I quality and speed on a generated shiny scene, against the plain-radiance ablation, in one run.

    python benchmarks/shape_benchmark.py --budget-seconds 900

Generates (once) a metallic knot (roughness 0.1, 128 px, 48 views, floor and distractors outside the sphere, no
masks), trains `nero-shape` with NeRO's shading and with the plain view-dependent radiance head for the same
wall-clock budget, exports both meshes and prints Chamfer / normal error / F-score against the ground truth, with
steps/s, rays/s and peak memory of each training process. Each variant trains in its own process, one after the
other with all cores, or with `--parallel` side by side with one CPU thread each (same machine, same moment: the
fairest ratio on a noisy machine, at a lower step rate).
"""

from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import tyro
import yaml
from common import console, run_command, train_stage
from rich.table import Table


@dataclass
class ShapeBenchmark:
    output_dir: Path = Path("benchmark-output/shape")
    """Where the scene, runs, meshes and results go."""
    budget_seconds: float = 900.0
    """Wall-clock training budget of each variant."""
    variants: tuple[str, ...] = ("nero", "plain")
    """Shading variants to compare (nero = split-sum + occlusion, plain = NeuS-style radiance)."""
    shape: str = "knot"
    """Generated object."""
    resolution: int = 128
    """Image size."""
    num_views: int = 48
    """Training views."""
    mesh_resolution: int = 256
    """Marching-cubes resolution of the exported meshes."""
    rays_per_batch: Optional[int] = None
    """Training rays per step (None: nero-shape's default)."""
    parallel: bool = False
    """Train all variants at once, one CPU thread each, instead of one after the other with all threads."""


def run_variant(config: ShapeBenchmark, scene: Path, output: Path, variant: str, threads: Optional[int]) -> Dict:
    """Train one shading variant for the budget, export its mesh, score it; the row of the table."""
    trained = train_stage(
        "nero-shape", scene, output / "runs", variant, config.budget_seconds, config.rays_per_batch,
        output / f"train-{variant}.log", extra=("--pipeline.model.shading", variant), threads=threads,
    )
    run_config = yaml.load(trained.config.read_text(), Loader=yaml.Loader)
    rays_per_batch = run_config.pipeline.datamanager.train_num_rays_per_batch
    export = output / f"mesh-{variant}"
    run_command([
        "ns-export", "nero-mesh", "--load-config", str(trained.config), "--output-dir", str(export),
        "--resolution", str(config.mesh_resolution),
    ], output / f"export-{variant}.log", threads)
    metrics_file = export / "geometry.json"
    run_command([
        "nero-eval", "geometry", "--mesh", str(export / "mesh.ply"), "--gt", str(scene / "gt" / "mesh.ply"),
        "--json", str(metrics_file),
    ], output / f"eval-{variant}.log", threads)
    metrics = json.loads(metrics_file.read_text())
    seconds = min(trained.seconds, config.budget_seconds)
    return {
        "variant": variant, "threads": threads or os.cpu_count(), "steps": trained.steps, "train_seconds": seconds,
        "steps_per_second": trained.steps / seconds, "rays_per_batch": rays_per_batch,
        "rays_per_second": trained.steps * rays_per_batch / seconds,
        "peak_memory_mib": trained.peak_mib, **metrics,
    }


def main(config: ShapeBenchmark) -> None:
    output = config.output_dir.resolve()
    output.mkdir(parents=True, exist_ok=True)
    scene = output / "scene"
    if not (scene / "transforms.json").exists():
        run_command([
            "nero-synth", "--output-dir", str(scene), "--shape", config.shape, "--metallic", "1", "--roughness", "0.1",
            "--resolution", str(config.resolution), "--num-train-views", str(config.num_views), "--no-masks",
            "--overwrite",
        ], output / "synth.log")
    threads = 1 if config.parallel else None
    with ThreadPoolExecutor(max_workers=len(config.variants) if config.parallel else 1) as pool:
        rows = list(pool.map(lambda variant: run_variant(config, scene, output, variant, threads), config.variants))

    mode = "side by side, 1 thread each" if config.parallel else f"one after the other, {os.cpu_count()} cores"
    table = Table(title=f"nero-shape, {config.shape}, {config.budget_seconds:.0f} s budget per variant ({mode})")
    for column in ("variant", "steps", "steps/s", "rays/s", "peak MiB", "chamfer", "normal err", "F@0.01"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row["variant"], str(row["steps"]), f"{row['steps_per_second']:.2f}", f"{row['rays_per_second']:.0f}",
            f"{row['peak_memory_mib']:.0f}", f"{row['chamfer']:.4f}", f"{row['normal_error_deg']:.1f}",
            f"{row['fscore']:.3f}",
        )
    console.print(table)
    by_variant = {row["variant"]: row for row in rows}
    if "nero" in by_variant and "plain" in by_variant:
        ratio = by_variant["nero"]["chamfer"] / by_variant["plain"]["chamfer"]
        console.print(f"Chamfer nero / plain = {ratio:.2f} ({(1 - ratio) * 100:.0f}% lower with NeRO's shading)")
    (output / "results.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main(tyro.cli(ShapeBenchmark))
    sys.exit(0)
