"""A lat-long environment map pre-convolved for split-sum shading: fast, noise-free image-based lighting.

`PrefilteredEnvironment` turns one radiance map (`ENVMAP_CONVENTION`) into
- an irradiance map: the cosine-weighted mean radiance over the hemisphere around each normal, which a Lambertian
  surface reflects times its albedo;
- GGX-filtered maps at a few roughness levels (Karis 2013, with n = v = r): the radiance around a mirror direction
  averaged over the GGX lobe, weighted by n.l. The mirror level is the map itself; a roughness between two levels
  blends their look-ups.
Each filtered texel averages a fixed set of lobe samples (Hammersley points through the BRDF samplers of `brdf.py`),
and each sample reads a copy of the map blurred to the solid angle the sample stands for, 1 / (count x pdf)
(filtered importance sampling, Colbert and Krivanek 2007): a few dozen samples give a smooth lobe, and building the
maps costs a few hundred thousand look-ups. Shading with these maps and the pre-integrated (A, B) table, as nero-shape
does (`NeroShadingField`), costs a few look-ups per pixel, which keeps the relit viewer preview interactive on a CPU.
It ignores occlusion: light the object hides from itself still arrives.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, List, Tuple

import torch
from jaxtyping import Float
from torch import Tensor, nn

from nero_ns.components.brdf import (
    MIN_ROUGHNESS,
    dot,
    orthonormal_frame,
    reflect,
    sample_cosine_hemisphere,
    sample_ggx_vndf,
    specular_f0,
)
from nero_ns.components.grid_lookup import bilinear_lookup
from nero_ns.components.split_sum import SplitSumTable, hammersley
from nero_ns.io.latlong import latlong_directions

GGX_LEVELS: Tuple[Tuple[float, int], ...] = ((0.25, 48), (0.4, 32), (0.6, 16), (0.8, 16), (1.0, 16))
"""(roughness, rows) of the filtered levels: a lobe of roughness r is about 2 r^2 radians wide, and each grid's rows
are at most half that apart. Roughness 0 is the map itself."""

IRRADIANCE_ROWS = 16
"""Rows of the irradiance map (cosine lobes are broad)."""

LOOKUPS_PER_LEVEL = 131072
"""Lobe samples drawn for one filtered map, spread over its texels (at least 32, at most 256 per texel): coarse maps
of broad lobes get more samples per texel, which a small bright light (a sun) needs to come out even."""

MIRROR_MAX_ROWS = 512
"""The mirror level keeps at most this many rows of the input map (area-averaged down when larger)."""

SOURCE_MAX_ROWS = 256
"""Rows of the sharpest copy of the map that lobe samples read; each further copy has half the rows."""

LobeSampler = Callable[[Float[Tensor, "num 3"], Float[Tensor, "num 2"]], Tuple[Tensor, Tensor]]
"""sampler(axes, u) -> (unit directions, their solid-angle pdf (num, 1)) of lobe samples around each axis."""


def latlong_lookup(
    grid: Float[Tensor, "1 3 height width"], directions: Float[Tensor, "num 3"]
) -> Float[Tensor, "num 3"]:
    """Bilinear look-up of a lat-long map in `ENVMAP_CONVENTION` (row i at theta = pi i / (H - 1), column j at
    phi = 2 pi (j + 0.5) / W, wrapping around in phi) along unit `directions`."""
    height, width = grid.shape[-2:]
    theta = torch.acos(directions[:, 2].clamp(-1.0, 1.0))
    phi = torch.remainder(torch.atan2(directions[:, 0], directions[:, 1]), 2.0 * math.pi)
    # One column copied onto each side, so that phi near 0 blends with phi near 2 pi.
    wrapped = torch.cat([grid[..., -1:], grid, grid[..., :1]], dim=-1)
    column = (phi / (2.0 * math.pi) * width + 1.0) / (width + 2.0) * 2.0 - 1.0
    row = (theta / math.pi * (height - 1) + 0.5) / height * 2.0 - 1.0
    return bilinear_lookup(wrapped, torch.stack([column, row], dim=-1))


def resampled(radiance: Float[Tensor, "height width 3"], rows: int) -> Float[Tensor, "1 3 rows cols"]:
    """The map as a (1, 3, rows, 2 rows) grid, area-averaged when it shrinks (the energy of small lights stays)."""
    grid = radiance.permute(2, 0, 1)[None]
    if grid.shape[-2] == rows and grid.shape[-1] == 2 * rows:
        return grid
    mode = "area" if grid.shape[-2] > rows else "bilinear"
    return nn.functional.interpolate(grid, size=(rows, 2 * rows), mode=mode)


def blurred_copies(radiance: Float[Tensor, "height width 3"]) -> List[Float[Tensor, "1 3 rows cols"]]:
    """The map at SOURCE_MAX_ROWS rows (fewer if it has fewer), then at half the rows each, down to 4."""
    rows = min(radiance.shape[0], SOURCE_MAX_ROWS)
    copies = [resampled(radiance, rows)]
    while rows > 4:
        rows //= 2
        copies.append(resampled(radiance, rows))
    return copies


def filtered(
    copies: List[Float[Tensor, "1 3 rows cols"]], rows: int, sampler: LobeSampler, cosine_weighted: bool
) -> Float[Tensor, "1 3 rows cols"]:
    """A rows x 2 rows map whose texels are lobe averages around their own directions: the mean of the samples'
    radiance, weighted by cos(axis, sample) when `cosine_weighted`. The lobe does not depend on the axis, so one set
    of samples drawn around +z is turned onto every axis. Each sample reads the copy whose texels subtend about its
    solid angle 1 / (count x pdf)."""
    axes = torch.as_tensor(latlong_directions(rows, 2 * rows), dtype=torch.float32).reshape(-1, 3)
    num_samples = min(max(LOOKUPS_PER_LEVEL // axes.shape[0], 32), 256)
    up = torch.tensor([[0.0, 0.0, 1.0]])
    local, pdf = sampler(up.expand(num_samples, 3), hammersley(num_samples).to(torch.float32))
    local = torch.nn.functional.normalize(local, dim=-1)
    weights = local[:, 2].clamp(min=0.0) if cosine_weighted else (local[:, 2] > 0).float()
    # A copy with R rows has texels of about (pi / R)^2 steradians (at the equator).
    sample_solid_angle = 1.0 / (num_samples * pdf[:, 0].clamp(min=1e-12))
    level = torch.log2(copies[0].shape[-2] * torch.sqrt(sample_solid_angle) / math.pi)
    level = level.round().clamp(0, len(copies) - 1).long()
    tangent, bitangent = orthonormal_frame(axes)
    frames = torch.stack([tangent, bitangent, axes], dim=-2)  # (texels, 3 local axes, 3)
    directions = local @ frames  # (texels, samples, 3)
    radiance = torch.zeros(*directions.shape[:2], 3)
    for index, copy in enumerate(copies):
        chosen = level == index
        if chosen.any():
            looked_up = latlong_lookup(copy, directions[:, chosen].reshape(-1, 3))
            radiance[:, chosen] = looked_up.reshape(axes.shape[0], -1, 3)
    mean = (weights[:, None] * radiance).sum(dim=1) / weights.sum().clamp(min=1e-12)
    return mean.T.reshape(1, 3, rows, 2 * rows)


def ggx_sampler(roughness: float) -> LobeSampler:
    """GGX lobe samples around the axis with n = v = the axis (their pdf is D(h) / 4)."""
    roughness_tensor = torch.tensor([roughness])
    return lambda axes, u: sample_ggx_vndf(axes, axes, roughness_tensor, u)


class PrefilteredEnvironment:
    """Irradiance and GGX-filtered copies of one lat-long radiance map, and split-sum shading under them."""

    def __init__(self, radiance: Float[Tensor, "height width 3"], device: torch.device) -> None:
        radiance = radiance.detach().float().cpu()
        self.roughness_levels = torch.tensor([0.0] + [roughness for roughness, _ in GGX_LEVELS], device=device)
        with torch.no_grad():
            copies = blurred_copies(radiance)
            levels = [resampled(radiance, min(radiance.shape[0], MIRROR_MAX_ROWS))]
            levels += [filtered(copies, rows, ggx_sampler(roughness), True) for roughness, rows in GGX_LEVELS]
            irradiance = filtered(copies, IRRADIANCE_ROWS, sample_cosine_hemisphere, False)
        self.levels = [level.to(device) for level in levels]
        self.irradiance = irradiance.to(device)
        self.split_sum = SplitSumTable().to(device)

    def background(self, directions: Float[Tensor, "num 3"]) -> Float[Tensor, "num 3"]:
        """Radiance seen straight along unit `directions` (the map itself)."""
        return latlong_lookup(self.levels[0], directions)

    def diffuse_light(self, normals: Float[Tensor, "num 3"]) -> Float[Tensor, "num 3"]:
        """Cosine-weighted mean radiance over the hemisphere of each unit normal (irradiance / pi)."""
        return latlong_lookup(self.irradiance, normals)

    def specular_light(
        self, directions: Float[Tensor, "num 3"], roughness: Float[Tensor, "num 1"]
    ) -> Float[Tensor, "num 3"]:
        """GGX-filtered radiance around unit mirror `directions`, blending the two levels around each roughness."""
        levels = self.roughness_levels
        position = roughness.clamp(MIN_ROUGHNESS, 1.0)
        # Hat weights: each level counts by how close the roughness is to it, between its neighbours.
        upper = torch.searchsorted(levels, position.contiguous()).clamp(1, len(levels) - 1)
        lower = upper - 1
        share = ((position - levels[lower]) / (levels[upper] - levels[lower])).clamp(0.0, 1.0)
        result = torch.zeros_like(directions)
        for index, level in enumerate(self.levels):
            weight = torch.where(lower == index, 1.0 - share, torch.zeros_like(share))
            weight = weight + torch.where(upper == index, share, torch.zeros_like(share))
            used = weight[:, 0] > 0
            if used.any():
                result[used] += weight[used] * latlong_lookup(level, directions[used])
        return result

    def shade(
        self,
        normals: Float[Tensor, "num 3"],
        view: Float[Tensor, "num 3"],
        albedo: Float[Tensor, "num 3"],
        roughness: Float[Tensor, "num 1"],
        metallic: Float[Tensor, "num 1"],
    ) -> Dict[str, Float[Tensor, "num 3"]]:
        """Split-sum shading: diffuse (1 - metallic) albedo L_diffuse(n) and specular (F0 A + B) L_specular(r,
        roughness), linear radiance, for unit normals and unit directions toward the camera."""
        n_dot_v = dot(normals, view)
        reflected = reflect(view, normals)
        table = self.split_sum(n_dot_v.clamp(0.0, 1.0), roughness)
        specular = self.specular_light(reflected, roughness) * (
            specular_f0(albedo, metallic) * table[..., 0:1] + table[..., 1:2]
        )
        diffuse = (1.0 - metallic) * albedo * self.diffuse_light(normals)
        return {"diffuse": diffuse, "specular": specular, "rgb": diffuse + specular}
