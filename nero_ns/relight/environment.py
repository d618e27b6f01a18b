"""Environment maps for relighting: read any lat-long image as linear radiance, rotate it about the up axis.

Every map follows `nero_ns.io.latlong.ENVMAP_CONVENTION` (world z-up, phi = atan2(x, y)); Mitsuba places it
with `ENVMAP_TO_WORLD`. Rotating the environment by an angle moves the light that came from direction d to
R_z(angle) d (counter-clockwise seen from above).
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
from jaxtyping import Float

from nero_ns.colors import srgb_to_linear
from nero_ns.errors import NeroInputError
from nero_ns.io.hdr import is_hdr_image, read_hdr_image
from nero_ns.io.latlong import ENVMAP_TO_WORLD, sample_latlong

LDR_SUFFIXES = (".png", ".jpg", ".jpeg")
"""Environment images taken as sRGB and decoded to linear radiance."""


def load_environment(path: Path) -> Float[np.ndarray, "height width 3"]:
    """Linear float32 RGB radiance of a lat-long map (.exr/.hdr linear, .png/.jpg sRGB)."""
    path = Path(path)
    if not path.is_file():
        raise NeroInputError(f"{path}: environment map not found; pass an existing .exr/.hdr/.png/.jpg as --envmap")
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


def rotation_about_up(angle_deg: float) -> Float[np.ndarray, "4 4"]:
    """Rotation by `angle_deg` about world +z (counter-clockwise seen from above)."""
    angle = np.deg2rad(angle_deg)
    rotation = np.eye(4)
    rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    return rotation


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
