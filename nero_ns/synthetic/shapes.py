"""Procedural test objects, built with numpy/trimesh/scikit-image (nothing downloaded), centered at the origin
with a bounding radius of exactly 1 (the largest vertex distance from the origin), z up.

They span genus 0 to 3 and thin to thick parts: tube surfaces (knots, tori) are swept along curves, the rest is
marching cubes of a signed distance function (genus-2 shape, mug) or a displaced sphere (blob)."""

from __future__ import annotations

import functools
from typing import Callable, Dict, Literal

import numpy as np
import trimesh
from jaxtyping import Float
from skimage.measure import marching_cubes

ShapeName = Literal["sphere", "knot", "thick-knot", "thin-knot", "torus", "thin-torus", "genus2", "blob", "mug"]


def _unit_bounded(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Scale so that the farthest vertex is at distance 1 and make the faces point outward."""
    mesh.apply_scale(1.0 / np.linalg.norm(mesh.vertices, axis=1).max())
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def sphere_mesh() -> trimesh.Trimesh:
    """A plain sphere: the easiest case, every reflection is a distorted copy of the environment."""
    return _unit_bounded(trimesh.creation.icosphere(subdivisions=4))


def torus_knot_mesh(
    p: int = 2, q: int = 3, tube_radius: float = 0.45, segments: int = 320, ring_vertices: int = 24
) -> trimesh.Trimesh:
    """A tube along a (p, q) torus knot, tilted 50 degrees about x so that it stands up from a floor."""
    t = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    radius = 2.0 + np.cos(q * t)
    curve = np.stack([radius * np.cos(p * t), radius * np.sin(p * t), -np.sin(q * t)], axis=-1)
    tangent = np.roll(curve, -1, axis=0) - np.roll(curve, 1, axis=0)
    tangent /= np.linalg.norm(tangent, axis=-1, keepdims=True)
    # Offset from the torus core circle: never parallel to the tangent and periodic, so the frame closes up.
    offset = curve - 2.0 * np.stack([np.cos(p * t), np.sin(p * t), np.zeros_like(t)], axis=-1)
    normal = offset - (offset * tangent).sum(-1, keepdims=True) * tangent
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    binormal = np.cross(tangent, normal)
    angle = np.linspace(0.0, 2.0 * np.pi, ring_vertices, endpoint=False)
    ring = np.cos(angle)[None, :, None] * normal[:, None] + np.sin(angle)[None, :, None] * binormal[:, None]
    vertices = (curve[:, None] + tube_radius * ring).reshape(-1, 3)

    along, around = np.meshgrid(np.arange(segments), np.arange(ring_vertices), indexing="ij")
    a = along * ring_vertices + around
    b = ((along + 1) % segments) * ring_vertices + around
    c = ((along + 1) % segments) * ring_vertices + (around + 1) % ring_vertices
    d = along * ring_vertices + (around + 1) % ring_vertices
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.deg2rad(50.0), [1.0, 0.0, 0.0]))
    return _unit_bounded(mesh)


def blob_mesh() -> trimesh.Trimesh:
    """A lumpy star-shaped blob with two deep dimples: concave regions where the object reflects itself."""
    mesh = trimesh.creation.icosphere(subdivisions=5)
    directions = mesh.vertices / np.linalg.norm(mesh.vertices, axis=1, keepdims=True)
    x, y, z = directions.T
    radius = 1.0 + 0.15 * np.cos(2.0 * np.arctan2(y, x)) * (1.0 - z**2) + 0.12 * z**3 + 0.1 * x * y
    for axis, depth, width in (([0.8, -0.5, 0.3], 0.42, 0.5), ([-0.4, 0.6, -0.2], 0.3, 0.4)):
        axis = np.asarray(axis) / np.linalg.norm(axis)
        angle = np.arccos(np.clip(directions @ axis, -1.0, 1.0))
        radius -= depth * np.exp(-((angle / width) ** 2))
    mesh.vertices = directions * radius[:, None]
    return _unit_bounded(mesh)


def torus_mesh(minor_radius: float, tilt_deg: float = 30.0) -> trimesh.Trimesh:
    """A torus of major radius 1 (genus 1), tilted about x so that cameras see through its hole."""
    mesh = trimesh.creation.torus(major_radius=1.0, minor_radius=minor_radius, major_sections=160, minor_sections=40)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(np.deg2rad(tilt_deg), [1.0, 0.0, 0.0]))
    return _unit_bounded(mesh)


def _torus_sdf(points: Float[np.ndarray, "*bs 3"], major: float, minor: float) -> Float[np.ndarray, "*bs"]:
    """Signed distance to a torus around z through the origin."""
    ring = np.linalg.norm(points[..., :2], axis=-1) - major
    return np.sqrt(ring**2 + points[..., 2] ** 2) - minor


def _smooth_union(a: np.ndarray, b: np.ndarray, blend: float) -> np.ndarray:
    """Polynomial smooth minimum of two distances: a fillet of width `blend` where they meet."""
    h = np.clip(0.5 + 0.5 * (b - a) / blend, 0.0, 1.0)
    return b + (a - b) * h - blend * h * (1.0 - h)


def _sdf_mesh(
    sdf: Callable[[np.ndarray], np.ndarray], half_extent: float, resolution: int = 160
) -> trimesh.Trimesh:
    """Marching cubes of the zero level of `sdf` (negative inside) sampled on a cube grid of +-half_extent."""
    axis = np.linspace(-half_extent, half_extent, resolution)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    vertices, faces, _, _ = marching_cubes(sdf(grid), level=0.0, spacing=(axis[1] - axis[0],) * 3)
    mesh = trimesh.Trimesh(vertices - half_extent, faces)
    return _unit_bounded(mesh)


def genus2_mesh() -> trimesh.Trimesh:
    """Two thick tori fused side by side (genus 2), tilted 20 degrees: two holes and a saddle where they join."""
    rotation = trimesh.transformations.rotation_matrix(np.deg2rad(20.0), [1.0, 0.0, 0.0])[:3, :3]

    def sdf(points: np.ndarray) -> np.ndarray:
        local = points @ rotation  # rotate the field, i.e. the shape by `rotation`
        left = _torus_sdf(local + np.array([0.9, 0.0, 0.0]), 0.75, 0.3)
        right = _torus_sdf(local - np.array([0.9, 0.0, 0.0]), 0.75, 0.3)
        return _smooth_union(left, right, 0.15)

    return _sdf_mesh(sdf, 2.0)


def mug_mesh() -> trimesh.Trimesh:
    """A mug: an open cylindrical cup (thin walls, an inner cavity) on a flat base, with a thin handle (genus 1)."""

    def sdf(points: np.ndarray) -> np.ndarray:
        points = points + np.array([0.19, 0.0, 0.0])  # the bounding sphere of cup and handle at the origin
        radial = np.linalg.norm(points[..., :2], axis=-1)
        z = points[..., 2]
        outer = np.maximum(radial - 0.6, np.abs(z) - 0.6)
        cavity = np.maximum(radial - 0.5, -0.45 - z)
        cup = np.maximum(outer, -cavity)
        # The handle: the outer half of a thin torus in the xz plane, ending in the cup's wall.
        handle_points = np.stack([points[..., 0] - 0.62, points[..., 2], points[..., 1]], axis=-1)
        handle = np.maximum(_torus_sdf(handle_points, 0.3, 0.06), 0.55 - points[..., 0])
        return _smooth_union(cup, handle, 0.04)

    return _sdf_mesh(sdf, 0.9, resolution=128)


SHAPES: Dict[str, Callable[[], trimesh.Trimesh]] = {
    "sphere": sphere_mesh,
    "knot": torus_knot_mesh,
    "thick-knot": functools.partial(torus_knot_mesh, tube_radius=0.7),
    "thin-knot": functools.partial(torus_knot_mesh, tube_radius=0.25),
    "torus": functools.partial(torus_mesh, minor_radius=0.45),
    "thin-torus": functools.partial(torus_mesh, minor_radius=0.1),
    "genus2": genus2_mesh,
    "blob": blob_mesh,
    "mug": mug_mesh,
}


def make_shape(name: ShapeName) -> trimesh.Trimesh:
    """The named unit-bounded object mesh."""
    return SHAPES[name]()
