"""Mesh ray casting against analytic ray-sphere intersections on an icosphere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from nero_ns.components.raycast import MeshRaycaster


def ray_sphere(origins, directions, center, radius):
    """Analytic first-hit distance of unit-direction rays with a sphere (inf on a miss), and the miss distance."""
    offset = origins - center
    b = (offset * directions).sum(-1)
    c = (offset * offset).sum(-1) - radius**2
    disc = b * b - c
    t = -b - disc.clamp(min=0).sqrt()
    closest = (offset - (offset * directions).sum(-1, keepdim=True) * directions).norm(dim=-1)
    t = torch.where((disc >= 0) & (t > 0), t, torch.full_like(t, float("inf")))
    return t, closest


@pytest.fixture(scope="module")
def icosphere():
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    # Largest gap between the sphere and the faces (the tessellation error), from face-plane distances.
    gap = 1.0 - np.abs((mesh.triangles_center * mesh.face_normals).sum(-1)).min()
    return mesh, float(gap)


def test_first_hit_matches_analytic_sphere(icosphere):
    mesh, gap = icosphere
    raycaster = MeshRaycaster(mesh.vertices, mesh.faces)
    gen = torch.Generator().manual_seed(0)
    origins = torch.nn.functional.normalize(torch.randn(4000, 3, generator=gen), dim=-1) * 3.0
    targets = (torch.rand(4000, 3, generator=gen) - 0.5) * 2.4
    directions = targets - origins  # not unit: the raycaster normalizes
    t, hit, normals, points = raycaster.first_hit(origins, directions)
    unit_dirs = torch.nn.functional.normalize(directions, dim=-1)
    t_ref, closest = ray_sphere(origins, unit_dirs, torch.zeros(3), 1.0)
    clear = (closest < 1 - 2 * gap) | (closest > 1.0)  # rays not grazing the tessellated silhouette
    assert torch.equal(hit[clear], torch.isfinite(t_ref)[clear])
    both = hit & torch.isfinite(t_ref)
    cos_incidence = -(unit_dirs * torch.nn.functional.normalize(points, dim=-1)).sum(-1)
    steep = both & (cos_incidence > 0.3)
    assert steep.sum() > 1000
    assert ((t - t_ref)[steep] >= -1e-5).all() and ((t - t_ref)[steep] <= gap / cos_incidence[steep] + 1e-5).all()
    radius = points[hit].norm(dim=-1)
    assert radius.max() < 1 + 1e-5 and radius.min() > 1 - gap - 1e-5
    assert torch.allclose(points[hit], (origins + t[:, None] * unit_dirs)[hit])
    # Smooth normals are close to the sphere's; misses carry zeros.
    angle_error = torch.acos((normals[hit] * torch.nn.functional.normalize(points[hit], dim=-1)).sum(-1).clamp(max=1))
    assert angle_error.max() < 0.02
    assert torch.all(normals[~hit] == 0) and torch.all(points[~hit] == 0) and torch.all(torch.isinf(t[~hit]))


def test_flat_normals_are_face_normals_and_inputs_can_be_torch(icosphere):
    mesh, _ = icosphere
    raycaster = MeshRaycaster(torch.from_numpy(mesh.vertices), torch.from_numpy(mesh.faces), smooth_normals=False)
    origins = torch.tensor([[0.013, 0.021, 5.0], [0.3, -0.2, 5.0]], dtype=torch.float64)
    t, hit, normals, _ = raycaster.first_hit(origins, torch.tensor([0.0, 0.0, -2.0], dtype=torch.float64))
    assert hit.all() and t.dtype == torch.float64 and normals.shape == (2, 3)
    _, _, face_ids = trimesh.proximity.closest_point(mesh, (origins + t[:, None] * torch.tensor([0, 0, -1.0])).numpy())
    assert np.allclose(normals.numpy(), mesh.face_normals[face_ids], atol=1e-5)


def test_occlusion_under_sphere_above_plane_matches_analytic(icosphere):
    sphere, gap = icosphere
    center, radius = torch.tensor([0.0, 0.0, 1.5]), 0.5
    sphere_vertices = sphere.vertices * radius + center.numpy()
    plane_vertices = np.array([[-5, -5, 0], [5, -5, 0], [5, 5, 0], [-5, 5, 0]], dtype=np.float64)
    vertices = np.concatenate([sphere_vertices, plane_vertices])
    faces = np.concatenate([sphere.faces, np.array([[0, 1, 2], [0, 2, 3]]) + len(sphere_vertices)])
    raycaster = MeshRaycaster(vertices, faces)
    gen = torch.Generator().manual_seed(1)
    points = torch.cat([(torch.rand(20000, 2, generator=gen) - 0.5) * 3.0, torch.zeros(20000, 1)], dim=-1)
    directions = torch.nn.functional.normalize(torch.randn(20000, 3, generator=gen), dim=-1)
    directions[:, 2] = directions[:, 2].abs()  # upper hemisphere of the plane: rays start ON the plane
    blocked = raycaster.occluded(points[:, None, :], directions[:, None, :])
    assert blocked.shape == (20000, 1)
    t_ref, closest = ray_sphere(points, directions, center, radius)
    clear = (closest < radius * (1 - 2 * gap)) | (closest > radius)
    assert torch.equal(blocked[:, 0][clear], torch.isfinite(t_ref)[clear])
    assert 0.02 < torch.isfinite(t_ref).float().mean() < 0.5
    # t_max: rays toward the sphere are not blocked when they stop before reaching it.
    toward = torch.isfinite(t_ref) & clear
    assert not raycaster.occluded(points[toward], directions[toward], t_max=0.9).any()


def test_hit_distance_from_a_surface_point_skips_its_own_triangle(icosphere):
    """From points on the sphere, rays across it meet the far side at the chord length; outward rays miss."""
    mesh, gap = icosphere
    raycaster = MeshRaycaster(torch.from_numpy(mesh.vertices), torch.from_numpy(mesh.faces))
    gen = torch.Generator().manual_seed(2)
    starts = torch.from_numpy(mesh.vertices[:200]).float()
    inward = torch.nn.functional.normalize(-starts + 0.3 * torch.randn(200, 3, generator=gen), dim=-1)
    chord = -2.0 * (starts * inward).sum(dim=-1)  # unit sphere: |s + t d| = 1 again at t = -2 s.d
    distance = raycaster.hit_distance(starts, inward)
    assert torch.allclose(distance, chord, atol=4 * gap)
    assert raycaster.hit_distance(starts, starts).isinf().all()
