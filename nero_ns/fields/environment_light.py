"""nero-material's lights: the distant environment (by direction) and NeRO's indirect "inner" light (by point and
direction).

Directions are unit vectors in the normalized frame, pointing from the object toward the light. The dataparser
normalizes with an identity rotation, so they are also directions of the input (world) frame, and
`EnvironmentLight.environment_map` uses the lat-long convention of the synthetic generator (`ENVMAP_CONVENTION`,
z-up: theta = arccos(z), phi = atan2(x, y), row 0 the zenith), so the map compares directly with `gt/env_*.exr`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Tuple, Type

import torch
from jaxtyping import Float
from nerfstudio.configs.base_config import InstantiateConfig
from nerfstudio.field_components.activations import trunc_exp
from nerfstudio.field_components.encodings import NeRFEncoding
from nerfstudio.field_components.mlp import MLP
from torch import Tensor, nn

from nero_ns.components.encodings import IntegratedDirectionalEncoding
from nero_ns.components.grid_lookup import bilinear_lookup
from nero_ns.io.latlong import ENVMAP_CONVENTION, latlong_directions


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
    texel_resolutions: Tuple[int, ...] = (16, 64, 256)
    """Rows of lat-long grids of log radiance (twice as many columns, `ENVMAP_CONVENTION`) added to the MLP's
    output. The MLP (harmonics up to l = 2^(sh_degree-1)) can shape one sharp peak but not detail all over the
    sphere; with it alone the metal knot of the material benchmark took roughness 0.58 (true 0.1) on one nero-shape
    geometry, explaining the photos with a blurred lobe. Empty: the MLP alone."""


class EnvironmentLight(nn.Module):
    """Positive linear radiance arriving from infinitely far away along each direction."""

    convention = ENVMAP_CONVENTION

    def __init__(self, config: EnvironmentLightConfig) -> None:
        super().__init__()
        self.encoding = IntegratedDirectionalEncoding(degree=config.sh_degree)
        self.mlp = _radiance_mlp(
            self.encoding.get_out_dim(), config.hidden_dim, config.num_layers, config.init_radiance
        )
        self.log_texels = nn.ParameterList(
            [nn.Parameter(torch.zeros(1, 3, rows, 2 * rows)) for rows in config.texel_resolutions]
        )

    def forward(self, directions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        """Radiance arriving from `directions` (unit)."""
        features = self.encoding(directions, torch.zeros_like(directions[..., :1]))
        log_radiance = self.mlp(features)
        if len(self.log_texels) > 0:
            log_radiance = log_radiance + self._texel_log_radiance(directions.reshape(-1, 3)).reshape(
                log_radiance.shape
            )
        return trunc_exp(log_radiance)

    def _texel_log_radiance(self, directions: Float[Tensor, "num 3"]) -> Float[Tensor, "num 3"]:
        """Sum of the lat-long grids at `directions`, bilinear, wrapping around in azimuth."""
        phi = torch.remainder(torch.atan2(directions[:, 0], directions[:, 1]), 2.0 * math.pi)
        theta = torch.acos(directions[:, 2].clamp(-1.0, 1.0))
        total = torch.zeros_like(directions)
        for grid in self.log_texels:
            width = grid.shape[-1]
            # One column copied onto each side, so texels at phi = 0 blend with those at phi = 2 pi.
            wrapped = torch.cat([grid[..., -1:], grid, grid[..., :1]], dim=-1)
            column = (phi / (2.0 * math.pi) * width + 1.0) / (width + 2.0) * 2.0 - 1.0
            coordinates = torch.stack([column, theta / math.pi * 2.0 - 1.0], dim=-1)
            total = total + bilinear_lookup(wrapped, coordinates)
        return total

    def texel_variation(self) -> Float[Tensor, ""]:
        """Total variation of the lat-long grids (mean absolute difference of log radiance between neighbouring
        texels, wrapping around in azimuth), summed over the grids. Texels that few light samples reach in a step
        get sparse, noisy gradients, and Adam turns those into a random walk of each channel: without this prior the
        blob of the material benchmark ended with neighbouring texels 0.33 apart in log radiance, coloured noise all
        over the sky."""
        total = torch.zeros((), device=self.mlp.layers[-1].bias.device)
        for grid in self.log_texels:
            across_azimuth = (torch.roll(grid, -1, dims=-1) - grid).abs().mean()
            across_elevation = (grid[..., 1:, :] - grid[..., :-1, :]).abs().mean()
            total = total + across_azimuth + across_elevation
        return total

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Checkpoints written before the texels existed load with zero texels (the MLP alone, as they were)."""
        if prefix + "mlp.layers.0.weight" in state_dict:
            for index, grid in enumerate(self.log_texels):
                state_dict.setdefault(f"{prefix}log_texels.{index}", torch.zeros_like(grid))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

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
