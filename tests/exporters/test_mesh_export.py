"""Mesh export from an SDF: analytic SDFs (sphere, torus) stand in for a trained nero-shape model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from nerfstudio.cameras.cameras import Cameras
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs

from nero_ns.errors import NeroInputError
from nero_ns.evaluation.geometry import geometry_metrics
from nero_ns.components.marching_cubes import extract_sdf_mesh
from nero_ns.exporters.mesh_export import MeshExportOptions, export_mesh, write_mesh
from nero_ns.io.meshes import GLTF_FROM_INPUT, rotated

CPU = torch.device("cpu")


class SphereSdf(torch.nn.Module):
    """Sphere of `radius` at `center` (normalized frame), optionally with a small spurious floater."""

    def __init__(self, center=(0.0, 0.0, 0.0), radius: float = 0.5, floater: bool = False) -> None:
        super().__init__()
        self.register_buffer("center", torch.tensor(center))
        self.radius = radius
        self.floater = floater

    def query_sdf(self, positions: torch.Tensor) -> torch.Tensor:
        sdf = (positions - self.center).norm(dim=-1, keepdim=True) - self.radius
        if self.floater:
            floater = (positions - torch.tensor([0.75, 0.3, 0.0])).norm(dim=-1, keepdim=True) - 0.08
            sdf = torch.minimum(sdf, floater)
        return sdf


class TorusSdf(torch.nn.Module):
    """Off-center torus around the y axis: genus 1, no symmetry with the grid."""

    def query_sdf(self, positions: torch.Tensor) -> torch.Tensor:
        p = positions - torch.tensor([0.07, -0.05, 0.11])
        ring = torch.stack([p[..., [0, 2]].norm(dim=-1) - 0.5, p[..., 1]], dim=-1)
        return ring.norm(dim=-1, keepdim=True) - 0.2


def dataparser_outputs(transform: torch.Tensor, scale: float) -> DataparserOutputs:
    """A real DataparserOutputs carrying the given normalization (one dummy camera)."""
    camera = Cameras(camera_to_worlds=torch.eye(4)[None, :3], fx=100.0, fy=100.0, cx=50.0, cy=50.0)
    return DataparserOutputs(
        image_filenames=[Path("image.png")], cameras=camera, dataparser_transform=transform, dataparser_scale=scale
    )


IDENTITY = dataparser_outputs(torch.eye(4)[:3], 1.0)


def normalized_options(**overrides) -> MeshExportOptions:
    return MeshExportOptions(**{"resolution": 64, "block_resolution": 32, "frame": "normalized", **overrides})


def test_sphere_mesh_is_close_to_the_true_sphere_and_watertight():
    mesh = export_mesh(SphereSdf(), IDENTITY, normalized_options())
    true_sphere = trimesh.creation.icosphere(subdivisions=6, radius=0.5)
    metrics = geometry_metrics(mesh, true_sphere, num_points=50_000, threshold=0.05)
    radii = np.linalg.norm(mesh.vertices, axis=-1)
    assert mesh.is_watertight
    assert np.abs(radii - 0.5).max() < 0.002  # voxel size is 2/63 = 0.032
    assert metrics.chamfer < 0.01 and metrics.fscore == 1.0  # 0.008 is the floor of 50k samples
    assert mesh.volume == pytest.approx(4.0 / 3.0 * math.pi * 0.5**3, rel=0.01)


def test_normals_are_sdf_gradients_pointing_outward():
    center = np.array([0.1, -0.2, 0.05])
    mesh = export_mesh(SphereSdf(center=tuple(center)), IDENTITY, normalized_options())
    radial = mesh.vertices - center
    radial /= np.linalg.norm(radial, axis=-1, keepdims=True)
    cosines = np.sum(mesh.vertex_normals * radial, axis=-1)
    assert cosines.min() > math.cos(math.radians(0.1))
    assert mesh.volume > 0.0  # faces wound outward too


class TwoPiecesSdf(torch.nn.Module):
    """Two balls apart (radii 0.4 and 0.25): a thin object's strand not yet joined, not a floater."""

    def query_sdf(self, positions: torch.Tensor) -> torch.Tensor:
        first = (positions - positions.new_tensor([-0.4, 0.0, 0.0])).norm(dim=-1, keepdim=True) - 0.4
        second = (positions - positions.new_tensor([0.45, 0.0, 0.0])).norm(dim=-1, keepdim=True) - 0.25
        return torch.minimum(first, second)


def test_pieces_of_the_object_are_kept_by_default():
    model = TwoPiecesSdf()
    kept = export_mesh(model, IDENTITY, normalized_options())
    assert len(kept.split()) == 2 and kept.is_watertight
    assert len(export_mesh(model, IDENTITY, normalized_options(keep_components="largest")).split()) == 1


def test_floater_is_removed_by_component_cleaning():
    floater_sdf = SphereSdf(floater=True)
    assert len(export_mesh(floater_sdf, IDENTITY, normalized_options(keep_components="all")).split()) == 2
    assert len(export_mesh(floater_sdf, IDENTITY, normalized_options(keep_components=0.01)).split()) == 2
    assert len(export_mesh(floater_sdf, IDENTITY, normalized_options(keep_components=0.5)).split()) == 1
    largest = export_mesh(floater_sdf, IDENTITY, normalized_options())  # the floater: 3% of the sphere's faces
    assert len(largest.split()) == 1 and largest.is_watertight
    assert np.abs(np.linalg.norm(largest.vertices, axis=-1) - 0.5).max() < 0.002


