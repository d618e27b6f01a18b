"""Texture baking: rasterized texels sample their own center or the nearest border, and padding fills a ring."""

from __future__ import annotations

import numpy as np
import torch
import trimesh
from scipy.ndimage import binary_dilation

from nero_ns.exporters.texture_baking import CONSERVATIVE_MARGIN, dilate, rasterize_uv, splat_texels, unwrap_uv


def test_rasterized_texels_sample_their_own_center_or_the_nearest_border():
    sphere = trimesh.creation.uv_sphere(radius=0.5, count=[16, 16])
    atlas = unwrap_uv(sphere.vertices, sphere.faces, texture_size=128, padding=3)
    samples = rasterize_uv(atlas.uvs, atlas.faces, 128)
    uv_corners = atlas.uvs[atlas.faces[samples.face_index.numpy()]]
    sample_uv = (samples.barycentric.numpy()[:, :, None] * uv_corners).sum(axis=1)
    rows, columns = np.divmod(samples.texel_index.numpy(), 128)
    center_uv = np.stack([(columns + 0.5) / 128, 1.0 - (rows + 0.5) / 128], axis=-1)
    offset_in_texels = np.linalg.norm((sample_uv - center_uv) * 128, axis=-1)
    assert offset_in_texels.max() <= CONSERVATIVE_MARGIN + 1e-6
    # Brute force: the texels whose center lies inside some UV triangle are exactly those sampled at their center.
    all_rows, all_columns = np.divmod(np.arange(128 * 128), 128)
    centers = np.stack([(all_columns + 0.5) / 128, 1.0 - (all_rows + 0.5) / 128], axis=-1)
    a, b, c = (atlas.uvs[atlas.faces[:, i]][:, None] for i in range(3))
    cross = lambda u, v: u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]  # noqa: E731
    signs = np.stack([cross(b - a, centers - a), cross(c - b, centers - b), cross(a - c, centers - c)])
    inside = ((signs >= -1e-12).all(axis=0) | (signs <= 1e-12).all(axis=0)).any(axis=0)
    at_center = np.zeros(128 * 128, dtype=bool)
    at_center[samples.texel_index.numpy()[offset_in_texels < 1e-4]] = True
    np.testing.assert_array_equal(at_center, inside)
    print(f"{inside.sum()} texels inside triangles, {len(offset_in_texels) - inside.sum()} conservative border texels")
    assert (samples.barycentric >= 0).all() and torch.allclose(samples.barycentric.sum(-1), torch.ones(1))


def test_padding_fills_a_ring_of_texels_around_each_chart():
    sphere = trimesh.creation.uv_sphere(radius=0.5, count=[16, 16])
    atlas = unwrap_uv(sphere.vertices, sphere.faces, texture_size=128, padding=6)
    samples = rasterize_uv(atlas.uvs, atlas.faces, 128)
    values = torch.rand(samples.texel_index.shape[0], 2, dtype=torch.float64) + 1.0
    image, covered = splat_texels(values, samples, 128, background=-5.0)
    padded, filled = dilate(image, covered, num_texels=3)
    ring = binary_dilation(covered.numpy(), structure=np.ones((3, 3)), iterations=3)
    np.testing.assert_array_equal(filled.numpy(), ring)
    assert (padded[~filled] == -5.0).all() and torch.equal(padded[covered], image[covered])
    assert (padded[filled] >= 1.0).all() and (padded[filled] <= 2.0).all()  # means of chart values
    # Each texel of the first ring is the mean of its covered 8-neighbours.
    first_ring = binary_dilation(covered.numpy(), structure=np.ones((3, 3))) & ~covered.numpy()
    for row, column in zip(*np.nonzero(first_ring[1:-1, 1:-1])):
        window = (slice(row, row + 3), slice(column, column + 3))
        expected = image[window][covered[window]].mean(dim=0)
        torch.testing.assert_close(padded[row + 1, column + 1], expected)
