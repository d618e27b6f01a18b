"""Importance sampling of light directions from a lat-long radiance map (nero-material's third Monte Carlo strategy).

Cosine and GGX samples find a small bright light (a sun) by chance: with tens of samples most pixels miss it and a
few see it at a huge weight. The estimate is then skewed, and a robust photometric loss fits near its median, so
the light never grows into the sun the photos show. Drawing some directions in proportion to the light's energy
finds such a light at every point; multiple importance sampling keeps the estimate unbiased.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor


class LatLongLightSampler:
    """Directions drawn in proportion to the energy of a lat-long radiance map, mixed with a uniform share.

    The map's H rows are equal bands of theta from the zenith and its W columns equal bands of phi
    (`ENVMAP_CONVENTION`: theta = arccos(z), phi = atan2(x, y)). Each cell is chosen with probability
    (1 - uniform_share) * energy / total + uniform_share * solid angle / 4 pi, where energy = luminance x solid angle,
    and a direction is drawn uniformly in solid angle within it, so the pdf is piecewise constant and exact."""

    def __init__(
        self, radiance: Float[Tensor, "height width 3"], uniform_share: float = 0.1, exponent: float = 1.0
    ) -> None:
        height, width = radiance.shape[:2]
        device = radiance.device
        self.height, self.width = height, width
        self.cos_edges = torch.cos(torch.linspace(0.0, math.pi, height + 1, device=device, dtype=torch.float32))
        band = (self.cos_edges[:-1] - self.cos_edges[1:]).clamp(min=0.0)
        solid_angle = (band[:, None] * (2.0 * math.pi / width)).expand(height, width)
        luminance = (radiance.detach().float() * torch.tensor([0.2126, 0.7152, 0.0722], device=device)).sum(-1)
        energy = luminance.clamp(min=0.0) ** exponent * solid_angle
        uniform = solid_angle / (4.0 * math.pi)
        total = energy.sum()
        probability = uniform if total <= 0 else (1.0 - uniform_share) * energy / total + uniform_share * uniform
        probability = probability / probability.sum()
        self.cell_probability = probability.reshape(-1)
        self.cdf = torch.cumsum(self.cell_probability, dim=0)
        self.density = (probability / solid_angle.clamp(min=1e-12)).reshape(-1)
        """Solid-angle pdf inside each cell."""

    def sample(self, u: Float[Tensor, "*bs 2"]) -> Float[Tensor, "*bs 3"]:
        """Unit directions from uniforms u in [0, 1)^2: u[0] picks the cell through the cdf (its position within the
        cell's share places the direction in cos theta), u[1] places it in phi."""
        flat = u.reshape(-1, 2).float()
        cell = torch.searchsorted(self.cdf, flat[:, 0].contiguous(), right=True).clamp(max=self.cdf.numel() - 1)
        start = self.cdf[cell] - self.cell_probability[cell]
        within = ((flat[:, 0] - start) / self.cell_probability[cell].clamp(min=1e-20)).clamp(0.0, 1.0)
        row, column = cell // self.width, cell % self.width
        cos_theta = self.cos_edges[row] + within * (self.cos_edges[row + 1] - self.cos_edges[row])
        phi = (column.float() + flat[:, 1]) * (2.0 * math.pi / self.width)
        sin_theta = torch.sqrt((1.0 - cos_theta**2).clamp(min=0.0))
        directions = torch.stack([sin_theta * torch.sin(phi), sin_theta * torch.cos(phi), cos_theta], dim=-1)
        return directions.reshape(*u.shape[:-1], 3).to(u.dtype)

    def pdf(self, directions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 1"]:
        """Solid-angle pdf of `sample` at unit directions."""
        flat = directions.reshape(-1, 3).float()
        theta = torch.acos(flat[:, 2].clamp(-1.0, 1.0))
        phi = torch.remainder(torch.atan2(flat[:, 0], flat[:, 1]), 2.0 * math.pi)
        row = (theta / math.pi * self.height).long().clamp(0, self.height - 1)
        column = (phi / (2.0 * math.pi) * self.width).long().clamp(0, self.width - 1)
        return self.density[row * self.width + column].reshape(*directions.shape[:-1], 1).to(directions.dtype)
