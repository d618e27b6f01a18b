"""`nero-eval scene`: the ground truth itself, exported like a nero-material result, scores perfectly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nero_ns.evaluation.cli import EVALUATION_COMMANDS
from nero_ns.relight import load_gt_assets


def test_scene_evaluation_of_the_ground_truth(tiny_scene: Path, tmp_path: Path) -> None:
    """The GT itself, exported like a nero-material result: perfect geometry and materials; relit with independent
    render noise, it scores at the noise floor of the 8-spp GT images; all figures and metrics.json are written."""
    assets_dir = tmp_path / "assets"
    assets_dir.mkdir()
    gt = load_gt_assets(tiny_scene / "gt")
    count = len(gt.mesh.vertices)
    shutil.copy(tiny_scene / "gt" / "mesh.ply", assets_dir / "mesh.ply")
    np.save(assets_dir / "albedo.npy", np.tile(gt.albedo, (count, 1)))
    np.save(assets_dir / "roughness.npy", np.full(count, gt.roughness))
    np.save(assets_dir / "metallic.npy", np.full(count, gt.metallic))
    output = tmp_path / "eval"
    results = EVALUATION_COMMANDS["scene"](tiny_scene, output, assets=assets_dir, relight_spp=32).main()
    assert results["geometry"]["chamfer"] == 0.0
    assert results["materials"]["albedo_psnr"] == pytest.approx(100.0)
    assert results["materials"]["roughness_mae"] == results["materials"]["metallic_mae"] == 0.0
    assert results["relight"]["mean"]["psnr"] > 26.0
    assert (output / "figures" / "geometry_error.png").is_file()
    assert len(list((output / "figures" / "relight").glob("*.png"))) == 4
    assert set(json.loads((output / "metrics.json").read_text())) == {"scene", "geometry", "materials", "relight"}
    with pytest.raises(SystemExit):
        EVALUATION_COMMANDS["scene"](tmp_path, output, assets=assets_dir).main()
