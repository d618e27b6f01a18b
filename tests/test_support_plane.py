"""The support plane found in sparse points: the floor under the object, and nothing where there is no floor."""

from __future__ import annotations

import torch

from nero_ns.components.support_plane import find_support_plane


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
    assert find_support_plane(floor_points(-0.1)) is None  # 0.1 from the center: it would cut the object
    assert find_support_plane(floor_points(-0.7, count=20)) is None  # too few points to tell

