"""Pre-integrated GGX table of the split-sum approximation (Karis 2013), computed by our own BRDF code.

For a view at angle n.v and perceptual roughness r, the specular BRDF times cosine integrates to
    int f_spec(v, l) (n.l) dl = F0 * A(n.v, r) + B(n.v, r)
because Schlick's Fresnel is linear in F0: A weights (1 - (1 - v.h)^5), B weights (1 - v.h)^5.
The table is built once per (resolution, num_samples) by visible-normal importance sampling on a Hammersley point
set (deterministic) with the G and sampler of `brdf.py`, so nero-shape's split-sum and nero-material's Monte Carlo
shading agree on one BRDF.
"""

from __future__ import annotations

from typing import Dict, Tuple

import torch
from jaxtyping import Float
from torch import Tensor, nn

from nero_ns.components.brdf import dot, ggx_smith_g1_exact, roughness_to_alpha, sample_ggx_vndf, smith_geometry
from nero_ns.components.grid_lookup import bilinear_lookup

_TABLE_CACHE: Dict[Tuple[int, int], Tensor] = {}
"""Tables already built in this process, by (resolution, num_samples)."""


def hammersley(num_samples: int) -> Float[Tensor, "num_samples 2"]:
    """Hammersley point set in [0,1)^2: ((i + 0.5) / n, base-2 radical inverse of i)."""
    index = torch.arange(num_samples, dtype=torch.int64)
    radical_inverse = torch.zeros(num_samples, dtype=torch.float64)
    bits = index.clone()
    scale = 0.5
    while bool((bits > 0).any()):
        radical_inverse += (bits & 1).to(torch.float64) * scale
        bits >>= 1
        scale *= 0.5
    return torch.stack([(index.to(torch.float64) + 0.5) / num_samples, radical_inverse], dim=-1)


def _integrate_table(
    resolution: int, num_samples: int, rows_per_chunk: int = 16
) -> Float[Tensor, "2 resolution resolution"]:
    """A and B at cell centers (n.v rows, roughness columns): means of f_spec cos / (F pdf) times the Fresnel split.

    With visible-normal sampling, f_spec cos / F = D G / (4 n.v) and pdf = G1_exact(v) D / (4 n.v), so each sample
    weighs G(v, l) / G1_exact(v). Rows are processed in chunks to keep few, large tensor ops.
    """
    centers = (torch.arange(resolution, dtype=torch.float32) + 0.5) / resolution
    u = hammersley(num_samples).to(torch.float32)
    normal = torch.tensor([0.0, 0.0, 1.0])
    roughness = centers[:, None, None]
    alpha = roughness_to_alpha(roughness)
    chunks = []
    for n_dot_v in centers.split(rows_per_chunk):
        n_dot_v = n_dot_v[:, None, None, None]
        view = torch.cat([torch.sqrt(1.0 - n_dot_v**2), torch.zeros_like(n_dot_v), n_dot_v], dim=-1)
        light, _ = sample_ggx_vndf(normal, view, roughness, u)
        weight = smith_geometry(n_dot_v, light[..., 2:3], alpha) / ggx_smith_g1_exact(n_dot_v, alpha)
        schlick = (1.0 - dot(view, torch.nn.functional.normalize(view + light, dim=-1)).clamp(0.0, 1.0)) ** 5
        chunks.append(torch.stack([(weight * (1.0 - schlick)).mean(dim=(2, 3)), (weight * schlick).mean(dim=(2, 3))]))
    return torch.cat(chunks, dim=1)


def split_sum_table(resolution: int = 128, num_samples: int = 256) -> Float[Tensor, "2 resolution resolution"]:
    """The (A, B) table on CPU, built on first use and cached per (resolution, num_samples) for the process."""
    key = (resolution, num_samples)
    if key not in _TABLE_CACHE:
        with torch.no_grad():
            _TABLE_CACHE[key] = _integrate_table(resolution, num_samples)
    return _TABLE_CACHE[key]


class SplitSumTable(nn.Module):
    """Bilinear lookup of the pre-integrated GGX terms (A, B), differentiable in n.v and roughness.

    The table is a non-persistent buffer: it follows `.to(device)` but is rebuilt (or taken from the cache)
    rather than stored in checkpoints.
    """

    table: Float[Tensor, "1 2 resolution resolution"]

    def __init__(self, resolution: int = 128, num_samples: int = 256) -> None:
        super().__init__()
        self.register_buffer("table", split_sum_table(resolution, num_samples).clone()[None], persistent=False)

    def forward(self, n_dot_v: Float[Tensor, "*bs 1"], roughness: Float[Tensor, "*bs 1"]) -> Float[Tensor, "*bs 2"]:
        """(A, B) such that the specular reflectance is F0 * A + B; inputs outside [0, 1] clamp to the border."""
        batch_shape = torch.broadcast_shapes(n_dot_v.shape, roughness.shape)[:-1]
        n_dot_v, roughness = n_dot_v.expand(*batch_shape, 1), roughness.expand(*batch_shape, 1)
        # x runs across roughness (columns), y across n.v (rows).
        coordinates = torch.cat([roughness, n_dot_v], dim=-1).reshape(-1, 2) * 2.0 - 1.0
        return bilinear_lookup(self.table, coordinates).reshape(*batch_shape, 2)
