"""The whole nero-ns suite on generated scenes, written up as a markdown report with tables and plots.

    python benchmarks/run_all.py                                 # 3 scenes, 600 s per stage
    python benchmarks/run_all.py --quick                         # smoke run: 1 scene, 20 s per stage, 48 px

Scenes (floor and distractors, trained without masks): a metallic knot, a mirror-like blob with concave dimples
(metallic 1, roughness 0.05) and a rough dielectric sphere. For each: Stage I (`ns-train nero-shape`) and Stage II
(`ns-train nero-material`) under the same wall-clock budget, `ns-export nero-mesh` / `ns-export nero-materials`,
both stages rendered from the held-out gt/test cameras, and `nero-eval scene` (geometry, materials, relighting
under gt/env_relight.exr, held-out images). The plain-radiance Stage I ablation (`--pipeline.model.shading
plain`) runs on --ablation-scenes. Writes OUTPUT_DIR/report.md, results.json, loss_curves.png, metrics.png.
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
from rich.table import Table  # noqa: E402

from common import (  # noqa: E402
    SceneSize,
    SceneSpec,
    TrainResult,
    console,
    generate_scene,
    read_scalars,
    render_views_command,
    run_command,
    train_stage,
)

SUITE: Tuple[SceneSpec, ...] = (
    SceneSpec("metal-knot", "knot", metallic=1.0, roughness=0.1, base_color=(0.95, 0.7, 0.4)),
    SceneSpec("mirror-blob", "blob", metallic=1.0, roughness=0.05, base_color=(0.9, 0.9, 0.9)),
    SceneSpec("rough-dielectric", "sphere", metallic=0.0, roughness=0.5, base_color=(0.2, 0.45, 0.8)),
)
STAGE_ONE, STAGE_ONE_PLAIN, STAGE_TWO = "I nero", "I plain", "II"
METRICS: Tuple[Tuple[str, str, str], ...] = (
    # (results key, column title, path in nero-eval scene's metrics.json)
    ("chamfer", "Chamfer (R)", "geometry/chamfer"),
    ("normal_error_deg", "normal err (deg)", "geometry/normal_error_deg"),
    ("fscore", "F@0.01", "geometry/fscore"),
    ("test_psnr", "test PSNR", "images/mean/psnr"),
    ("albedo_psnr", "albedo PSNR", "materials/albedo_psnr"),
    ("roughness_mae", "roughness MAE", "materials/roughness_mae"),
    ("metallic_mae", "metallic MAE", "materials/metallic_mae"),
    ("relight_psnr", "relight PSNR", "relight/mean/psnr"),
)
LOSS_TAG = "Train Loss Dict/rgb_loss"


@dataclass
class SuiteBenchmark:
    output_dir: Path = Path("benchmark-output/suite")
    """Where scenes, runs, exports, evaluations and the report go (scenes are reused when already there)."""
    budget_seconds: float = 600.0
    """Wall-clock training budget of every stage of every scene."""
    scenes: Tuple[str, ...] = tuple(spec.name for spec in SUITE)
    """Scenes to run, among metal-knot, mirror-blob, rough-dielectric."""
    ablation_scenes: Tuple[str, ...] = ("metal-knot",)
    """Scenes that also get the plain-radiance Stage I ablation."""
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
    """Marching-cubes resolution of the exported meshes and of Stage II's ray-casting mesh."""
    texture_size: int = 1024
    """Baked texture size of the Stage II export."""
    relight_spp: int = 64
    """Samples per pixel when nero-eval relights the Stage II assets."""
    steps_per_log: int = 10
    """Training steps between loss values in the tensorboard logs (the loss curves)."""
    quick: bool = False
    """Smoke-run preset (overrides the sizes above): metal-knot only, 20 s per stage, 48 px, 10 views, 2 test
    views, 8 spp, 256 rays, mesh 64, textures 64, relight 8 spp, a loss value every 2 steps."""

    def apply_quick_preset(self) -> None:
        if self.quick:
            self.scenes, self.ablation_scenes, self.budget_seconds = ("metal-knot",), ("metal-knot",), 20.0
            self.resolution, self.num_views, self.num_test_views, self.spp = 48, 10, 2, 8
            self.rays_per_batch, self.mesh_resolution, self.texture_size = 256, 64, 64
            self.relight_spp, self.steps_per_log = 8, 2

    def selected_scenes(self) -> List[SceneSpec]:
        known = {spec.name: spec for spec in SUITE}
        unknown = [name for name in (*self.scenes, *self.ablation_scenes) if name not in known]
        if unknown:
            raise SystemExit(f"unknown scene {', '.join(unknown)}; choose among {', '.join(known)}")
        return [known[name] for name in self.scenes]


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

    def __init__(self, spec: SceneSpec, config: SuiteBenchmark, output: Path) -> None:
        self.spec, self.config = spec, config
        self.folder = output / spec.name
        self.logs, self.runs = self.folder / "logs", self.folder / "runs"
        size = SceneSize(config.resolution, config.num_views, config.num_test_views, config.spp)
        self.scene = generate_scene(spec, size, self.folder / "scene", self.logs / "synth.log")

    def train(self, method: str, name: str, extra: Tuple[str, ...] = ()) -> TrainResult:
        return train_stage(
            method, self.scene, self.runs, name, self.config.budget_seconds, self.config.rays_per_batch,
            self.logs / f"train-{name}.log", steps_per_log=self.config.steps_per_log, extra=extra,
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
            "scene": self.spec.name, "variant": variant, "run_dir": str(run.config.parent),
            "evaluation_dir": str(evaluation), "steps": run.steps, "train_seconds": run.seconds,
            "peak_memory_mib": run.peak_mib, "export_seconds": export_step.seconds,
            "render_seconds": render_step.seconds, "eval_seconds": eval_step.seconds,
            **{key: metric_at(record, path) for key, _, path in METRICS},
        }

    def stage_one(self, shading: str) -> Tuple[TrainResult, Dict]:
        name = f"shape-{shading}"
        run = self.train("nero-shape", name, ("--pipeline.model.shading", shading))
        mesh_dir = self.folder / f"mesh-{shading}"
        export = [
            "ns-export", "nero-mesh", "--load-config", str(run.config), "--output-dir", str(mesh_dir),
            "--resolution", str(self.config.mesh_resolution),
        ]
        variant = STAGE_ONE if shading == "nero" else STAGE_ONE_PLAIN
        return run, self.evaluate(variant, name, run, export, ["--mesh", str(mesh_dir / "mesh.ply")])

    def stage_two(self, shape: TrainResult) -> Dict:
        run = self.train("nero-material", "material", (
            "--shape-config", str(shape.config), "--pipeline.model.mesh-resolution", str(self.config.mesh_resolution),
        ))
        assets = self.folder / "assets"
        export = [
            "ns-export", "nero-materials", "--load-config", str(run.config), "--output-dir", str(assets),
            "--resolution", str(self.config.mesh_resolution), "--texture-size", str(self.config.texture_size),
        ]
        return self.evaluate(STAGE_TWO, "material", run, export, ["--assets", str(assets)])

    def all_variants(self) -> List[Dict]:
        shape, shape_row = self.stage_one("nero")
        rows = [shape_row]
        if self.spec.name in self.config.ablation_scenes:
            rows.append(self.stage_one("plain")[1])
        rows.append(self.stage_two(shape))
        return rows


