"""`nero-process check`'s doubts about a COLMAP camera: what a registration bent by a repeating pattern gave."""

from __future__ import annotations

import numpy as np
import pytest
from nerfstudio.data.utils.colmap_parsing_utils import Camera

from nero_ns.process.check import camera_doubts


def camera(model: str, *params: float) -> Camera:
    return Camera(id=1, model=model, width=256, height=256, params=np.array(params))


def test_a_plausible_camera_raises_no_doubt():
    # The scene set's 40-degree lens at 256 px: f = 128 / tan(20 deg) = 352 px.
    assert camera_doubts(camera("OPENCV", 352.0, 350.0, 128.0, 128.0, -0.01, 0.0, 0.0, 0.0)) == []
    assert camera_doubts(camera("SIMPLE_RADIAL", 352.0, 128.0, 128.0, -0.05)) == []
    # A fisheye may see wider than any perspective lens.
    assert camera_doubts(camera("OPENCV_FISHEYE", 60.0, 60.0, 128.0, 128.0, 0.0, 0.0, 0.0, 0.0)) == []


@pytest.mark.parametrize(
    "bent, says",
    [
        # Measured: COLMAP's OPENCV camera after registering a mirror torus on a regular checker (docs/data.md):
        # pixels far from square, and tangential distortion.
        (camera("OPENCV", 233.5, 190.5, 128.0, 128.0, -0.044, 0.013, 0.097, 0.069), ["23% apart", "edge by 20%"]),
        # ... its SIMPLE_RADIAL cameras with guided matching there, in two runs: no lens sees 145 degrees, and a
        # radial distortion that bends the edge by a tenth.
        (camera("SIMPLE_RADIAL", 40.0, 128.0, 128.0, 0.0), ["field of view of 145 degrees"]),
        (camera("SIMPLE_RADIAL", 156.0, 128.0, 128.0, -0.142), ["edge by 10%"]),
    ],
)
def test_a_bent_camera_is_doubted(bent, says):
    doubts = camera_doubts(bent)
    assert len(doubts) == len(says) and all(said in doubt for said, doubt in zip(says, doubts)), doubts
