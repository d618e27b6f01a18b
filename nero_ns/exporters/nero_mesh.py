"""`ns-export nero-mesh`: the mesh of a trained nero-shape model (`nero_ns.exporters.ns_export` adds it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import tyro
from nerfstudio.scripts.exporter import Exporter
from nerfstudio.utils.eval_utils import eval_setup
from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.engine.trained_runs import newest_checkpoint, read_trained_config
from nero_ns.errors import friendly_errors
from nero_ns.exporters.mesh_export import MeshExportOptions, export_mesh, write_mesh
from nero_ns.models.nero_material import NeroMaterialModelConfig
from nero_ns.models.nero_shape import NeroShapeModelConfig


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
            mesh = export_mesh(pipeline.model, pipeline.datamanager.train_dataparser_outputs, self.mesh)
            path = write_mesh(mesh, self.output_dir, self.format)
            CONSOLE.print(f"[bold green]:white_check_mark: Saved mesh ({len(mesh.faces)} faces) to {path}")


def check_trained_config(config_path: Path) -> None:
    """One-line errors, before nerfstudio loads anything, for a missing or unreadable config, a run of a method
    without an SDF (nero-mesh needs nero-shape or nero-material) and a run without checkpoints."""
    config = read_trained_config(config_path, "nero-shape", (NeroShapeModelConfig, NeroMaterialModelConfig))
    newest_checkpoint(config_path, config, config.method_name or "nero-shape")
