"""Stage II material field: PBR parameters (albedo, roughness, metallic) at surface points."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Literal, Type

import torch
from jaxtyping import Float
from nerfstudio.configs.base_config import InstantiateConfig
from nerfstudio.field_components.mlp import MLP
from torch import Tensor, nn

from nero_ns.components.brdf import MIN_ROUGHNESS
from nero_ns.components.encodings import CoarseToFineHashGrid


@dataclass
class MaterialFieldConfig(InstantiateConfig):
    """Hash grid + small MLP with sigmoid heads, so every parameter stays in its physical range.

    The grid is coarse on purpose (4 levels, 8^3 to 64^3): a fine one (12 levels up to 512^3) gives the material
    room to absorb, spot by spot, lighting the model cannot explain. Raise max_res for finely textured objects."""

    _target: Type = field(default_factory=lambda: MaterialField)
    num_levels: int = 4
    """Hash grid levels."""
    min_res: int = 8
    """Coarsest hash grid resolution."""
    max_res: int = 64
    """Finest hash grid resolution."""
    log2_hashmap_size: int = 17
    """log2 of the hash table size per level."""
    features_per_level: int = 2
    """Features per hash grid level."""
    hidden_dim: int = 64
    """MLP width."""
    num_layers: int = 2
    """MLP depth."""
    hash_implementation: Literal["tcnn", "torch"] = "tcnn"
    """Hash grid backend: tcnn when importable (falls back to torch automatically), or torch."""


class MaterialField(nn.Module):
    """albedo (base color, linear RGB) in (0, 1), roughness in (MIN_ROUGHNESS, 1), metallic in (0, 1)."""

    def __init__(self, config: MaterialFieldConfig) -> None:
        super().__init__()
        # Every level active from the start: the geometry is fixed, so there is no coarse-to-fine schedule to follow.
        self.encoding = CoarseToFineHashGrid(
            num_levels=config.num_levels,
            min_res=config.min_res,
            max_res=config.max_res,
            log2_hashmap_size=config.log2_hashmap_size,
            features_per_level=config.features_per_level,
            start_levels=config.num_levels,
            implementation=config.hash_implementation,
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
