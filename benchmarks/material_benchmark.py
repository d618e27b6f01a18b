"""Stage II quality on generated scenes with known materials: does nero-material find metal, roughness, albedo?

    python benchmarks/material_benchmark.py                      # 900 s per stage, 128 px, 48 views
    python benchmarks/material_benchmark.py --parallel           # both scenes at once, one CPU thread each
    python benchmarks/material_benchmark.py --quick              # smoke run: 20 s per stage, 48 px, 12 views

For a metallic knot (metallic 1, roughness 0.1) and a dielectric blob (metallic 0, roughness 0.3), each with floor
and distractors and trained without masks: `ns-train nero-shape` (with the floor as a known plane) for a wall-clock
budget, then `ns-train nero-material` on it for another (geometry fine-tuned), `ns-export nero-materials`,
`nero-eval materials`, and both stages rendered from the held-out gt/test cameras (Stage II at 16 rays per pixel and
twice its light samples). Prints per scene: mean metallic over the exported mesh (pass: > 0.7 for metal, < 0.3 for
dielectric), roughness MAE (pass: <= 0.08) and albedo PSNR after per-channel scale alignment (pass: >= 22 dB) at
the vertices some training camera sees (`nero-eval materials --cameras`), both also at every vertex, held-out PSNR
of Stage II and of Stage I (whole image, and over the GT object mask; pass: Stage II's >= Stage I's), and the time
of each step; writes OUTPUT_DIR/results.json.
"""

from __future__ import annotations

import json
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import tyro
from rich.table import Table

from common import (
    SceneSize,
    SceneSpec,
    TrainResult,
    console,
    generate_scene,
    object_psnr,
    render_views_command,
    run_command,
    train_stage,
    trained_steps,
)

SCENES: Tuple[SceneSpec, ...] = (
    SceneSpec("metal-knot", "knot", metallic=1.0, roughness=0.1, base_color=(0.95, 0.7, 0.4)),
    SceneSpec("dielectric-blob", "blob", metallic=0.0, roughness=0.3, base_color=(0.2, 0.45, 0.8)),
)
METALLIC_PASS, DIELECTRIC_PASS, ROUGHNESS_MAE_PASS, ALBEDO_PSNR_PASS = 0.7, 0.3, 0.08, 22.0


@dataclass
class MaterialBenchmark:
    output_dir: Path = Path("benchmark-output/material")
    """Where scenes, runs, exports, renders and results.json go (scenes are reused when already there)."""
    stage_one_seconds: float = 900.0
    """Wall-clock training budget of Stage I (nero-shape)."""
    stage_two_seconds: float = 900.0
    """Wall-clock training budget of Stage II (nero-material)."""
    resolution: int = 128
    """Image size of the generated scenes."""
    num_views: int = 48
    """Training views."""
    num_test_views: int = 8
    """Held-out views (gt/test) both stages are rendered from."""
    spp: int = 64
    """Samples per pixel of the generated images."""
    rays_per_batch: Optional[int] = None
    """Training rays per step of both stages (None: each method's default)."""
    mesh_resolution: int = 256
    """Marching-cubes resolution of Stage II's ray-casting mesh and of the exported mesh."""
    texture_size: int = 1024
    """Baked texture size of the export."""
    max_distance: Optional[float] = None
    """Score materials only at exported vertices this close to the GT surface (fraction of the GT radius)."""
    reuse_stage_one: bool = False
    """Keep the Stage I runs already in OUTPUT_DIR (when there) and train only Stage II: for iterating on Stage II."""
    stage_one_support_plane: bool = True
    """Train Stage I with `--pipeline.model.support-plane True` (the floor as a known plane, as docs/nero-shape.md advises
    for objects standing on a floor); `--no-stage-one-support-plane` trains it with nero-shape's default (off)."""
    stage_two_finetune_geometry: bool = True
    """Train Stage II with `--pipeline.model.finetune-geometry True` (the SDF refined through the shading normals,
    as docs/nero-material.md advises for final assets); `--no-stage-two-finetune-geometry` keeps nero-material's default (the
    Stage I geometry frozen)."""
    stage_two_options: str = ""
    """Extra `ns-train nero-material` options for both scenes, as one string, e.g.
    `--stage-two-options="--pipeline.model.eval-sample-multiplier 4"`: to measure a Stage II setting."""
    render_monte_carlo: Tuple[int, int] = (16, 2)
    """Rays per pixel and sample multiplier of Stage II's held-out renders (`eval-pixel-samples`,
    `eval-sample-multiplier`; a run renders with 4 and 1 unless trained with others): Stage I renders without
    noise, so Stage II is compared near convergence, its Monte Carlo noise left out."""
    parallel: bool = False
    """Run the scenes side by side, one CPU thread each, instead of one after the other with all threads."""
    quick: bool = False
    """Smoke-run preset: 20 s per stage, 48 px, 12 views, 2 test views, 8 spp, mesh 64, textures 64."""

    def apply_quick_preset(self) -> None:
        if self.quick:
            self.stage_one_seconds = self.stage_two_seconds = 20.0
            self.resolution, self.num_views, self.num_test_views, self.spp = 48, 12, 2, 8
            self.rays_per_batch, self.mesh_resolution, self.texture_size = 256, 64, 64
            self.render_monte_carlo = (4, 1)


