"""nero-synth: camera/mask/environment conventions, nerfstudio compatibility, outputs, determinism."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import imageio.v3 as iio
import mitsuba as mi
import numpy as np
import open3d as o3d
import pytest
import trimesh
from scipy.ndimage import binary_dilation
from scipy.spatial import ConvexHull
from skimage.draw import polygon

from nero_ns.errors import NeroInputError
from nero_ns.synthetic import generate_scene
from nero_ns.synthetic.cameras import PinholeIntrinsics, look_at_c2w
from nero_ns.synthetic.cli import entrypoint
from nero_ns.io.latlong import sample_latlong
from nero_ns.synthetic.render import SceneLayout, render_view, shaded_scene, variant_works

SPLIT_FOLDERS = ("", "gt/test", "gt/relight")


def read_split(scene: Path, folder: str) -> dict:
    return json.loads((scene / folder / "transforms.json").read_text())


def project_opencv(points: np.ndarray, c2w: np.ndarray, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates and depths of world points seen by a nerfstudio camera (OpenGL c2w, OPENCV pixels)."""
    w2c = np.linalg.inv(c2w)
    camera = points @ w2c[:3, :3].T + w2c[:3, 3]
    camera[:, 1:] *= -1.0  # OpenGL (y up, looking down -z) -> OpenCV (y down, looking down +z)
    depth = camera[:, 2]
    u = meta["fl_x"] * camera[:, 0] / depth + meta["cx"]
    v = meta["fl_y"] * camera[:, 1] / depth + meta["cy"]
    return np.stack([u, v], -1), depth


def luminance(image: np.ndarray) -> np.ndarray:
    return image[..., :3] @ np.array([0.2126, 0.7152, 0.0722])


@pytest.mark.parametrize("folder", SPLIT_FOLDERS)
def test_gt_mesh_projects_onto_masks(tiny_scene: Path, folder: str) -> None:
    """Camera convention proof: GT vertices land on mask pixels, and masks lie inside the vertices' hull."""
    vertices = trimesh.load(tiny_scene / "gt" / "mesh.ply", process=False).vertices
    meta = read_split(tiny_scene, folder)
    hits, total = 0, 0
    for frame in meta["frames"]:
        mask = iio.imread(tiny_scene / folder / frame["mask_path"]) == 255
        pixels, depth = project_opencv(vertices, np.asarray(frame["transform_matrix"]), meta)
        assert (depth > 0).all()
        columns, rows = np.floor(pixels).astype(int).T
        inside = (columns >= 0) & (columns < meta["w"]) & (rows >= 0) & (rows < meta["h"])
        assert inside.all(), "the object must be fully in view"
        # One pixel of slack: a vertex on the silhouette may fall in a pixel covered less than half.
        hits += binary_dilation(mask)[rows, columns].sum()
        total += len(vertices)
        hull = pixels[ConvexHull(pixels).vertices]
        hull_image = np.zeros_like(mask)
        hull_image[polygon(hull[:, 1] - 0.5, hull[:, 0] - 0.5, mask.shape)] = True
        assert (mask & ~binary_dilation(hull_image)).sum() <= 0.005 * mask.sum()
        assert mask.sum() >= 0.5 * hull_image.sum()
    assert hits / total > 0.98


def test_nerfstudio_reads_dataset_and_rays_hit_object(tiny_scene: Path) -> None:
    """nerfstudio's own dataparser loads the dataset; its rays through mask pixels hit the GT mesh, others miss."""
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    config = NerfstudioDataParserConfig(data=tiny_scene, load_3D_points=True)
    outputs = config.setup().get_dataparser_outputs("train")
    num_frames = len(read_split(tiny_scene, "")["frames"])
    num_train = math.ceil(num_frames * config.train_split_fraction)
    assert len(outputs.image_filenames) == len(outputs.cameras) == len(outputs.mask_filenames) == num_train
    assert (outputs.cameras.width == 48).all() and (outputs.cameras.height == 48).all()
    assert np.isfinite(outputs.scene_box.aabb.numpy()).all()
    num_ply_points = len(trimesh.load(tiny_scene / "sparse_pc.ply").vertices)
    assert outputs.metadata["points3D_xyz"].shape == (num_ply_points, 3)

    transform, scale = outputs.dataparser_transform.numpy(), outputs.dataparser_scale
    mesh = trimesh.load(tiny_scene / "gt" / "mesh.ply", process=False)
    normalized_vertices = scale * (mesh.vertices @ transform[:, :3].T + transform[:, 3])
    raycaster = o3d.t.geometry.RaycastingScene()
    raycaster.add_triangles(normalized_vertices.astype(np.float32), mesh.faces.astype(np.uint32))
    agreement = []
    for index, mask_path in enumerate(outputs.mask_filenames):
        mask = iio.imread(mask_path) == 255
        rays = outputs.cameras.generate_rays(camera_indices=index)
        origins = rays.origins.reshape(-1, 3).numpy()
        directions = rays.directions.reshape(-1, 3).numpy()
        hit = raycaster.test_occlusions(o3d.core.Tensor(np.concatenate([origins, directions], -1))).numpy()
        agreement.append((hit.reshape(mask.shape) == mask).mean())
    assert np.mean(agreement) > 0.97


