"""`ns-export nero-materials` through nerfstudio's console script: its options, one-line errors for bad runs, and an
export of a real nero-material checkpoint that reads back as the model's materials and light."""

from __future__ import annotations

import copy

import mitsuba as mi
import numpy as np
import pytest
import torch
import trimesh
import yaml
from nerfstudio.utils.eval_utils import eval_setup

from nero_ns.errors import NeroInputError
from nero_ns.exporters.materials_export import MaterialExportOptions
from nero_ns.exporters.mesh_export import MeshExportOptions
from nero_ns.exporters.nero_materials import ExportNeroMaterials, check_material_run
from nero_ns.method_configs import nero_material, nero_shape
from tests.exporters.test_materials_export import load_glb
from tests.exporters.test_ns_export import ns_export
from tests.models.test_nero_material import material_config
from tests.models.test_shape_run import write_shape_run


def test_bad_runs_give_one_line_errors(tmp_path):
    with pytest.raises(NeroInputError, match="missing.yml: config not found; pass --load-config .*nero-material"):
        check_material_run(tmp_path / "missing.yml")
    garbage = tmp_path / "garbage.yml"
    garbage.write_text("just: [a, list")
    with pytest.raises(NeroInputError, match="garbage.yml is not a nerfstudio config.yml"):
        check_material_run(garbage)
    shape_config = tmp_path / "shape" / "config.yml"
    shape_config.parent.mkdir()
    shape_config.write_text(yaml.dump(copy.deepcopy(nero_shape.config)))
    with pytest.raises(NeroInputError, match="is a nero-shape config, not nero-material; run `ns-train nero-material "
                                             "--shape-config .*shape/config.yml --data DIR` first"):
        check_material_run(shape_config)
    material_config = tmp_path / "material" / "config.yml"
    material_config.parent.mkdir()
    material_config.write_text(yaml.dump(copy.deepcopy(nero_material.config)))
    with pytest.raises(NeroInputError, match="nerfstudio_models: no step-\\*.ckpt next to .*material/config.yml"):
        check_material_run(material_config)
    (material_config.parent / "nerfstudio_models").mkdir()
    (material_config.parent / "nerfstudio_models" / "step-000000100.ckpt").write_bytes(b"")
    check_material_run(material_config)


def test_ns_export_nero_materials_help_and_a_one_line_error():
    result = ns_export("nero-materials", "--help")
    assert result.returncode == 0, result.stderr
    for option in ["--load-config", "--output-dir", "--resolution", "--target-faces", "--texture-size",
                   "--texture-padding", "--frame", "--envmap-height"]:  # fmt: skip
        assert option in result.stdout
    assert "100000)" in result.stdout.split("--target-faces")[1].split("--")[0]  # the nero-materials default
    result = ns_export("nero-materials", "--load-config", "missing.yml", "--output-dir", "out")
    assert result.returncode == 2
    assert "Error: missing.yml: config not found" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_ns_export_nero_materials_on_a_real_nero_material_checkpoint(tiny_scene, tmp_path):
    # nero-shape as `ns-train nero-shape` writes it (untrained: the init sphere), then a nero-material checkpoint.
    config = material_config(tiny_scene, write_shape_run(tiny_scene, tmp_path / "shape"), tmp_path / "material", 1)
    config.set_timestamp()
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.save_checkpoint(1)
    config_path = config.get_base_dir() / "config.yml"
    output_dir = tmp_path / "export"
    ExportNeroMaterials(
        load_config=config_path, output_dir=output_dir,
        mesh=MeshExportOptions(resolution=48, target_faces=3000),
        materials=MaterialExportOptions(texture_size=128, envmap_height=16),
    ).main()

    _, pipeline, _, _ = eval_setup(config_path, test_mode="inference")
    model, outputs = pipeline.model, pipeline.datamanager.train_dataparser_outputs
    transform, scale = outputs.dataparser_transform[:, :3], float(outputs.dataparser_scale)
    ply = trimesh.load(output_dir / "mesh.ply", process=False)
    vertices = torch.as_tensor(ply.vertices, dtype=torch.float32)
    normalized = scale * (vertices @ transform.T + outputs.dataparser_transform[:, 3])
    with torch.no_grad():  # back in the normalized frame, the vertices lie on nero-shape's surface (cut at the floor)
        assert model.geometry.query_sdf(normalized).abs().max() < 0.02
    expected = model.query_materials(normalized)
    np.testing.assert_allclose(np.load(output_dir / "albedo.npy"), expected["albedo"].numpy(), atol=1e-5)
    np.testing.assert_allclose(np.load(output_dir / "roughness.npy"), expected["roughness"][:, 0].numpy(), atol=1e-5)
    environment = model.environment_map(16).numpy()
    mi.set_variant("scalar_rgb")
    read_back = np.array(mi.Bitmap(str(output_dir / "environment.hdr")))
    assert (np.abs(read_back - environment) <= environment.max(axis=-1, keepdims=True) / 128).all()
    glb = load_glb(output_dir / "model.glb")
    assert glb.visual.material.baseColorTexture.size == (128, 128) and len(glb.faces) == len(ply.faces)
