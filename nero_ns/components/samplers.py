"""Ray/sphere bounds and the far-field sampler (uniform in inverse distance beyond the sphere)."""

from __future__ import annotations

from typing import Tuple

import torch
from jaxtyping import Bool, Float
from nerfstudio.cameras.rays import Frustums, RayBundle, RaySamples
from torch import Tensor


def intersect_unit_sphere(
    origins: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"], min_near: float = 0.05
) -> Tuple[Float[Tensor, "*bs 1"], Float[Tensor, "*bs 1"], Bool[Tensor, "*bs 1"]]:
    """Entry and exit distances of rays through the unit sphere.

    Rays that miss get a short segment around their closest approach, so every ray has the same number of
    inside samples; those samples lie outside the sphere and the model gives them zero opacity.
    """
    b = (origins * directions).sum(-1, keepdim=True)
    c = (origins * origins).sum(-1, keepdim=True) - 1.0
    discriminant = b * b - c
    hits = discriminant > 0
    root = torch.sqrt(discriminant.clamp(min=0.0))
    closest = (-b).clamp(min=min_near)
    near = torch.where(hits, (-b - root).clamp(min=min_near), closest)
    far = torch.where(hits, -b + root, closest + 1e-3)
    far = torch.maximum(far, near + 1e-3)
    return near, far, hits


class InverseDistanceSampler:
    """Stratified samples from the sphere exit to infinity, uniform in 1 / distance (NeRF++ far field)."""

    def __init__(self, num_samples: int = 32, far_distance: float = 1e3) -> None:
        self.num_samples = num_samples
        self.far_distance = far_distance

    def __call__(self, ray_bundle: RayBundle, starts: Float[Tensor, "num_rays 1"], jitter: bool) -> RaySamples:
        num_rays = starts.shape[0]
        bins = torch.linspace(0.0, 1.0, self.num_samples + 1, device=starts.device)[None, :].expand(num_rays, -1)
        if jitter:
            offsets = (torch.rand(num_rays, self.num_samples + 1, device=starts.device) - 0.5) / self.num_samples
            interior = torch.tensor([0.0] + [1.0] * (self.num_samples - 1) + [0.0], device=starts.device)
            bins = (bins + offsets * interior).clamp(0.0, 1.0)
        inverse_near, inverse_far = 1.0 / starts, 1.0 / self.far_distance
        distances = 1.0 / (inverse_near + bins * (inverse_far - inverse_near))
        bin_starts, bin_ends = distances[:, :-1, None], distances[:, 1:, None]
        frustums = Frustums(
            origins=ray_bundle.origins[:, None, :].expand(-1, self.num_samples, -1),
            directions=ray_bundle.directions[:, None, :].expand(-1, self.num_samples, -1),
            starts=bin_starts,
            ends=bin_ends,
            pixel_area=ray_bundle.pixel_area[:, None, :].expand(-1, self.num_samples, -1),
        )
        return RaySamples(frustums=frustums, camera_indices=None, deltas=bin_ends - bin_starts, spacing_starts=None)
