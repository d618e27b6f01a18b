"""Pure-PyTorch multi-resolution hash grid (Instant-NGP) that can also give the spatial derivative of its features.

The table layout, level resolutions and spatial hash are those of nerfstudio's torch `HashEncoding`, so its
checkpoints load unchanged and both give the same features at every point off the grid's vertices. It differs in
what makes it fast on a CPU: corner rows are gathered with one `index_select` per call (its backward is a single
`index_add_`), locked coarse-to-fine levels are skipped instead of computed and zeroed, and `with_jacobian=True`
returns d(features)/d(position) from the same gathered corners. That derivative is what lets an SDF built on the
grid give its exact gradient in the forward pass, so the eikonal loss and the shading normals need no double
backward (`nero_ns/fields/sdf_field.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Literal, Optional, Tuple

import torch
from jaxtyping import Float
from nerfstudio.field_components.encodings import HashEncoding
from nerfstudio.utils.external import TCNN_EXISTS
from torch import Tensor, nn

from nero_ns.components.hash_grid_cpu import hash_grid_cpu, kernel_applies
from nero_ns.console import report_missing_tinycudann

HashImplementation = Literal["tcnn", "torch"]


@dataclass
class HashGridOptions:
    """Options of a field's hash grid: its config inherits them, and may give them other defaults."""

    num_levels: int = 12
    """Hash grid levels (each costs eight table look-ups per sample and its backward pass)."""
    min_res: int = 16
    """Coarsest hash grid resolution."""
    max_res: int = 512
    """Finest hash grid resolution."""
    log2_hashmap_size: int = 15
    """log2 of the hash table size per level (smaller is faster on a CPU)."""
    features_per_level: int = 2
    """Features per hash grid level."""
    hash_implementation: HashImplementation = "tcnn"
    """Hash grid backend: tcnn when importable, otherwise our PyTorch grid (any device, and the only one that gives
    an SDF's gradient analytically); torch forces the latter."""

    def grid_sizes(self) -> Dict[str, int]:
        """The grid's sizes, as `build_hash_grid` and `CoarseToFineHashGrid` take them."""
        return {
            "num_levels": self.num_levels, "min_res": self.min_res, "max_res": self.max_res,
            "log2_hashmap_size": self.log2_hashmap_size, "features_per_level": self.features_per_level,
        }


# Instant-NGP's spatial hash: coordinates times these primes, combined by xor.
_HASH_PRIMES = (1, 2654435761, 805459861)


class HashGrid(nn.Module):
    """Hash grid over the unit cube [0, 1]^3: `num_levels` trilinear levels of `features_per_level` features."""

    def __init__(
        self,
        num_levels: int = 16,
        min_res: int = 16,
        max_res: int = 1024,
        log2_hashmap_size: int = 19,
        features_per_level: int = 2,
        hash_init_scale: float = 0.001,
    ) -> None:
        super().__init__()
        self.num_levels = num_levels
        self.features_per_level = features_per_level
        self.table_size = 2**log2_hashmap_size
        growth = math.exp((math.log(max_res) - math.log(min_res)) / (num_levels - 1)) if num_levels > 1 else 1.0
        levels = torch.arange(num_levels)
        self.register_buffer("scalings", torch.floor(min_res * growth**levels), persistent=False)
        self.register_buffer("level_offsets", levels * self.table_size, persistent=False)
        table = (torch.rand(self.table_size * num_levels, features_per_level) * 2.0 - 1.0) * hash_init_scale
        self.hash_table = nn.Parameter(table)

    def get_out_dim(self) -> int:
        return self.num_levels * self.features_per_level

    def forward(
        self, unit_cube: Float[Tensor, "num_points 3"], num_active: Optional[int] = None, with_jacobian: bool = False
    ) -> Tuple[Float[Tensor, "num_points out_dim"], Optional[Float[Tensor, "num_points 3 out_dim"]]]:
        """Features at points of [0, 1]^3 (levels from `num_active` on are zero) and, with `with_jacobian`, their
        derivative along each axis of the unit cube."""
        num_points = unit_cube.shape[0]
        active = self.num_levels if num_active is None else max(0, min(int(num_active), self.num_levels))
        features = unit_cube.new_zeros(num_points, self.num_levels, self.features_per_level)
        jacobian = unit_cube.new_zeros(num_points, 3, self.num_levels, self.features_per_level) if with_jacobian else None
        if active == 0:
            return features.flatten(1), None if jacobian is None else jacobian.flatten(2)
        if kernel_applies(unit_cube, self.hash_table):
            return hash_grid_cpu(unit_cube, self.hash_table, self.scalings, active, with_jacobian)
        scalings = self.scalings[:active].to(unit_cube.dtype)
        scaled = unit_cube.t()[:, :, None] * scalings  # (3, N, A): axis-major, so every op below runs on whole rows
        cell = torch.floor(scaled)
        fx, fy, fz = (scaled - cell)[..., None]  # each (N, A, 1)
        corners = self._corner_rows(cell.long(), active)  # (8, N, A), corner index 4 x + 2 y + z
        values = self.hash_table.index_select(0, corners.reshape(-1))
        values = values.view(2, 2, 2, num_points, active, self.features_per_level)
        # unbind, not indexing: autograd's backward of an index fills a zero buffer of the whole tensor per slice.
        lower_x, upper_x = values.unbind(0)
        along_x = torch.lerp(lower_x, upper_x, fx)  # (2, 2, N, A, F): y, z corners left
        lower_y, upper_y = along_x.unbind(0)
        along_xy = torch.lerp(lower_y, upper_y, fy)  # (2, N, A, F)
        lower_z, upper_z = along_xy.unbind(0)
        level_features = torch.lerp(lower_z, upper_z, fz)  # (N, A, F)
        features = torch.cat([level_features, features[:, active:]], dim=1)
        if jacobian is None:
            return features.flatten(1), None
        slope_x = torch.lerp(*(upper_x - lower_x).unbind(0), fy)
        slope_x = torch.lerp(*slope_x.unbind(0), fz)
        slope_y = torch.lerp(*(upper_y - lower_y).unbind(0), fz)
        slope_z = upper_z - lower_z
        slopes = torch.stack([slope_x, slope_y, slope_z], dim=1) * scalings[:, None]  # (N, 3, A, F)
        jacobian = torch.cat([slopes, jacobian[:, :, active:]], dim=2)
        return features.flatten(1), jacobian.flatten(2)

    def _corner_rows(self, cell: Tensor, active: int) -> Tensor:
        """Table rows of the eight corners of each point's cell at each active level: (8, N, A) from `cell`
        (3, N, A), corner index 4 x + 2 y + z with 0 the lower and 1 the upper side along that axis."""
        lower_upper = [((cell[axis] * prime), (cell[axis] + 1) * prime) for axis, prime in enumerate(_HASH_PRIMES)]
        x, y, z = lower_upper
        rows = torch.stack([x[i] ^ y[j] ^ z[k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
        return (rows & (self.table_size - 1)) + self.level_offsets[:active]



def build_hash_grid(implementation: str, **grid_options) -> nn.Module:
    """tinycudann's grid (through nerfstudio's HashEncoding) when `implementation` is "tcnn" and tinycudann is
    importable, else our HashGrid: no tcnn object is ever built without tinycudann."""
    if implementation == "tcnn" and TCNN_EXISTS:
        return HashEncoding(**grid_options, implementation="tcnn")
    if implementation == "tcnn":
        report_missing_tinycudann()
    return HashGrid(**grid_options)
