"""`ns-export nero-materials`: textured PBR export of a trained nero-material model (`ns_export` adds it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import tyro
import yaml
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.scripts.exporter import Exporter
from nerfstudio.utils.eval_utils import eval_setup
from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.errors import NeroInputError, friendly_errors
from nero_ns.exporters.materials_export import MaterialExportOptions, check_material_options, export_materials
from nero_ns.exporters.mesh_export import MeshExportOptions
from nero_ns.models.nero_material import NeroMaterialModelConfig

RUN_HINT = (
    "pass --load-config outputs/<experiment>/nero-material/<timestamp>/config.yml written by `ns-train nero-material`"
)


@dataclass
class ExportNeroMaterials(Exporter):
    """Export a nero-material model as a textured PBR asset: mesh, per-vertex materials, baked textures, glTF
    binary, OBJ + MTL, and the learned environment map."""

    mesh: tyro.conf.OmitArgPrefixes[MeshExportOptions] = field(
        default_factory=lambda: MeshExportOptions(target_faces=100_000)
    )
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
    method (a nero-shape one: train Stage II from it first), or a run without checkpoints."""
    if not config_path.is_file():
        raise NeroInputError(f"{config_path}: config not found; {RUN_HINT}")
    try:
        config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    except (yaml.YAMLError, UnicodeDecodeError, AttributeError, TypeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise NeroInputError(f"{config_path} is not a nerfstudio config.yml ({first_line}); {RUN_HINT}") from error
    if not isinstance(config, TrainerConfig):
        raise NeroInputError(f"{config_path} is not a nerfstudio config.yml; {RUN_HINT}")
    if not isinstance(config.pipeline.model, NeroMaterialModelConfig):
        kind = config.method_name or type(config.pipeline.model).__name__
        fix = (
            f"run `ns-train nero-material --shape-config {config_path} --data DIR` first and pass its config.yml"
            if kind == "nero-shape"
            else RUN_HINT
        )
        raise NeroInputError(f"{config_path} is a {kind} config, not nero-material; {fix}")
    checkpoint_dir = config_path.parent / config.relative_model_dir
    if not any(checkpoint_dir.glob("step-*.ckpt")):
        raise NeroInputError(
            f"{checkpoint_dir}: no step-*.ckpt next to {config_path}; "
            "let `ns-train nero-material` run until it saves a checkpoint (every --steps-per-save steps)"
        )
