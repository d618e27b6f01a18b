"""Texture baking: UV atlas (xatlas), rasterization of the triangles in UV space, dilation of charts into gutters.

UV convention: trimesh's and OBJ's, origin at the bottom-left of the image. Texel (row r, column c) of an H x W
texture covers uv = ((c + 0.5) / W, 1 - (r + 0.5) / H) at its center; trimesh flips v when it writes glTF (whose
origin is the top-left), so the same images serve both files.

A texel belongs to the triangle its center lies deepest in: conservative rasterization also accepts texel centers
up to half a texel diagonal outside a triangle, so texels on chart borders (which bilinear filtering reads) get
their own material instead of a copy. Such a texel samples the triangle's point nearest to its center, so every
sample point lies on the mesh surface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch
import xatlas
from jaxtyping import Bool, Float, Int
from torch import Tensor

from nerfstudio.utils.rich_utils import get_progress

CONSERVATIVE_MARGIN = math.sqrt(0.5)
"""How far (in texels) outside a triangle a texel center may be and still sample it: half a texel diagonal."""

MAX_CANDIDATES_PER_BATCH = 1 << 22
"""Texel-triangle pairs tested at once by the rasterizer (bounds its memory to ~200 MB)."""


@dataclass
class UvAtlas:
    """A mesh cut along UV seams: its vertices refer back to the source mesh's vertices."""

    source_vertex: Int[np.ndarray, "num_uv_vertices"]
    """Index of the source vertex each atlas vertex copies (seam vertices appear once per chart)."""
    faces: Int[np.ndarray, "num_faces 3"]
    """Triangles over the atlas vertices, in the source's face order."""
    uvs: Float[np.ndarray, "num_uv_vertices 2"]
    """Texture coordinates in [0, 1]^2, origin at the bottom-left of the image."""


@dataclass
class TexelSamples:
    """The texels covered by the atlas and where on the mesh each one samples."""

    texel_index: Int[Tensor, "num_texels"]
    """Row-major index of the texel (row * width + column)."""
    face_index: Int[Tensor, "num_texels"]
    """Triangle the texel samples."""
    barycentric: Float[Tensor, "num_texels 3"]
    """Barycentric coordinates of the sample point in that triangle (non-negative, summing to 1)."""


def unwrap_uv(
    vertices: Float[np.ndarray, "num_vertices 3"],
    faces: Int[np.ndarray, "num_faces 3"],
    texture_size: int,
    padding: int,
) -> UvAtlas:
    """xatlas charts packed for a `texture_size` texture with `padding` texels between charts (bilinear-safe).

    xatlas picks the texel density from `texture_size` approximately and packs into a somewhat larger atlas, which
    the returned UVs scale to the square texture, so gutters come out a little narrower than `padding` texels.
    """
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(vertices, dtype=np.float32), np.ascontiguousarray(faces, dtype=np.uint32))
    pack_options = xatlas.PackOptions()
    pack_options.resolution = texture_size
    pack_options.padding = padding
    pack_options.bilinear = True
    atlas.generate(xatlas.ChartOptions(), pack_options, False)
    source_vertex, atlas_faces, uvs = atlas[0]
    return UvAtlas(source_vertex.astype(np.int64), atlas_faces.astype(np.int64), uvs.astype(np.float64))


def rasterize_uv(
    uvs: Float[np.ndarray, "num_uv_vertices 2"], faces: Int[np.ndarray, "num_faces 3"], texture_size: int
) -> TexelSamples:
    """Conservative rasterization of the UV triangles into a square texture (see the module docstring)."""
    size = texture_size
    texel_coordinates = torch.as_tensor(uvs, dtype=torch.float64) * size - 0.5
    texel_coordinates[:, 1] = (size - 1) - texel_coordinates[:, 1]  # v up -> row down
    corners = texel_coordinates[torch.as_tensor(faces)]  # [F, 3, 2] as (column, row)
    twice_area = _cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    low = (corners.amin(dim=1) - CONSERVATIVE_MARGIN).ceil().clamp(0, size - 1).long()
    high = (corners.amax(dim=1) + CONSERVATIVE_MARGIN).floor().clamp(0, size - 1).long()
    extent = (high - low + 1).clamp(min=0)
    counts = extent[:, 0] * extent[:, 1] * (twice_area.abs() > 1e-12)

    best_depth = torch.full((size * size,), -math.inf, dtype=torch.float64)
    best_face = torch.full((size * size,), -1, dtype=torch.long)
    best_barycentric = torch.zeros(size * size, 3, dtype=torch.float64)
    batch_of_face = torch.cumsum(counts, 0).sub(counts).div(MAX_CANDIDATES_PER_BATCH, rounding_mode="floor")
    num_batches = int(batch_of_face[-1]) + 1 if len(faces) else 0
    progress = get_progress("Rasterizing UV charts", suffix="batches")
    with progress:
        for batch in progress.track(range(num_batches)):
            face_ids = torch.nonzero((batch_of_face == batch) & (counts > 0)).squeeze(-1)
            face_of_candidate = torch.repeat_interleave(face_ids, counts[face_ids])
            first = torch.cumsum(counts[face_ids], 0) - counts[face_ids]
            local = torch.arange(face_of_candidate.shape[0]) - torch.repeat_interleave(first, counts[face_ids])
            width = extent[face_of_candidate, 0]
            column = low[face_of_candidate, 0] + local % width
            row = low[face_of_candidate, 1] + local // width
            point = torch.stack([column, row], dim=-1).double()
            barycentric, depth = _barycentric_and_depth(
                corners[face_of_candidate], twice_area[face_of_candidate], point
            )
            texel = row * size + column
            # The deepest triangle wins each texel: first within the batch, then against earlier batches.
            batch_best = torch.full_like(best_depth, -math.inf).scatter_reduce(0, texel, depth, reduce="amax")
            wins = (depth >= -CONSERVATIVE_MARGIN) & (depth == batch_best[texel]) & (depth > best_depth[texel])
            winners = _first_per_texel(torch.nonzero(wins).squeeze(-1), texel)
            best_depth[texel[winners]] = depth[winners]
            best_face[texel[winners]] = face_of_candidate[winners]
            best_barycentric[texel[winners]] = barycentric[winners]
    covered = torch.nonzero(best_face >= 0).squeeze(-1)
    return TexelSamples(covered, best_face[covered], best_barycentric[covered].float())


