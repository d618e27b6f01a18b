"""Bilinear look-up in dense grids (floor texture, environment grids, split-sum table): one call of torch's
grid_sample, with its conventions written down once."""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor, nn


def bilinear_lookup(grid: Float[Tensor, "1 C H W"], coordinates: Float[Tensor, "num 2"]) -> Float[Tensor, "num C"]:
    """Values of `grid` at `coordinates` = (x, y) in [-1, 1]: x runs across the W columns, y down the H rows, texel
    i's center at (i + 0.5) / size * 2 - 1. Bilinear; outside the grid the border texels hold."""
    values = nn.functional.grid_sample(
        grid.to(coordinates.dtype), coordinates[None, :, None, :], mode="bilinear", padding_mode="border",
        align_corners=False,
    )
    return values[0, :, :, 0].T
