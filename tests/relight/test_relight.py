"""nero-relight: reproduces the generator's GT relighting, per-vertex materials, cameras, envmap rotation, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import mitsuba as mi
import numpy as np
import pytest
import trimesh

from nero_ns.errors import NeroInputError
from nero_ns.relight import MaterialAssets, load_exported_assets, load_gt_assets, orbit_camera_path, relight
from nero_ns.relight.cameras import RelightCamera, read_transforms_cameras
from nero_ns.relight.cli import RelightConfig
from nero_ns.relight.environment import to_blender_latlong
from nero_ns.relight.renderer import Lighting, render_views, scene_description
from nero_ns.relight.assets import write_attribute_ply
from nero_ns.synthetic.cameras import look_at_c2w
from nero_ns.io.hdr import write_exr
from nero_ns.io.latlong import latlong_directions, load_environment


def psnr(first: np.ndarray, second: np.ndarray) -> float:
    return float(-10.0 * np.log10(max(np.mean((first - second) ** 2), 1e-12)))


def generator_relight_seeds(scene: Path, count: int) -> list[int]:
    """The generator seeds render i of all its jobs (train, test, relight views) with seed * 1_000_003 + i."""
    materials = json.loads((scene / "gt" / "materials.json").read_text())
    num_train = len(json.loads((scene / "transforms.json").read_text())["frames"])
    first = num_train + count  # the test views come before the relight views
    return [(materials["seed"] * 1_000_003 + first + index) % 2**32 for index in range(count)]


def test_relit_gt_reproduces_generator_relight_images(tiny_scene: Path, tmp_path: Path) -> None:
    """GT mesh + GT constants under env_relight.exr from gt/relight cameras, same variant/spp/seeds as the
    generator: the generator's gt/relight PNGs come out again (conventions of envmap, cameras, BSDF all match).
    A 90-degree environment rotation scores far lower, so the comparison is sensitive to the convention."""
    gt = tiny_scene / "gt"
    materials = json.loads((gt / "materials.json").read_text())
    cameras = read_transforms_cameras(gt / "relight" / "transforms.json")
    seeds = generator_relight_seeds(tiny_scene, len(cameras))
    options = dict(spp=materials["spp"], seeds=seeds, variant=materials["mitsuba_variant"])
    result = relight(load_gt_assets(gt), gt / "env_relight.exr", cameras, tmp_path / "relit", **options)
    rotated = relight(load_gt_assets(gt), gt / "env_relight.exr", cameras, tmp_path / "rotated", rotation_deg=90.0,
                      **options)
    for camera, path, rotated_path in zip(cameras, result.image_paths, rotated.image_paths):
        reference = iio.imread(gt / "relight" / "images" / camera.name) / 255.0
        assert psnr(iio.imread(path) / 255.0, reference) >= 35.0
        assert psnr(iio.imread(rotated_path) / 255.0, reference) < 25.0

    # The written scene XML renders the first view exactly as we did.
    from_xml = np.array(mi.render(mi.load_file(str(result.scene_xml)), seed=seeds[0], spp=materials["spp"]))
    np.testing.assert_allclose(from_xml, result.images[0], atol=1e-6)
    written = json.loads((tmp_path / "relit" / "transforms.json").read_text())
    assert [frame["file_path"] for frame in written["frames"]] == [f"images/{c.name}" for c in cameras]


def test_per_vertex_materials_render_like_constants(tiny_scene: Path, tmp_path: Path) -> None:
    """mesh_attribute textures read the PLY attributes we write: constant arrays == constant values."""
    gt_assets = load_gt_assets(tiny_scene / "gt")
    count = len(gt_assets.mesh.vertices)
    arrays = MaterialAssets(
        gt_assets.mesh, np.tile(gt_assets.albedo, (count, 1)), np.full(count, gt_assets.roughness),
        np.full(count, gt_assets.metallic),
    )
    camera = read_transforms_cameras(tiny_scene / "gt" / "relight")[0].resized(24)
    lighting = Lighting(tiny_scene / "gt" / "env_relight.exr")
    mi.set_variant(json.loads((tiny_scene / "gt" / "materials.json").read_text())["mitsuba_variant"])
    images = []
    for name, assets in (("constant", gt_assets), ("arrays", arrays)):
        write_attribute_ply(tmp_path / name / "mesh.ply", assets)
        description = scene_description(assets, tmp_path / name / "mesh.ply", lighting, transparent=False)
        images.append(render_views(description, [camera], 8, [5], transparent=False)[0])
    np.testing.assert_allclose(images[0], images[1], atol=1e-5)


def test_orbit_cameras_look_at_the_object(tmp_path: Path) -> None:
    """Every orbit camera looks along the line to the center, at the set distance and elevation; a transparent
    render from the CLI covers the image center and the frame is fully inside the picture."""
    center, radius = np.array([0.4, -0.3, 0.2]), 0.5
    cameras = orbit_camera_path(8, center, radius, resolution=32, fov_x_deg=40.0, elevation_deg=20.0)
    for camera in cameras:
        eye, forward = camera.c2w[:3, 3], -camera.c2w[:3, 2]
        to_center = (center - eye) / np.linalg.norm(center - eye)
        assert forward @ to_center == pytest.approx(1.0, abs=1e-9)
        assert np.degrees(np.arcsin(-to_center[2])) == pytest.approx(20.0, abs=1e-6)
    distances = [np.linalg.norm(camera.c2w[:3, 3] - center) for camera in cameras]
    assert np.ptp(distances) < 1e-9

    folder = tmp_path / "assets"
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    sphere.apply_translation(center)
    folder.mkdir()
    sphere.export(folder / "mesh.ply")
    count = len(sphere.vertices)
    np.save(folder / "albedo.npy", np.full((count, 3), 0.8, dtype=np.float32))
    np.save(folder / "roughness.npy", np.full(count, 0.5, dtype=np.float32))
    np.save(folder / "metallic.npy", np.zeros(count, dtype=np.float32))
    envmap = tmp_path / "sky.png"
    iio.imwrite(envmap, np.full((8, 16, 3), 200, dtype=np.uint8))
    config = RelightConfig(
        envmap=envmap, output_dir=tmp_path / "orbit", assets=folder, orbit=4, resolution=24, spp=4, transparent=True
    )
    result = config.main()
    for path in result.image_paths:
        image = iio.imread(path)
        assert image.shape == (24, 24, 4)
        assert image[12, 12, 3] == 255 and image[0, 0, 3] == 0 and image[-1, -1, 3] == 0
    assert result.video is None or result.video.stat().st_size > 0
    bundle = result.blender_dir
    assert len(trimesh.load(bundle / "model.glb", force="mesh").vertices) == count
    assert "Environment Texture" in (bundle / "README.txt").read_text()


def lobe_environment(direction: np.ndarray, height: int = 32) -> np.ndarray:
    """A dim sky with a bright lobe around `direction`."""
    directions = latlong_directions(height, 2 * height)
    lobe = np.exp((directions @ direction - 1.0) / 0.05)
    return (0.02 + 20.0 * lobe[..., None] * np.ones(3)).astype(np.float32)


def test_environment_rotation_moves_the_lit_side(tmp_path: Path) -> None:
    """A lobe at +x lights the side of a diffuse sphere seen from +x; rotated by +90 degrees it lights +y."""
    mi.set_variant("scalar_rgb")
    write_exr(tmp_path / "lobe.exr", lobe_environment(np.array([1.0, 0.0, 0.0])))
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    assets = MaterialAssets(sphere, (0.8, 0.8, 0.8), 1.0, 0.0)
    write_attribute_ply(tmp_path / "mesh.ply", assets)
    cameras = [
        RelightCamera(name, look_at_c2w(4.0 * np.asarray(axis, float), np.zeros(3)), 16, 16, 30.0, 30.0, 8.0, 8.0)
        for name, axis in (("x", [1, 0, 0]), ("y", [0, 1, 0]))
    ]
    brightness = {}
    for rotation in (0.0, 90.0):
        lighting = Lighting(tmp_path / "lobe.exr", rotation_deg=rotation)
        description = scene_description(assets, tmp_path / "mesh.ply", lighting, transparent=True)
        views = render_views(description, cameras, 16, [0, 1], transparent=True)
        brightness[rotation] = [float(view[6:10, 6:10, :3].mean()) for view in views]
    assert brightness[0.0][0] > 3.0 * brightness[0.0][1]
    assert brightness[90.0][1] > 3.0 * brightness[90.0][0]


def test_blender_environment_puts_directions_where_blender_reads_them() -> None:
    """Blender's equirect u = atan2(y, -x) / 2pi + 0.5: a lobe at +y lands at u = 0.75; rotated by +90 degrees it
    sits at -x, u = 0.5."""
    environment = lobe_environment(np.array([0.0, 1.0, 0.0]))
    for rotation, expected_u in ((0.0, 0.75), (90.0, 0.5)):
        blender = to_blender_latlong(environment, rotation, 2.0).mean(-1)
        row, column = np.unravel_index(np.argmax(blender), blender.shape)
        u = (column + 0.5) / blender.shape[1]
        assert min(abs(u - expected_u), 1.0 - abs(u - expected_u)) < 0.05
        assert abs((row + 0.5) / blender.shape[0] - 0.5) < 0.05
    assert to_blender_latlong(environment, 0.0, 2.0).max() == pytest.approx(2.0 * environment.max(), rel=0.05)


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(NeroInputError, match="missing.exr: environment map not found"):
        load_environment(tmp_path / "missing.exr")
    garbage = tmp_path / "garbage.exr"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(NeroInputError, match="garbage.exr: cannot read it as an image"):
        load_environment(garbage)
    with pytest.raises(NeroInputError, match="cameras file not found"):
        read_transforms_cameras(tmp_path / "nowhere" / "transforms.json")
    with pytest.raises(NeroInputError, match="no mesh.ply"):
        load_exported_assets(tmp_path)
    trimesh.creation.box().export(tmp_path / "mesh.ply")
    for name in ("albedo", "roughness", "metallic"):
        np.save(tmp_path / f"{name}.npy", np.zeros((3, 3) if name == "albedo" else 3))
    with pytest.raises(NeroInputError, match="albedo.npy: shape"):
        load_exported_assets(tmp_path)
    missing_envmap = RelightConfig(envmap=tmp_path / "sky.hdr", output_dir=tmp_path / "out", assets=tmp_path, orbit=2)
    with pytest.raises(NeroInputError, match="sky.hdr: environment map not found"):
        missing_envmap.main()
