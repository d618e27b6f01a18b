"""Mesh of a nero-shape model: marching cubes of its SDF, cleaning, optional decimation, SDF normals, input frame."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Tuple, Union

import numpy as np
import pymeshlab
import torch
import trimesh
from jaxtyping import Float, Int

from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.errors import NeroInputError
from nero_ns.io.meshes import write_gltf
from nero_ns.components.marching_cubes import SdfFunction, extract_sdf_mesh, sdf_normals


NO_SURFACE_MESSAGE = "the SDF has no zero crossing inside the unit sphere"
"""What the export says when the SDF has no surface yet (the benchmarks record that as a result)."""


@dataclass
class MeshExportOptions:
    """How to turn an SDF into a mesh file."""

    resolution: int = 256
    """Grid samples per axis over [-1, 1]^3 (the normalized scene box); NeRO used 512."""
    block_resolution: int = 128
    """Grid cells per block axis: the SDF is evaluated and meshed one block at a time to bound memory."""
    chunk_size: int = 65536
    """Points per SDF query."""
    keep_components: Union[Literal["largest", "all"], float] = 0.1
    """Connected components kept: the largest, all, or those with at least this fraction of the largest's faces.
    0.1 drops floaters yet keeps the pieces of a thin part that training has not joined yet (docs/export.md)."""
    target_faces: Optional[int] = None
    """Decimate (quadric edge collapse) to at most this many faces; None keeps the marching-cubes mesh."""
    frame: Literal["input", "normalized"] = "input"
    """'input': coordinates of the user's transforms.json; 'normalized': the model's unit-sphere frame."""


def export_mesh(
    model: torch.nn.Module, dataparser_outputs: DataparserOutputs, options: MeshExportOptions
) -> trimesh.Trimesh:
    """Cleaned mesh of `model.query_sdf`'s zero level set, with SDF-gradient vertex normals, in `options.frame`."""
    _check_options(options)
    device = _module_device(model)
    query_sdf: SdfFunction = model.query_sdf  # type: ignore[assignment]
    vertices, faces = extract_sdf_mesh(
        query_sdf, options.resolution, options.block_resolution, options.chunk_size, device
    )
    if faces.shape[0] == 0:
        raise NeroInputError(
            f"{NO_SURFACE_MESSAGE} at resolution {options.resolution}; train longer or raise --resolution"
        )
    vertices, faces = clean_mesh(vertices, faces, options.keep_components, options.target_faces)
    normals = sdf_normals(query_sdf, vertices, options.chunk_size, device)
    if options.frame == "input":
        vertices, faces, normals = normalized_to_input(
            vertices,
            faces,
            normals,
            dataparser_outputs.dataparser_transform.double().cpu().numpy(),
            float(dataparser_outputs.dataparser_scale),
        )
    CONSOLE.print(f"Mesh: {vertices.shape[0]} vertices, {faces.shape[0]} faces ({options.frame} frame)")
    return trimesh.Trimesh(vertices=vertices, faces=faces, vertex_normals=normals, process=False)


def write_mesh(mesh: trimesh.Trimesh, output_dir: Path, file_format: Literal["ply", "obj", "glb"]) -> Path:
    """Write `<output_dir>/mesh.<file_format>` (with vertex normals) and return its path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f"mesh.{file_format}"
    if file_format == "glb":
        write_gltf(mesh, path)
    else:
        mesh.export(path)
    return path


def clean_mesh(
    vertices: Float[np.ndarray, "num_vertices 3"],
    faces: Int[np.ndarray, "num_faces 3"],
    keep_components: Union[Literal["largest", "all"], float],
    target_faces: Optional[int],
) -> Tuple[Float[np.ndarray, "num_kept_vertices 3"], Int[np.ndarray, "num_kept_faces 3"]]:
    """pymeshlab cleaning: duplicates, degenerate faces, non-manifold edges, small components, then decimation."""
    mesh_set = pymeshlab.MeshSet()
    mesh_set.add_mesh(pymeshlab.Mesh(vertex_matrix=vertices.astype(np.float64), face_matrix=faces.astype(np.int32)))
    mesh_set.meshing_remove_duplicate_vertices()
    mesh_set.meshing_remove_duplicate_faces()
    mesh_set.meshing_remove_null_faces()
    mesh_set.meshing_repair_non_manifold_edges(method="Remove Faces")
    if keep_components != "all":
        ratio = 1.0 if keep_components == "largest" else float(keep_components)
        mesh_set.compute_selection_by_small_disconnected_components_per_face(nbfaceratio=ratio)
        mesh_set.meshing_remove_selected_vertices_and_faces()
    mesh_set.meshing_remove_unreferenced_vertices()
    if target_faces is not None and mesh_set.current_mesh().face_number() > target_faces:
        mesh_set.meshing_decimation_quadric_edge_collapse(
            targetfacenum=target_faces, preservenormal=True, preservetopology=True, planarquadric=True
        )
        mesh_set.meshing_remove_unreferenced_vertices()
    cleaned = mesh_set.current_mesh()
    return cleaned.vertex_matrix(), cleaned.face_matrix().astype(np.int64)


def normalized_to_input(
    vertices: Float[np.ndarray, "num_vertices 3"],
    faces: Int[np.ndarray, "num_faces 3"],
    normals: Float[np.ndarray, "num_vertices 3"],
    dataparser_transform: Float[np.ndarray, "3 4"],
    dataparser_scale: float,
) -> Tuple[Float[np.ndarray, "num_vertices 3"], Int[np.ndarray, "num_faces 3"], Float[np.ndarray, "num_vertices 3"]]:
    """Map a mesh from the normalized frame back to the input frame (docs/CONVENTIONS.md).

    Points: p_input = A^-1 (p / s - t) with T = [A | t]. Normals transform by the inverse transpose of that linear
    map, which is A^T up to scale; faces flip if A mirrors, so that they stay wound outward.
    """
    linear, translation = dataparser_transform[:, :3], dataparser_transform[:, 3]
    input_vertices = np.linalg.solve(linear, (vertices / dataparser_scale - translation).T).T
    input_normals = normals @ linear
    input_normals /= np.linalg.norm(input_normals, axis=-1, keepdims=True)
    input_faces = faces[:, ::-1] if np.linalg.det(linear) < 0 else faces
    return input_vertices, np.ascontiguousarray(input_faces), input_normals


def _check_options(options: MeshExportOptions) -> None:
    """One-line errors for option values that cannot work."""
    if options.resolution < 2 or options.block_resolution < 1:
        raise NeroInputError(
            f"--resolution {options.resolution} / --block-resolution {options.block_resolution}: "
            "need at least 2 samples per axis and 1 cell per block"
        )
    if isinstance(options.keep_components, float) and not 0.0 < options.keep_components <= 1.0:
        raise NeroInputError(
            f"--keep-components {options.keep_components}: use largest, all, or a fraction of the largest in (0, 1]"
        )
    if options.target_faces is not None and options.target_faces < 4:
        raise NeroInputError(f"--target-faces {options.target_faces}: a closed mesh needs at least 4 faces")


def _module_device(model: torch.nn.Module) -> torch.device:
    """Device of the model's parameters or buffers (CPU for a model that has none)."""
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")