def test_blocks_give_the_same_mesh_as_one_block():
    """47 cells in blocks of 8 (the last one 7 wide) vs one block: the same vertices and faces, and no cracks.

    Vertices agree to float32 rounding of the block-local coordinates (~1e-7 of a voxel), not bit for bit.
    """
    single_vertices, single_faces = extract_sdf_mesh(TorusSdf().query_sdf, 48, 47, 4096, CPU)
    blocked_vertices, blocked_faces = extract_sdf_mesh(TorusSdf().query_sdf, 48, 8, 1000, CPU)
    assert single_vertices.shape == blocked_vertices.shape
    distance, blocked_to_single = cKDTree(single_vertices).query(blocked_vertices)
    assert distance.max() < 1e-6
    assert sorted(map(tuple, np.sort(single_faces, axis=1))) == sorted(
        map(tuple, np.sort(blocked_to_single[blocked_faces], axis=1))
    )
    blocked_mesh = trimesh.Trimesh(blocked_vertices, blocked_faces, process=False)
    assert blocked_mesh.is_watertight and blocked_mesh.euler_number == 0  # one closed torus, before any cleaning


def test_input_frame_recovers_known_center_and_scale():
    """p_normalized = s (p_input + t): a sphere of radius 0.5 at the origin is radius 0.5 / s at -t in input."""
    scale, translation = 0.25, torch.tensor([-1.0, 2.0, 0.5])
    transform = torch.cat([torch.eye(3), translation[:, None]], dim=1)
    mesh = export_mesh(SphereSdf(), dataparser_outputs(transform, scale), MeshExportOptions(resolution=64))
    radial = mesh.vertices - np.array([1.0, -2.0, -0.5])
    assert np.abs(np.linalg.norm(radial, axis=-1) - 2.0).max() < 0.01
    assert np.sum(mesh.vertex_normals * radial, axis=-1).min() > 0.0
    assert mesh.is_watertight and mesh.volume > 0.0


def test_input_frame_inverts_a_rotated_transform():
    """Exported vertices and normals, mapped forward with the documented formula, match the normalized sphere."""
    angle = math.radians(30.0)
    rotation = torch.tensor(
        [[math.cos(angle), -math.sin(angle), 0.0], [math.sin(angle), math.cos(angle), 0.0], [0.0, 0.0, 1.0]]
    )
    transform = torch.cat([rotation, torch.tensor([[0.3], [-0.2], [0.1]])], dim=1)
    center = np.array([0.2, 0.1, -0.1])
    sdf = SphereSdf(center=tuple(center), radius=0.4)
    mesh = export_mesh(sdf, dataparser_outputs(transform, 0.5), MeshExportOptions(resolution=64))
    forward = transform.double().numpy()
    normalized = 0.5 * (mesh.vertices @ forward[:, :3].T + forward[:, 3])
    radial = normalized - center
    radial /= np.linalg.norm(radial, axis=-1, keepdims=True)
    assert np.abs(np.linalg.norm(normalized - center, axis=-1) - 0.4).max() < 0.002
    assert np.sum((mesh.vertex_normals @ forward[:, :3].T) * radial, axis=-1).min() > math.cos(math.radians(0.1))


def test_decimation_meets_the_face_budget():
    mesh = export_mesh(SphereSdf(), IDENTITY, normalized_options(target_faces=1000))
    assert len(mesh.faces) <= 1000
    assert mesh.is_watertight
    assert np.abs(np.linalg.norm(mesh.vertices, axis=-1) - 0.5).max() < 0.005  # vertices stay on the sphere
    assert mesh.volume == pytest.approx(4.0 / 3.0 * math.pi * 0.5**3, rel=0.02)  # 1000 facets: chord error 1%


@pytest.mark.parametrize("file_format", ["ply", "obj", "glb"])
def test_each_format_loads_back(tmp_path, file_format):
    mesh = export_mesh(SphereSdf(), IDENTITY, normalized_options(resolution=32))
    path = write_mesh(mesh, tmp_path, file_format)
    assert path == tmp_path / f"mesh.{file_format}"
    loaded = trimesh.load(path, process=False)
    if isinstance(loaded, trimesh.Scene):  # glb holds a scene of one mesh (flattening it would drop the normals)
        (loaded,) = loaded.geometry.values()
        # Stored y-up: glTF's +y is the input's +z, glTF's +z the input's -y.
        stored = loaded.vertices[loaded.faces]
        np.testing.assert_allclose(stored[..., [0, 2]] * [1, -1], mesh.vertices[mesh.faces][..., :2], atol=1e-6)
        loaded = rotated(loaded, np.linalg.inv(GLTF_FROM_INPUT))
    assert len(loaded.faces) == len(mesh.faces)
    np.testing.assert_allclose(loaded.vertices[loaded.faces], mesh.vertices[mesh.faces], atol=1e-6)
    np.testing.assert_allclose(loaded.vertex_normals[loaded.faces], mesh.vertex_normals[mesh.faces], atol=1e-4)


def test_bad_options_and_empty_sdf_give_one_line_errors():
    with pytest.raises(NeroInputError, match="--keep-components 1.5"):
        export_mesh(SphereSdf(), IDENTITY, normalized_options(keep_components=1.5))
    with pytest.raises(NeroInputError, match="no zero crossing"):
        export_mesh(SphereSdf(radius=-0.1), IDENTITY, normalized_options(resolution=16))
