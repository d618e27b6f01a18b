"""`ns-export nero-mesh`: the mesh of a trained nero-shape model (`nero_ns.exporters.ns_export` adds it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import tyro

from nerfstudio.scripts.exporter import Exporter
from nerfstudio.utils.eval_utils import eval_setup
from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.errors import NeroInputError, friendly_errors
from nero_ns.exporters.mesh_export import MeshExportOptions, export_mesh, write_mesh


@dataclass
class ExportNeroMesh(Exporter):
    """Export the surface of a nero-shape model: marching cubes of its SDF, cleaned, with SDF-gradient normals."""

    mesh: tyro.conf.OmitArgPrefixes[MeshExportOptions] = field(default_factory=MeshExportOptions)
    format: Literal["ply", "obj", "glb"] = "ply"
    """File format of `<output-dir>/mesh.<format>`."""

    def main(self) -> None:
        """Load the trained pipeline, extract its mesh and write it."""
        with friendly_errors():
            check_trained_config(self.load_config)
            _, pipeline, _, _ = eval_setup(self.load_config, test_mode="inference")
            check_nero_shape_model(pipeline.model, self.load_config)
            mesh = export_mesh(pipeline.model, pipeline.datamanager.train_dataparser_outputs, self.mesh)
            path = write_mesh(mesh, self.output_dir, self.format)
            CONSOLE.print(f"[bold green]:white_check_mark: Saved mesh ({len(mesh.faces)} faces) to {path}")


def check_trained_config(config_path: Path) -> None:
    """One-line errors for a missing config or a run without checkpoints, before nerfstudio tries to load them."""
    if not config_path.is_file():
        raise NeroInputError(
            f"{config_path}: config not found; "
            "pass --load-config outputs/<experiment>/nero-shape/<timestamp>/config.yml"
        )
    checkpoint_dir = config_path.parent / "nerfstudio_models"
    if not any(checkpoint_dir.glob("step-*.ckpt")):
        raise NeroInputError(
            f"{checkpoint_dir}: no step-*.ckpt next to {config_path}; "
            "let `ns-train nero-shape` run until it saves a checkpoint (every --steps-per-save steps)"
        )


def check_nero_shape_model(model: torch.nn.Module, config_path: Path) -> None:
    """nero-mesh needs a model with `query_sdf` (docs/CONVENTIONS.md); name the config otherwise."""
    if not hasattr(model, "query_sdf"):
        raise NeroInputError(
            f"{config_path} is a {type(model).__name__} config, not a nero-shape one; "
            "nero-mesh needs a config written by `ns-train nero-shape`"
        )
