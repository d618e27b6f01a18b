"""Floor light: the sky visibility under a sphere is the analytic one, the textured square is where it should be,
and the texture learns a floor it is shown."""

from __future__ import annotations

import torch
import trimesh

from nero_ns.components.raycast import MeshRaycaster
from nero_ns.components.support_plane import SupportPlane
from nero_ns.fields.floor_light import FloorLight, FloorLightConfig

SPHERE_RADIUS = 0.5


def floor_plane() -> SupportPlane:
    plane = SupportPlane()
    plane.set_plane(torch.tensor([0.0, 0.0, 1.0, 1.0]))  # z = -1, normal up
    return plane


FLOOR = floor_plane()


def floor_light(**options) -> FloorLight:
    return FloorLightConfig(**options).setup()


def test_sky_visibility_under_a_sphere_is_the_analytic_one() -> None:
    """Seen from a floor point at distance D from the center, the sphere is a cap of half-angle asin(r / D) whose
    axis is at angle beta from the floor normal; it hides sin^2(asin(r / D)) cos(beta) of the cosine-weighted sky."""
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=SPHERE_RADIUS)
    light = floor_light(init_radiance=1.0, visibility_samples=1024)
    light.compute_sky_visibility(FLOOR, MeshRaycaster(torch.as_tensor(sphere.vertices), torch.as_tensor(sphere.faces)))
    distances = torch.tensor([0.0, 0.4, 1.0, 2.0])
    points = torch.stack([distances, torch.zeros(4), torch.full((4,), -1.0)], dim=-1)
    center_distance = torch.sqrt(distances**2 + 1.0)
    expected = 1.0 - (SPHERE_RADIUS / center_distance) ** 2 / center_distance
    radiance = light(FLOOR, points)
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
        error = (light(FLOOR, points) - shown(points)).abs().mean()
        first = float(error.detach()) if first is None else first
        optimizer.zero_grad()
        error.backward()
        optimizer.step()
    assert float(error) < 0.1 * first and float(error) < 0.01, (first, float(error))


def test_visibility_map_is_kept_in_the_state_dict() -> None:
    light = floor_light(visibility_resolution=32)
    assert not light.has_visibility
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=SPHERE_RADIUS)
    light.compute_sky_visibility(FLOOR, MeshRaycaster(torch.as_tensor(sphere.vertices), torch.as_tensor(sphere.faces)))
    restored = FloorLightConfig(visibility_resolution=32).setup()
    restored.load_state_dict(light.state_dict())
    assert restored.has_visibility and float(restored.sky_visibility.max()) > 0.5
    assert torch.equal(restored.sky_visibility, light.sky_visibility)


def test_the_textured_square_is_centered_under_the_origin() -> None:
    light = floor_light(half_size=2.0)
    inside, outside = torch.tensor([[1.9, -1.9, -1.0]]), torch.tensor([[2.1, 0.0, -1.0]])
    assert light.within(FLOOR, inside).item() and not light.within(FLOOR, outside).item()
