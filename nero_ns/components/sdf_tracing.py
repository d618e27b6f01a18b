"""Marching an SDF along rays: the pseudo-labels that supervise NeRO's occlusion field."""

from __future__ import annotations

from typing import Callable

import torch
from jaxtyping import Bool, Float
from torch import Tensor


@torch.no_grad()
def march_hits_surface(
    sdf_fn: Callable[[Tensor], Tensor],
    origins: Float[Tensor, "num_rays 3"],
    directions: Float[Tensor, "num_rays 3"],
    num_steps: int = 32,
    start_offset: float = 0.02,
) -> Bool[Tensor, "num_rays"]:
    """Whether each ray, started just off the surface, meets the inside of the SDF before leaving the unit sphere.

    Points are taken at fixed steps up to the ray's exit from the unit sphere; a ray is occluded when the SDF is
    negative at any of them.
    """
    b = (origins * directions).sum(-1, keepdim=True)
    c = (origins * origins).sum(-1, keepdim=True) - 1.0
    exit_distance = (-b + torch.sqrt((b * b - c).clamp(min=0.0))).clamp(min=start_offset)
    fractions = torch.linspace(0.0, 1.0, num_steps, device=origins.device)[None, :, None]
    distances = start_offset + fractions * (exit_distance[:, None, :] - start_offset)
    points = origins[:, None, :] + directions[:, None, :] * distances
    sdf = sdf_fn(points.reshape(-1, 3)).reshape(origins.shape[0], num_steps)
    return (sdf < 0.0).any(dim=-1)
