"""The lights the viewer's relighting panel offers besides the learned one: studio maps that nero-ns generates
itself (`procedural_environment`, fixed seeds, so every run shows the same four), and the lat-long maps of a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from jaxtyping import Float

from nero_ns.errors import NeroInputError
from nero_ns.io.hdr import HDR_SUFFIXES
from nero_ns.io.latlong import LDR_SUFFIXES
from nero_ns.synthetic.envmap import EnvironmentStyle, procedural_environment

STUDIO_LIGHTS: Dict[str, Tuple[EnvironmentStyle, int]] = {
    "Studio: softboxes": ("indoor", 4),
    "Studio: sunny sky": ("day", 1),
    "Studio: sunset": ("dusk", 2),
    "Studio: overcast": ("overcast", 3),
}
"""Menu name -> (style, seed) of the built-in maps."""

STUDIO_ROWS = 256
"""Rows of a built-in map (twice as many columns)."""

ENVIRONMENT_SUFFIXES = HDR_SUFFIXES + LDR_SUFFIXES
"""Files of a light folder that the menu lists (what `load_environment` reads)."""


def studio_light(name: str) -> Float[np.ndarray, "rows cols 3"]:
    """The built-in map of that menu name, linear radiance in `ENVMAP_CONVENTION`."""
    style, seed = STUDIO_LIGHTS[name]
    return procedural_environment(np.random.default_rng(seed), STUDIO_ROWS, style)


def environment_files(folder: Path) -> List[Path]:
    """The lat-long maps in `folder` (not its subfolders), by name."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise NeroInputError(
            f"{folder}: light folder not found; give a folder of .hdr/.exr/.png/.jpg lat-long maps"
        )
    return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in ENVIRONMENT_SUFFIXES)
