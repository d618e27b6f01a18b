"""`ns-export nero-mesh` through nerfstudio's console script: its options, and one-line errors for bad runs."""

from __future__ import annotations

import copy

import pytest
import yaml
from nerfstudio.models.nerfacto import NerfactoModelConfig

from nero_ns.errors import NeroInputError
from nero_ns.exporters.nero_mesh import check_trained_config
from nero_ns.method_configs import nero_material, nero_shape
from tests.exporters.test_ns_export import ns_export


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
    config = tmp_path / "config.yml"
    config.write_text(yaml.dump(copy.deepcopy(nero_shape.config)))
    with pytest.raises(NeroInputError, match="nerfstudio_models: no step-\\*.ckpt next to .*config.yml; let `ns-train"):
        check_trained_config(config)
    (tmp_path / "nerfstudio_models").mkdir()
    (tmp_path / "nerfstudio_models" / "step-000000250.ckpt").write_bytes(b"")
    check_trained_config(config)


def test_a_config_without_an_sdf_is_named_in_the_error(tmp_path):
    """nero-mesh takes nero-shape and nero-material runs (both have an SDF) and names any other method."""
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
