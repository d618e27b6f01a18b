"""Marching cubes of a signed distance function over [-1, 1]^3, in memory-bounded blocks.

Stitching choice: the grid is cut into blocks of `block_resolution` cells that share their boundary samples with
their neighbours (one voxel of overlap), scikit-image's marching cubes runs on each block, and vertices are merged
by exact equality of their grid coordinates. This is exact, not a tolerance merge: neighbouring blocks evaluate the
same sample positions (one `linspace` for the whole grid), so they hold bit-identical values on the shared face, and
scikit-image interpolates a face edge from those two values alone, in the same direction, in float32 block
coordinates. Blocks that share a face have the same extent along the face's two axes, so the in-face coordinates are
identical and the normal coordinate is an integer; adding the integer block offset in float64 is exact. Memory stays
at one block of SDF values (129^3 floats = 8.6 MB at the default) plus the mesh, whatever the resolution, whereas
the full grid would be 512 MB at 512^3.
"""

from __future__ import annotations

import math
from typing import Callable, List, Tuple

import numpy as np
import torch
from jaxtyping import Float, Int
from skimage.measure import marching_cubes
from torch import Tensor

from nerfstudio.utils.rich_utils import get_progress

SdfFunction = Callable[[Float[Tensor, "*bs 3"]], Float[Tensor, "*bs 1"]]

FAR_FIELD_VALUE = 1.0
"""SDF value given to samples outside the unit sphere, so the far field never becomes surface."""


def sdf_inside_unit_sphere(
    query_sdf: SdfFunction, positions: Float[Tensor, "num_points 3"], chunk_size: int, device: torch.device
) -> Float[Tensor, "num_points"]:
    """SDF at `positions`, queried in chunks and only inside the unit sphere; FAR_FIELD_VALUE outside."""
    values = torch.full((positions.shape[0],), FAR_FIELD_VALUE, dtype=torch.float32)
    inside = torch.nonzero(positions.norm(dim=-1) < 1.0).squeeze(-1)
    with torch.no_grad():
        for start in range(0, inside.shape[0], chunk_size):
            indices = inside[start : start + chunk_size]
            sdf = query_sdf(positions[indices].to(device)).reshape(-1)
            values[indices] = sdf.float().cpu()
    return values


def extract_sdf_mesh(
    query_sdf: SdfFunction,
    resolution: int,
    block_resolution: int,
    chunk_size: int,
    device: torch.device,
) -> Tuple[Float[np.ndarray, "num_vertices 3"], Int[np.ndarray, "num_faces 3"]]:
    """Zero level set of `query_sdf` sampled at `resolution` points per axis over [-1, 1]^3.

    Returns vertices in the normalized frame and faces wound counter-clockwise seen from outside (SDF increasing).
    """
    coordinates = torch.linspace(-1.0, 1.0, resolution)
    num_cells = resolution - 1
    starts = list(range(0, num_cells, block_resolution))
    block_vertices: List[np.ndarray] = []
    block_faces: List[np.ndarray] = []
    num_vertices = 0
    progress = get_progress("Marching cubes", suffix="blocks")
    with progress:
        for block_starts in progress.track([(x, y, z) for x in starts for y in starts for z in starts]):
            axes = [coordinates[start : min(start + block_resolution, num_cells) + 1] for start in block_starts]
            if _block_outside_unit_sphere(axes):
                continue
            grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
            values = sdf_inside_unit_sphere(query_sdf, grid.reshape(-1, 3), chunk_size, device)
            volume = values.reshape(grid.shape[:3]).numpy()
            if not volume.min() < 0.0 < volume.max():
                continue
            vertices, faces, _, _ = marching_cubes(volume, level=0.0, method="lewiner")
            block_vertices.append(vertices.astype(np.float64) + np.array(block_starts, dtype=np.float64))
            block_faces.append(faces + num_vertices)
            num_vertices += vertices.shape[0]
    if not block_vertices:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    unique_vertices, vertex_index = np.unique(np.concatenate(block_vertices), axis=0, return_inverse=True)
    faces = vertex_index.reshape(-1)[np.concatenate(block_faces)]
    return unique_vertices * (2.0 / num_cells) - 1.0, faces


def _block_outside_unit_sphere(axes: List[Float[Tensor, "samples"]]) -> bool:
    """Whether every sample of the block lies outside the unit sphere (so the block holds no surface)."""
    nearest = [0.0 if axis[0] <= 0.0 <= axis[-1] else min(abs(float(axis[0])), abs(float(axis[-1]))) for axis in axes]
    return math.sqrt(sum(value**2 for value in nearest)) >= 1.0


def sdf_normals(
    query_sdf: SdfFunction, vertices: Float[np.ndarray, "num_vertices 3"], chunk_size: int, device: torch.device
) -> Float[np.ndarray, "num_vertices 3"]:
    """Unit SDF gradients at `vertices` (autograd, chunked): outward normals of the level set."""
    normals = np.zeros_like(vertices, dtype=np.float64)
    progress = get_progress("SDF normals", suffix="chunks")
    with progress, torch.enable_grad():
        for start in progress.track(range(0, vertices.shape[0], chunk_size)):
            positions = torch.as_tensor(vertices[start : start + chunk_size], dtype=torch.float32, device=device)
            positions.requires_grad_(True)
            sdf = query_sdf(positions)
            if not sdf.requires_grad:
                raise RuntimeError(
                    "query_sdf returned no autograd graph; vertex normals need a differentiable query_sdf "
                    "(do not wrap it in torch.no_grad: mesh extraction already evaluates it under no_grad)"
                )
            (gradient,) = torch.autograd.grad(sdf.sum(), positions)
            normals[start : start + chunk_size] = torch.nn.functional.normalize(gradient, dim=-1).cpu().numpy()
    return normals
