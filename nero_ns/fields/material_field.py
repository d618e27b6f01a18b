"""nero-material material field: PBR parameters (albedo, roughness, metallic) at surface points."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Type

import torch
from jaxtyping import Float
from nerfstudio.configs.base_config import InstantiateConfig
from nerfstudio.field_components.mlp import MLP
from torch import Tensor, nn

from nero_ns.components.brdf import MIN_ROUGHNESS
from nero_ns.components.encodings import CoarseToFineHashGrid
from nero_ns.components.hash_grid import HashGridOptions


@dataclass
class MaterialFieldConfig(HashGridOptions, InstantiateConfig):
    """Hash grid + small MLP with sigmoid heads, so every parameter stays in its physical range.

    The grid is coarse on purpose (4 levels, 8^3 to 64^3): a fine one (12 levels up to 512^3) gives the material
    room to absorb, spot by spot, lighting the model cannot explain. Raise max_res for finely textured objects."""

    _target: Type = field(default_factory=lambda: MaterialField)
    # The coarse grid's sizes (the options are described in HashGridOptions).
    num_levels: int = 4
    min_res: int = 8
    max_res: int = 64
    log2_hashmap_size: int = 17
    hidden_dim: int = 64
    """MLP width."""
    num_layers: int = 2
    """MLP depth."""


class MaterialField(nn.Module):
    """albedo (base color, linear RGB) in (0, 1), roughness in (MIN_ROUGHNESS, 1), metallic in (0, 1)."""

    def __init__(self, config: MaterialFieldConfig) -> None:
        super().__init__()
        # Every level active from the start: the geometry is fixed, so there is no coarse-to-fine schedule to follow.
        self.encoding = CoarseToFineHashGrid(
            **config.grid_sizes(), start_levels=config.num_levels, implementation=config.hash_implementation
        )
        self.mlp = MLP(
            in_dim=3 + self.encoding.get_out_dim(),
            num_layers=config.num_layers + 1,
            layer_width=config.hidden_dim,
            out_dim=5,
            activation=nn.ReLU(),
            implementation="torch",
        )

    def forward(self, points: Float[Tensor, "*bs 3"]) -> Dict[str, Float[Tensor, "*bs C"]]:
        """Materials at `points` (normalized frame): dict(albedo "*bs 3", roughness "*bs 1", metallic "*bs 1")."""
        raw = torch.sigmoid(self.mlp(torch.cat([points, self.encoding(points)[0]], dim=-1)))
        return {
            "albedo": raw[..., 0:3],
            "roughness": MIN_ROUGHNESS + (1.0 - MIN_ROUGHNESS) * raw[..., 3:4],
            "metallic": raw[..., 4:5],
        }