def previous_stage_one(spec: SceneSpec, runs: Path, output: Path) -> Optional[TrainResult]:
    """The Stage I run of an earlier benchmark of this scene, with its time and memory from that results.json."""
    run_dir = runs / "shape" / "nero-shape" / "bench"
    steps = trained_steps(run_dir)
    results = output / "results.json"
    rows = json.loads(results.read_text())["scenes"] if results.is_file() else []
    row = next((row for row in rows if row["scene"] == spec.name), None)
    if steps is None or row is None:
        return None
    console.print(f"{spec.name}: reusing the Stage I run in {run_dir}")
    return TrainResult(run_dir / "config.yml", steps, row["stage_one_seconds"], row["stage_one_peak_mib"])


def benchmark_scene(spec: SceneSpec, config: MaterialBenchmark, output: Path) -> Dict:
    """Both stages, export, material metrics and held-out renders of one scene; returns its results row."""
    threads = 1 if config.parallel else None
    folder = output / spec.name
    logs, runs = folder / "logs", folder / "runs"
    size = SceneSize(config.resolution, config.num_views, config.num_test_views, config.spp)
    scene = generate_scene(spec, size, folder / "scene", logs / "synth.log")
    test_cameras = scene / "gt" / "test" / "transforms.json"

    shape = previous_stage_one(spec, runs, output) if config.reuse_stage_one else None
    if shape is None:
        shape = train_stage(
            "nero-shape", scene, runs, "shape", config.stage_one_seconds, config.rays_per_batch,
            logs / "train-shape.log", threads=threads,
            extra=("--pipeline.model.support-plane", str(config.stage_one_support_plane)),
        )
    material = train_stage(
        "nero-material", scene, runs, "material", config.stage_two_seconds, config.rays_per_batch,
        logs / "train-material.log",
        extra=("--shape-config", str(shape.config), "--pipeline.model.mesh-resolution", str(config.mesh_resolution),
               "--pipeline.model.finetune-geometry", str(config.stage_two_finetune_geometry),
               *shlex.split(config.stage_two_options)),
        threads=threads,
    )
    assets = folder / "assets"
    export = run_command([
        "ns-export", "nero-materials", "--load-config", str(material.config), "--output-dir", str(assets),
        "--resolution", str(config.mesh_resolution), "--texture-size", str(config.texture_size),
    ], logs / "export.log", threads)
    # Scored twice: at the vertices some training camera sees (the pass/fail figures: no photo constrains a
    # surface none shows), and at every vertex.
    scores = {}
    for scope, extra_options in (("seen", ("--cameras", str(scene / "transforms.json"))), ("all", ())):
        material_json = folder / f"materials-{scope}.json"
        evaluate = [
            "nero-eval", "materials", "--assets", str(assets), "--gt", str(scene / "gt"), "--json", str(material_json),
            *extra_options,
        ]
        if config.max_distance is not None:
            evaluate += ["--max-distance", str(config.max_distance)]
        run_command(evaluate, logs / f"eval-materials-{scope}.log", threads)
        scores[scope] = json.loads(material_json.read_text())
    metrics, everywhere = scores["seen"], scores["all"]

    held_out = {}
    render_seconds = 0.0
    for stage, run in (("stage_one", shape), ("stage_two", material)):
        renders = folder / f"test-renders-{stage}"
        render_seconds += run_command(
            render_views_command(
                run.config, test_cameras, renders, config.render_monte_carlo if stage == "stage_two" else None
            ),
            logs / f"render-{stage}.log", threads,
        ).seconds
        image_json = folder / f"test-{stage}.json"
        run_command(
            ["nero-eval", "images", "--renders", str(renders), "--gt", str(test_cameras), "--json", str(image_json)],
            logs / f"eval-images-{stage}.log", threads,
        )
        held_out[f"{stage}_psnr"] = json.loads(image_json.read_text())["mean"]["psnr"]
        held_out[f"{stage}_object_psnr"] = object_psnr(renders, test_cameras)

    mean_metallic = float(np.load(assets / "metallic.npy").mean())  # over every vertex
    is_metal = spec.metallic >= 0.5
    return {
        "scene": spec.name, "gt_metallic": spec.metallic, "gt_roughness": spec.roughness,
        "mean_metallic": mean_metallic,
        "metallic_pass": mean_metallic > METALLIC_PASS if is_metal else mean_metallic < DIELECTRIC_PASS,
        "roughness_mae": metrics["roughness_mae"], "roughness_pass": metrics["roughness_mae"] <= ROUGHNESS_MAE_PASS,
        "albedo_psnr": metrics["albedo_psnr"], "albedo_pass": metrics["albedo_psnr"] >= ALBEDO_PSNR_PASS,
        "metallic_mae": metrics["metallic_mae"], "fraction_seen": metrics["fraction_scored"],
        "roughness_mae_all": everywhere["roughness_mae"], "albedo_psnr_all": everywhere["albedo_psnr"], **held_out,
        "psnr_pass": held_out["stage_two_psnr"] >= held_out["stage_one_psnr"],
        "object_psnr_pass": held_out["stage_two_object_psnr"] >= held_out["stage_one_object_psnr"],
        "stage_one_steps": shape.steps, "stage_one_seconds": shape.seconds, "stage_one_peak_mib": shape.peak_mib,
        "stage_two_steps": material.steps, "stage_two_seconds": material.seconds,
        "stage_two_peak_mib": material.peak_mib, "export_seconds": export.seconds, "render_seconds": render_seconds,
    }


