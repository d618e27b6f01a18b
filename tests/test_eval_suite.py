"""nero-eval images / materials / relight / scene: metrics on hand-computed cases and on a generated scene."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import trimesh

from nero_ns.colors import linear_to_srgb, srgb_to_linear
from nero_ns.errors import NeroInputError
from nero_ns.evaluation.alignment import per_channel_scale
from nero_ns.evaluation.cli import EVALUATION_COMMANDS
from nero_ns.components.image_metrics import ImageMetrics
from nero_ns.evaluation.images import compare_images, match_images
from nero_ns.evaluation.materials import material_metrics
from nero_ns.evaluation.relighting import evaluate_relighting
from nero_ns.relight import MaterialAssets, load_gt_assets


def test_psnr_of_a_known_mse_and_ssim_of_identical_images() -> None:
    """Every pixel off by 0.1: MSE 0.01, PSNR exactly 20 dB; an image against itself has SSIM 1."""
    rng = np.random.default_rng(0)
    target = rng.uniform(0.2, 0.8, (32, 32, 3)).astype(np.float32)
    values = compare_images(ImageMetrics(), target + np.float32(0.1), target)
    assert values["psnr"] == pytest.approx(20.0, abs=1e-3)
    assert compare_images(ImageMetrics(), target, target)["ssim"] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(NeroInputError, match="differ in size"):
        compare_images(ImageMetrics(), target[:16], target)


def test_scale_alignment_recovers_a_known_per_channel_scale() -> None:
    rng = np.random.default_rng(1)
    prediction = rng.uniform(0.0, 1.0, (20, 30, 3))
    scale = np.array([2.0, 0.5, 1.25])
    target = prediction * scale
    np.testing.assert_allclose(per_channel_scale(prediction, target), scale, rtol=1e-12)
    mask = rng.uniform(size=(20, 30)) < 0.3
    target[~mask] = 7.0  # pixels outside the mask do not count
    np.testing.assert_allclose(per_channel_scale(prediction, target, mask), scale, rtol=1e-12)
    np.testing.assert_array_equal(per_channel_scale(np.zeros((4, 3)), np.ones((4, 3))), np.ones(3))


def test_material_metrics_on_hand_computed_cases() -> None:
    """Albedo halved: aligned PSNR saturates, unaligned PSNR is that of the known MSE; MAEs are the offsets.
    Vertices far from the GT surface are dropped with max_distance."""
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    gt = MaterialAssets(sphere, (0.6, 0.4, 0.2), 0.3, 0.9)
    count = len(sphere.vertices)
    far_copy = sphere.copy()
    far_copy.apply_translation([5.0, 0.0, 0.0])
    mesh = trimesh.util.concatenate([sphere, far_copy])
    albedo = np.tile([0.3, 0.2, 0.1], (2 * count, 1))
    roughness = np.concatenate([np.full(count, 0.4), np.full(count, 0.3)])
    metallic = np.concatenate([np.full(count, 0.7), np.full(count, 0.9)])
    prediction = MaterialAssets(mesh, albedo, roughness, metallic)

    everything = material_metrics(prediction, gt)
    assert everything["albedo_scale"] == pytest.approx([2.0, 2.0, 2.0])
    assert everything["albedo_psnr"] == pytest.approx(100.0)  # MSE floored at 1e-10
    assert everything["albedo_psnr_unaligned"] == pytest.approx(-10 * np.log10((0.09 + 0.04 + 0.01) / 3), abs=1e-9)
    assert everything["roughness_mae"] == pytest.approx(0.05)
    assert everything["metallic_mae"] == pytest.approx(0.1)
    near = material_metrics(prediction, gt, max_distance=0.01)
    assert near["num_vertices"] == count and near["fraction_scored"] == pytest.approx(0.5)
    assert near["roughness_mae"] == pytest.approx(0.1) and near["metallic_mae"] == pytest.approx(0.2)


def test_material_metrics_score_only_what_the_cameras_see() -> None:
    """One camera far above a sphere sees its upper half only: the lower half, painted wrong, is left out, and a
    cylinder standing between camera and sphere hides everything."""
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    gt = MaterialAssets(sphere, (0.6, 0.4, 0.2), 0.3, 0.0)
    upper = sphere.vertices[:, 2] > 0.0
    roughness = np.where(sphere.vertices[:, 2] < -0.2, 0.9, 0.3)  # wrong well below the horizon the camera sees
    prediction = MaterialAssets(sphere, np.tile([0.6, 0.4, 0.2], (len(upper), 1)), roughness, np.zeros(len(upper)))
    assert material_metrics(prediction, gt)["roughness_mae"] > 0.2
    seen = material_metrics(prediction, gt, camera_centers=np.array([[0.0, 0.0, 50.0]]))
    assert seen["roughness_mae"] == pytest.approx(0.0)
    assert seen["fraction_scored"] == pytest.approx(upper.mean(), abs=0.05)
    blocker = trimesh.creation.cylinder(radius=3.0, height=0.5)
    blocker.apply_translation([0.0, 0.0, 10.0])
    hidden = MaterialAssets(trimesh.util.concatenate([sphere, blocker]), (0.6, 0.4, 0.2), 0.3, 0.0)
    with pytest.raises(NeroInputError, match="no camera"):
        material_metrics(prediction, hidden, camera_centers=np.array([[0.0, 0.0, 50.0]]))


def darkened_copy(gt_relight: Path, folder: Path, scale: np.ndarray) -> None:
    """The GT relit images with object pixels multiplied by `scale` in linear radiance."""
    meta = json.loads((gt_relight / "transforms.json").read_text())
    (folder / "images").mkdir(parents=True)
    for frame in meta["frames"]:
        image = iio.imread(gt_relight / frame["file_path"]) / 255.0
        mask = (iio.imread(gt_relight / frame["mask_path"]) == 255)[..., None]
        linear = srgb_to_linear(image)
        darker = linear_to_srgb(np.where(mask, linear * scale, linear))
        iio.imwrite(folder / "images" / Path(frame["file_path"]).name, np.round(darker * 255).astype(np.uint8))


def test_relight_alignment_undoes_a_per_channel_scale(tiny_scene: Path, tmp_path: Path) -> None:
    """GT relit images darkened per channel on the object score near-perfectly after alignment, and the fitted
    scales are the inverse; the figures are GT | ours | difference."""
    scale = np.array([0.5, 0.7, 0.9])
    darkened_copy(tiny_scene / "gt" / "relight", tmp_path / "renders", scale)
    results = evaluate_relighting(tmp_path / "renders", tiny_scene / "gt" / "relight", figures_dir=tmp_path / "fig")
    assert len(results["per_image"]) == 4
    assert results["mean"]["psnr"] > 40.0 and results["mean"]["ssim"] > 0.99
    np.testing.assert_allclose(next(iter(results["scales"].values())), 1.0 / scale, rtol=0.02)
    unaligned = EVALUATION_COMMANDS["images"](tmp_path / "renders", tiny_scene / "gt" / "relight").main()
    assert unaligned["mean"]["psnr"] < results["mean"]["psnr"] - 10.0
    figure = iio.imread(tmp_path / "fig" / "frame_00000.png")
    assert figure.shape == (48, 144, 3)


def test_images_matches_by_name_and_reports_missing(tiny_scene: Path, tmp_path: Path) -> None:
    (tmp_path / "renders").mkdir()
    shutil.copy(tiny_scene / "gt/test/images/frame_00002.png", tmp_path / "renders" / "frame_00002.png")
    pairs = match_images(tmp_path / "renders", tiny_scene / "gt" / "test" / "transforms.json")
    assert [pair.name for pair in pairs] == ["frame_00002"]
    assert pairs[0].gt == tiny_scene / "gt/test/images/frame_00002.png"
    command = EVALUATION_COMMANDS["images"](tmp_path / "renders", tiny_scene / "gt/test", json=tmp_path / "m.json")
    assert command.main()["mean"]["psnr"] == pytest.approx(100.0)
    assert json.loads((tmp_path / "m.json").read_text())["per_image"]["frame_00002"]["ssim"] == pytest.approx(1.0)
    (tmp_path / "other_gt").mkdir()
    with pytest.raises(NeroInputError, match="no image shares a file name"):
        match_images(tmp_path / "renders", tmp_path / "other_gt")
    with pytest.raises(NeroInputError, match="missing: not found"):
        match_images(tmp_path / "renders", tmp_path / "missing")


def test_scene_evaluation_of_the_ground_truth(tiny_scene: Path, tmp_path: Path) -> None:
    """The GT itself, exported like a Stage II result: perfect geometry and materials; relit with independent
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