def test_outputs_exist_and_show_a_shiny_object(tiny_scene: Path) -> None:
    """Right files and shapes; object pixels differ from the rest and carry a highlight; relighting changes them."""
    materials = json.loads((tiny_scene / "gt" / "materials.json").read_text())
    assert materials["shape"] == "blob" and materials["object_radius"] == pytest.approx(1.6)
    assert "envmap_convention" in materials
    mesh = trimesh.load(tiny_scene / "gt" / "mesh.ply", process=False)
    assert mesh.is_watertight
    distances = np.linalg.norm(mesh.vertices - np.asarray(materials["object_center"]), axis=1)
    assert distances.max() == pytest.approx(materials["object_radius"], rel=1e-5)

    mi.set_variant(materials["mitsuba_variant"])
    env_train = np.array(mi.Bitmap(str(tiny_scene / "gt" / "env_train.exr")))
    env_relight = np.array(mi.Bitmap(str(tiny_scene / "gt" / "env_relight.exr")))
    assert env_train.shape == env_relight.shape == (256, 512, 3)
    assert env_train.max() > 50.0 and np.median(env_train) < 2.0, "an HDR map: a sun far above the sky"
    assert np.abs(env_train - env_relight).mean() > 0.1

    for folder in SPLIT_FOLDERS:
        meta = read_split(tiny_scene, folder)
        for frame in meta["frames"]:
            image = iio.imread(tiny_scene / folder / frame["file_path"])
            mask = iio.imread(tiny_scene / folder / frame["mask_path"])
            assert image.shape == (48, 48, 3) and image.dtype == np.uint8
            assert mask.shape == (48, 48) and set(np.unique(mask)) <= {0, 255}
            assert 0.05 < (mask == 255).mean() < 0.8
            image, on_object = image / 255.0, mask == 255
            assert np.abs(image[on_object].mean(0) - image[~on_object].mean(0)).sum() > 0.1
            object_luminance = luminance(image)[on_object]
            assert object_luminance.max() > np.median(object_luminance) + 0.2, "no highlight on the object"

    test_meta, relight_meta = read_split(tiny_scene, "gt/test"), read_split(tiny_scene, "gt/relight")
    for test_frame, relight_frame in zip(test_meta["frames"], relight_meta["frames"]):
        assert test_frame["transform_matrix"] == relight_frame["transform_matrix"]
        test_image = iio.imread(tiny_scene / "gt/test" / test_frame["file_path"]) / 255.0
        relight_image = iio.imread(tiny_scene / "gt/relight" / relight_frame["file_path"]) / 255.0
        object_pixels = iio.imread(tiny_scene / "gt/relight" / relight_frame["mask_path"]) == 255
        assert np.abs(test_image - relight_image)[object_pixels].mean() > 0.05


def test_sparse_points_are_noisy_surface_samples_with_outliers(tiny_scene: Path) -> None:
    """About 90% of the points lie within 2% of the radius of the GT surface, the rest are outliers."""
    mesh = trimesh.load(tiny_scene / "gt" / "mesh.ply", process=False)
    radius = json.loads((tiny_scene / "gt" / "materials.json").read_text())["object_radius"]
    points = trimesh.load(tiny_scene / "sparse_pc.ply")
    assert points.colors.shape == (len(points.vertices), 4)
    raycaster = o3d.t.geometry.RaycastingScene()
    raycaster.add_triangles(mesh.vertices.astype(np.float32), mesh.faces.astype(np.uint32))
    distance = raycaster.compute_distance(o3d.core.Tensor(points.vertices.astype(np.float32))).numpy()
    near_surface = (distance < 0.02 * radius).mean()
    assert 0.87 < near_surface < 0.93
    assert np.median(distance[distance < 0.02 * radius]) < 0.006 * radius