def surface_points(
    samples: TexelSamples, vertices: Float[Tensor, "num_vertices 3"], faces: Int[Tensor, "num_faces 3"]
) -> Float[Tensor, "num_texels 3"]:
    """3D point each texel samples: its barycentric combination of its triangle's corners."""
    corners = vertices[faces[samples.face_index]]  # [N, 3, 3]
    return (samples.barycentric[..., None].to(vertices.dtype) * corners).sum(dim=1)


def splat_texels(
    values: Float[Tensor, "num_texels channels"], samples: TexelSamples, texture_size: int, background: float = 0.0
) -> Tuple[Float[Tensor, "size size channels"], Bool[Tensor, "size size"]]:
    """An image holding `values` at the sampled texels and `background` elsewhere, and the mask of sampled texels."""
    image = torch.full((texture_size * texture_size, values.shape[-1]), background, dtype=values.dtype)
    image[samples.texel_index] = values
    filled = torch.zeros(texture_size * texture_size, dtype=torch.bool)
    filled[samples.texel_index] = True
    return image.reshape(texture_size, texture_size, -1), filled.reshape(texture_size, texture_size)


def dilate(
    image: Float[Tensor, "height width channels"], filled: Bool[Tensor, "height width"], num_texels: int
) -> Tuple[Float[Tensor, "height width channels"], Bool[Tensor, "height width"]]:
    """Grow the filled texels `num_texels` rings into the empty ones, each new texel the mean of its filled
    8-neighbours, so bilinear and mipmapped look-ups near chart borders read chart colors, not the background."""
    channels = image.shape[-1]
    kernel = torch.ones(channels + 1, 1, 3, 3, dtype=image.dtype)
    image, filled = image.clone(), filled.clone()
    for _ in range(num_texels):
        weight = filled.to(image.dtype)
        stacked = torch.cat([image * weight[..., None], weight[..., None]], dim=-1).permute(2, 0, 1)[None]
        sums = torch.nn.functional.conv2d(stacked, kernel, padding=1, groups=channels + 1)[0].permute(1, 2, 0)
        grown = ~filled & (sums[..., -1] > 0)
        if not grown.any():
            break
        image[grown] = sums[grown][:, :channels] / sums[grown][:, -1:]
        filled |= grown
    return image, filled


def _first_per_texel(candidates: Int[Tensor, "n"], texel: Int[Tensor, "m"]) -> Int[Tensor, "k"]:
    """One candidate per texel among tied winners (a texel center on an edge shared by two triangles)."""
    unique_texels, inverse = torch.unique(texel[candidates], return_inverse=True)
    order = torch.arange(candidates.shape[0])
    first = torch.full((unique_texels.shape[0],), candidates.shape[0]).scatter_reduce(0, inverse, order, reduce="amin")
    return candidates[first]


def _cross(a: Float[Tensor, "*bs 2"], b: Float[Tensor, "*bs 2"]) -> Float[Tensor, "*bs"]:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _barycentric_and_depth(
    corners: Float[Tensor, "n 3 2"], twice_area: Float[Tensor, "n"], point: Float[Tensor, "n 2"]
) -> Tuple[Float[Tensor, "n 3"], Float[Tensor, "n"]]:
    """Barycentrics of the triangle's point nearest to `point` (`point` itself when inside), and the signed
    distance of `point` to the triangle's boundary in texels: positive inside, negative outside."""
    barycentric = torch.stack(
        [_cross(corners[:, (i + 1) % 3] - point, corners[:, (i + 2) % 3] - point) for i in range(3)], dim=-1
    ) / twice_area[:, None]
    opposite_edge_length = torch.stack(
        [(corners[:, (i + 2) % 3] - corners[:, (i + 1) % 3]).norm(dim=-1) for i in range(3)], dim=-1
    )
    depth = (barycentric * twice_area.abs()[:, None] / opposite_edge_length).amin(dim=-1)
    outside = torch.nonzero(depth < 0).squeeze(-1)
    nearest_distance = torch.full((outside.shape[0],), math.inf, dtype=point.dtype)
    for i in range(3):
        start, edge = corners[outside, i], corners[outside, (i + 1) % 3] - corners[outside, i]
        along = ((point[outside] - start) * edge).sum(dim=-1) / (edge * edge).sum(dim=-1).clamp(min=1e-24)
        along = along.clamp(0.0, 1.0)
        distance = (start + along[:, None] * edge - point[outside]).norm(dim=-1)
        closer = distance < nearest_distance
        nearest_distance = torch.where(closer, distance, nearest_distance)
        on_edge = torch.zeros(outside.shape[0], 3, dtype=point.dtype)
        on_edge[:, i], on_edge[:, (i + 1) % 3] = 1.0 - along, along
        barycentric[outside[closer]] = on_edge[closer]
    depth[outside] = -nearest_distance
    return barycentric, depth
