"""nero-material quality on generated scenes with known materials: does nero-material find metal, roughness, albedo?

    python benchmarks/material_benchmark.py                      # 900 s per stage, 128 px, 48 views
    python benchmarks/material_benchmark.py --parallel           # both scenes at once, one CPU thread each
    python benchmarks/material_benchmark.py --scenes full --repeats 2    # the full scene set, two training seeds
    python benchmarks/material_benchmark.py --quick              # smoke run: 20 s per stage, 48 px, 12 views

For each scene of `--scenes` (default a metallic knot, metallic 1, roughness 0.1, and a dielectric blob, metallic
0, roughness 0.3; docs/scenes.md), with floor and distractors and trained without masks, and for each repeat
(`--repeats`: training seeds 42, 43, ... of both stages): `ns-train nero-shape` (with the floor as a known plane) for a wall-clock
budget, then `ns-train nero-material` on it for another (geometry fine-tuned), `ns-export nero-materials`,
`nero-eval materials`, `nero-eval scene` (the export relit under gt/env_relight.exr, and the true mesh and materials
relit the same way: the ceiling), the nero-shape mesh exported and scored (`ns-export nero-mesh`, `nero-eval
geometry`), and both stages rendered from the held-out gt/test cameras (nero-material at 16 rays per pixel and twice
its light samples). Prints per scene: the nero-shape mesh's Chamfer distance and F-score, mean metallic over the
exported mesh (pass: > 0.7 for metal, < 0.3 for dielectric), roughness MAE (pass: <= 0.08) and albedo PSNR after
per-channel scale alignment (pass: >= 22 dB) at the vertices some training camera sees (`nero-eval materials
--cameras`), both also at every vertex, relit PSNR and the ceiling's (pass: within 3 dB of it), held-out PSNR of
nero-material and of nero-shape (whole image, and over the GT object mask; pass: nero-material's >= nero-shape's),
and the time of each step; then the median and the worst over the scenes (medians over repeats, with their range, per
scene).
Writes OUTPUT_DIR/results.json (what --reuse-shape-runs reads) and RESULTS_DIR/<date>-<commit>.json and .md. A
two-material scene passes on metallic when its metallic MAE is below 0.3, as a one-material scene's mean would.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import tyro

from common import (
    Metric,
    SceneSize,
    TrainResult,
    console,
    export_and_score_mesh,
    generate_scene,
    markdown_table,
    object_psnr,
    per_scene,
    print_table,
    render_views_command,
    run_command,
    run_name,
    run_record,
    scene_names,
    spread_cell,
    summary,
    summary_table,
    train_stage,
    trained_steps,
    training_seed,
    write_results,
)
from nero_ns.synthetic.scene_set import scene_config

DEFAULT_SCENES = "metal-knot,dielectric-blob"
METALLIC_PASS, DIELECTRIC_PASS, ROUGHNESS_MAE_PASS, ALBEDO_PSNR_PASS = 0.7, 0.3, 0.08, 22.0
RELIGHT_GAP_PASS = 3.0
"""dB the relit export may score below the true mesh and materials relit the same way."""
METRICS: Tuple[Metric, ...] = (
    Metric("shape_chamfer", "Chamfer nero-shape", ".4f"),
    Metric("shape_fscore", "F@0.01 nero-shape", ".3f", higher_is_better=True),
    Metric("metallic_mae", "metallic MAE", ".3f"),
    Metric("roughness_mae", "roughness MAE", ".3f"),
    Metric("albedo_psnr", "albedo PSNR", ".1f", higher_is_better=True),
    Metric("material_psnr", "test PSNR material", ".2f", higher_is_better=True),
    Metric("object_psnr_gain", "object PSNR material - shape", ".2f", higher_is_better=True),
    Metric("relight_psnr", "relight PSNR", ".2f", higher_is_better=True),
    Metric("relight_gap", "relight below ceiling (dB)", ".2f"),
)


@dataclass
class MaterialBenchmark:
    output_dir: Path = Path("benchmark-output/material")
    """Where scenes, runs, exports, renders and results.json go (scenes are reused when already there)."""
    results_dir: Optional[Path] = None
    """Where <date>-<commit>.json and .md go; None: benchmarks/results/material, or OUTPUT_DIR with --quick."""
    scenes: Optional[str] = None
    """Scenes of the scene set (docs/scenes.md): quick, full, or names separated by commas; None: metal-knot and
    dielectric-blob."""
    repeats: int = 1
    """Trainings of both stages on every scene, with training seeds 42, 43, ... (nerfstudio's --machine.seed)."""
    shape_seconds: float = 900.0
    """Wall-clock training budget of nero-shape."""
    material_seconds: float = 900.0
    """Wall-clock training budget of nero-material."""
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
    """Marching-cubes resolution of nero-material's ray-casting mesh and of the exported mesh."""
    texture_size: int = 1024
    """Baked texture size of the export."""
    relight_spp: int = 64
    """Samples per pixel of the relit export and of the relit ground truth."""
    max_distance: Optional[float] = None
    """Score materials only at exported vertices this close to the GT surface (fraction of the GT radius)."""
    reuse_shape_runs: bool = False
    """Keep the nero-shape runs already in OUTPUT_DIR (when there) and train only nero-material: for iterating on
    nero-material."""
    shape_support_plane: bool = True
    """Train nero-shape with `--pipeline.model.support-plane True` (the floor as a known plane, nero-shape's default);
    `--no-shape-support-plane` trains it with the SDF modelling the floor."""
    material_finetune_geometry: bool = True
    """Train nero-material with `--pipeline.model.finetune-geometry True` (the SDF refined through the shading normals,
    as docs/nero-material.md advises for final assets); `--no-material-finetune-geometry` keeps nero-material's default
    (the nero-shape geometry frozen)."""
    material_options: str = ""
    """Extra `ns-train nero-material` options for both scenes, as one string, e.g.
    `--material-options="--pipeline.model.eval-sample-multiplier 4"`: to measure a nero-material setting."""
    render_monte_carlo: Tuple[int, int] = (16, 2)
    """Rays per pixel and sample multiplier of nero-material's held-out renders (`eval-pixel-samples`,
    `eval-sample-multiplier`; a run renders with 4 and 1 unless trained with others): nero-shape renders without
    noise, so nero-material is compared near convergence, its Monte Carlo noise left out."""
    parallel: bool = False
    """Run the scenes (and repeats) side by side, one CPU thread each and as many at once as there are CPU cores,
    instead of one after the other with all threads."""
    quick: bool = False
    """Smoke-run preset: 20 s per stage, 48 px, 12 views, 2 test views, 8 spp, mesh 64, textures 64, relit at 8
    spp."""

    def apply_quick_preset(self) -> None:
        if self.quick:
            self.shape_seconds = self.material_seconds = 20.0
            self.resolution, self.num_views, self.num_test_views, self.spp = 48, 12, 2, 8
            self.rays_per_batch, self.mesh_resolution, self.texture_size = 256, 64, 64
            self.render_monte_carlo, self.relight_spp = (4, 1), 8


def previous_shape_run(name: str, repeat: int, runs: Path, output: Path) -> Optional[TrainResult]:
    """The nero-shape run of an earlier benchmark of this scene and repeat, with its time and memory from that
    results.json."""
    run_dir = runs / run_name("shape", repeat) / "nero-shape" / "bench"
    steps = trained_steps(run_dir)
    results = output / "results.json"
    rows = json.loads(results.read_text())["scenes"] if results.is_file() else []
    row = next((row for row in rows if row["scene"] == name and row.get("repeat", 0) == repeat), None)
    if steps is None or row is None:
        return None
    console.print(f"{name}: reusing the nero-shape run in {run_dir}")
    return TrainResult(run_dir / "config.yml", steps, row["shape_seconds"], row["shape_peak_mib"])


def material_training_options(shape_config: Path, config: MaterialBenchmark) -> Tuple[str, ...]:
    """The `ns-train nero-material` options of the benchmark's runs on the nero-shape run of `shape_config`."""
    return (
        "--shape-config", str(shape_config), "--pipeline.model.mesh-resolution", str(config.mesh_resolution),
        "--pipeline.model.finetune-geometry", str(config.material_finetune_geometry),
        *shlex.split(config.material_options),
    )


def held_out_scores(
    stage: str, run_config: Path, scene: Path, folder: Path, monte_carlo: Optional[Tuple[int, int]],
    threads: Optional[int], source: Optional[Path] = None,
) -> Dict[str, float]:
    """A run (`stage`: shape or material) rendered from the scene's held-out gt/test cameras with the `nero_ns` of
    `source` (None: this one) and scored: STAGE_psnr (whole image), STAGE_object_psnr (GT object mask) and the
    render's seconds."""
    test_cameras = scene / "gt" / "test" / "transforms.json"
    renders, logs = folder / f"test-renders-{stage}", folder / "logs"
    seconds = run_command(
        render_views_command(run_config, test_cameras, renders, monte_carlo), logs / f"render-{stage}.log", threads,
        source,
    ).seconds
    image_json = folder / f"test-{stage}.json"
    run_command(
        ["nero-eval", "images", "--renders", str(renders), "--gt", str(test_cameras), "--json", str(image_json)],
        logs / f"eval-images-{stage}.log", threads,
    )
    return {
        f"{stage}_psnr": json.loads(image_json.read_text())["mean"]["psnr"],
        f"{stage}_object_psnr": object_psnr(renders, test_cameras), "render_seconds": seconds,
    }


def score_material_run(
    run_config: Path, scene: Path, folder: Path, config: MaterialBenchmark, threads: Optional[int],
    source: Optional[Path] = None,
) -> Dict:
    """`ns-export nero-materials` of a nero-material run into FOLDER/assets (with the `nero_ns` of `source`, None:
    this one), `nero-eval materials --cameras` of the export (the scores at the vertices some training camera sees,
    "seen": no photo constrains a surface none shows), `nero-eval scene` of it (the scores at every vertex, "all";
    the relit export and the relit ground truth, "relight" and "relight_ceiling") and its held-out renders
    (`held_out_scores`); with the mean metallic and the export's and render's seconds."""
    assets, logs = folder / "assets", folder / "logs"
    export = run_command([
        "ns-export", "nero-materials", "--load-config", str(run_config), "--output-dir", str(assets),
        "--resolution", str(config.mesh_resolution), "--texture-size", str(config.texture_size),
    ], logs / "export.log", threads, source)
    distance = ["--max-distance", str(config.max_distance)] if config.max_distance is not None else []
    material_json = folder / "materials-seen.json"
    run_command([
        "nero-eval", "materials", "--assets", str(assets), "--gt", str(scene / "gt"), "--json", str(material_json),
        "--cameras", str(scene / "transforms.json"), *distance,
    ], logs / "eval-materials-seen.log", threads)
    evaluation = folder / "eval-scene"
    run_command([
        "nero-eval", "scene", "--scene", str(scene), "--assets", str(assets), "--output-dir", str(evaluation),
        "--relight-spp", str(config.relight_spp), *distance,
    ], logs / "eval-scene.log", threads)
    record = json.loads((evaluation / "metrics.json").read_text())
    scores: Dict = {
        "export_seconds": export.seconds, "seen": json.loads(material_json.read_text()), "all": record["materials"],
        "relight_psnr": record["relight"]["mean"]["psnr"],
        "relight_ceiling_psnr": record["relight_ceiling"]["mean"]["psnr"],
        "mean_metallic": float(np.load(assets / "metallic.npy").mean()),  # over every vertex
    }
    return {**scores, **held_out_scores("material", run_config, scene, folder, config.render_monte_carlo, threads, source)}


def benchmark_scene(name: str, scene: Path, repeat: int, config: MaterialBenchmark, output: Path) -> Dict:
    """Both stages, export, material metrics and held-out renders of one generated scene and repeat; its row.
    Repeat 0 writes into OUTPUT_DIR/NAME as the runs before --repeats did, the others into a seed<K> folder there."""
    threads = 1 if config.parallel else None
    runs = output / name / "runs"
    shape_name, material_name = run_name("shape", repeat), run_name("material", repeat)
    folder = output / name if repeat == 0 else output / name / f"seed{training_seed(repeat)}"
    logs = folder / "logs"

    shape = previous_shape_run(name, repeat, runs, output) if config.reuse_shape_runs else None
    if shape is None:
        shape = train_stage(
            "nero-shape", scene, runs, shape_name, config.shape_seconds, config.rays_per_batch,
            logs / "train-shape.log", threads=threads, repeat=repeat,
            extra=("--pipeline.model.support-plane", str(config.shape_support_plane)),
        )
    material = train_stage(
        "nero-material", scene, runs, material_name, config.material_seconds, config.rays_per_batch,
        logs / "train-material.log",
        extra=material_training_options(shape.config, config), threads=threads, repeat=repeat,
    )
    shape_scores = held_out_scores("shape", shape.config, scene, folder, None, threads)
    geometry = export_and_score_mesh(
        shape.config, scene, folder / "mesh-shape", config.mesh_resolution, logs, "shape", threads
    )
    scores = score_material_run(material.config, scene, folder, config, threads)
    metrics, everywhere, mean_metallic = scores["seen"], scores["all"], scores["mean_metallic"]
    held_out = {key: scores[key] for key in ("material_psnr", "material_object_psnr")}
    held_out.update({key: shape_scores[key] for key in ("shape_psnr", "shape_object_psnr")})
    truth = scene_config(name)
    if truth.material_pattern != "uniform":
        metallic_pass = metrics["metallic_mae"] < DIELECTRIC_PASS
    elif truth.metallic >= 0.5:
        metallic_pass = mean_metallic > METALLIC_PASS
    else:
        metallic_pass = mean_metallic < DIELECTRIC_PASS
    return {
        "scene": name, "repeat": repeat, "seed": training_seed(repeat), "gt_metallic": truth.metallic,
        "gt_roughness": truth.roughness, "material_pattern": truth.material_pattern,
        "mean_metallic": mean_metallic, "metallic_pass": metallic_pass,
        "roughness_mae": metrics["roughness_mae"], "roughness_pass": metrics["roughness_mae"] <= ROUGHNESS_MAE_PASS,
        "albedo_psnr": metrics["albedo_psnr"], "albedo_pass": metrics["albedo_psnr"] >= ALBEDO_PSNR_PASS,
        "metallic_mae": metrics["metallic_mae"], "fraction_seen": metrics["fraction_scored"],
        "roughness_mae_all": everywhere["roughness_mae"], "albedo_psnr_all": everywhere["albedo_psnr"], **held_out,
        "object_psnr_gain": held_out["material_object_psnr"] - held_out["shape_object_psnr"],
        "psnr_pass": held_out["material_psnr"] >= held_out["shape_psnr"],
        "object_psnr_pass": held_out["material_object_psnr"] >= held_out["shape_object_psnr"],
        "shape_chamfer": geometry["chamfer"], "shape_fscore": geometry["fscore"],
        "shape_normal_error_deg": geometry["normal_error_deg"],
        "relight_psnr": scores["relight_psnr"], "relight_ceiling_psnr": scores["relight_ceiling_psnr"],
        "relight_gap": scores["relight_ceiling_psnr"] - scores["relight_psnr"],
        "relight_pass": scores["relight_ceiling_psnr"] - scores["relight_psnr"] <= RELIGHT_GAP_PASS,
        "shape_steps": shape.steps, "shape_seconds": shape.seconds, "shape_peak_mib": shape.peak_mib,
        "material_steps": material.steps, "material_seconds": material.seconds,
        "material_peak_mib": material.peak_mib, "export_seconds": scores["export_seconds"],
        "render_seconds": shape_scores["render_seconds"] + scores["render_seconds"],
    }


def print_results(rows: list, config: MaterialBenchmark) -> None:
    def verdict(value: str, passed: bool) -> str:
        return f"[green]{value} ok" if passed else f"[red]{value} fail"

    rays, multiplier = config.render_monte_carlo
    mode = "side by side, 1 thread each" if config.parallel else "one after the other, all cores"
    columns = [
        "scene (seed)", "nero-shape Chamfer / F@0.01", "mean metallic", "roughness MAE", "albedo PSNR",
        "all vertices: rough. / albedo", "relight PSNR / ceiling",
        "test PSNR material / shape", "object PSNR material / shape", "steps shape / material",
        "time shape / material / export (s)",
    ]
    cells = [
        [
            f"{row['scene']} ({row['seed']})",
            "no surface" if row["shape_chamfer"] is None else f"{row['shape_chamfer']:.4f} / {row['shape_fscore']:.3f}",
            verdict(f"{row['mean_metallic']:.2f}", row["metallic_pass"]),
            verdict(f"{row['roughness_mae']:.3f}", row["roughness_pass"]),
            verdict(f"{row['albedo_psnr']:.1f}", row["albedo_pass"]),
            f"{row['roughness_mae_all']:.3f} / {row['albedo_psnr_all']:.1f}",
            verdict(f"{row['relight_psnr']:.2f} / {row['relight_ceiling_psnr']:.2f}", row["relight_pass"]),
            verdict(f"{row['material_psnr']:.2f} / {row['shape_psnr']:.2f}", row["psnr_pass"]),
            verdict(
                f"{row['material_object_psnr']:.2f} / {row['shape_object_psnr']:.2f}", row["object_psnr_pass"]
            ),
            f"{row['shape_steps']} / {row['material_steps']}",
            f"{row['shape_seconds']:.0f} / {row['material_seconds']:.0f} / {row['export_seconds']:.0f}",
        ]
        for row in rows
    ]
    print_table(
        f"nero-material, {config.shape_seconds:.0f} s + {config.material_seconds:.0f} s budgets ({mode})",
        columns, cells,
    )
    console.print(
        f"pass: metallic > {METALLIC_PASS} (metal) or < {DIELECTRIC_PASS} (dielectric), roughness MAE <= "
        f"{ROUGHNESS_MAE_PASS}, albedo PSNR >= {ALBEDO_PSNR_PASS} dB (per-channel scale-aligned); roughness and albedo "
        "scored at the vertices a training camera sees, and (not judged) at every vertex; relit PSNR within "
        f"{RELIGHT_GAP_PASS} dB of the true mesh and materials relit the same way; held-out PSNR of "
        "nero-material >= nero-shape's, over the whole image and over the object (nero-material rendered at "
        f"{rays} rays per pixel, {multiplier}x the light samples)"
    )


def markdown(results: Dict) -> str:
    """Per scene the medians over repeats (and their range) with the share of repeats passing, then the median and
    worst over the scenes."""
    passes = ("metallic_pass", "roughness_pass", "albedo_pass", "relight_pass", "psnr_pass", "object_psnr_pass")
    columns = ["scene", "repeats", *(metric.title for metric in METRICS), "passed (of repeats)"]
    cells = []
    for row in results["per_scene"]:
        repeats = [line for line in results["rows"] if line["scene"] == row["scene"]]
        passed = ", ".join(
            f"{key.removesuffix('_pass')} {sum(line[key] for line in repeats)}" for key in passes
        )
        cells.append([row["scene"], str(row["repeats"]), *(spread_cell(row, metric) for metric in METRICS), passed])
    header, summary_cells = summary_table(results["summary"], METRICS, ())
    config = results["config"]
    return "\n".join([
        f"# nero-material, {results['date']}, commit {results['commit']}"
        + (" (uncommitted changes)" if results["dirty"] else ""),
        "", f"`{results['command']}`", "",
        f"{config['shape_seconds']:.0f} s + {config['material_seconds']:.0f} s per scene; "
        f"{config['repeats']} training seed(s) per scene; materials at the vertices a training camera sees.",
        "", markdown_table(columns, cells),
        "", "## Over the scenes: median and worst", "", markdown_table(header, summary_cells),
    ]) + "\n"


def main(config: MaterialBenchmark) -> None:
    run_record()  # the commit and command that train, recorded before anything runs
    config.apply_quick_preset()
    scenes = scene_names(config.scenes, DEFAULT_SCENES)
    output = config.output_dir.resolve()
    output.mkdir(parents=True, exist_ok=True)
    size = SceneSize(config.resolution, config.num_views, config.num_test_views, config.spp)
    generated = {name: generate_scene(name, size, output / name / "scene", output / name / "synth.log") for name in scenes}
    jobs = list(itertools.product(scenes, range(config.repeats)))
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1) if config.parallel else 1) as pool:
        rows: List[Dict] = list(pool.map(
            lambda job: benchmark_scene(job[0], generated[job[0]], job[1], config, output), jobs
        ))
    print_results(rows, config)
    (output / "results.json").write_text(json.dumps({"config": asdict(config), "scenes": rows}, indent=2, default=str))
    scene_rows = per_scene(rows, METRICS, ())
    results = {
        **run_record(), "config": asdict(config), "scenes": scenes, "rows": rows, "per_scene": scene_rows,
        "summary": summary(scene_rows, METRICS, ()),
    }
    header, cells = summary_table(results["summary"], METRICS, ())
    print_table(f"nero-material over {len(scenes)} scene(s): median and worst", header, cells)
    write_results("material", results, markdown(results), config.results_dir, config.quick, config.output_dir)


if __name__ == "__main__":
    main(tyro.cli(MaterialBenchmark))
    sys.exit(0)
