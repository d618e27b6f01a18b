"""`ns-export nero-materials`: textured PBR export of a trained nero-material model (`ns_export` adds it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tyro
from nerfstudio.scripts.exporter import Exporter
from nerfstudio.utils.eval_utils import eval_setup
from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.engine.trained_runs import newest_checkpoint, read_trained_config
from nero_ns.errors import friendly_errors
from nero_ns.exporters.materials_export import (
    MaterialExportOptions,
    check_material_options,
    export_materials,
    material_mesh_options,
)
from nero_ns.exporters.mesh_export import MeshExportOptions
from nero_ns.models.nero_material import NeroMaterialModelConfig

@dataclass
class ExportNeroMaterials(Exporter):
    """Export a nero-material model as a textured PBR asset: mesh, per-vertex materials, baked textures, glTF
    binary, OBJ + MTL, and the learned environment map."""

    mesh: tyro.conf.OmitArgPrefixes[MeshExportOptions] = field(default_factory=material_mesh_options)
    materials: tyro.conf.OmitArgPrefixes[MaterialExportOptions] = field(default_factory=MaterialExportOptions)

    def main(self) -> None:
        """Check the run and options, load the trained pipeline, write every file."""
        with friendly_errors():
            check_material_options(self.materials)
            check_material_run(self.load_config)
            _, pipeline, _, _ = eval_setup(self.load_config, test_mode="inference")
            export_materials(
                pipeline.model, pipeline.datamanager.train_dataparser_outputs, self.mesh, self.materials,
                self.output_dir,
            )
            CONSOLE.print(f"[bold green]:white_check_mark: Saved the textured model to {self.output_dir}")


def check_material_run(config_path: Path) -> None:
    """One-line errors, before nerfstudio loads anything, for a missing or unreadable config, a config of another
    method (a nero-shape one: train nero-material from it first), or a run without checkpoints."""
    config = read_trained_config(
        config_path,
        "nero-material",
        (NeroMaterialModelConfig,),
        fixes_for_other_methods={
            "nero-shape": f"run `ns-train nero-material --shape-config {config_path} --data DIR` first and pass its "
            "config.yml"
        },
    )
    newest_checkpoint(config_path, config, "nero-material")
