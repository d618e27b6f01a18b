"""Per-channel scale alignment: relit images and albedo are known only up to one scale per color channel (light
and albedo trade off exactly), so predictions are scaled by the least-squares factor before scoring."""

from __future__ import annotations

from typing import Optional

import numpy as np
from jaxtyping import Bool, Float


def per_channel_scale(
    prediction: Float[np.ndarray, "*bs channels"],
    target: Float[np.ndarray, "*bs channels"],
    mask: Optional[Bool[np.ndarray, "*bs"]] = None,
) -> Float[np.ndarray, "channels"]:
    """s_c minimizing sum over masked elements of (s_c * prediction_c - target_c)^2, i.e.
    sum(p t) / sum(p p); 1 for a channel whose prediction is all zero."""
    if mask is not None:
        prediction, target = prediction[mask], target[mask]
    prediction = prediction.reshape(-1, prediction.shape[-1]).astype(np.float64)
    target = target.reshape(-1, target.shape[-1]).astype(np.float64)
    energy = (prediction * prediction).sum(0)
    return np.where(energy > 0.0, (prediction * target).sum(0) / np.maximum(energy, 1e-300), 1.0)
