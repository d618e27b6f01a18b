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


SATURATED = 0.999
"""Linear value at or above which a channel of an sRGB photo is taken as clipped by the camera (255 decodes to 1)."""


def photometric_loss(
    prediction: Float[Tensor, "n 3"],
    target: Float[Tensor, "n 3"],
    kind: PhotometricLossKind,
    clipped_highlights: bool = False,
    charbonnier_epsilon: float = 1e-3,
) -> Float[Tensor, ""]:
    """Mean Charbonnier (smooth L1, robust to the outliers of specular highlights) or L1 error.

    With `clipped_highlights`, a target channel at `SATURATED` or above only says the light reached the camera's
    white: a rendering brighter than that is not penalized there, one darker is. Without it a sun's highlight,
    clipped in the photos, pulls the light and the lobe toward a broad, dim highlight of value 1. The Charbonnier is
    quadratic for residuals below `charbonnier_epsilon` and linear above."""
    residual = prediction - target
    if clipped_highlights:
        residual = torch.where(target >= SATURATED, residual.clamp(max=0.0), residual)
    if kind == "charbonnier":
        return torch.sqrt(residual**2 + charbonnier_epsilon**2).mean()
    return residual.abs().mean()
