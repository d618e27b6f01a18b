"""`nero-eval scene`: the ground truth itself, exported like a nero-material result, scores perfectly and reaches the
relighting ceiling; wrong materials fall below it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nero_ns.evaluation.cli import EVALUATION_COMMANDS
from nero_ns.relight import load_gt_assets


def gt_mesh_assets(scene: Path, folder: Path, invert_roughness_and_metallic: bool = False) -> Path:
    """The scene's GT mesh and constant GT materials written as an export folder (mesh.ply + per-vertex arrays),
    optionally with roughness and metallic swapped for their opposites."""
    gt = load_gt_assets(scene / "gt")
    count = len(gt.mesh.vertices)
    roughness, metallic = gt.roughness, gt.metallic
    if invert_roughness_and_metallic:
        roughness, metallic = 1.0 - roughness, 1.0 - metallic
    folder.mkdir()
    shutil.copy(scene / "gt" / "mesh.ply", folder / "mesh.ply")
    np.save(folder / "albedo.npy", np.tile(gt.albedo, (count, 1)))
    np.save(folder / "roughness.npy", np.full(count, roughness))
    np.save(folder / "metallic.npy", np.full(count, metallic))
    return folder


def test_scene_evaluation_of_the_ground_truth(tiny_scene: Path, tmp_path: Path) -> None:
    """The GT itself, exported like a nero-material result: perfect geometry and materials; relit with independent
    render noise, it scores at the noise floor of the 8-spp GT images, as the ceiling (the GT relit the same way)
    does; all figures and metrics.json are written."""
    assets_dir = gt_mesh_assets(tiny_scene, tmp_path / "assets")
    output = tmp_path / "eval"
    results = EVALUATION_COMMANDS["scene"](tiny_scene, output, assets=assets_dir, relight_spp=32).main()
    assert results["geometry"]["chamfer"] == 0.0
    assert results["materials"]["albedo_psnr"] == pytest.approx(100.0)
    assert results["materials"]["roughness_mae"] == results["materials"]["metallic_mae"] == 0.0
    assert results["relight"]["mean"]["psnr"] > 26.0
    assert results["relight"]["mean"]["psnr"] == pytest.approx(results["relight_ceiling"]["mean"]["psnr"], abs=0.2)
    assert (output / "figures" / "geometry_error.png").is_file()
    assert len(list((output / "figures" / "relight").glob("*.png"))) == 4
    keys = {"scene", "geometry", "materials", "relight", "relight_ceiling"}
    assert set(json.loads((output / "metrics.json").read_text())) == keys
    with pytest.raises(SystemExit):
        EVALUATION_COMMANDS["scene"](tmp_path, output, assets=assets_dir).main()


def test_wrong_materials_relight_below_the_ceiling(tiny_scene: Path, tmp_path: Path) -> None:
    """The GT mesh with the roughness and metallic swapped for their opposites relights well below the ceiling."""
    assets_dir = gt_mesh_assets(tiny_scene, tmp_path / "assets", invert_roughness_and_metallic=True)
    results = EVALUATION_COMMANDS["scene"](tiny_scene, tmp_path / "eval", assets=assets_dir, relight_spp=32).main()
    assert results["relight"]["mean"]["psnr"] < results["relight_ceiling"]["mean"]["psnr"] - 2.0, results
