"""The one lat-long convention of environment maps that every code path uses (the learned light, exports, relighting,
the synthetic generator).

Convention (world frame is z-up; measured against Mitsuba 3's `envmap` emitter with `ENVMAP_TO_WORLD`):
a unit direction d = (x, y, z) has polar angle theta = arccos(z) from world +z and azimuth phi = atan2(x, y)
(phi = 0 at world +y, phi = pi/2 at world +x). In an H x W map, column j holds phi = 2 pi (j + 0.5) / W and
row i holds theta = pi * i / (H - 1) (row 0 is the zenith, the last row the nadir); values in between are
bilinear, wrapping around in phi. Values are linear radiance.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

ENVMAP_CONVENTION = (
    "lat-long, linear radiance, world z-up; direction d=(x,y,z): theta=arccos(z), phi=atan2(x,y) in [0,2pi) "
    "(phi=0 at +y, pi/2 at +x); an HxW map holds phi=2pi(j+0.5)/W in column j and theta=pi*i/(H-1) in row i "
    "(row 0 = zenith), bilinear in between, wrapping in phi; as Mitsuba 3 envmap with to_world rows "
    "[[1,0,0],[0,0,-1],[0,1,0]]"
)

# Rotation taking Mitsuba's envmap-local frame (y up, u = atan2(x, -z)) to our z-up world frame.
ENVMAP_TO_WORLD: Float[np.ndarray, "4 4"] = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


def latlong_directions(height: int, width: int) -> Float[np.ndarray, "height width 3"]:
    """World direction that each pixel of an H x W lat-long map holds."""
    theta = np.pi * np.arange(height) / (height - 1)
    phi = 2.0 * np.pi * (np.arange(width) + 0.5) / width
    theta, phi = np.meshgrid(theta, phi, indexing="ij")
    return np.stack([np.sin(theta) * np.sin(phi), np.sin(theta) * np.cos(phi), np.cos(theta)], axis=-1)


def sample_latlong(
    envmap: Float[np.ndarray, "height width 3"], directions: Float[np.ndarray, "*bs 3"]
) -> Float[np.ndarray, "*bs 3"]:
    """Bilinear look-up of radiance along world directions, exactly as the renderer does it."""
    height, width = envmap.shape[:2]
    directions = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    phi = np.mod(np.arctan2(directions[..., 0], directions[..., 1]), 2.0 * np.pi)
    theta = np.arccos(np.clip(directions[..., 2], -1.0, 1.0))
    column = phi / (2.0 * np.pi) * width - 0.5
    row = theta / np.pi * (height - 1)
    column0 = np.floor(column).astype(int)
    row0 = np.clip(np.floor(row).astype(int), 0, height - 2)
    column_weight = (column - column0)[..., None]
    row_weight = (row - row0)[..., None]
    left, right = np.mod(column0, width), np.mod(column0 + 1, width)
    top = envmap[row0, left] * (1 - column_weight) + envmap[row0, right] * column_weight
    bottom = envmap[row0 + 1, left] * (1 - column_weight) + envmap[row0 + 1, right] * column_weight
    return top * (1 - row_weight) + bottom * row_weight
