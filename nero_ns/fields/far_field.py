"""NeRF++-style far field for everything outside the unit sphere (background, floor, other objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple, Type

import torch
from jaxtyping import Float
from nerfstudio.configs.base_config import InstantiateConfig
from nerfstudio.field_components.encodings import NeRFEncoding, SHEncoding
from nerfstudio.field_components.mlp import MLP
from torch import Tensor, nn


@dataclass
class FarFieldConfig(InstantiateConfig):
    """Configuration of the far field."""

    _target: Type = field(default_factory=lambda: FarField)
    num_frequencies: int = 6
    """Frequencies of the positional encoding of the inverted-sphere coordinates."""
    hidden_dim: int = 64
    """MLP width."""
    num_layers: int = 3
    """Density MLP depth."""
    sh_levels: int = 3
    """Spherical-harmonics levels of the view direction."""


def invert_sphere(positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 4"]:
    """NeRF++ parametrization of a point outside the unit sphere: (x / |x|, 1 / |x|), all bounded."""
    norm = positions.norm(dim=-1, keepdim=True).clamp(min=1.0)
    return torch.cat([positions / norm, 1.0 / norm], dim=-1)


class FarField(nn.Module):
    """Density and view-dependent linear color at points outside the unit sphere."""

    def __init__(self, config: FarFieldConfig) -> None:
        super().__init__()
        self.position_encoding = NeRFEncoding(
            in_dim=4, num_frequencies=config.num_frequencies, min_freq_exp=0.0, max_freq_exp=config.num_frequencies - 1,
            include_input=True,
        )
        self.direction_encoding = SHEncoding(levels=config.sh_levels, implementation="torch")
        self.density_mlp = MLP(
            in_dim=self.position_encoding.get_out_dim(),
            num_layers=config.num_layers,
            layer_width=config.hidden_dim,
            out_dim=1 + config.hidden_dim,
            activation=nn.ReLU(),
            implementation="torch",
        )
        self.color_mlp = MLP(
            in_dim=config.hidden_dim + self.direction_encoding.get_out_dim(),
            num_layers=1,
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
        hidden = self.density_mlp(self.position_encoding(invert_sphere(positions)))
        density = nn.functional.softplus(hidden[..., :1] - 1.0)
        direction_features = self.direction_encoding((directions + 1.0) / 2.0)
        rgb = self.color_mlp(torch.cat([hidden[..., 1:], direction_features], dim=-1))
        return density, rgb
