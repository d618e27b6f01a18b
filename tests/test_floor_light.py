"""Floor light: rays meet the plane where they should, the sky visibility under a sphere is the analytic one, and
the texture learns a floor it is shown."""

from __future__ import annotations

import math

import torch
import trimesh

from nero_ns.components.raycast import MeshRaycaster
from nero_ns.exporters.marching_cubes import extract_sdf_mesh
from nero_ns.fields.floor_light import FloorLight, FloorLightConfig

FLOOR = torch.tensor([0.0, 0.0, 1.0, 1.0])  # z = -1, normal up
SPHERE_RADIUS = 0.5


def floor_light(**options) -> FloorLight:
    light = FloorLightConfig(**options).setup()
    light.set_plane(FLOOR)
    return light


def test_rays_meet_the_plane_only_going_down_from_above() -> None:
    light = floor_light()
    origins = torch.tensor([[1.5, 0.0, 0.0], [1.5, 0.0, 0.0], [0.0, 0.0, -2.0], [0.0, 0.0, 0.0]])
    directions = torch.nn.functional.normalize(
        torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, -1.0]]), dim=-1
    )
    hits, points, distances = light.intersect(origins, directions)
    assert hits.tolist() == [True, False, False, True]
    assert torch.allclose(distances[[0, 3]], torch.tensor([1.0, 2**0.5])) and distances[[1, 2]].isinf().all()
    assert torch.allclose(points[0], torch.tensor([1.5, 0.0, -1.0]), atol=1e-6)
    assert torch.allclose(points[3], torch.tensor([1.0, 0.0, -1.0]), atol=1e-6)
    assert light.within_texture(points[[0]]).item() and not light.within_texture(torch.tensor([[3.5, 0, -1.0]])).item()
    assert not FloorLightConfig().setup().intersect(origins, directions)[0].any()  # no plane: nothing is floor


def test_sky_visibility_under_a_sphere_is_the_analytic_one() -> None:
    """Seen from a floor point at distance D from the center, the sphere is a cap of half-angle asin(r / D) whose
    axis is at angle beta from the floor normal; it hides sin^2(asin(r / D)) cos(beta) of the cosine-weighted sky."""
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=SPHERE_RADIUS)
    light = floor_light(init_radiance=1.0, visibility_samples=1024)
    light.compute_sky_visibility(MeshRaycaster(torch.as_tensor(sphere.vertices), torch.as_tensor(sphere.faces)))
    distances = torch.tensor([0.0, 0.4, 1.0, 2.0])
    points = torch.stack([distances, torch.zeros(4), torch.full((4,), -1.0)], dim=-1)
    center_distance = torch.sqrt(distances**2 + 1.0)
    expected = 1.0 - (SPHERE_RADIUS / center_distance) ** 2 / center_distance
    radiance = light(points)
    assert torch.allclose(radiance[:, 0], expected, atol=0.03), (radiance[:, 0], expected)
    assert torch.allclose(radiance[:, 0], radiance[:, 2])  # grey: visibility scales every channel alike


def test_texture_learns_the_floor_it_is_shown() -> None:
    light = floor_light()
    generator = torch.Generator().manual_seed(0)
    half_size = light.config.half_size
    points = torch.cat([half_size * (2 * torch.rand(4096, 2, generator=generator) - 1), -torch.ones(4096, 1)], dim=-1)
    light.sky_visibility.fill_(1.0)

    def shown(positions: torch.Tensor) -> torch.Tensor:
        x, y = positions[:, 0:1], positions[:, 1:2]
        return 0.3 + 0.2 * torch.cat([torch.sin(2 * x), torch.cos(1.5 * y), torch.sin(x + y)], dim=-1)

    optimizer = torch.optim.Adam(light.parameters(), lr=0.05)
    first = None
    for _ in range(300):
        error = (light(points) - shown(points)).abs().mean()
        first = float(error.detach()) if first is None else first
        optimizer.zero_grad()
        error.backward()
        optimizer.step()
    assert float(error) < 0.1 * first and float(error) < 0.01, (first, float(error))


def test_visibility_map_is_kept_in_the_state_dict() -> None:
    light = floor_light(visibility_resolution=32)
    assert not light.has_visibility
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=SPHERE_RADIUS)
    light.compute_sky_visibility(MeshRaycaster(torch.as_tensor(sphere.vertices), torch.as_tensor(sphere.faces)))
    restored = FloorLightConfig(visibility_resolution=32).setup()
    restored.load_state_dict(light.state_dict())
    assert restored.has_plane and restored.has_visibility
    assert torch.equal(restored.sky_visibility, light.sky_visibility) and math.isclose(float(restored.plane[3]), 1.0)


def test_clipped_sdf_gives_a_watertight_mesh_standing_on_the_floor() -> None:
    """A sphere sunk into the floor (center 0.2 above it, radius 0.5): the clipped SDF's mesh stops at the floor
    with a flat, closed base whose area is the analytic disc."""
    light = FloorLightConfig().setup()
    light.set_plane(torch.tensor([0.0, 0.0, 1.0, 0.2]))

    def sunk_sphere(positions: torch.Tensor) -> torch.Tensor:
        return light.clip_sdf(positions, positions.norm(dim=-1, keepdim=True) - 0.5)

    vertices, faces = extract_sdf_mesh(
        sunk_sphere, 96, block_resolution=48, chunk_size=65536, device=torch.device("cpu")
    )
    mesh = trimesh.Trimesh(vertices, faces)
    assert mesh.is_watertight
    assert abs(float(vertices[:, 2].min()) + 0.2) < 0.01
    base = mesh.area_faces[mesh.face_normals[:, 2] < -0.99].sum()
    assert abs(base - math.pi * (0.5**2 - 0.2**2)) < 0.03
