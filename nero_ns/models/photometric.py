"""The photometric term shared by both stages: the batch's colors in linear light, compared with a rendering."""

from __future__ import annotations

from typing import Dict, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from nero_ns.colors import linear_to_srgb, srgb_to_linear

PhotometricLossKind = Literal["charbonnier", "l1"]
PhotometricSpace = Literal["linear", "srgb"]


def linear_target(batch: Dict[str, Tensor], device: torch.device, inputs_are_srgb: bool) -> Float[Tensor, "n 3"]:
    """The batch's pixel colors as linear radiance (sRGB inputs are decoded; alpha, if any, is dropped)."""
    image = batch["image"].to(device)[..., :3]
    return srgb_to_linear(image) if inputs_are_srgb else image


def in_loss_space(linear: Float[Tensor, "n 3"], space: PhotometricSpace) -> Float[Tensor, "n 3"]:
    """Linear colours as a photometric loss in `space` compares them: as they are, or sRGB-encoded (not clipped, so
    HDR values above 1 keep their differences)."""
    return linear_to_srgb(linear, clip=False) if space == "srgb" else linear


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


def split_estimate_loss(
    first: Float[Tensor, "n 3"],
    second: Float[Tensor, "n 3"],
    target: Float[Tensor, "n 3"],
    kind: PhotometricLossKind,
    clipped_highlights: bool = False,
    charbonnier_epsilon: float = 1e-3,
    split_mult: float = 1.0,
    joint_mult: float = 1.0,
) -> Float[Tensor, ""]:
    """`photometric_loss` of the mean of two independent Monte Carlo estimates, whose gradient is `joint_mult` x its
    own plus `split_mult` x a split gradient: each estimate's derivative weighted by the loss's slope at the other's
    residual.

    With one estimate, a sample that meets a small bright light both raises the rendering and sets the sign of the
    gradient it sends to that light: the residual turns positive exactly when the light was met, so a robust loss
    pulls the light down wherever few samples find it. The slope of the independent other half has no such tie: in
    expectation the split gradient is E[slope(residual)] times the derivative of the mean rendering. Alone it lets a
    rarely met light grow past the photos (the median of a half leaves it out), hence the sum by default. Where the
    loss is quadratic (residuals within the Charbonnier epsilon) the split gradient alone (`joint_mult` 0) is an
    unbiased gradient of the squared error of the expected rendering, which the joint one is not: it also lowers
    the estimate's variance. The value is the loss of the mean, for the logs."""
    mean = (first + second) / 2.0
    loss = photometric_loss(mean, target, kind, clipped_highlights, charbonnier_epsilon)

    def slope(estimate: Tensor) -> Tensor:
        """The loss's derivative per element at `estimate` (times the element count), by autograd of the loss itself."""
        probe = estimate.detach().requires_grad_(True)
        with torch.enable_grad():
            value = photometric_loss(probe, target, kind, clipped_highlights, charbonnier_epsilon) * probe.numel()
            return torch.autograd.grad(value, probe)[0]

    # d(split)/d(first) = slope(second) / (2 n), as d(loss)/d(first) would be with the slope at the mean.
    split = (slope(second) * first + slope(first) * second).mean() / 2.0
    # Value: the loss of the mean; gradient: joint_mult x its own + split_mult x the split one.
    return loss.detach() + joint_mult * (loss - loss.detach()) + split_mult * (split - split.detach())

