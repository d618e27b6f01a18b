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


def camera_center_errors(
    found: Float[np.ndarray, "num_cameras 3"], target: Float[np.ndarray, "num_cameras 3"]
) -> Float[np.ndarray, "num_cameras"]:
    """How far each of the `found` camera centers (e.g. COLMAP's) lies from its `target` (e.g. the generator's),
    after the similarity that maps the found ones best onto the targets (Umeyama: scale, rotation, translation), in
    units of the targets' median distance to their mean (about the camera's distance to the object)."""
    found, target = found.astype(np.float64), target.astype(np.float64)
    found_mean, target_mean = found.mean(0), target.mean(0)
    u, singular, vt = np.linalg.svd((target - target_mean).T @ (found - found_mean))
    flip = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ flip @ vt
    scale = np.trace(np.diag(singular) @ flip) / ((found - found_mean) ** 2).sum()
    aligned = scale * (found - found_mean) @ rotation.T + target_mean
    return np.linalg.norm(aligned - target, axis=1) / np.median(np.linalg.norm(target - target_mean, axis=1))
