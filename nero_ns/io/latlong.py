"""The one lat-long convention of environment maps that every code path uses (the learned light, exports, relighting,
the synthetic generator, the viewer's lights), and reading such a map from any image file.

Convention (world frame is z-up; measured against Mitsuba 3's `envmap` emitter with `ENVMAP_TO_WORLD`):
a unit direction d = (x, y, z) has polar angle theta = arccos(z) from world +z and azimuth phi = atan2(x, y)
(phi = 0 at world +y, phi = pi/2 at world +x). In an H x W map, column j holds phi = 2 pi (j + 0.5) / W and
row i holds theta = pi * i / (H - 1) (row 0 is the zenith, the last row the nadir); values in between are
bilinear, wrapping around in phi. Values are linear radiance.
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
from jaxtyping import Float

from nero_ns.colors import srgb_to_linear
from nero_ns.errors import NeroInputError
from nero_ns.io.hdr import is_hdr_image, read_hdr_image

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


def rotation_about_up(angle_deg: float) -> Float[np.ndarray, "4 4"]:
    """Rotation by `angle_deg` about world +z (counter-clockwise seen from above): turning an environment by that
    angle moves the light that came from direction d to R d."""
    angle = np.deg2rad(angle_deg)
    rotation = np.eye(4)
    rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    return rotation


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


LDR_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Environment images taken as sRGB and decoded to linear radiance."""


def load_environment(path: Path) -> Float[np.ndarray, "height width 3"]:
    """Linear float32 RGB radiance of a lat-long map (.exr/.hdr linear, .png/.jpg sRGB)."""
    path = Path(path)
    if not path.is_file():
        raise NeroInputError(f"{path}: environment map not found; pass an existing .exr/.hdr/.png/.jpg lat-long map")
    suffix = path.suffix.lower()
    if not (is_hdr_image(path) or suffix in LDR_SUFFIXES):
        raise NeroInputError(f"{path}: unsupported environment format {suffix!r}; pass a .exr/.hdr/.png/.jpg file")
    try:
        if is_hdr_image(path):
            radiance = read_hdr_image(path)
        else:
            pixels = np.asarray(iio.imread(path))
            if pixels.ndim == 2:
                pixels = np.repeat(pixels[..., None], 3, axis=-1)
            scale = float(np.iinfo(pixels.dtype).max) if np.issubdtype(pixels.dtype, np.integer) else 1.0
            radiance = srgb_to_linear(pixels[..., :3].astype(np.float64) / scale)
    except NeroInputError:
        raise
    except Exception as error:  # Mitsuba and imageio raise many types for corrupt files
        raise NeroInputError(f"{path}: cannot read it as an image ({error}); pass a valid lat-long map") from error
    if radiance.ndim != 3 or radiance.shape[0] < 2 or radiance.shape[1] < 2:
        raise NeroInputError(f"{path}: not a lat-long image (shape {radiance.shape}); pass an H x W RGB map")
    return np.ascontiguousarray(radiance, dtype=np.float32)
