"""Triangle meshes on disk: reading any format trimesh reads, and writing glTF in the input frame's orientation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import trimesh
from jaxtyping import Float

from nero_ns.errors import NeroInputError


def load_mesh(path: Path, keep_vertices: bool = False) -> trimesh.Trimesh:
    """A triangle mesh from any format trimesh reads (scenes are flattened into one mesh).

    `keep_vertices` keeps the vertices exactly as stored (no merging), so per-vertex arrays saved beside the mesh
    stay aligned with them.
    """
    if not path.is_file():
        raise NeroInputError(f"{path}: mesh file not found; pass a .ply/.obj/.glb/.stl triangle mesh")
    try:
        mesh = trimesh.load(path, force="mesh", process=not keep_vertices)
    except Exception as error:  # trimesh raises many types for unreadable files
        raise NeroInputError(f"{path}: trimesh cannot read it ({error}); pass a .ply/.obj/.glb/.stl mesh") from error
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0 or mesh.area <= 0.0:
        raise NeroInputError(f"{path}: has no triangles (a point cloud?); pass a triangle mesh")
    return mesh


GLTF_FROM_INPUT: Float[np.ndarray, "4 4"] = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
"""glTF is y-up and its importers (Blender's among them) turn +y back into +z: writing (x, z, -y) makes the file
open in the input coordinates in Blender, and a z-up object stand upright in glTF viewers."""


def rotated(mesh: trimesh.Trimesh, transform: Float[np.ndarray, "4 4"]) -> trimesh.Trimesh:
    """`mesh` with its vertices and vertex normals (stored or computed) turned by the rotation `transform`; the
    faces and the visual (colors, UVs, material) are kept."""
    rotation = transform[:3, :3]
    return trimesh.Trimesh(
        mesh.vertices @ rotation.T, mesh.faces, vertex_normals=mesh.vertex_normals @ rotation.T, visual=mesh.visual,
        process=False,
    )


def write_gltf(mesh: trimesh.Trimesh, path: Path) -> None:
    """Write `mesh` (UVs, materials and normals included) as a .glb in glTF's y-up convention (GLTF_FROM_INPUT)."""
    rotated(mesh, GLTF_FROM_INPUT).export(path)
