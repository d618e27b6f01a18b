"""`ns-export nero-materials`: baking, glTF/OBJ round trips, per-vertex arrays, environment, frames, errors.

A stand-in model with analytic `query_sdf` (sphere), `query_materials` (smooth functions of position) and
`environment_map` (a known function of direction) plays the trained nero-material model, so every exported number
can be checked against the exact answer.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import mitsuba as mi
import numpy as np
import pytest
import torch
import trimesh
import yaml
from PIL import Image
from scipy.ndimage import binary_dilation

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs

from nero_ns.colors import linear_to_srgb
from nero_ns.errors import NeroInputError
from nero_ns.exporters.materials_export import MaterialExportOptions, check_material_options, export_materials
from nero_ns.exporters.mesh_export import MeshExportOptions
from nero_ns.exporters.nero_materials import check_material_run
from nero_ns.exporters.texture_baking import CONSERVATIVE_MARGIN, dilate, rasterize_uv, splat_texels, unwrap_uv
from nero_ns.io.latlong import latlong_directions
from nero_ns.io.meshes import GLTF_FROM_INPUT, rotated

RADIUS = 0.5
TRANSLATION = torch.tensor([0.3, -0.2, 0.1])
SCALE = 0.8
TEXTURE_SIZE = 256


class StandInMaterialModel(torch.nn.Module):
    """Sphere of RADIUS at the origin of the normalized frame, with materials and light known in closed form."""

    def query_sdf(self, points: torch.Tensor) -> torch.Tensor:
        return points.norm(dim=-1, keepdim=True) - RADIUS

    def query_materials(self, points: torch.Tensor) -> dict:
        return {
            "albedo": albedo_function(points),
            "roughness": 0.5 + 0.8 * points[..., 2:3],
            "metallic": 0.5 + 0.8 * points[..., 0:1],
        }

    def environment_map(self, height: int) -> torch.Tensor:
        directions = torch.as_tensor(latlong_directions(height, 2 * height), dtype=torch.float32)
        return environment_function(directions)


def albedo_function(points: torch.Tensor) -> torch.Tensor:
    return 0.45 + 0.4 * torch.sin(torch.stack([3.0 * points[..., 0], 2.0 * points[..., 1], 2.5 * points[..., 2]], -1))


def environment_function(directions: torch.Tensor) -> torch.Tensor:
    """Dim sky, a bright red lobe toward +x and a blue one toward +z (linear HDR)."""
    red = torch.tensor([20.0, 1.0, 0.5]) * directions[..., 0:1].clamp(min=0) ** 8
    blue = torch.tensor([0.2, 0.5, 4.0]) * directions[..., 2:3].clamp(min=0) ** 2
    return 0.3 + red + blue


def dataparser_outputs(translation: torch.Tensor, scale: float) -> DataparserOutputs:
    """A real DataparserOutputs with p_normalized = scale * (p_input + translation) (one dummy camera)."""
    camera = Cameras(camera_to_worlds=torch.eye(4)[None, :3], fx=100.0, fy=100.0, cx=50.0, cy=50.0)
    transform = torch.cat([torch.eye(3), translation[:, None]], dim=1)
    return DataparserOutputs(
        image_filenames=[Path("image.png")], cameras=camera, dataparser_transform=transform, dataparser_scale=scale
    )


def to_normalized(points: np.ndarray) -> torch.Tensor:
    return SCALE * (torch.as_tensor(points, dtype=torch.float32) + TRANSLATION)


def bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear look-up at UVs with the origin at the image's bottom-left (trimesh/OBJ convention)."""
    height, width = image.shape[:2]
    column = np.clip(uv[:, 0] * width - 0.5, 0, width - 1)
    row = np.clip((1.0 - uv[:, 1]) * height - 0.5, 0, height - 1)
    column0, row0 = np.minimum(column.astype(int), width - 2), np.minimum(row.astype(int), height - 2)
    dc, dr = (column - column0)[:, None], (row - row0)[:, None]
    image = image.reshape(height, width, -1).astype(np.float64)
    top = image[row0, column0] * (1 - dc) + image[row0, column0 + 1] * dc
    bottom = image[row0 + 1, column0] * (1 - dc) + image[row0 + 1, column0 + 1] * dc
    return top * (1 - dr) + bottom * dr


