"""Front-to-back alpha compositing of samples from several branches along the same rays."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def weights_from_alphas(alphas: Float[Tensor, "num_rays num_samples 1"]) -> Float[Tensor, "num_rays num_samples 1"]:
    """w_i = alpha_i * prod_{j<i} (1 - alpha_j) for samples already in depth order."""
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alphas[:, :1]), 1.0 - alphas + 1e-7], dim=1), dim=1)
    return alphas * transmittance[:, :-1]


def alphas_from_densities(
    densities: Float[Tensor, "num_rays num_samples 1"], deltas: Float[Tensor, "num_rays num_samples 1"]
) -> Float[Tensor, "num_rays num_samples 1"]:
    """Opacity of a segment of constant density: 1 - exp(-sigma * delta)."""
    return 1.0 - torch.exp(-densities * deltas)
