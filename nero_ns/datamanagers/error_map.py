"""Where the renderings are still wrong: a coarse map of the recent photometric error over every training image,
to draw more rays where the model has the most left to learn (thin parts, holes, silhouettes).

Each image is split into square cells; a cell keeps a running mean of the errors of the rays trained in it. A share
of the object region's rays is then drawn where the cells' errors are high: a cell by its error, a pixel uniformly
within it, kept when it lies in the region (so a pixel's chance follows its cell's error). Cells nobody has trained
yet start at `initial_error`, above any error a rendering in [0, 1] can make, so every cell is visited before its
error counts. The map lives in memory only: a resumed run starts a new one.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor


class PixelErrorMap:
    """Running mean of per-ray errors over cells of `cell_size` pixels, for every image of a training set."""

    def __init__(
        self,
        num_images: int,
        height: int,
        width: int,
        cells_per_side: int,
        decay: float = 0.5,
        initial_error: float = 1.0,
    ) -> None:
        self.cell_size = max(1, math.ceil(max(height, width) / cells_per_side))
        self.grid_shape: Tuple[int, int] = (math.ceil(height / self.cell_size), math.ceil(width / self.cell_size))
        self.height, self.width = height, width
        self.decay = decay
        """Weight of a step's new errors in a cell's running mean."""
        self.errors: Float[Tensor, "num_images grid_height grid_width"] = torch.full(
            (num_images, *self.grid_shape), initial_error
        )
        self.region_share: Float[Tensor, "num_images grid_height grid_width"] = torch.zeros_like(self.errors)
        """Share of each cell's pixels in the sampling region (the object's mask or the sphere's pixels)."""
        self.region_known: Bool[Tensor, "num_images"] = torch.zeros(num_images, dtype=torch.bool)

    def record(self, indices: Int[Tensor, "num_rays 3"], errors: Float[Tensor, "num_rays"]) -> None:
        """Blend this step's mean error per cell (rays given as (image, y, x)) into the cells' running means."""
        cells = self._flat_cells(indices.cpu())
        errors = errors.detach().float().cpu()
        total = torch.zeros(self.errors.numel()).index_add_(0, cells, errors)
        count = torch.zeros(self.errors.numel()).index_add_(0, cells, torch.ones_like(errors))
        seen = count > 0
        flat = self.errors.view(-1)
        flat[seen] = torch.lerp(flat[seen], total[seen] / count[seen], self.decay)

    def sample(
        self, count: int, image_indices: Int[Tensor, "batch_images"], region: Bool[Tensor, "batch_images height width"]
    ) -> Int[Tensor, "count_or_fewer 3"]:
        """`count` pixels as (position in the batch, y, x), drawn by cell error within `region`; fewer only when
        repeated draws keep landing outside the region (the caller fills the rest)."""
        image_indices = image_indices.cpu()
        self._learn_region(image_indices, region)
        share = self.region_share[image_indices].reshape(-1)
        weights = self.errors[image_indices].reshape(-1) * (share > 0)
        if count <= 0 or not bool((weights > 0).any()):
            return torch.empty((0, 3), dtype=torch.long)
        acceptance = float((weights * share).sum() / weights.sum())  # the share of draws that land in the region
        chosen = torch.empty((0, 3), dtype=torch.long)
        for _ in range(4):
            missing = count - len(chosen)
            if missing <= 0:
                break
            cells = torch.multinomial(weights, math.ceil(1.5 * missing / acceptance) + 16, replacement=True)
            grid_height, grid_width = self.grid_shape
            image, cell = cells // (grid_height * grid_width), cells % (grid_height * grid_width)
            y = cell // grid_width * self.cell_size + torch.randint(self.cell_size, cells.shape)
            x = cell % grid_width * self.cell_size + torch.randint(self.cell_size, cells.shape)
            y, x = y.clamp(max=self.height - 1), x.clamp(max=self.width - 1)
            candidates = torch.stack([image, y, x], dim=-1)
            inside = region[candidates.to(region.device).unbind(-1)].cpu()
            chosen = torch.cat([chosen, candidates[inside]])
        return chosen[:count]

    def _learn_region(
        self, image_indices: Int[Tensor, "batch_images"], region: Bool[Tensor, "batch_images height width"]
    ) -> None:
        """Each cell's share of region pixels, computed the first time an image is sampled (the region is fixed)."""
        new = ~self.region_known[image_indices]
        if not bool(new.any()):
            return
        padded = F.pad(
            region[new.to(region.device)].float().cpu()[:, None],
            (0, self.grid_shape[1] * self.cell_size - self.width, 0, self.grid_shape[0] * self.cell_size - self.height),
        )
        self.region_share[image_indices[new]] = F.avg_pool2d(padded, self.cell_size)[:, 0]
        self.region_known[image_indices[new]] = True

    def _flat_cells(self, indices: Int[Tensor, "num_rays 3"]) -> Int[Tensor, "num_rays"]:
        grid_height, grid_width = self.grid_shape
        cell_y, cell_x = indices[:, 1] // self.cell_size, indices[:, 2] // self.cell_size
        return (indices[:, 0] * grid_height + cell_y) * grid_width + cell_x