def random_surface_samples(mesh: trimesh.Trimesh, count: int, seed: int = 0):
    """Random points on random faces: their 3D positions and UVs (same barycentrics)."""
    rng = np.random.default_rng(seed)
    faces = rng.integers(0, len(mesh.faces), count)
    barycentric = rng.dirichlet(np.ones(3), count)
    corners = mesh.faces[faces]
    points = (barycentric[:, :, None] * mesh.vertices[corners]).sum(axis=1)
    uvs = (barycentric[:, :, None] * mesh.visual.uv[corners]).sum(axis=1)
    return points, uvs


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("nero_materials")
    export_materials(
        StandInMaterialModel(),
        dataparser_outputs(TRANSLATION, SCALE),
        MeshExportOptions(resolution=64, target_faces=6000),
        MaterialExportOptions(texture_size=TEXTURE_SIZE, texture_padding=4, envmap_height=32),
        output_dir,
    )
    return output_dir


@pytest.fixture(scope="module")
def glb(exported) -> trimesh.Trimesh:
    return load_glb(exported / "model.glb")


def load_glb(path: Path) -> trimesh.Trimesh:
    """The one mesh of a .glb (`force="mesh"` would drop its normals), turned from glTF's y-up back to the input
    frame as glTF importers do (Blender's: glTF +y becomes +z)."""
    scene = trimesh.load(path)
    (mesh,) = scene.geometry.values()
    assert np.allclose(scene.graph[scene.graph.nodes_geometry[0]][0], np.eye(4))
    return rotated(mesh, np.linalg.inv(GLTF_FROM_INPUT))


def test_baked_textures_reproduce_the_materials_at_random_surface_points(glb):
    points, uvs = random_surface_samples(glb, 5000)
    expected = StandInMaterialModel().query_materials(to_normalized(points))
    material = glb.visual.material
    albedo_srgb = bilinear(np.asarray(material.baseColorTexture.convert("RGB")) / 255.0, uvs)
    albedo_error = np.abs(albedo_srgb - linear_to_srgb(expected["albedo"]).numpy())
    packed = bilinear(np.asarray(material.metallicRoughnessTexture.convert("RGB")) / 255.0, uvs)
    roughness_error = np.abs(packed[:, 1] - expected["roughness"][:, 0].numpy())
    metallic_error = np.abs(packed[:, 2] - expected["metallic"][:, 0].numpy())
    print(f"albedo sRGB error mean {albedo_error.mean() * 255:.2f}/255 max {albedo_error.max() * 255:.2f}/255; "
          f"roughness max {roughness_error.max() * 255:.2f}/255, metallic max {metallic_error.max() * 255:.2f}/255")
    # 8-bit rounding (0.5/255) plus bilinear interpolation over a texel of ~0.01 normalized units (measured:
    # albedo mean 0.17/255, max 0.64/255; roughness and metallic max 0.5/255).
    assert albedo_error.mean() < 0.5 / 255 and albedo_error.max() < 1.5 / 255
    assert roughness_error.max() < 1.0 / 255 and metallic_error.max() < 1.0 / 255
    np.testing.assert_array_equal(packed[:, 0], 1.0)


