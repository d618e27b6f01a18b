"""Signed distance field inside the unit sphere: hash grid + small MLP, NeuS density, exact normals."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Tuple, Type

import torch
from jaxtyping import Float
from nerfstudio.configs.base_config import InstantiateConfig
from torch import Tensor, nn

from nero_ns.components.encodings import CoarseToFineHashGrid
from nero_ns.components.hash_grid import HashGridOptions
from nero_ns.io.configs import DefaultsForNewFields

GradientMode = Literal["analytic", "autograd", "finite-difference"]


@dataclass
class NeroSDFFieldConfig(DefaultsForNewFields, HashGridOptions, InstantiateConfig):
    """Configuration of the SDF field (with tinycudann's grid, its gradient is always autograd's)."""

    _target: Type = field(default_factory=lambda: NeroSDFField)
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
    init_radius: float = 0.8
    """Radius of the sphere the SDF starts as; the MLP learns the residual from it. Just inside the object's sphere
    (radius 0.9, dataparser.object-radius): NeuS carves a surface that stands in front of the object (the photos
    show what lies behind it) much sooner than it grows one out to parts that lie beyond it (docs/nero-shape.md)."""
    init_variance: float = 0.3
    """Initial NeuS variance parameter; inv_s = exp(10 * variance)."""
    inv_s_floor_start: float = 20.0
    """Lowest sharpness inv_s allowed at step 0."""
    inv_s_floor_end: float = 300.0
    """Lowest sharpness inv_s allowed after inv_s_floor_steps (geometric growth in between)."""
    inv_s_floor_steps: int = 1000
    """Steps over which the sharpness floor rises. Without a rising floor, short runs on shiny scenes let the
    learned inv_s fall and the object turns into a translucent haze the far field shows through."""
    gradient_mode: GradientMode = "analytic"
    """How the SDF gradient (normals, eikonal loss) is computed. analytic: exactly, in the forward pass (the MLP's
    derivative written out layer by layer, then the hash grid's trilinear derivative), so a training step needs one
    ordinary backward pass; autograd: the same numbers from torch.autograd.grad with create_graph and a double
    backward (a little slower on our grid, and the only way with tinycudann's); finite-difference: central differences of the
    SDF (six more evaluations, several times slower on a CPU) with a step of half a cell of the finest unlocked level,
    smoothing the gradient early in training."""


class NeroSDFField(nn.Module):
    """What is at a point inside the sphere: signed distance and a geometry feature."""

    config: NeroSDFFieldConfig

    def __init__(self, config: NeroSDFFieldConfig) -> None:
        super().__init__()
        self.config = config
        self.encoding = CoarseToFineHashGrid(
            **config.grid_sizes(),
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

    @property
    def effective_gradient_mode(self) -> GradientMode:
        """The gradient mode in use: the analytic one needs our PyTorch grid, so with tinycudann it is autograd."""
        if self.config.gradient_mode == "analytic" and not self.encoding.supports_jacobian:
            return "autograd"
        return self.config.gradient_mode

    def forward(self, positions: Float[Tensor, "*bs 3"]) -> Tuple[Float[Tensor, "*bs 1"], Float[Tensor, "*bs feat"]]:
        """Signed distance and geometry feature at `positions` (normalized frame)."""
        hidden = torch.cat([positions, self.encoding(positions)[0]], dim=-1)
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
        """Signed distance, feature and SDF gradient; with `create_graph` all three are differentiable with respect
        to the field's parameters (training), otherwise detached (rendering, also under torch.no_grad)."""
        mode = self.effective_gradient_mode
        with torch.set_grad_enabled(create_graph or mode == "autograd"):
            if mode == "analytic":
                sdf, feature, gradient = self._forward_with_gradient(positions.detach())
            elif mode == "finite-difference":
                sdf, feature = self.forward(positions.detach())
                gradient = self._finite_difference_gradient(positions.detach())
            else:
                positions = positions.detach().requires_grad_(True)
                sdf, feature = self.forward(positions)
                (gradient,) = torch.autograd.grad(
                    sdf, positions, torch.ones_like(sdf), create_graph=create_graph, retain_graph=create_graph
                )
        if not create_graph:
            sdf, feature, gradient = sdf.detach(), feature.detach(), gradient.detach()
        return sdf, feature, gradient

    def _forward_with_gradient(
        self, positions: Float[Tensor, "*bs 3"]
    ) -> Tuple[Float[Tensor, "*bs 1"], Float[Tensor, "*bs feat"], Float[Tensor, "*bs 3"]]:
        """SDF, feature and exact SDF gradient as ordinary tensors of the forward pass, so training needs no backward
        pass through a backward pass. The SDF is one output of the MLP, so its derivative with respect to the MLP's
        input is written out layer by layer from the output back (a row vector times each weight, times each
        Softplus slope): one narrow product per layer instead of three for derivatives carried forward along x, y
        and z. The grid's Jacobian then maps the feature part of that derivative to space."""
        features, feature_jacobian = self.encoding(positions, with_jacobian=True)
        assert feature_jacobian is not None
        hidden = torch.cat([positions, features], dim=-1)
        slopes = []
        for index, layer in enumerate(self.layers):
            hidden = layer(hidden)
            if index < len(self.layers) - 1:
                slopes.append(torch.sigmoid(self.activation.beta * hidden))  # derivative of Softplus(beta)
                hidden = self.activation(hidden)
        input_gradient = self.layers[-1].weight[0]  # d(SDF residual) / d(last hidden layer)
        for layer, slope in zip(reversed(self.layers[:-1]), reversed(slopes)):
            input_gradient = (input_gradient * slope) @ layer.weight
        position_part, feature_part = input_gradient[..., :3], input_gradient[..., 3:]
        grid_part = torch.matmul(feature_jacobian, feature_part[..., None])[..., 0]  # (*bs, 3, F) x (*bs, F)
        norm = positions.norm(dim=-1, keepdim=True)
        sphere_gradient = positions / norm.clamp(min=1e-12)
        sdf = norm - self.config.init_radius + hidden[..., :1]
        return sdf, hidden[..., 1:], sphere_gradient + position_part + grid_part

    def _finite_difference_gradient(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        """Central differences of the SDF along x, y, z with a step of half a cell of the finest unlocked level (in
        the [-1, 1] frame: 1 / resolution), so the gradient sees the detail the grid can hold and no finer."""
        step = 1.0 / self.encoding.finest_active_resolution()
        offsets = torch.eye(3, dtype=positions.dtype, device=positions.device) * step
        probes = positions[..., None, None, :] + torch.stack([offsets, -offsets])  # (*bs, 2, 3, 3)
        sdf = self.get_sdf(probes)[..., 0]  # (*bs, 2, 3)
        return (sdf[..., 0, :] - sdf[..., 1, :]) / (2.0 * step)

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
