"""The hook that adds our exporters to nerfstudio's `ns-export`: its console script lists them beside its own, in
every import state, and one call registers another (`ns_export` runs the installed console script for every
exporter test)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path


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
