"""Sphere tracing of an SDF: occlusion labels against analytic ray tracing of a ball above a floor."""

from __future__ import annotations

import torch

from nero_ns.components.sdf_tracing import march_hits_surface


def test_occlusion_pseudo_labels_match_ray_tracing_of_sphere_above_plane() -> None:
    """Rays leaving a floor under a ball are occluded exactly when they hit the ball inside the unit sphere."""
    center, radius, floor = torch.tensor([0.0, 0.2, 0.0]), 0.35, -0.4

    def sdf(points: torch.Tensor) -> torch.Tensor:
        ball = (points - center).norm(dim=-1, keepdim=True) - radius
        return torch.minimum(ball, points[:, 1:2] - floor)

    generator = torch.Generator().manual_seed(3)
    count = 4000
    xz = (torch.rand(count, 2, generator=generator) - 0.5) * 0.8
    origins = torch.stack([xz[:, 0], torch.full((count,), floor), xz[:, 1]], dim=-1)
    directions = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)
    directions[:, 1] = directions[:, 1].abs()
    start = origins + 0.01 * torch.tensor([0.0, 1.0, 0.0])
    labels = march_hits_surface(sdf, start, directions, num_steps=128)

    offset = start - center
    b = (offset * directions).sum(-1)
    c = (offset * offset).sum(-1) - radius**2
    analytic = (b * b - c > 0) & (-b - torch.sqrt((b * b - c).clamp(min=0)) > 0)
    agreement = (labels == analytic).float().mean()
    assert 0.1 < analytic.float().mean() < 0.9
    assert agreement > 0.98