def test_glb_round_trips_with_its_pbr_material_uvs_and_normals(exported, glb):
    material = glb.visual.material
    assert isinstance(material, trimesh.visual.material.PBRMaterial)
    assert material.baseColorTexture.size == (TEXTURE_SIZE, TEXTURE_SIZE)
    assert material.metallicRoughnessTexture.size == (TEXTURE_SIZE, TEXTURE_SIZE)
    assert material.metallicFactor == 1.0 and material.roughnessFactor == 1.0
    np.testing.assert_array_equal(np.asarray(material.baseColorTexture.convert("RGB")),
                                  np.asarray(Image.open(exported / "albedo.png")))
    ply = trimesh.load(exported / "mesh.ply", process=False)
    assert len(glb.vertices) >= len(ply.vertices) and len(glb.faces) == len(ply.faces)
    assert glb.visual.uv.shape == (len(glb.vertices), 2) and 0.0 <= glb.visual.uv.min() <= glb.visual.uv.max() <= 1.0
    # Normals stored in the file are the sphere's outward normals (the SDF gradient), in the input frame.
    normals = glb.vertex_normals
    radial = glb.vertices + TRANSLATION.numpy()
    radial /= np.linalg.norm(radial, axis=-1, keepdims=True)
    assert np.einsum("ij,ij->i", normals, radial).min() > 0.999


def test_obj_and_mtl_load_back_with_the_same_vertices_and_textures(exported, glb):
    obj = trimesh.load(exported / "model.obj", force="mesh", process=False)
    assert len(obj.vertices) == len(glb.vertices) and len(obj.faces) == len(glb.faces)
    np.testing.assert_allclose(obj.vertices, glb.vertices, atol=1e-6)
    np.testing.assert_allclose(obj.visual.uv, glb.visual.uv, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(obj.visual.material.image.convert("RGB")),
                                  np.asarray(Image.open(exported / "albedo.png")))
    mtl = dict(line.split(" ", 1) for line in (exported / "model.mtl").read_text().splitlines() if line)
    assert (mtl["map_Kd"], mtl["map_Pr"], mtl["map_Pm"]) == ("albedo.png", "roughness.png", "metallic.png")
    roughness = np.asarray(Image.open(exported / "roughness.png"))
    packed = np.asarray(Image.open(exported / "metallic_roughness.png"))
    np.testing.assert_array_equal(roughness, packed[..., 1])
    np.testing.assert_array_equal(np.asarray(Image.open(exported / "metallic.png")), packed[..., 2])
    assert 0.3 < float(mtl["Pr"]) < 0.7 and 0.3 < float(mtl["Pm"]) < 0.7


