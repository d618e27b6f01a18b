"""Environment maps for relighting: placed in Mitsuba, resampled for Blender (read with `nero_ns.io.latlong`).

Every map follows `nero_ns.io.latlong.ENVMAP_CONVENTION` (world z-up, phi = atan2(x, y)); Mitsuba places it
with `ENVMAP_TO_WORLD`. Rotating the environment by an angle moves the light that came from direction d to
R_z(angle) d (counter-clockwise seen from above).
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from nero_ns.io.latlong import ENVMAP_TO_WORLD, rotation_about_up, sample_latlong


def environment_to_world(rotation_deg: float) -> Float[np.ndarray, "4 4"]:
    """Mitsuba envmap `to_world` of a map in our convention, rotated by `rotation_deg` about the up axis."""
    return rotation_about_up(rotation_deg) @ ENVMAP_TO_WORLD


def to_blender_latlong(
    radiance: Float[np.ndarray, "height width 3"], rotation_deg: float, strength: float
) -> Float[np.ndarray, "height width 3"]:
    """Resample a map (rotated, scaled) into Blender's equirectangular World convention, so that an Environment
    Texture node shows it in our z-up world without a Mapping node. Blender's pixel (i, j) of an H x W image holds
    azimuth a = 2 pi ((j + 0.5) / W - 0.5) = atan2(y, -x) and elevation pi (0.5 - (i + 0.5) / H)."""
    height, width = radiance.shape[:2]
    azimuth = 2.0 * np.pi * ((np.arange(width) + 0.5) / width - 0.5)
    elevation = np.pi * (0.5 - (np.arange(height) + 0.5) / height)
    elevation, azimuth = np.meshgrid(elevation, azimuth, indexing="ij")
    directions = np.stack(
        [-np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)], axis=-1
    )
    unrotated = directions @ rotation_about_up(rotation_deg)[:3, :3]  # R^T d, the direction before rotating
    return (strength * sample_latlong(radiance, unrotated)).astype(np.float32)
