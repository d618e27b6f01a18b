"""Signed distance field inside the unit sphere: hash grid + small MLP, NeuS density, autograd normals."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Tuple, Type

import torch
from jaxtyping import Float
from nerfstudio.configs.base_config import InstantiateConfig
from torch import Tensor, nn

from nero_ns.components.encodings import CoarseToFineHashGrid


@dataclass
class NeroSDFFieldConfig(InstantiateConfig):
    """Configuration of the SDF field."""

    _target: Type = field(default_factory=lambda: NeroSDFField)
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
    start_levels: int = 4
    """Hash grid levels active at step 0 (coarse-to-fine)."""
    steps_per_level: int = 50
    """Steps between unlocking two hash grid levels."""
    hidden_dim: int = 64
    """Width of the SDF MLP."""
    num_layers: int = 2
    """Hidden layers of the SDF MLP."""
    feature_dim: int = 31
    """Geometry feature passed to the shading heads."""
    init_radius: float = 0.5
    """Radius of the sphere the SDF starts as; the MLP learns the residual from it."""
    init_variance: float = 0.3
    """Initial NeuS variance parameter; inv_s = exp(10 * variance)."""
    inv_s_floor_start: float = 20.0
    """Lowest sharpness inv_s allowed at step 0."""
    inv_s_floor_end: float = 300.0
    """Lowest sharpness inv_s allowed after inv_s_floor_steps (geometric growth in between)."""
    inv_s_floor_steps: int = 1000
    """Steps over which the sharpness floor rises. Without a rising floor, short runs on shiny scenes let the
    learned inv_s fall and the object turns into a translucent haze the far field shows through."""
    hash_implementation: Literal["tcnn", "torch"] = "tcnn"
    """Hash grid backend: tcnn when importable (falls back to torch automatically), or torch."""


class NeroSDFField(nn.Module):
    """What is at a point inside the sphere: signed distance and a geometry feature."""

    config: NeroSDFFieldConfig

    def __init__(self, config: NeroSDFFieldConfig) -> None:
        super().__init__()
        self.config = config
        self.encoding = CoarseToFineHashGrid(
            num_levels=config.num_levels,
            min_res=config.min_res,
            max_res=config.max_res,
            log2_hashmap_size=config.log2_hashmap_size,
            features_per_level=config.features_per_level,
            start_levels=config.start_levels,
            steps_per_level=config.steps_per_level,
            implementation=config.hash_implementation,
        )
        dims = [3 + self.encoding.get_out_dim()] + [config.hidden_dim] * config.num_layers + [1 + config.feature_dim]
        self.layers = nn.ModuleList(nn.Linear(d_in, d_out) for d_in, d_out in zip(dims[:-1], dims[1:]))
        self.activation = nn.Softplus(beta=100)
        self.variance = nn.Parameter(torch.tensor(config.init_variance))
        self.register_buffer("inv_s_floor", torch.tensor(config.inv_s_floor_start))
        self._geometric_init()

    def _geometric_init(self) -> None:
        """Start as the sphere |x| - init_radius exactly: the MLP is a residual on top of that analytic SDF.

        Hidden layers use the geometric initialization of Atzmon & Lipman (so features vary smoothly in space);
        the SDF row of the last layer starts at zero, so the initial SDF and its unit gradient are exact
        whatever the MLP width, and hash features start muted.
        """
        for index, layer in enumerate(self.layers):
            nn.init.normal_(layer.weight, 0.0, math.sqrt(2.0) / math.sqrt(layer.out_features))
            nn.init.zeros_(layer.bias)
            if index == 0:
                nn.init.zeros_(layer.weight[:, 3:])
        with torch.no_grad():
            self.layers[-1].weight[0].zero_()

    def set_step(self, step: int) -> None:
        """Advance the coarse-to-fine schedule of the hash grid and the sharpness floor."""
        self.encoding.set_step(step)
        start, end = self.config.inv_s_floor_start, self.config.inv_s_floor_end
        progress = min(1.0, step / max(self.config.inv_s_floor_steps, 1))
        self.inv_s_floor.fill_(start * (end / start) ** progress)

    def forward(self, positions: Float[Tensor, "*bs 3"]) -> Tuple[Float[Tensor, "*bs 1"], Float[Tensor, "*bs feat"]]:
        """Signed distance and geometry feature at `positions` (normalized frame)."""
        hidden = torch.cat([positions, self.encoding(positions)], dim=-1)
        for index, layer in enumerate(self.layers):
            hidden = layer(hidden)
            if index < len(self.layers) - 1:
                hidden = self.activation(hidden)
        sphere = positions.norm(dim=-1, keepdim=True) - self.config.init_radius
        return sphere + hidden[..., :1], hidden[..., 1:]

    def get_sdf(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 1"]:
        """Signed distance only."""
        return self.forward(positions)[0]

    def sdf_feature_gradient(
        self, positions: Float[Tensor, "*bs 3"], create_graph: bool
    ) -> Tuple[Float[Tensor, "*bs 1"], Float[Tensor, "*bs feat"], Float[Tensor, "*bs 3"]]:
        """Signed distance, feature and the SDF gradient by autograd (also under torch.no_grad, for rendering)."""
        with torch.enable_grad():
            positions = positions.detach().requires_grad_(True)
            sdf, feature = self.forward(positions)
            (gradient,) = torch.autograd.grad(
                sdf, positions, torch.ones_like(sdf), create_graph=create_graph, retain_graph=create_graph
            )
        if not create_graph:
            sdf, feature = sdf.detach(), feature.detach()
        return sdf, feature, gradient

    def inv_s(self) -> Float[Tensor, "1"]:
        """NeuS sharpness 1/s of the logistic density: learned, but never below the scheduled floor."""
        return torch.maximum(torch.exp(self.variance * 10.0), self.inv_s_floor).clamp(max=1e6)

    def get_alpha(
        self,
        sdf: Float[Tensor, "*bs 1"],
        gradient: Float[Tensor, "*bs 3"],
        directions: Float[Tensor, "*bs 3"],
        deltas: Float[Tensor, "*bs 1"],
        cos_anneal_ratio: float,
    ) -> Float[Tensor, "*bs 1"]:
        """NeuS opacity of each sample from its SDF, the SDF slope along the ray and the sample length."""
        inv_s = self.inv_s()
        true_cos = (directions * gradient).sum(-1, keepdim=True)
        # Annealed from "always entering the surface" (-|cos|) to the true cosine: stabilizes early training.
        iter_cos = -(
            torch.relu(-true_cos * 0.5 + 0.5) * (1.0 - cos_anneal_ratio) + torch.relu(-true_cos) * cos_anneal_ratio
        )
        sdf_front = sdf - iter_cos * deltas * 0.5
        sdf_back = sdf + iter_cos * deltas * 0.5
        cdf_front = torch.sigmoid(sdf_front * inv_s)
        cdf_back = torch.sigmoid(sdf_back * inv_s)
        return ((cdf_front - cdf_back + 1e-5) / (cdf_front + 1e-5)).clamp(0.0, 1.0)
