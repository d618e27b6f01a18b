"""nero-material light from the floor the object stands on: a learned texture of the floor in open sky, darkened by the
share of the sky that the object hides from each floor point.

A direction leaving the object's underside meets the floor, usually right under the object, where the object
shades the floor from the sky. With a position-free environment (or a free indirect field) nothing ties that light
to anything observed, and the material field is free to paint the underside dark instead. Here the floor radiance
is `texture(q) * sky_visibility(q)`: the texture is learned from the camera rays that meet the floor (the photos
show it), and the visibility, the cosine-weighted share of the sky above q that the object's mesh leaves open, is
ray cast once from the fixed geometry, so the floor under the object is dark for a reason the data can check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Type

import torch
from jaxtyping import Float
from torch import Tensor

from nero_ns.components.brdf import sample_cosine_hemisphere
from nero_ns.components.grid_lookup import bilinear_lookup
from nero_ns.components.raycast import MeshRaycaster
from nero_ns.components.support_plane import SupportPlane
from nero_ns.fields.floor_texture import FloorTexture, FloorTextureConfig


@dataclass
class FloorLightConfig(FloorTextureConfig):
    """Floor texture times ray-cast sky visibility."""

    _target: Type = field(default_factory=lambda: FloorLight)
    half_size: float = 2.0
    """Half the width of the textured square of the floor, centered under the object (normalized units; the object
    fits in the unit sphere). Light directions meeting the floor farther out take the indirect light, by point and
    direction: out there the floor may hold other objects, which the texture cannot place."""
    visibility_resolution: int = 96
    """Texels per side of the sky-visibility map (ray cast once)."""
    visibility_samples: int = 256
    """Cosine-weighted directions per visibility texel."""


class FloorLight(FloorTexture):
    """Linear radiance leaving points of the support plane: the texture is the floor in open sky. The plane is
    given at each call, as to `FloorTexture` (nero-material's geometry holds it)."""

    def __init__(self, config: FloorLightConfig) -> None:
        super().__init__(config)
        self.config = config
        resolution = config.visibility_resolution
        # Negative until ray cast from the mesh.
        self.register_buffer("sky_visibility", torch.full((1, 1, resolution, resolution), -1.0))

    @property
    def has_visibility(self) -> bool:
        return bool(self.sky_visibility.min() >= 0)

    def forward(self, plane: SupportPlane, points: Float[Tensor, "num 3"]) -> Float[Tensor, "num 3"]:
        """Radiance leaving points of `plane`: the texture times the sky visibility."""
        visibility = bilinear_lookup(self.sky_visibility, self.texture_coordinates(plane, points)).clamp(min=0.0)
        return self.radiance(plane, points) * visibility

    @torch.no_grad()
    def compute_sky_visibility(self, plane: SupportPlane, object_mesh: MeshRaycaster, seed: int = 0) -> None:
        """Ray cast, from each texel center of the visibility map on `plane`, cosine-weighted directions against the
        mesh."""
        resolution, count = self.config.visibility_resolution, self.config.visibility_samples
        tangent, bitangent, center = plane.frame()
        normal = plane.plane[:3]
        cells = (torch.arange(resolution, device=normal.device) + 0.5) / resolution * 2.0 - 1.0
        rows, columns = torch.meshgrid(cells, cells, indexing="ij")  # grid_sample: x runs along columns
        points = center + self.config.half_size * (columns.reshape(-1, 1) * tangent + rows.reshape(-1, 1) * bitangent)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        uniforms = torch.rand(points.shape[0], count, 2, generator=generator).to(normal.device)
        directions, _ = sample_cosine_hemisphere(normal.expand(points.shape[0], count, 3), uniforms)
        blocked = object_mesh.occluded(points[:, None, :].expand(-1, count, -1), directions)
        open_sky = 1.0 - blocked.float().mean(dim=-1)
        self.sky_visibility = open_sky.reshape(1, 1, resolution, resolution).to(self.sky_visibility)
