"""Jittered training rays go through uniform random points of their own pixel."""

from __future__ import annotations

import torch
from nerfstudio.cameras.cameras import Cameras

from nero_ns.datamanagers.ray_generators import JitteredRayGenerator

FOCAL, CX, CY = 20.0, 8.0, 6.0


def test_rays_fall_uniformly_inside_their_pixel() -> None:
    cameras = Cameras(camera_to_worlds=torch.eye(4)[None, :3], fx=FOCAL, fy=FOCAL, cx=CX, cy=CY, width=16, height=12)
    generator = JitteredRayGenerator(cameras)
    row, column, count = 3, 10, 4000
    torch.manual_seed(0)
    rays = generator(torch.tensor([[0, row, column]]).repeat(count, 1))
    directions = rays.directions
    # Back to pixel coordinates (OpenGL camera looking down -z with y up, as nerfstudio's pinhole).
    x = CX + FOCAL * directions[:, 0] / -directions[:, 2]
    y = CY - FOCAL * directions[:, 1] / -directions[:, 2]
    assert bool(((x >= column) & (x < column + 1) & (y >= row) & (y < row + 1)).all())
    for coordinate, start in ((x, column), (y, row)):
        assert abs(float(coordinate.mean()) - (start + 0.5)) < 0.02
        assert abs(float(coordinate.std()) - 12 ** -0.5) < 0.02  # uniform over a unit interval
