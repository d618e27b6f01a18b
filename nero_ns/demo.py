"""`nero-demo`: the whole nero-shape job on the built-in synthetic scene, with the same commands a user runs."""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import tyro
from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.errors import NeroInputError, with_friendly_errors
from nero_ns.exporters.mesh_preview import write_mesh_preview


@dataclass
class DemoConfig:
    """Generate a shiny test object (no masks, as most captures), train nero-shape on it, export its mesh, score it
    against the truth and draw a preview."""

    output_dir: Path = Path("nero-demo")
    """Folder for the scene, the training run, the mesh, its scores and its preview picture."""
    train_seconds: float = 240.0
    """Training time of nero-shape (ns-train --max-train-seconds): the whole demo then takes about 5 minutes on 2
    CPU cores."""
    resolution: int = 128
    """Image size of the generated scene."""
    num_views: int = 48
    """Training views of the generated scene."""
    roughness: float = 0.1
    """Roughness of the gold knot (the curve benchmark's scene); rougher gold is harder for nero-shape."""
    mesh_resolution: int = 192
    """Marching-cubes grid resolution of the exported mesh."""


def _run(arguments: list[str]) -> None:
    CONSOLE.print(f"[bold]$ {shlex.join(arguments)}")
    started = time.time()
    result = subprocess.run(arguments)
    if result.returncode != 0:
        raise NeroInputError(f"'{arguments[0]}' failed (exit {result.returncode}); its message is above")
    CONSOLE.print(f"[dim]  ({time.time() - started:.0f} s)")


def run_demo(config: DemoConfig) -> Path:
    """Run the four commands of the demo and draw the preview; returns the exported mesh."""
    output = config.output_dir.resolve()
    scene, runs, export = output / "scene", output / "outputs", output / "export"
    if not (scene / "transforms.json").exists():
        _run([
            "nero-synth", "--output-dir", str(scene), "--shape", "knot", "--roughness", str(config.roughness),
            "--resolution", str(config.resolution), "--num-train-views", str(config.num_views), "--num-test-views", "4",
            "--spp", "32", "--no-masks", "--overwrite",
        ])
    _run([
        "ns-train", "nero-shape", "--data", str(scene), "--output-dir", str(runs), "--experiment-name", "demo",
        "--timestamp", "run", "--max-train-seconds", str(config.train_seconds), "--vis", "tensorboard",
        "--steps-per-eval-image", "1000000", "--steps-per-eval-batch", "1000000",
        # A 4-minute run: half batches for the first 600 steps find the shape sooner (docs/shape-speed.md).
        "--pipeline.datamanager.initial-num-rays-per-batch", "512",
    ])
    run_config = runs / "demo" / "nero-shape" / "run" / "config.yml"
    _run([
        "ns-export", "nero-mesh", "--load-config", str(run_config), "--output-dir", str(export),
        "--resolution", str(config.mesh_resolution),
    ])
    mesh = export / "mesh.ply"
    _run(["nero-eval", "geometry", "--mesh", str(mesh), "--gt", str(scene / "gt" / "mesh.ply"),
          "--json", str(export / "geometry.json")])
    preview = write_mesh_preview(mesh, scene / "transforms.json", output / "preview.png")
    CONSOLE.print(f"\n[bold green]Done.[/bold green] Mesh (input coordinates): {mesh}")
    CONSOLE.print(f"Scores: {export / 'geometry.json'}")
    CONSOLE.print(f"Picture (input photos above, the mesh from the same cameras below): {preview}")
    CONSOLE.print(f"Inspect the model: ns-viewer --load-config {run_config}")
    return mesh


@with_friendly_errors
def entrypoint() -> None:
    """Console script."""
    run_demo(tyro.cli(DemoConfig))


if __name__ == "__main__":
    sys.exit(entrypoint())
