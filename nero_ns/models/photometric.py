"""The photometric term shared by both stages: the batch's colors in linear light, compared with a rendering."""

from __future__ import annotations

from typing import Dict, Literal, Optional

import torch
from jaxtyping import Float
from torch import Tensor

from nero_ns.colors import srgb_to_linear

PhotometricLossKind = Literal["charbonnier", "l1", "split-l2"]


def linear_target(batch: Dict[str, Tensor], device: torch.device, inputs_are_srgb: bool) -> Float[Tensor, "n 3"]:
    """The batch's pixel colors as linear radiance (sRGB inputs are decoded; alpha, if any, is dropped)."""
    image = batch["image"].to(device)[..., :3]
    return srgb_to_linear(image) if inputs_are_srgb else image


def photometric_loss(
    prediction: Float[Tensor, "n 3"],
    target: Float[Tensor, "n 3"],
    kind: PhotometricLossKind,
    independent_prediction: Optional[Float[Tensor, "n 3"]] = None,
) -> Float[Tensor, ""]:
    """Mean Charbonnier (smooth L1, robust to the outliers of specular highlights) or L1 error, or 'split-l2'.

    'split-l2' is for Monte Carlo renders: the mean product of the errors of two independent estimates
    (`independent_prediction`; the prediction itself when not given, plain squared error) is an unbiased estimate of
    the squared error of the noise-free rendering, and so is its gradient. A loss on one noisy estimate is not: the
    squared error adds the estimate's variance, which the gradient then lowers, and a robust loss fits the median
    of a skewed estimate, so rare bright samples (a sun) count for little. Divided by twice the root of its
    (detached) value, its gradient is that of the root-mean-square error: the scale of the other kinds."""
    residual = prediction - target
    if kind == "split-l2":
        other = residual if independent_prediction is None else independent_prediction - target
        squared = (residual * other).mean()
        return squared / (2.0 * squared.detach().abs().sqrt().clamp(min=1e-4))
    if kind == "charbonnier":
        return torch.sqrt(residual**2 + 1e-6).mean()
    return residual.abs().mean()