def print_results(rows: list, config: MaterialBenchmark) -> None:
    def verdict(value: str, passed: bool) -> str:
        return f"[green]{value} ok" if passed else f"[red]{value} fail"

    rays, multiplier = config.render_monte_carlo
    mode = "scenes side by side, 1 thread each" if config.parallel else "one scene after the other, all cores"
    table = Table(
        title=f"nero-material, {config.stage_one_seconds:.0f} s + {config.stage_two_seconds:.0f} s budgets ({mode})"
    )
    columns = (
        "scene", "mean metallic", "roughness MAE", "albedo PSNR", "all vertices: rough. / albedo", "test PSNR II / I",
        "object PSNR II / I", "steps I / II", "time I / II / export (s)",
    )
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row["scene"], verdict(f"{row['mean_metallic']:.2f}", row["metallic_pass"]),
            verdict(f"{row['roughness_mae']:.3f}", row["roughness_pass"]),
            verdict(f"{row['albedo_psnr']:.1f}", row["albedo_pass"]),
            f"{row['roughness_mae_all']:.3f} / {row['albedo_psnr_all']:.1f}",
            verdict(f"{row['stage_two_psnr']:.2f} / {row['stage_one_psnr']:.2f}", row["psnr_pass"]),
            verdict(
                f"{row['stage_two_object_psnr']:.2f} / {row['stage_one_object_psnr']:.2f}", row["object_psnr_pass"]
            ),
            f"{row['stage_one_steps']} / {row['stage_two_steps']}",
            f"{row['stage_one_seconds']:.0f} / {row['stage_two_seconds']:.0f} / {row['export_seconds']:.0f}",
        )
    console.print(table)
    console.print(
        f"pass: metallic > {METALLIC_PASS} (metal) or < {DIELECTRIC_PASS} (dielectric), roughness MAE <= "
        f"{ROUGHNESS_MAE_PASS}, albedo PSNR >= {ALBEDO_PSNR_PASS} dB (per-channel scale-aligned); roughness and albedo "
        "scored at the vertices a training camera sees, and (not judged) at every vertex; held-out PSNR of Stage II "
        f">= Stage I's, over the whole image and over the object (Stage II rendered at {rays} rays per pixel, "
        f"{multiplier}x the light samples)"
    )


def main(config: MaterialBenchmark) -> None:
    config.apply_quick_preset()
    output = config.output_dir.resolve()
    output.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=len(SCENES) if config.parallel else 1) as pool:
        rows = list(pool.map(lambda spec: benchmark_scene(spec, config, output), SCENES))
    print_results(rows, config)
    (output / "results.json").write_text(json.dumps({"config": asdict(config), "scenes": rows}, indent=2, default=str))
    console.print(f"Wrote {output / 'results.json'}")


if __name__ == "__main__":
    main(tyro.cli(MaterialBenchmark))
    sys.exit(0)
