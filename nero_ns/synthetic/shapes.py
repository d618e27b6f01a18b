"""Procedural test objects, built with numpy/trimesh (nothing downloaded), centered at the origin with a
bounding radius of exactly 1 (the largest vertex distance from the origin)."""

from __future__ import annotations

from typing import Callable, Dict, Literal

import numpy as np
import trimesh

ShapeName = Literal["sphere", "knot", "blob"]


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


SHAPES: Dict[str, Callable[[], trimesh.Trimesh]] = {"sphere": sphere_mesh, "knot": torus_knot_mesh, "blob": blob_mesh}


def make_shape(name: ShapeName) -> trimesh.Trimesh:
    """The named unit-bounded object mesh."""
    return SHAPES[name]()
