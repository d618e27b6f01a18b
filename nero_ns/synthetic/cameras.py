"""Camera poses and pinhole intrinsics for generated scenes.

Poses are nerfstudio camera-to-world matrices (OpenGL camera: x right, y up, looking down -z) in the z-up world
frame. Mitsuba's camera frame is (x left, y up, looking down +z), so its `to_world` is c2w @ diag(-1, 1, -1, 1).
Intrinsics are OPENCV pinhole without distortion, pixel (i, j) spanning [i, i+1] x [j, j+1], principal point at
the image center.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

OPENGL_TO_MITSUBA_CAMERA: Float[np.ndarray, "4 4"] = np.diag([-1.0, 1.0, -1.0, 1.0])


@dataclass(frozen=True)
class PinholeIntrinsics:
    """OPENCV pinhole intrinsics of square-pixel images with a centered principal point."""

    width: int
    height: int
    fov_x_deg: float

    @property
    def focal(self) -> float:
        return 0.5 * self.width / np.tan(0.5 * np.deg2rad(self.fov_x_deg))

    def as_transforms_fields(self) -> dict:
        """The intrinsics block of a nerfstudio transforms.json."""
        return {
            "camera_model": "OPENCV",
            "fl_x": self.focal,
            "fl_y": self.focal,
            "cx": 0.5 * self.width,
            "cy": 0.5 * self.height,
            "w": self.width,
            "h": self.height,
            "k1": 0.0,
            "k2": 0.0,
            "p1": 0.0,
            "p2": 0.0,
        }


def camera_distance_for_fill(radius: float, fov_x_deg: float, fill_fraction: float) -> float:
    """Distance at which a sphere of `radius` spans `fill_fraction` of the image width."""
    half_angle = np.arctan(fill_fraction * np.tan(0.5 * np.deg2rad(fov_x_deg)))
    return radius / np.sin(half_angle)


def look_at_c2w(eye: np.ndarray, target: np.ndarray, roll_rad: float = 0.0) -> Float[np.ndarray, "4 4"]:
    """OpenGL camera-to-world looking from `eye` at `target` with world +z as up, rolled about the view axis."""
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    right, up = np.cos(roll_rad) * right + np.sin(roll_rad) * up, np.cos(roll_rad) * up - np.sin(roll_rad) * right
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, -forward, eye
    return c2w


def orbit_cameras(
    rng: np.random.Generator,
    count: int,
    center: np.ndarray,
    radius: float,
    distance: float,
    elevation_range_deg: tuple[float, float],
) -> Float[np.ndarray, "count 4 4"]:
    """Cameras spread evenly (golden-angle spiral in a band of elevations) around `center`, with slight jitter of
    distance (5%), aim point (3% of the object radius) and roll (3 degrees)."""
    low, high = np.sin(np.deg2rad(elevation_range_deg[0])), np.sin(np.deg2rad(elevation_range_deg[1]))
    heights = low + (high - low) * (np.arange(count) + rng.uniform(0.2, 0.8, count)) / count
    azimuths = rng.uniform(0.0, 2.0 * np.pi) + np.pi * (3.0 - np.sqrt(5.0)) * np.arange(count)
    poses = []
    for height, azimuth in zip(heights, azimuths):
        horizontal = np.sqrt(1.0 - height**2)
        direction = np.array([horizontal * np.cos(azimuth), horizontal * np.sin(azimuth), height])
        eye = center + distance * rng.uniform(0.95, 1.05) * direction
        target = center + rng.normal(0.0, 0.03 * radius, 3)
        poses.append(look_at_c2w(eye, target, np.deg2rad(rng.uniform(-3.0, 3.0))))
    return np.stack(poses)
