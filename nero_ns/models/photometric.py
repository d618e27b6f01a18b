"""The photometric term shared by both stages: the batch's colors in linear light, compared with a rendering."""

from __future__ import annotations

from typing import Dict, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from nero_ns.colors import srgb_to_linear

PhotometricLossKind = Literal["charbonnier", "l1"]


def linear_target(batch: Dict[str, Tensor], device: torch.device, inputs_are_srgb: bool) -> Float[Tensor, "n 3"]:
    """The batch's pixel colors as linear radiance (sRGB inputs are decoded; alpha, if any, is dropped)."""
    image = batch["image"].to(device)[..., :3]
    return srgb_to_linear(image) if inputs_are_srgb else image


def photometric_loss(
    prediction: Float[Tensor, "n 3"], target: Float[Tensor, "n 3"], kind: PhotometricLossKind
) -> Float[Tensor, ""]:
    """Mean Charbonnier (smooth L1, robust to the outliers of specular highlights) or L1 error."""
    residual = prediction - target
    if kind == "charbonnier":
        return torch.sqrt(residual**2 + 1e-6).mean()
    return residual.abs().mean()
