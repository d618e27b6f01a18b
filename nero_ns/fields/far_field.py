"""NeRF++-style far field for everything outside the unit sphere (background, floor, other objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple, Type

import torch
from jaxtyping import Float
from nerfstudio.configs.base_config import InstantiateConfig
from nerfstudio.field_components.encodings import SHEncoding
from nerfstudio.field_components.mlp import MLP
from torch import Tensor, nn

from nero_ns.components.hash_grid import HashGridOptions, build_hash_grid


@dataclass
class FarFieldConfig(HashGridOptions, InstantiateConfig):
    """Configuration of the far field (its hash grid spans the inverted-sphere ball)."""

    _target: Type = field(default_factory=lambda: FarField)
    hidden_dim: int = 64
    """MLP width."""
    sh_levels: int = 3
    """Spherical-harmonics levels of the view direction."""


def invert_sphere(positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
    """NeRF++'s inverted-sphere coordinates (direction x / |x|, inverse distance 1 / |x|) of a point outside the
    unit sphere, laid out as one point of the ball of radius 2: (2 - 1 / |x|) * x / |x|. Infinity maps to the
    boundary, the unit sphere to itself, so a grid over [-2, 2]^3 covers the whole outside."""
    norm = positions.norm(dim=-1, keepdim=True).clamp(min=1.0)
    return (2.0 - 1.0 / norm) * positions / norm


class FarField(nn.Module):
    """Density and view-dependent linear color at points outside the unit sphere."""

    def __init__(self, config: FarFieldConfig) -> None:
        super().__init__()
        self.position_encoding = build_hash_grid(config.hash_implementation, **config.grid_sizes())
        self.direction_encoding = SHEncoding(levels=config.sh_levels, implementation="torch")
        self.density_mlp = MLP(
            in_dim=self.position_encoding.get_out_dim(),
            num_layers=1,
            layer_width=config.hidden_dim,
            out_dim=1 + config.hidden_dim // 4,
            activation=nn.ReLU(),
            implementation="torch",
        )
        self.color_mlp = MLP(
            in_dim=config.hidden_dim // 4 + self.direction_encoding.get_out_dim(),
            num_layers=2,
            layer_width=config.hidden_dim,
            out_dim=3,
            activation=nn.ReLU(),
            out_activation=nn.Sigmoid(),
            implementation="torch",
        )

    def forward(
        self, positions: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"]
    ) -> Tuple[Float[Tensor, "*bs 1"], Float[Tensor, "*bs 3"]]:
        """Density and linear RGB at `positions` seen along `directions`."""
        unit_cube = (invert_sphere(positions) + 2.0) / 4.0
        features = self.position_encoding(unit_cube.reshape(-1, 3))
        if isinstance(features, tuple):  # our HashGrid: (features, no Jacobian)
            features = features[0]
        features = features.reshape(*positions.shape[:-1], self.position_encoding.get_out_dim())
        hidden = self.density_mlp(features.to(positions.dtype))
        density = nn.functional.softplus(hidden[..., :1] - 1.0)
        direction_features = self.direction_encoding((directions + 1.0) / 2.0)
        rgb = self.color_mlp(torch.cat([hidden[..., 1:], direction_features], dim=-1))
        return density, rgb
