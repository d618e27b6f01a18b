"""The floor the object stands on, as a diffuse texture over a square of the support plane centered under the object.

Both stages draw the floor inside the unit sphere with it. A diffuse texture gives a floor point one colour from every
view, so the floor cannot take on what a shiny object in front of it shows (a reflection changes with the view):
those pixels stay the object's to explain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Tuple, Type

import torch
from jaxtyping import Bool, Float
from nerfstudio.configs.base_config import InstantiateConfig
from nerfstudio.field_components.activations import trunc_exp
from torch import Tensor, nn

from nero_ns.components.grid_lookup import bilinear_lookup
from nero_ns.components.support_plane import SupportPlane


@dataclass
class FloorTextureConfig(InstantiateConfig):
    """Dense grids at several resolutions, summed in log radiance."""

    _target: Type = field(default_factory=lambda: FloorTexture)
    half_size: float = 2.0
    """Half the width of the textured square of the floor, centered under the object (normalized units; the object
    fits in the unit sphere)."""
    resolutions: Tuple[int, ...] = (8, 32, 128)
    """Texels per side of each grid: the coarse ones carry the floor where no camera sees it (under the object)."""
    init_radiance: float = 0.3
    """Linear radiance of the texture at the start."""
    from_photos_step: Optional[int] = None
    """nero-shape's training step at which the finest texels that no ray has reached yet (floor seen only through the
    object's gaps, hidden so far by a surface across them) take the colour that most photos agree on at their floor
    point (nero_ns/components/floor_from_photos.py says why). None (the default): never. Measured on nine scenes, at
    step 0 it formed the metal knot sooner but carved the thin knot away, and at step 300 it changed nothing beyond
    run-to-run noise (docs/nero-shape.md)."""


class FloorTexture(nn.Module):
    """Linear radiance leaving points of a support plane, the same in every direction."""

    def __init__(self, config: FloorTextureConfig) -> None:
        super().__init__()
        self.config = config
        self.log_texture = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, 3, resolution, resolution)) for resolution in config.resolutions]
        )
        self.log_init = math.log(config.init_radiance)

    def texel_points(self, plane: SupportPlane) -> Float[Tensor, "resolution resolution 3"]:
        """The floor points at the centers of the finest grid's texels (row, column)."""
        resolution = self.config.resolutions[-1]
        texels = torch.arange(resolution, dtype=plane.plane.dtype, device=plane.plane.device)
        centers = (texels + 0.5) / resolution * 2.0 - 1.0
        tangent, bitangent, origin = plane.frame()
        rows, columns = torch.meshgrid(centers, centers, indexing="ij")
        return origin + self.config.half_size * (columns[..., None] * tangent + rows[..., None] * bitangent)

    def fill_untrained(
        self, plane: SupportPlane, radiance: Float[Tensor, "resolution resolution 3"],
        known: Bool[Tensor, "resolution resolution"],
    ) -> int:
        """Give the finest texels that no ray has reached yet (still exactly at their start) and whose `radiance`
        (linear) is `known` that radiance; texels training has reached keep what they learned. Returns how many were
        filled."""
        current = self.radiance(plane, self.texel_points(plane)).detach()
        finest = self.log_texture[-1]
        untrained = known & (finest[0] == 0).all(dim=0)
        residual = torch.log(radiance.clamp(min=1e-3)) - torch.log(current)
        with torch.no_grad():
            finest[0] += torch.where(untrained, residual.permute(2, 0, 1), torch.zeros_like(finest[0]))
        return int(untrained.sum())

    def texture_coordinates(self, plane: SupportPlane, points: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 2"]:
        """Points of (or near) the plane in [-1, 1]^2 over the textured square (outside it beyond)."""
        tangent, bitangent, center = plane.frame()
        relative = points - center
        return torch.stack([relative @ tangent, relative @ bitangent], dim=-1) / self.config.half_size

    def within(self, plane: SupportPlane, points: Float[Tensor, "*bs 3"]) -> Bool[Tensor, "*bs"]:
        """Whether plane points lie on the textured square."""
        return (self.texture_coordinates(plane, points).abs() <= 1.0).all(dim=-1)

    def radiance(self, plane: SupportPlane, points: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        """The texture at the feet of `points` on the plane."""
        coordinates = self.texture_coordinates(plane, points).reshape(-1, 2)
        log_radiance = sum(bilinear_lookup(grid, coordinates) for grid in self.log_texture)
        return trunc_exp(log_radiance + self.log_init).reshape(*points.shape[:-1], 3)
