"""The whole nero-ns suite on generated scenes, written up as a markdown report with tables and plots.

    python benchmarks/run_all.py                                 # 3 scenes, 600 s per stage
    python benchmarks/run_all.py --scenes full --repeats 2       # the full scene set, two training seeds
    python benchmarks/run_all.py --quick                         # smoke run: 1 scene, 20 s per stage, 48 px

Scenes (`--scenes`, docs/scenes.md; floor and distractors, trained without masks): by default a metallic knot, a
mirror-like blob with concave dimples (metallic 1, roughness 0.05) and a rough dielectric sphere. For each, and
each repeat (`--repeats`: training seeds 42, 43, ...): nero-shape (`ns-train nero-shape`) and nero-material
(`ns-train nero-material`) under the same wall-clock budget, `ns-export nero-mesh` / `ns-export nero-materials`,
both stages rendered from the held-out gt/test cameras, and `nero-eval scene` (geometry, materials, relighting
under gt/env_relight.exr, held-out images). The plain-radiance nero-shape ablation (`--pipeline.model.shading
plain`) runs on --ablation-scenes. Writes OUTPUT_DIR/report.md (with the median and worst of every metric over
the scenes), results.json, loss_curves.png, metrics.png, and the results as data in RESULTS_DIR/<date>-<commit>.json
and .md.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import matplotlib
import numpy as np
import tyro

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from common import (  # noqa: E402
    Metric,
    SceneSize,
    TrainResult,
    console,
    generate_scene,
    markdown_table,
    per_scene,
    print_table,
    read_scalars,
    render_views_command,
    run_command,
    run_name,
    run_record,
    scene_names,
    summary,
    summary_table,
    train_stage,
    training_seed,
    write_results,
)
from nero_ns.synthetic.scene_set import scene_config  # noqa: E402

SUITE = "metal-knot,mirror-blob,rough-dielectric"
SHAPE, SHAPE_PLAIN, MATERIAL = "nero-shape", "nero-shape plain", "nero-material"
METRICS: Tuple[Tuple[Metric, str], ...] = (
    # (metric, its path in nero-eval scene's metrics.json)
    (Metric("chamfer", "Chamfer (R)", ".3f"), "geometry/chamfer"),
    (Metric("normal_error_deg", "normal err (deg)", ".3f"), "geometry/normal_error_deg"),
    (Metric("fscore", "F@0.01", ".3f", higher_is_better=True), "geometry/fscore"),
    (Metric("test_psnr", "test PSNR", ".3f", higher_is_better=True), "images/mean/psnr"),
    (Metric("albedo_psnr", "albedo PSNR", ".3f", higher_is_better=True), "materials/albedo_psnr"),
    (Metric("roughness_mae", "roughness MAE", ".3f"), "materials/roughness_mae"),
    (Metric("metallic_mae", "metallic MAE", ".3f"), "materials/metallic_mae"),
    (Metric("relight_psnr", "relight PSNR", ".3f", higher_is_better=True), "relight/mean/psnr"),
    (Metric("relight_ceiling_psnr", "relight PSNR of the truth", ".3f", higher_is_better=True),
     "relight_ceiling/mean/psnr"),
)
SCORES = tuple(metric for metric, _ in METRICS)
LOSS_TAG = "Train Loss Dict/rgb_loss"


@dataclass
class SuiteBenchmark:
    output_dir: Path = Path("benchmark-output/suite")
    """Where scenes, runs, exports, evaluations and the report go (scenes are reused when already there)."""
    results_dir: Optional[Path] = None
    """Where <date>-<commit>.json and .md go; None: benchmarks/results/suite, or OUTPUT_DIR with --quick."""
    budget_seconds: float = 600.0
    """Wall-clock training budget of every stage of every scene."""
    scenes: Optional[str] = None
    """Scenes of the scene set (docs/scenes.md): quick, full, or names separated by commas; None: metal-knot,
    mirror-blob, rough-dielectric (metal-knot alone with --quick)."""
    repeats: int = 1
    """Trainings of every stage on every scene, with training seeds 42, 43, ... (nerfstudio's --machine.seed)."""
    ablation_scenes: Tuple[str, ...] = ("metal-knot",)
    """Scenes that also get the plain-radiance nero-shape ablation."""
    resolution: int = 128
    """Image size of the generated scenes."""
    num_views: int = 48
    """Training views."""
    num_test_views: int = 8
    """Held-out views (gt/test, and gt/relight under the second environment)."""
    spp: int = 64
    """Samples per pixel of the generated images."""
    rays_per_batch: Optional[int] = None
    """Training rays per step of both stages (None: each method's default)."""
    mesh_resolution: int = 256
    """Marching-cubes resolution of the exported meshes and of nero-material's ray-casting mesh."""
    texture_size: int = 1024
    """Baked texture size of the nero-material export."""
    relight_spp: int = 64
    """Samples per pixel when nero-eval relights the nero-material assets."""
    steps_per_log: int = 10
    """Training steps between loss values in the tensorboard logs (the loss curves)."""
    quick: bool = False
    """Smoke-run preset (overrides the sizes above): metal-knot only (unless --scenes), 20 s per stage, 48 px, 30
    views (with 10, the far field took the whole knot within 20 s in one training seed of three: docs/data.md), 2
    test views, 8 spp, 256 rays, mesh 64, textures 64, relight 8 spp, a loss value every 2 steps."""

    def apply_quick_preset(self) -> None:
        if self.quick:
            self.scenes, self.budget_seconds = self.scenes or "metal-knot", 20.0
            self.resolution, self.num_views, self.num_test_views, self.spp = 48, 30, 2, 8
            self.rays_per_batch, self.mesh_resolution, self.texture_size = 256, 64, 64
            self.relight_spp, self.steps_per_log = 8, 2

    def selected_scenes(self) -> List[str]:
        scenes = scene_names(self.scenes, SUITE)
        scene_names(",".join(self.ablation_scenes), SUITE)  # unknown names stop the run before it starts
        return scenes


def metric_at(record: Dict, path: str) -> Optional[float]:
    """The number at 'a/b/c' in a nested metrics record, or None where that evaluation did not apply."""
    value = record
    for key in path.split("/"):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return float(value)


class SceneRunner:
    """Runs and evaluates every variant of one scene, one process per step."""

    def __init__(self, name: str, repeat: int, config: SuiteBenchmark, output: Path) -> None:
        self.name, self.repeat, self.config = name, repeat, config
        size = SceneSize(config.resolution, config.num_views, config.num_test_views, config.spp)
        self.scene = generate_scene(name, size, output / name / "scene", output / name / "logs" / "synth.log")
        # Repeat 0 writes where the runs before --repeats did; the others into a seed<K> folder of the scene.
        self.folder = output / name if repeat == 0 else output / name / f"seed{training_seed(repeat)}"
        self.logs, self.runs = self.folder / "logs", self.folder / "runs"

    def train(self, method: str, name: str, extra: Tuple[str, ...] = ()) -> TrainResult:
        return train_stage(
            method, self.scene, self.runs, run_name(name, self.repeat), self.config.budget_seconds,
            self.config.rays_per_batch, self.logs / f"train-{name}.log", steps_per_log=self.config.steps_per_log,
            extra=extra, repeat=self.repeat,
        )

    def evaluate(self, variant: str, name: str, run: TrainResult, export: List[str], outputs: List[str]) -> Dict:
        """Export, render gt/test, `nero-eval scene`; the results row of this variant."""
        export_step = run_command(export, self.logs / f"export-{name}.log")
        renders = self.folder / f"test-renders-{name}"
        render_step = run_command(
            render_views_command(run.config, self.scene / "gt" / "test" / "transforms.json", renders),
            self.logs / f"render-{name}.log",
        )
        evaluation = self.folder / f"eval-{name}"
        eval_step = run_command([
            "nero-eval", "scene", "--scene", str(self.scene), "--output-dir", str(evaluation), *outputs,
            "--test-renders", str(renders), "--relight-spp", str(self.config.relight_spp),
        ], self.logs / f"eval-{name}.log")
        record = json.loads((evaluation / "metrics.json").read_text())
        return {
            "scene": self.name, "variant": variant, "repeat": self.repeat, "seed": training_seed(self.repeat),
            "run_dir": str(run.config.parent),
            "evaluation_dir": str(evaluation), "steps": run.steps, "train_seconds": run.seconds,
            "peak_memory_mib": run.peak_mib, "export_seconds": export_step.seconds,
            "render_seconds": render_step.seconds, "eval_seconds": eval_step.seconds,
            **{metric.key: metric_at(record, path) for metric, path in METRICS},
        }

    def run_shape(self, shading: str) -> Tuple[TrainResult, Dict]:
        name = f"shape-{shading}"
        run = self.train("nero-shape", name, ("--pipeline.model.shading", shading))
        mesh_dir = self.folder / f"mesh-{shading}"
        export = [
            "ns-export", "nero-mesh", "--load-config", str(run.config), "--output-dir", str(mesh_dir),
            "--resolution", str(self.config.mesh_resolution),
        ]
        variant = SHAPE if shading == "nero" else SHAPE_PLAIN
        return run, self.evaluate(variant, name, run, export, ["--mesh", str(mesh_dir / "mesh.ply")])

    def run_material(self, shape: TrainResult) -> Dict:
        run = self.train("nero-material", "material", (
            "--shape-config", str(shape.config), "--pipeline.model.mesh-resolution", str(self.config.mesh_resolution),
        ))
        assets = self.folder / "assets"
        export = [
            "ns-export", "nero-materials", "--load-config", str(run.config), "--output-dir", str(assets),
            "--resolution", str(self.config.mesh_resolution), "--texture-size", str(self.config.texture_size),
        ]
        return self.evaluate(MATERIAL, "material", run, export, ["--assets", str(assets)])

    def all_variants(self) -> List[Dict]:
        shape, shape_row = self.run_shape("nero")
        rows = [shape_row]
        if self.name in self.config.ablation_scenes:
            rows.append(self.run_shape("plain")[1])
        rows.append(self.run_material(shape))
        return rows


def formatted(value: Optional[float], digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def metric_rows(rows: List[Dict]) -> List[List[str]]:
    return [
        [row["scene"] + (f" ({row['seed']})" if row["repeat"] else ""), row["variant"],
         *(formatted(row[metric.key]) for metric in SCORES)]
        for row in rows
    ]


def timing_rows(rows: List[Dict]) -> List[List[str]]:
    return [
        [
            row["scene"], row["variant"], str(row["steps"]), f"{row['train_seconds']:.0f}",
            f"{row['steps'] / row['train_seconds']:.2f}", f"{row['export_seconds']:.0f}",
            f"{row['render_seconds']:.0f}", f"{row['eval_seconds']:.0f}", f"{row['peak_memory_mib']:.0f}",
        ]
        for row in rows
    ]


TIMING_HEADER = ["scene", "stage", "steps", "train (s)", "steps/s", "export (s)", "render (s)", "eval (s)", "peak MiB"]


def plot_loss_curves(rows: List[Dict], path: Path) -> None:
    """Photometric training loss against step, one panel per scene, one line per stage/variant and seed."""
    scenes = sorted({row["scene"] for row in rows}, key=[row["scene"] for row in rows].index)
    figure, axes = plt.subplots(1, len(scenes), figsize=(5 * len(scenes), 3.6), squeeze=False)
    for axis, scene in zip(axes[0], scenes):
        for row in rows:
            if row["scene"] == scene:
                steps, values = read_scalars(Path(row["run_dir"]), LOSS_TAG)
                seed = f", seed {row['seed']}" if row["repeat"] else ""
                axis.plot(steps, values, label=f"{row['variant']}{seed}")
        axis.set(title=scene, xlabel="step", ylabel="rgb loss (linear, Charbonnier)", yscale="log")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_metric_bars(scene_rows: List[Dict], path: Path) -> None:
    """One bar chart per metric: scenes on the x axis, a bar per stage/variant that has the metric (the median
    over repeats)."""
    scenes = sorted({row["scene"] for row in scene_rows}, key=[row["scene"] for row in scene_rows].index)
    present = {row["variant"] for row in scene_rows}
    variants = [variant for variant in (SHAPE, SHAPE_PLAIN, MATERIAL) if variant in present]
    figure, axes = plt.subplots(2, (len(SCORES) + 1) // 2, figsize=(4 * ((len(SCORES) + 1) // 2), 6.4))
    for axis, metric in zip(axes.flat, SCORES):
        key = metric.key
        scored = [v for v in variants if any(r[key] is not None for r in scene_rows if r["variant"] == v)]
        width = 0.8 / len(scored)
        for offset, variant in enumerate(scored):
            values = [
                next((r[key] for r in scene_rows if r["scene"] == scene and r["variant"] == variant
                      and r[key] is not None), np.nan)
                for scene in scenes
            ]
            axis.bar(
                np.arange(len(scenes)) + offset * width, values, width, label=variant,
                color=f"C{variants.index(variant)}",
            )
        axis.set_xticks(np.arange(len(scenes)) + 0.4 - width / 2, scenes, rotation=15, fontsize=8)
        axis.set_title(metric.title)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def report_tables(rows: List[Dict], summary_rows: List[Dict]) -> List[str]:
    """Markdown lines: the metrics of every run, their median and worst over the scenes, the time of each step."""
    header, cells = summary_table(summary_rows, SCORES, ("variant",))
    return [
        "## Metrics",
        "",
        "Geometry: Chamfer distance and F-score at 0.01 in GT radii (R), normal error in degrees "
        "(`nero-eval geometry`). Test PSNR: renders of the held-out gt/test cameras, whole image. Materials: albedo "
        "PSNR after per-channel scale alignment, roughness / metallic MAE over the exported vertices. Relight PSNR: "
        "the nero-material assets rendered by `nero-relight` under gt/env_relight.exr, scale-aligned, against "
        "gt/relight; of the truth: the GT mesh and materials rendered the same way (the best this path scores).",
        "",
        markdown_table(["scene", "stage", *(metric.title for metric in SCORES)], metric_rows(rows)),
        "",
        "## Over the scenes: median and worst",
        "",
        "Each scene counts with its median over the training seeds.",
        "",
        markdown_table(header, cells),
        "",
        "## Time per stage",
        "",
        "Train: wall clock of the whole `ns-train` process (start-up and final checkpoint included); export: "
        "`ns-export`; render: held-out views; eval: `nero-eval scene` (includes relighting for nero-material).",
        "",
        markdown_table(TIMING_HEADER, timing_rows(rows)),
        "",
    ]


def scene_lines(names: List[str]) -> List[str]:
    lines = []
    for name in names:
        scene = scene_config(name)
        lines.append(
            f"- **{name}**: {scene.shape}, metallic {scene.metallic}, roughness {scene.roughness}, base color "
            f"{scene.base_color}, {scene.material_pattern} material, {scene.environment} light, {scene.floor} floor"
        )
    return lines


def write_report(
    rows: List[Dict], scene_rows: List[Dict], summary_rows: List[Dict], config: SuiteBenchmark, output: Path
) -> Path:
    plot_loss_curves(rows, output / "loss_curves.png")
    plot_metric_bars(scene_rows, output / "metrics.png")
    report = "\n".join([
        "# nero-ns suite report",
        "",
        f"{config.budget_seconds:.0f} s wall-clock training budget per stage on {os.cpu_count()} CPU cores; "
        f"{config.resolution} px, {config.num_views} training views (floor, distractors, no masks), "
        f"{config.num_test_views} held-out views; {config.rays_per_batch or 'default'} rays per step; meshes at "
        f"{config.mesh_resolution}^3; {config.repeats} training seed(s) per scene.",
        "",
        *scene_lines(config.selected_scenes()),
        "",
        *report_tables(rows, summary_rows),
        "![metrics](metrics.png)",
        "",
        "## Training loss",
        "",
        "![loss curves](loss_curves.png)",
        "",
        "Per-run figures (geometry error, relighting differences) are under each scene's `eval-*/figures/`.",
        "",
    ])
    path = output / "report.md"
    path.write_text(report)
    return path


def main(config: SuiteBenchmark) -> None:
    run_record()  # the commit and command that train, recorded before anything runs
    config.apply_quick_preset()
    output = config.output_dir.resolve()
    output.mkdir(parents=True, exist_ok=True)
    scenes = config.selected_scenes()
    rows = [
        row for name in scenes for repeat in range(config.repeats)
        for row in SceneRunner(name, repeat, config, output).all_variants()
    ]
    (output / "results.json").write_text(json.dumps({"config": asdict(config), "rows": rows}, indent=2, default=str))
    scene_rows = per_scene(rows, SCORES, ("variant",))
    summary_rows = summary(scene_rows, SCORES, ("variant",))
    print_table("metrics", ["scene", "stage", *(metric.title for metric in SCORES)], metric_rows(rows))
    print_table("median and worst over the scenes", *summary_table(summary_rows, SCORES, ("variant",)))
    print_table("time per stage", TIMING_HEADER, timing_rows(rows))
    console.print(f"Wrote {write_report(rows, scene_rows, summary_rows, config, output)} and {output / 'results.json'}")
    results = {
        **run_record(), "config": asdict(config), "scenes": scenes, "rows": rows, "per_scene": scene_rows,
        "summary": summary_rows,
    }
    markdown = "\n".join([
        f"# nero-ns suite, {results['date']}, commit {results['commit']}"
        + (" (uncommitted changes)" if results["dirty"] else ""),
        "", f"`{results['command']}`", "", *scene_lines(scenes), "", *report_tables(rows, summary_rows),
    ])
    write_results("suite", results, markdown, config.results_dir, config.quick, config.output_dir)


if __name__ == "__main__":
    main(tyro.cli(SuiteBenchmark))
    sys.exit(0)
