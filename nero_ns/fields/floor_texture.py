"""The floor the object stands on, as a diffuse texture over a square of the support plane centered under the object.

Both stages draw the floor inside the unit sphere with it. A diffuse texture gives a floor point one colour from every
view, so the floor cannot take on what a shiny object in front of it shows (a reflection changes with the view):
those pixels stay the object's to explain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Tuple, Type

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
    """Linear radiance of the texture at the start, where the photos do not give it (see from_photos)."""
    from_photos: bool = True
    """Start nero-shape's texture from the photos: each texel of the finest grid takes the colour that most views
    agree on at its floor point. The floor seen only through the object's gaps is then known before the object's
    surface has opened them (nero_ns/components/floor_from_photos.py says why that matters)."""


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
        centers = (torch.arange(resolution, dtype=plane.plane.dtype, device=plane.plane.device) + 0.5) / resolution * 2.0 - 1.0
        tangent, bitangent, origin = plane.frame()
        rows, columns = torch.meshgrid(centers, centers, indexing="ij")
        return origin + self.config.half_size * (columns[..., None] * tangent + rows[..., None] * bitangent)

    def set_radiance(
        self, plane: SupportPlane, radiance: Float[Tensor, "resolution resolution 3"],
        known: Bool[Tensor, "resolution resolution"],
    ) -> None:
        """Make the texture `radiance` (linear) at the finest texels where it is `known`: the coarsest grid takes the
        mean over each of its texels (the mean of all known ones where a texel has none), the finest the rest; the
        texture elsewhere follows the coarse grid."""
        target = torch.log(radiance.clamp(min=1e-3)) - self.log_init
        resolution, coarse_resolution = target.shape[0], self.config.resolutions[0]
        block = resolution // coarse_resolution
        weights = known.to(target.dtype)[None, None]
        sums = torch.nn.functional.avg_pool2d(target.permute(2, 0, 1)[None] * weights, block)
        counts = torch.nn.functional.avg_pool2d(weights, block)
        overall = (target * weights[0, 0, ..., None]).sum(dim=(0, 1)) / weights.sum().clamp(min=1.0)
        coarse = torch.where(counts > 0, sums / counts.clamp(min=1e-8), overall[None, :, None, None])
        coordinates = self.texture_coordinates(plane, self.texel_points(plane)).reshape(-1, 2)
        coarse_at_texels = bilinear_lookup(coarse, coordinates).reshape(resolution, resolution, 3)
        fine = torch.where(known[..., None], target - coarse_at_texels, torch.zeros_like(target))
        with torch.no_grad():
            for grid in self.log_texture:
                grid.zero_()
            self.log_texture[0].copy_(coarse)
            if len(self.log_texture) > 1:
                self.log_texture[-1].copy_(fine.permute(2, 0, 1)[None])

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
