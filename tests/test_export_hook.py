"""`ns-export nero-mesh` through nerfstudio's own console script, and the hook that adds it."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from nerfstudio.models.nerfacto import NerfactoModelConfig

from nero_ns.errors import NeroInputError

NERFSTUDIO_SUBCOMMANDS = ["pointcloud", "tsdf", "poisson", "marching-cubes", "cameras", "gaussian-splat"]


def ns_export(*args: str) -> subprocess.CompletedProcess:
    """Run nerfstudio's installed `ns-export` console script."""
    script = shutil.which("ns-export", path=str(Path(sys.executable).parent)) or shutil.which("ns-export")
    assert script is not None, "nerfstudio's ns-export console script is not installed"
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=300)


def test_ns_export_help_lists_nero_mesh_and_nerfstudio_subcommands():
    result = ns_export("--help")
    assert result.returncode == 0, result.stderr
    usage = result.stdout.splitlines()[0]
    assert "{" + ",".join([*NERFSTUDIO_SUBCOMMANDS, "nero-mesh", "nero-materials"]) + "}" in usage


def test_ns_export_nero_mesh_help_shows_our_options():
    result = ns_export("nero-mesh", "--help")
    assert result.returncode == 0, result.stderr
    for option in ["--load-config", "--output-dir", "--resolution", "--block-resolution", "--keep-components",
                   "--target-faces", "--format", "--frame"]:  # fmt: skip
        assert option in result.stdout


def test_ns_export_nero_mesh_missing_config_is_a_one_line_error(tmp_path):
    result = ns_export("nero-mesh", "--load-config", "missing.yml", "--output-dir", str(tmp_path))
    assert result.returncode != 0
    assert "Error: missing.yml: config not found" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_config_without_checkpoints_is_named_in_the_error(tmp_path):
    from nero_ns.exporters.nero_mesh import check_trained_config
    from nero_ns.method_configs import nero_shape

    config = tmp_path / "config.yml"
    config.write_text(yaml.dump(copy.deepcopy(nero_shape.config)))
    with pytest.raises(NeroInputError, match="nerfstudio_models: no step-\\*.ckpt next to .*config.yml; let `ns-train"):
        check_trained_config(config)
    (tmp_path / "nerfstudio_models").mkdir()
    (tmp_path / "nerfstudio_models" / "step-000000250.ckpt").write_bytes(b"")
    check_trained_config(config)


def test_a_config_without_an_sdf_is_named_in_the_error(tmp_path):
    """nero-mesh takes nero-shape and nero-material runs (both have an SDF) and names any other method."""
    from nero_ns.exporters.nero_mesh import check_trained_config
    from nero_ns.method_configs import nero_material, nero_shape

    nerfacto = copy.deepcopy(nero_shape.config)
    nerfacto.method_name = "nerfacto"
    nerfacto.pipeline.model = NerfactoModelConfig()
    config = tmp_path / "config.yml"
    config.write_text(yaml.dump(nerfacto))
    with pytest.raises(NeroInputError, match="config.yml is a nerfacto config, not nero-shape; pass --load-config"):
        check_trained_config(config)
    (tmp_path / "nerfstudio_models").mkdir()
    (tmp_path / "nerfstudio_models" / "step-000000250.ckpt").write_bytes(b"")
    config.write_text(yaml.dump(copy.deepcopy(nero_material.config)))
    check_trained_config(config)


HOOK_SCRIPT = textwrap.dedent(
    """
    import sys, types
    from dataclasses import dataclass
    from typing import get_args
    import nero_ns.exporters as exporters
    from nero_ns.exporters.ns_export import commands_with_registered

    # Not imported yet: a meta_path finder hooks the module before its body runs, then steps aside.
    exporters.install_export_commands()
    assert "nerfstudio.scripts.exporter" not in sys.modules
    import nerfstudio.scripts.exporter as exporter
    assert type(exporter).__name__ == "_NeroExporterModule"
    assert not any(type(finder).__name__ == "_ExporterModuleFinder" for finder in sys.meta_path)

    # The console script's `from ... import entrypoint` gets the wrapper; the module keeps the original.
    from nerfstudio.scripts.exporter import entrypoint
    assert entrypoint.__wrapped__ is exporter.__dict__["entrypoint"]

    # Idempotent and nerfstudio's subcommands untouched, in order.
    original = exporter.__dict__["Commands"]
    members = get_args(get_args(commands_with_registered(original))[0])
    assert get_args(get_args(commands_with_registered(commands_with_registered(original)))[0]) == members
    assert members[:-2] == get_args(get_args(original)[0])
    assert get_args(members[-2])[0].__name__ == "ExportNeroMesh"

    # Already imported: switching works on a plain module too.
    exporter.__class__ = types.ModuleType
    exporters.install_export_commands()
    assert type(exporter).__name__ == "_NeroExporterModule"

    # One call registers another exporter, which then runs through nerfstudio's entrypoint.
    @dataclass
    class ExportProbe:
        value: int = 0
        def main(self) -> None:
            print(f"probe value {self.value}")
    exporters.register_export_command("nero-probe", ExportProbe)
    sys.argv = ["ns-export", "nero-probe", "--value", "7"]
    exporter.entrypoint()
    """
)


def test_hook_covers_each_import_state_and_registers_more_exporters():
    result = subprocess.run([sys.executable, "-c", HOOK_SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "probe value 7" in result.stdout