def formatted(value: Optional[float], digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def metric_rows(rows: List[Dict]) -> List[List[str]]:
    return [[row["scene"], row["variant"], *(formatted(row[key]) for key, _, _ in METRICS)] for row in rows]


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
    """Photometric training loss against step, one panel per scene, one line per stage/variant."""
    scenes = sorted({row["scene"] for row in rows}, key=[row["scene"] for row in rows].index)
    figure, axes = plt.subplots(1, len(scenes), figsize=(5 * len(scenes), 3.6), squeeze=False)
    for axis, scene in zip(axes[0], scenes):
        for row in rows:
            if row["scene"] == scene:
                steps, values = read_scalars(Path(row["run_dir"]), LOSS_TAG)
                axis.plot(steps, values, label=f"Stage {row['variant']}")
        axis.set(title=scene, xlabel="step", ylabel="rgb loss (linear, Charbonnier)", yscale="log")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_metric_bars(rows: List[Dict], path: Path) -> None:
    """One bar chart per metric: scenes on the x axis, a bar per stage/variant that has the metric."""
    scenes = sorted({row["scene"] for row in rows}, key=[row["scene"] for row in rows].index)
    present = {row["variant"] for row in rows}
    variants = [variant for variant in (STAGE_ONE, STAGE_ONE_PLAIN, STAGE_TWO) if variant in present]
    figure, axes = plt.subplots(2, (len(METRICS) + 1) // 2, figsize=(4 * ((len(METRICS) + 1) // 2), 6.4))
    for axis, (key, title, _) in zip(axes.flat, METRICS):
        scored = [variant for variant in variants if any(r[key] is not None for r in rows if r["variant"] == variant)]
        width = 0.8 / len(scored)
        for offset, variant in enumerate(scored):
            values = [
                next((r[key] for r in rows if r["scene"] == scene and r["variant"] == variant and r[key] is not None),
                     np.nan)
                for scene in scenes
            ]
            axis.bar(
                np.arange(len(scenes)) + offset * width, values, width, label=f"Stage {variant}",
                color=f"C{variants.index(variant)}",
            )
        axis.set_xticks(np.arange(len(scenes)) + 0.4 - width / 2, scenes, rotation=15, fontsize=8)
        axis.set_title(title)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(rows: List[Dict], config: SuiteBenchmark, output: Path) -> Path:
    plot_loss_curves(rows, output / "loss_curves.png")
    plot_metric_bars(rows, output / "metrics.png")
    scene_lines = [
        f"- **{spec.name}**: {spec.shape}, metallic {spec.metallic}, roughness {spec.roughness}, base color "
        f"{spec.base_color}" for spec in config.selected_scenes()
    ]
    report = "\n".join([
        "# nero-ns suite report",
        "",
        f"{config.budget_seconds:.0f} s wall-clock training budget per stage on {os.cpu_count()} CPU cores; "
        f"{config.resolution} px, {config.num_views} training views (floor, distractors, no masks), "
        f"{config.num_test_views} held-out views; {config.rays_per_batch or 'default'} rays per step; meshes at "
        f"{config.mesh_resolution}^3.",
        "",
        *scene_lines,
        "",
        "## Metrics",
        "",
        "Geometry: Chamfer distance and F-score at 0.01 in GT radii (R), normal error in degrees "
        "(`nero-eval geometry`). Test PSNR: renders of the held-out gt/test cameras, whole image. Materials: albedo "
        "PSNR after per-channel scale alignment, roughness / metallic MAE over the exported vertices. Relight PSNR: "
        "the Stage II assets rendered by `nero-relight` under gt/env_relight.exr, scale-aligned, against gt/relight.",
        "",
        markdown_table(["scene", "stage", *(title for _, title, _ in METRICS)], metric_rows(rows)),
        "",
        "![metrics](metrics.png)",
        "",
        "## Time per stage",
        "",
        "Train: wall clock of the whole `ns-train` process (start-up and final checkpoint included); export: "
        "`ns-export`; render: held-out views; eval: `nero-eval scene` (includes relighting for Stage II).",
        "",
        markdown_table(TIMING_HEADER, timing_rows(rows)),
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


def print_tables(rows: List[Dict]) -> None:
    for title, header, body in (
        ("metrics", ["scene", "stage", *(title for _, title, _ in METRICS)], metric_rows(rows)),
        ("time per stage", TIMING_HEADER, timing_rows(rows)),
    ):
        table = Table(title=title)
        for column in header:
            table.add_column(column, justify="right")
        for row in body:
            table.add_row(*row)
        console.print(table)


def main(config: SuiteBenchmark) -> None:
    config.apply_quick_preset()
    output = config.output_dir.resolve()
    output.mkdir(parents=True, exist_ok=True)
    rows = [row for spec in config.selected_scenes() for row in SceneRunner(spec, config, output).all_variants()]
    (output / "results.json").write_text(json.dumps({"config": asdict(config), "rows": rows}, indent=2, default=str))
    print_tables(rows)
    console.print(f"Wrote {write_report(rows, config, output)} and {output / 'results.json'}")


if __name__ == "__main__":
    main(tyro.cli(SuiteBenchmark))
    sys.exit(0)
