"""sRGB <-> linear conversion (IEC 61966-2-1), the one implementation used everywhere."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


def srgb_to_linear(srgb: ArrayT) -> ArrayT:
    """Decode sRGB-encoded values in [0, 1] to linear radiance."""
    if isinstance(srgb, torch.Tensor):
        return torch.where(srgb <= 0.04045, srgb / 12.92, ((srgb.clamp(min=0.0) + 0.055) / 1.055) ** 2.4)
    return np.where(srgb <= 0.04045, srgb / 12.92, ((np.clip(srgb, 0.0, None) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: ArrayT, clip: bool = True) -> ArrayT:
    """Encode linear radiance to sRGB; values above 1 are clipped first unless `clip` is False (then the curve goes
    on above 1, as a loss on HDR values needs)."""
    if isinstance(linear, torch.Tensor):
        clipped = linear.clamp(0.0, 1.0) if clip else linear.clamp(min=0.0)
        return torch.where(clipped <= 0.0031308, clipped * 12.92, 1.055 * clipped.clamp(min=1e-8) ** (1 / 2.4) - 0.055)
    clipped = np.clip(linear, 0.0, 1.0 if clip else None)
    return np.where(clipped <= 0.0031308, clipped * 12.92, 1.055 * np.maximum(clipped, 1e-8) ** (1 / 2.4) - 0.055)