def test_per_vertex_arrays_match_queries_at_the_ply_vertices(exported):
    ply = trimesh.load(exported / "mesh.ply", process=False)
    albedo, roughness, metallic = (np.load(exported / f"{name}.npy") for name in ("albedo", "roughness", "metallic"))
    assert albedo.shape == (len(ply.vertices), 3) and roughness.shape == metallic.shape == (len(ply.vertices),)
    expected = StandInMaterialModel().query_materials(to_normalized(ply.vertices))
    np.testing.assert_allclose(albedo, expected["albedo"].numpy(), atol=1e-5)
    np.testing.assert_allclose(roughness, expected["roughness"][:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(metallic, expected["metallic"][:, 0].numpy(), atol=1e-5)
    colors = ply.visual.vertex_colors[:, :3] / 255.0
    assert np.abs(colors - linear_to_srgb(albedo)).max() <= 0.5 / 255 + 1e-6


def test_input_frame_recovers_the_known_center_and_scale(exported, glb, tmp_path):
    for mesh in (trimesh.load(exported / "mesh.ply", process=False), glb):
        # Least-squares sphere: |p|^2 = 2 c.p + (r^2 - |c|^2).
        system = np.concatenate([2.0 * mesh.vertices, np.ones((len(mesh.vertices), 1))], axis=1)
        solution = np.linalg.lstsq(system, (mesh.vertices**2).sum(axis=1), rcond=None)[0]
        center, radius = solution[:3], np.sqrt(solution[3] + solution[:3] @ solution[:3])
        np.testing.assert_allclose(center, -TRANSLATION.numpy(), atol=1e-3)
        assert abs(radius - RADIUS / SCALE) < 0.005
    export_materials(
        StandInMaterialModel(), dataparser_outputs(TRANSLATION, SCALE),
        MeshExportOptions(resolution=32, frame="normalized"), MaterialExportOptions(texture_size=64, envmap_height=8),
        tmp_path,
    )
    normalized = load_glb(tmp_path / "model.glb")
    assert np.abs(np.linalg.norm(normalized.vertices, axis=-1) - RADIUS).max() < 0.01
    assert json.loads((tmp_path / "materials.json").read_text())["frame"].startswith("normalized")


def test_environment_reads_back_with_the_right_shape_and_values(exported):
    expected = StandInMaterialModel().environment_map(32).numpy()
    mi.set_variant("scalar_rgb")
    read_by_mitsuba = np.array(mi.Bitmap(str(exported / "environment.hdr")))
    read_by_imageio = iio.imread(exported / "environment.hdr", plugin="opencv", flags=-1)
    for radiance in (read_by_mitsuba, read_by_imageio):
        assert radiance.shape == (32, 64, 3)
        # RGBE shares one 8-bit-mantissa exponent per pixel: error below 1/128 of the pixel's largest channel.
        assert (np.abs(radiance - expected) <= expected.max(axis=-1, keepdims=True) / 128).all()
    # The +x lobe sits at the equator row, phi = pi/2 (a quarter of the width), and is red.
    brightest = np.unravel_index(read_by_mitsuba[..., 0].argmax(), (32, 64))
    assert abs(brightest[0] - 15.5) <= 0.5 and abs(brightest[1] - 15.5) <= 0.5
    preview = np.asarray(Image.open(exported / "environment.png"))
    assert preview.shape == (32, 64, 3) and preview[brightest][0] > 240
    description = json.loads((exported / "materials.json").read_text())
    assert "theta=arccos(z)" in description["environment"]["convention"]
    assert description["frame"].startswith("input") and set(description["files"]) == {
        path.name for path in exported.iterdir()
    }
    assert "environment.hdr" in (exported / "README.txt").read_text()


def test_rasterized_texels_sample_their_own_center_or_the_nearest_border():
    sphere = trimesh.creation.uv_sphere(radius=0.5, count=[16, 16])
    atlas = unwrap_uv(sphere.vertices, sphere.faces, texture_size=128, padding=3)
    samples = rasterize_uv(atlas.uvs, atlas.faces, 128)
    uv_corners = atlas.uvs[atlas.faces[samples.face_index.numpy()]]
    sample_uv = (samples.barycentric.numpy()[:, :, None] * uv_corners).sum(axis=1)
    rows, columns = np.divmod(samples.texel_index.numpy(), 128)
    center_uv = np.stack([(columns + 0.5) / 128, 1.0 - (rows + 0.5) / 128], axis=-1)
    offset_in_texels = np.linalg.norm((sample_uv - center_uv) * 128, axis=-1)
    assert offset_in_texels.max() <= CONSERVATIVE_MARGIN + 1e-6
    # Brute force: the texels whose center lies inside some UV triangle are exactly those sampled at their center.
    all_rows, all_columns = np.divmod(np.arange(128 * 128), 128)
    centers = np.stack([(all_columns + 0.5) / 128, 1.0 - (all_rows + 0.5) / 128], axis=-1)
    a, b, c = (atlas.uvs[atlas.faces[:, i]][:, None] for i in range(3))
    cross = lambda u, v: u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]  # noqa: E731
    signs = np.stack([cross(b - a, centers - a), cross(c - b, centers - b), cross(a - c, centers - c)])
    inside = ((signs >= -1e-12).all(axis=0) | (signs <= 1e-12).all(axis=0)).any(axis=0)
    at_center = np.zeros(128 * 128, dtype=bool)
    at_center[samples.texel_index.numpy()[offset_in_texels < 1e-4]] = True
    np.testing.assert_array_equal(at_center, inside)
    print(f"{inside.sum()} texels inside triangles, {len(offset_in_texels) - inside.sum()} conservative border texels")
    assert (samples.barycentric >= 0).all() and torch.allclose(samples.barycentric.sum(-1), torch.ones(1))


def test_padding_fills_a_ring_of_texels_around_each_chart():
    sphere = trimesh.creation.uv_sphere(radius=0.5, count=[16, 16])
    atlas = unwrap_uv(sphere.vertices, sphere.faces, texture_size=128, padding=6)
    samples = rasterize_uv(atlas.uvs, atlas.faces, 128)
    values = torch.rand(samples.texel_index.shape[0], 2, dtype=torch.float64) + 1.0
    image, covered = splat_texels(values, samples, 128, background=-5.0)
    padded, filled = dilate(image, covered, num_texels=3)
    ring = binary_dilation(covered.numpy(), structure=np.ones((3, 3)), iterations=3)
    np.testing.assert_array_equal(filled.numpy(), ring)
    assert (padded[~filled] == -5.0).all() and torch.equal(padded[covered], image[covered])
    assert (padded[filled] >= 1.0).all() and (padded[filled] <= 2.0).all()  # means of chart values
    # Each texel of the first ring is the mean of its covered 8-neighbours.
    first_ring = binary_dilation(covered.numpy(), structure=np.ones((3, 3))) & ~covered.numpy()
    for row, column in zip(*np.nonzero(first_ring[1:-1, 1:-1])):
        window = (slice(row, row + 3), slice(column, column + 3))
        expected = image[window][covered[window]].mean(dim=0)
        torch.testing.assert_close(padded[row + 1, column + 1], expected)


def test_bad_options_give_one_line_errors():
    for options, message in [
        (MaterialExportOptions(texture_size=4), "--texture-size 4: use at least 8"),
        (MaterialExportOptions(texture_padding=-1), "--texture-padding -1: use 0 to 255"),
        (MaterialExportOptions(texture_size=64, texture_padding=16), "--texture-padding 16: use 0 to 15"),
        (MaterialExportOptions(envmap_height=1), "--envmap-height 1: use at least 2"),
    ]:
        with pytest.raises(NeroInputError, match=message):
            check_material_options(options)


def test_bad_runs_give_one_line_errors(tmp_path):
    from nero_ns.method_configs import nero_material, nero_shape

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


def ns_export(*args: str) -> subprocess.CompletedProcess:
    """Run nerfstudio's installed `ns-export` console script."""
    script = shutil.which("ns-export", path=str(Path(sys.executable).parent)) or shutil.which("ns-export")
    assert script is not None, "nerfstudio's ns-export console script is not installed"
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=300)


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
    from nerfstudio.utils.eval_utils import eval_setup

    from nero_ns.exporters.nero_materials import ExportNeroMaterials
    from test_nero_material import material_config
    from test_stage_one_loading import write_stage_one_run

    # Stage I as `ns-train nero-shape` writes it (untrained: the sphere |x| = 0.5), then a Stage II checkpoint.
    config = material_config(tiny_scene, write_stage_one_run(tiny_scene, tmp_path / "shape"), tmp_path / "material", 1)
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
    assert (normalized.norm(dim=-1) - 0.5).abs().max() < 0.02  # the untrained Stage I sphere, back in input frame
    expected = model.query_materials(normalized)
    np.testing.assert_allclose(np.load(output_dir / "albedo.npy"), expected["albedo"].numpy(), atol=1e-5)
    np.testing.assert_allclose(np.load(output_dir / "roughness.npy"), expected["roughness"][:, 0].numpy(), atol=1e-5)
    environment = model.environment_map(16).numpy()
    mi.set_variant("scalar_rgb")
    read_back = np.array(mi.Bitmap(str(output_dir / "environment.hdr")))
    assert (np.abs(read_back - environment) <= environment.max(axis=-1, keepdims=True) / 128).all()
    glb = load_glb(output_dir / "model.glb")
    assert glb.visual.material.baseColorTexture.size == (128, 128) and len(glb.faces) == len(ply.faces)
