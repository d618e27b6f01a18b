"""Procedural HDR environment maps and the one lat-long convention every relighting code path uses.

Convention (world frame is z-up; measured against Mitsuba 3's `envmap` emitter with `ENVMAP_TO_WORLD`):
a unit direction d = (x, y, z) has polar angle theta = arccos(z) from world +z and azimuth phi = atan2(x, y)
(phi = 0 at world +y, phi = pi/2 at world +x). In an H x W map, column j holds phi = 2 pi (j + 0.5) / W and
row i holds theta = pi * i / (H - 1) (row 0 is the zenith, the last row the nadir); values in between are
bilinear, wrapping around in phi. Values are linear radiance.
"""

from __future__ import annotations

from typing import Literal

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

EnvironmentStyle = Literal["day", "dusk"]


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


def _random_direction(rng: np.random.Generator, min_elevation_deg: float, max_elevation_deg: float) -> np.ndarray:
    elevation = np.deg2rad(rng.uniform(min_elevation_deg, max_elevation_deg))
    azimuth = rng.uniform(0.0, 2.0 * np.pi)
    return np.array([np.cos(elevation) * np.sin(azimuth), np.cos(elevation) * np.cos(azimuth), np.sin(elevation)])


def _angular_falloff(directions: np.ndarray, center: np.ndarray, radius_rad: float, softness_rad: float) -> np.ndarray:
    """1 inside a cone of `radius_rad` around `center`, fading smoothly to 0 over `softness_rad`."""
    angle = np.arccos(np.clip(directions @ center, -1.0, 1.0))
    return np.clip((radius_rad + softness_rad - angle) / softness_rad, 0.0, 1.0) ** 2


def procedural_environment(
    rng: np.random.Generator, height: int, style: EnvironmentStyle
) -> Float[np.ndarray, "height width 3"]:
    """Sky gradient + ground + a sun + bright softbox-like panels + colored patches, so reflections carry structure."""
    directions = latlong_directions(height, 2 * height)
    up = directions[..., 2:3]
    if style == "day":
        zenith, horizon, ground = np.array([0.25, 0.45, 0.9]), np.array([0.9, 0.95, 1.0]), np.array([0.25, 0.2, 0.16])
        sun_color, sun_elevation = np.array([1.0, 0.95, 0.85]), (30.0, 65.0)
    else:
        zenith, horizon, ground = np.array([0.15, 0.12, 0.35]), np.array([1.0, 0.55, 0.25]), np.array([0.12, 0.1, 0.12])
        sun_color, sun_elevation = np.array([1.0, 0.6, 0.3]), (5.0, 20.0)
    zenith = zenith * rng.uniform(0.8, 1.2, 3)
    sky = horizon + (zenith - horizon) * np.sqrt(np.clip(up, 0.0, 1.0))
    ground_shade = ground * (0.6 + 0.4 * np.clip(1.0 + up, 0.0, 1.0))
    radiance = np.where(up > 0, sky, ground_shade)

    sun = _random_direction(rng, *sun_elevation)
    radiance += sun_color * 300.0 * _angular_falloff(directions, sun, np.deg2rad(1.5), np.deg2rad(1.5))[..., None]
    radiance += sun_color * 2.0 * np.exp(-np.arccos(np.clip(directions @ sun, -1, 1)) / np.deg2rad(8.0))[..., None]

    for _ in range(int(rng.integers(3, 5))):
        panel = _random_direction(rng, -5.0, 70.0)
        tint = np.array([1.0, 1.0, 1.0]) + rng.uniform(-0.15, 0.15, 3)
        size = np.deg2rad(rng.uniform(6.0, 14.0))
        footprint = _angular_falloff(directions, panel, size, np.deg2rad(2.0))[..., None]
        radiance += tint * rng.uniform(6.0, 15.0) * footprint

    for _ in range(int(rng.integers(4, 7))):
        patch = _random_direction(rng, -60.0, 60.0)
        color = rng.dirichlet(np.ones(3) * 0.5) * 3.0
        size = np.deg2rad(rng.uniform(10.0, 25.0))
        radiance += color * rng.uniform(0.4, 1.2) * _angular_falloff(directions, patch, size, size)[..., None]
    return radiance.astype(np.float32)
