"""Stage II lights: the distant environment (by direction) and NeRO's indirect "inner" light (by point and direction).

Directions are unit vectors in the normalized frame, pointing from the object toward the light. The dataparser
normalizes with an identity rotation, so they are also directions of the input (world) frame, and
`EnvironmentLight.environment_map` uses the lat-long convention of the synthetic generator (`ENVMAP_CONVENTION`,
z-up: theta = arccos(z), phi = atan2(x, y), row 0 the zenith), so the map compares directly with `gt/env_*.exr`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Type

import torch
from jaxtyping import Float
from nerfstudio.configs.base_config import InstantiateConfig
from nerfstudio.field_components.activations import trunc_exp
from nerfstudio.field_components.encodings import NeRFEncoding
from nerfstudio.field_components.mlp import MLP
from torch import Tensor, nn

from nero_ns.components.encodings import IntegratedDirectionalEncoding
from nero_ns.synthetic.envmap import ENVMAP_CONVENTION, latlong_directions


def _radiance_mlp(in_dim: int, hidden_dim: int, num_layers: int, init_radiance: float) -> MLP:
    """MLP whose output goes through exp; the last bias starts at log(init_radiance) so the light starts grey."""
    mlp = MLP(
        in_dim=in_dim,
        num_layers=num_layers,
        layer_width=hidden_dim,
        out_dim=3,
        activation=nn.ReLU(),
        implementation="torch",
    )
    last = mlp.layers[-1]
    nn.init.normal_(last.weight, 0.0, 1e-3)
    nn.init.constant_(last.bias, math.log(init_radiance))
    return mlp


@dataclass
class EnvironmentLightConfig(InstantiateConfig):
    """Distant light: an MLP on the spherical-harmonics (IDE at zero roughness) encoding of the direction."""

    _target: Type = field(default_factory=lambda: EnvironmentLight)
    sh_degree: int = 5
    """IDE degree: harmonics l = 1, 2, 4, ..., 2^(degree-1) (NeRO uses 5)."""
    hidden_dim: int = 64
    """MLP width."""
    num_layers: int = 3
    """MLP depth."""
    init_radiance: float = 0.5
    """Linear radiance the light starts with in every direction."""


class EnvironmentLight(nn.Module):
    """Positive linear radiance arriving from infinitely far away along each direction."""

    convention = ENVMAP_CONVENTION

    def __init__(self, config: EnvironmentLightConfig) -> None:
        super().__init__()
        self.encoding = IntegratedDirectionalEncoding(degree=config.sh_degree)
        self.mlp = _radiance_mlp(
            self.encoding.get_out_dim(), config.hidden_dim, config.num_layers, config.init_radiance
        )

    def forward(self, directions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        """Radiance arriving from `directions` (unit)."""
        features = self.encoding(directions, torch.zeros_like(directions[..., :1]))
        return trunc_exp(self.mlp(features))

    @torch.no_grad()
    def environment_map(self, height: int) -> Float[Tensor, "height width 3"]:
        """The light as an H x 2H lat-long map of linear radiance, in the convention of `ENVMAP_CONVENTION`."""
        device = next(self.parameters()).device
        directions = torch.as_tensor(latlong_directions(height, 2 * height), dtype=torch.float32, device=device)
        return self.forward(directions)


@dataclass
class IndirectLightConfig(InstantiateConfig):
    """Light reflected by the object itself (NeRO's inner light): an MLP of position and direction."""

    _target: Type = field(default_factory=lambda: IndirectLight)
    num_frequencies: int = 6
    """Frequencies of the positional encoding of the point."""
    sh_degree: int = 4
    """IDE degree of the direction encoding."""
    hidden_dim: int = 64
    """MLP width."""
    num_layers: int = 3
    """MLP depth."""
    init_radiance: float = 0.2
    """Linear radiance the light starts with."""


class IndirectLight(nn.Module):
    """Positive linear radiance arriving at a surface point from a direction in which the object hides the sky."""

    def __init__(self, config: IndirectLightConfig) -> None:
        super().__init__()
        self.position_encoding = NeRFEncoding(
            in_dim=3,
            num_frequencies=config.num_frequencies,
            min_freq_exp=0.0,
            max_freq_exp=config.num_frequencies - 1,
            include_input=True,
        )
        self.direction_encoding = IntegratedDirectionalEncoding(degree=config.sh_degree)
        self.mlp = _radiance_mlp(
            self.position_encoding.get_out_dim() + self.direction_encoding.get_out_dim(),
            config.hidden_dim,
            config.num_layers,
            config.init_radiance,
        )

    def forward(self, points: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        """Radiance arriving at `points` from `directions` (unit)."""
        features = torch.cat(
            [
                self.position_encoding(points),
                self.direction_encoding(directions, torch.zeros_like(directions[..., :1])),
            ],
            dim=-1,
        )
        return trunc_exp(self.mlp(features))