def test_environment_lookup_matches_renderer(tiny_scene: Path) -> None:
    """The documented lat-long convention (sample_latlong) is what the renderer sees along a ray."""
    materials = json.loads((tiny_scene / "gt" / "materials.json").read_text())
    mi.set_variant(materials["mitsuba_variant"])
    environment = np.array(mi.Bitmap(str(tiny_scene / "gt" / "env_relight.exr")))
    layout = SceneLayout(tiny_scene / "gt" / "mesh.ply", (0.5, 0.5, 0.5), 0.0, 0.5)
    scene = shaded_scene(layout, tiny_scene / "gt" / "env_relight.exr", with_surroundings=False)
    center, radius = np.asarray(materials["object_center"]), materials["object_radius"]
    rng = np.random.default_rng(3)
    directions = rng.normal(size=(12, 3))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    pencil = PinholeIntrinsics(1, 1, 1e-3)
    for direction in directions:
        eye = center + 2.0 * radius * direction  # outside the object, looking away from it
        rendered = render_view(scene, look_at_c2w(eye, eye + direction), pencil, spp=1, seed=0)[0, 0]
        np.testing.assert_allclose(rendered, sample_latlong(environment, direction), rtol=2e-3, atol=1e-4)


def test_same_seed_same_scene_other_seed_other_scene(tmp_path: Path, make_tiny_scene_config) -> None:
    """Everything written is a function of the seed."""
    options = dict(resolution=24, num_train_views=3, num_test_views=1, spp=4, num_points=300)
    first = generate_scene(make_tiny_scene_config(tmp_path / "first", **options))
    second = generate_scene(make_tiny_scene_config(tmp_path / "second", **options))
    other = generate_scene(make_tiny_scene_config(tmp_path / "other", **options, seed=8))
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(second) for path in second.rglob("*") if path.is_file())
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    assert read_split(first, "")["frames"] != read_split(other, "")["frames"]
    assert (first / "images/frame_00000.png").read_bytes() != (other / "images/frame_00000.png").read_bytes()


def test_scalar_fallback_renders_the_same_scene(tmp_path: Path, make_tiny_scene_config) -> None:
    """scalar_rgb (the fallback without a usable libLLVM) and llvm_ad_rgb differ only by Monte Carlo noise."""
    if not variant_works("llvm_ad_rgb"):
        pytest.skip("llvm_ad_rgb does not render on this machine (its libLLVM is 15 or older): nothing to compare with")
    options = dict(resolution=32, num_train_views=3, num_test_views=1, spp=16, points=False)
    scalar = generate_scene(make_tiny_scene_config(tmp_path / "scalar", variant="scalar_rgb", **options))
    llvm = generate_scene(make_tiny_scene_config(tmp_path / "llvm", variant="llvm_ad_rgb", **options))
    for index in range(3):
        scalar_image = iio.imread(scalar / f"images/frame_{index:05d}.png") / 255.0
        llvm_image = iio.imread(llvm / f"images/frame_{index:05d}.png") / 255.0
        assert np.abs(scalar_image.mean((0, 1)) - llvm_image.mean((0, 1))).max() < 0.02
        scalar_mask = iio.imread(scalar / f"masks/frame_{index:05d}.png")
        assert (scalar_mask == iio.imread(llvm / f"masks/frame_{index:05d}.png")).mean() > 0.97


def test_no_extras_scene_has_no_masks_or_points(tiny_scene_no_extras: Path) -> None:
    meta = read_split(tiny_scene_no_extras, "")
    assert "ply_file_path" not in meta and all("mask_path" not in frame for frame in meta["frames"])
    assert not (tiny_scene_no_extras / "masks").exists() and not (tiny_scene_no_extras / "sparse_pc.ply").exists()
    assert len(list((tiny_scene_no_extras / "images").glob("*.png"))) == len(meta["frames"]) == 16


def test_bad_options_give_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_tiny_scene_config
) -> None:
    with pytest.raises(NeroInputError, match="--roughness"):
        generate_scene(make_tiny_scene_config(tmp_path / "bad", roughness=1.5))
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(NeroInputError, match="--overwrite"):
        generate_scene(make_tiny_scene_config(tmp_path / "taken"))
    monkeypatch.setattr(sys, "argv", ["nero-synth", "--output-dir", str(tmp_path / "cli"), "--resolution", "4"])
    with pytest.raises(SystemExit) as exit_info:
        entrypoint()
    assert exit_info.value.code == 2
