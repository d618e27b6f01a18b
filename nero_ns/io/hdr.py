"""HDR images (linear radiance) on disk: OpenEXR and Radiance .hdr, read and written with Mitsuba's Bitmap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from jaxtyping import Float

HDR_SUFFIXES = (".exr", ".hdr")
"""Image files taken as linear radiance and read with mitsuba's Bitmap."""


def is_hdr_image(path: Path) -> bool:
    """True for the formats read by `read_hdr_image`."""
    return path.suffix.lower() in HDR_SUFFIXES


def read_hdr_image(path: Path) -> Float[np.ndarray, "height width 3"]:
    """Linear float32 RGB of an OpenEXR or Radiance .hdr file (alpha dropped, gray expanded to RGB)."""
    import mitsuba as mi  # Bitmap needs no variant; imported here so LDR-only use never loads mitsuba.

    bitmap = mi.Bitmap(str(path)).convert(mi.Bitmap.PixelFormat.RGB, mi.Struct.Type.Float32, srgb_gamma=False)
    return np.array(bitmap)


def write_exr(path: Path, image: Float[np.ndarray, "height width 3"]) -> None:
    """Write a linear float RGB image as OpenEXR with Mitsuba (a variant must be set)."""
    import mitsuba as mi  # imported here, as in `read_hdr_image`

    mi.Bitmap(np.ascontiguousarray(image, dtype=np.float32)).write(str(path))
