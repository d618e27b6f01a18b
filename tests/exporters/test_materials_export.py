"""Material export: baked textures, glTF/OBJ round trips, per-vertex arrays, environment, frames, option errors.

A stand-in model with analytic `query_sdf` (sphere), `query_materials` (smooth functions of position) and
`environment_map` (a known function of direction) plays the trained nero-material model, so every exported number
can be checked against the exact answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import mitsuba as mi
import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs

from nero_ns.colors import linear_to_srgb
from nero_ns.errors import NeroInputError
from nero_ns.exporters.materials_export import MaterialExportOptions, check_material_options, export_materials
from nero_ns.exporters.mesh_export import MeshExportOptions
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


def test_bad_options_give_one_line_errors():
    for options, message in [
        (MaterialExportOptions(texture_size=4), "--texture-size 4: use at least 8"),
        (MaterialExportOptions(texture_padding=-1), "--texture-padding -1: use 0 to 255"),
        (MaterialExportOptions(texture_size=64, texture_padding=16), "--texture-padding 16: use 0 to 15"),
        (MaterialExportOptions(envmap_height=1), "--envmap-height 1: use at least 2"),
    ]:
        with pytest.raises(NeroInputError, match=message):
            check_material_options(options)
