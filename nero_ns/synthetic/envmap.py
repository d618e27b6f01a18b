"""Procedural HDR environment maps for the synthetic scenes, in the lat-long convention of `nero_ns.io.latlong`."""

from __future__ import annotations

from typing import Literal

import numpy as np
from jaxtyping import Float

from nero_ns.io.latlong import latlong_directions

EnvironmentStyle = Literal["day", "dusk", "overcast", "indoor"]


def _random_direction(rng: np.random.Generator, min_elevation_deg: float, max_elevation_deg: float) -> np.ndarray:
    elevation = np.deg2rad(rng.uniform(min_elevation_deg, max_elevation_deg))
    azimuth = rng.uniform(0.0, 2.0 * np.pi)
    return np.array([np.cos(elevation) * np.sin(azimuth), np.cos(elevation) * np.cos(azimuth), np.sin(elevation)])


def _angular_falloff(directions: np.ndarray, center: np.ndarray, radius_rad: float, softness_rad: float) -> np.ndarray:
    """1 inside a cone of `radius_rad` around `center`, fading smoothly to 0 over `softness_rad`."""
    angle = np.arccos(np.clip(directions @ center, -1.0, 1.0))
    return np.clip((radius_rad + softness_rad - angle) / softness_rad, 0.0, 1.0) ** 2


def _add_colored_patches(
    rng: np.random.Generator,
    directions: np.ndarray,
    radiance: Float[np.ndarray, "height width 3"],
    elevation_range_deg: tuple[float, float],
    strength: float = 1.0,
) -> None:
    """Add (in place) a few soft, saturated blobs (trees, buildings, posters): color for reflections to carry."""
    for _ in range(int(rng.integers(4, 7))):
        patch = _random_direction(rng, *elevation_range_deg)
        color = strength * rng.dirichlet(np.ones(3) * 0.5) * 3.0
        size = np.deg2rad(rng.uniform(10.0, 25.0))
        radiance += color * rng.uniform(0.4, 1.2) * _angular_falloff(directions, patch, size, size)[..., None]


def _overcast_sky(rng: np.random.Generator, directions: np.ndarray) -> Float[np.ndarray, "height width 3"]:
    """No sun: the CIE overcast sky (zenith three times as bright as the horizon) with soft cloud variations, a
    dim ground and colored patches near the horizon. Low contrast: reflections carry little to lock onto."""
    up = directions[..., 2:3]
    zenith = rng.uniform(1.2, 1.8) * np.array([0.95, 0.97, 1.0])
    sky = zenith * (1.0 + 2.0 * np.clip(up, 0.0, 1.0)) / 3.0
    for _ in range(int(rng.integers(5, 9))):
        cloud = _random_direction(rng, 5.0, 80.0)
        size = np.deg2rad(rng.uniform(15.0, 35.0))
        sky = sky * (1.0 + rng.uniform(-0.3, 0.3) * _angular_falloff(directions, cloud, size, size)[..., None])
    ground = rng.uniform(0.12, 0.22) * np.array([0.9, 1.0, 0.85])
    radiance = np.where(up > 0, sky, ground)
    _add_colored_patches(rng, directions, radiance, (-10.0, 20.0))
    return radiance.astype(np.float32)


def _indoor_room(rng: np.random.Generator, directions: np.ndarray) -> Float[np.ndarray, "height width 3"]:
    """A dim room (walls, a brighter ceiling, a dark floor) lit by bright rectangular panels with sharp edges:
    softboxes and a window; posters as colored patches. Several strong sources, none as small as a sun."""
    up = directions[..., 2]
    elevation, azimuth = np.arcsin(np.clip(up, -1.0, 1.0)), np.arctan2(directions[..., 0], directions[..., 1])
    wall = rng.uniform(0.15, 0.3) * (np.array([1.0, 0.95, 0.85]) + rng.uniform(-0.05, 0.05, 3))
    radiance = np.where((up > 0.75)[..., None], 1.6 * wall, np.where((up < -0.3)[..., None], 0.4 * wall, wall))
    panels = [(rng.uniform(8.0, 25.0), np.array([1.0, 1.0, 1.0]) + rng.uniform(-0.1, 0.1, 3), rng.uniform(5.0, 15.0),
               rng.uniform(3.0, 10.0), rng.uniform(10.0, 70.0)) for _ in range(int(rng.integers(3, 6)))]
    panels.append((rng.uniform(4.0, 8.0), np.array([0.8, 0.9, 1.0]), 25.0, 15.0, rng.uniform(5.0, 20.0)))  # window
    for strength, tint, half_width_deg, half_height_deg, center_elevation_deg in panels:
        center_azimuth = rng.uniform(-np.pi, np.pi)
        across = np.angle(np.exp(1j * (azimuth - center_azimuth))) * np.cos(elevation)
        inside_width = np.clip((np.deg2rad(half_width_deg) - np.abs(across)) / np.deg2rad(0.5) + 0.5, 0.0, 1.0)
        along = np.abs(elevation - np.deg2rad(center_elevation_deg))
        inside_height = np.clip((np.deg2rad(half_height_deg) - along) / np.deg2rad(0.5) + 0.5, 0.0, 1.0)
        radiance = radiance + strength * tint * (inside_width * inside_height)[..., None]
    _add_colored_patches(rng, directions, radiance, (-20.0, 40.0), strength=0.3)
    return radiance.astype(np.float32)


def procedural_environment(
    rng: np.random.Generator, height: int, style: EnvironmentStyle
) -> Float[np.ndarray, "height width 3"]:
    """An HDR environment of the given style. day and dusk: sky gradient + ground + a sun + bright softbox-like
    panels + colored patches, so reflections carry structure; overcast and indoor: see their functions."""
    directions = latlong_directions(height, 2 * height)
    if style == "overcast":
        return _overcast_sky(rng, directions)
    if style == "indoor":
        return _indoor_room(rng, directions)
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

    _add_colored_patches(rng, directions, radiance, (-60.0, 60.0))
    return radiance.astype(np.float32)
