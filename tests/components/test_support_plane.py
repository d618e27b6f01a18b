"""The support plane: found in sparse points (the floor under the object, nothing where there is no floor), rays
meeting it, and the SDF cut at it or joined with the solid below it."""

from __future__ import annotations

import math

import torch
import trimesh

from nero_ns.components.support_plane import SupportPlane, find_support_plane
from nero_ns.components.marching_cubes import extract_sdf_mesh

FLOOR = torch.tensor([0.0, 0.0, 1.0, 1.0])  # z = -1, normal up


def plane_at(plane: torch.Tensor) -> SupportPlane:
    support = SupportPlane()
    support.set_plane(plane)
    return support


def floor_points(height: float, count: int = 600, seed: int = 0) -> torch.Tensor:
    """Points of the horizontal plane z = height between radius 1.2 and 4, as COLMAP finds on a floor."""
    generator = torch.Generator().manual_seed(seed)
    angle = 2 * torch.pi * torch.rand(count, generator=generator)
    radius = 1.2 + 2.8 * torch.rand(count, generator=generator)
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle), torch.full((count,), height)], -1)


def scattered_points(count: int, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 6.0 * torch.rand(count, 3, generator=generator) - 3.0


def test_finds_the_floor_under_the_object_among_outliers() -> None:
    object_points = torch.nn.functional.normalize(scattered_points(300, seed=2), dim=-1) * 0.8
    points = torch.cat([floor_points(-0.7), scattered_points(150), object_points])
    plane = find_support_plane(points)
    assert plane is not None
    assert torch.allclose(plane, torch.tensor([0.0, 0.0, 1.0, 0.7]), atol=0.01)


def test_no_plane_in_scattered_points_or_through_the_object() -> None:
    assert find_support_plane(scattered_points(600)) is None
    assert find_support_plane(floor_points(-0.05)) is None  # through the middle of the sphere
    radii = 0.8 * torch.rand(400, 1, generator=torch.Generator().manual_seed(4)) ** (1 / 3)
    ball = torch.nn.functional.normalize(scattered_points(400, seed=2), dim=-1) * radii  # a solid ball of radius 0.8
    assert find_support_plane(torch.cat([floor_points(-0.4), ball])) is None  # a quarter of the object below it
    assert find_support_plane(floor_points(-0.7, count=20)) is None  # too few points to tell


def test_finds_the_floor_of_a_flat_object_near_the_center() -> None:
    """A flat object (a disc 0.25 high) lying on the floor puts its floor close to the sphere's center."""
    generator = torch.Generator().manual_seed(3)
    disc = torch.nn.functional.normalize(torch.randn(400, 2, generator=generator), dim=-1) * 0.8
    flat_object = torch.cat([disc, -0.26 + 0.25 * torch.rand(400, 1, generator=generator)], dim=-1)
    plane = find_support_plane(torch.cat([floor_points(-0.27), scattered_points(150), flat_object]))
    assert plane is not None
    assert torch.allclose(plane, torch.tensor([0.0, 0.0, 1.0, 0.27]), atol=0.01)


def test_rays_meet_the_plane_only_going_down_from_above() -> None:
    support = plane_at(FLOOR)
    origins = torch.tensor([[1.5, 0.0, 0.0], [1.5, 0.0, 0.0], [0.0, 0.0, -2.0], [0.0, 0.0, 0.0]])
    directions = torch.nn.functional.normalize(
        torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, -1.0]]), dim=-1
    )
    hits, points, distances = support.intersect(origins, directions)
    assert hits.tolist() == [True, False, False, True]
    assert torch.allclose(distances[[0, 3]], torch.tensor([1.0, 2**0.5])) and distances[[1, 2]].isinf().all()
    assert torch.allclose(points[0], torch.tensor([1.5, 0.0, -1.0]), atol=1e-6)
    assert torch.allclose(points[3], torch.tensor([1.0, 0.0, -1.0]), atol=1e-6)
    assert not SupportPlane().intersect(origins, directions)[0].any()  # no plane: nothing is floor


def test_clipped_sdf_gives_a_watertight_mesh_standing_on_the_floor() -> None:
    """A sphere sunk into the floor (center 0.2 above it, radius 0.5): the clipped SDF's mesh stops at the floor
    with a flat, closed base whose area is the analytic disc."""
    support = plane_at(torch.tensor([0.0, 0.0, 1.0, 0.2]))

    def sunk_sphere(positions: torch.Tensor) -> torch.Tensor:
        return support.clip_sdf(positions, positions.norm(dim=-1, keepdim=True) - 0.5)

    vertices, faces = extract_sdf_mesh(
        sunk_sphere, 96, block_resolution=48, chunk_size=65536, device=torch.device("cpu")
    )
    mesh = trimesh.Trimesh(vertices, faces)
    assert mesh.is_watertight
    assert abs(float(vertices[:, 2].min()) + 0.2) < 0.01
    base = mesh.area_faces[mesh.face_normals[:, 2] < -0.99].sum()
    assert abs(base - math.pi * (0.5**2 - 0.2**2)) < 0.03


def test_scene_sdf_joins_the_floor_to_the_object() -> None:
    """A sphere floating 0.3 above the floor: the joined SDF is the distance to the nearer of the two, negative
    below the floor, and unchanged without a plane."""
    support = plane_at(FLOOR)
    positions = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, -0.65], [0.0, 0.0, -0.9], [2.0, 0.0, -1.5]])
    sphere = positions.norm(dim=-1, keepdim=True) - 0.2
    joined = support.with_floor(positions, sphere)[:, 0]
    assert torch.allclose(joined, torch.tensor([-0.2, 0.35, 0.1, -0.5]), atol=1e-6)
    assert torch.equal(SupportPlane().with_floor(positions, sphere), sphere)
