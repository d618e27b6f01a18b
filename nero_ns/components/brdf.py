"""Cook-Torrance GGX BRDF (metallic workflow) and the direction samplers used to integrate it.

Shared by nero-shape (split-sum table) and nero-material (Monte Carlo shading), so both see one definition of D, G
and F.

Conventions:
- All directions are unit vectors pointing AWAY from the surface: `view` toward the camera, `light` toward the light.
- `roughness` is perceptual roughness in [0, 1]; the GGX width is alpha = max(roughness, MIN_ROUGHNESS)^2. The floor
  keeps the lobe finite in float32 (alpha >= 0.0016, peak D ~ 1.2e5), as NeRO floors roughness near 0.04.
- Metallic workflow: F0 = lerp(0.04, base_color, metallic), diffuse albedo = (1 - metallic) * base_color.
- Masking-shadowing G is the separable Smith form with Schlick-GGX G1 and k = alpha / 2 (Karis 2013, as NeRO's
  nero-material). Importance sampling uses Heitz 2018 visible-normal sampling, whose pdf needs the EXACT Smith G1 of
  GGX (`ggx_smith_g1_exact`); the estimator f * cos / pdf stays unbiased whatever G the BRDF uses.
- Scalars attached to a direction (pdf, roughness, metallic) carry a trailing singleton dim: `"*bs 1"`.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import torch
from jaxtyping import Float
from torch import Tensor

MIN_ROUGHNESS = 0.04
"""Perceptual roughness floor: alpha = max(roughness, MIN_ROUGHNESS) ** 2."""

DIELECTRIC_F0 = 0.04
"""Normal-incidence reflectance of non-metals in the metallic workflow."""

_COS_EPS = 1e-4
"""Floor on n.v in divisions, so grazing or back-facing views give large but finite values."""


def dot(a: Float[Tensor, "*bs 3"], b: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 1"]:
    """Inner product over the last dim, kept as a singleton dim."""
    return (a * b).sum(dim=-1, keepdim=True)


def reflect(direction: Float[Tensor, "*bs 3"], axis: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
    """Mirror a unit direction about a unit axis (both pointing away from the surface): the direction toward the
    camera about the normal gives the mirror direction; about a half vector, the light direction."""
    return 2.0 * dot(direction, axis) * axis - direction


def roughness_to_alpha(roughness: Float[Tensor, "*bs"]) -> Float[Tensor, "*bs"]:
    """GGX width alpha = roughness^2 with roughness clamped to [MIN_ROUGHNESS, 1]."""
    return roughness.clamp(MIN_ROUGHNESS, 1.0) ** 2


def ggx_distribution(n_dot_h: Float[Tensor, "*bs"], alpha: Float[Tensor, "*bs"]) -> Float[Tensor, "*bs"]:
    """GGX / Trowbridge-Reitz normal distribution D(h); integrates to 1 as D(h) (n.h) over the hemisphere.

    The denominator is written as c^2 alpha^2 + (1 - c)(1 + c) so the peak stays accurate for tiny alpha.
    """
    cos = n_dot_h.clamp(0.0, 1.0)
    alpha_sq = alpha * alpha
    denominator = cos * cos * alpha_sq + (1.0 - cos) * (1.0 + cos)
    return torch.where(n_dot_h > 0, alpha_sq / (math.pi * denominator * denominator), torch.zeros_like(denominator))


def schlick_ggx_g1(n_dot_x: Float[Tensor, "*bs"], alpha: Float[Tensor, "*bs"]) -> Float[Tensor, "*bs"]:
    """Schlick-GGX masking term for one direction, k = alpha / 2 (Karis 2013, image-based lighting)."""
    cos = n_dot_x.clamp(min=0.0)
    k = alpha / 2.0
    return cos / (cos * (1.0 - k) + k)


def smith_geometry(
    n_dot_v: Float[Tensor, "*bs"], n_dot_l: Float[Tensor, "*bs"], alpha: Float[Tensor, "*bs"]
) -> Float[Tensor, "*bs"]:
    """Separable Smith masking-shadowing G(v, l) = G1(v) G1(l) with Schlick-GGX G1: the G of our BRDF."""
    return schlick_ggx_g1(n_dot_v, alpha) * schlick_ggx_g1(n_dot_l, alpha)


def ggx_smith_g1_exact(n_dot_v: Float[Tensor, "*bs"], alpha: Float[Tensor, "*bs"]) -> Float[Tensor, "*bs"]:
    """Exact Smith G1 of the GGX distribution, 2c / (c + sqrt(alpha^2 (1 - c^2) + c^2)); normalizes the VNDF."""
    cos = n_dot_v.clamp(min=0.0)
    alpha_sq = alpha * alpha
    root = torch.sqrt((alpha_sq * (1.0 - cos * cos) + cos * cos).clamp(min=1e-20))
    return 2.0 * cos / (cos + root)


def fresnel_schlick(v_dot_h: Float[Tensor, "*bs 1"], f0: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
    """Schlick's Fresnel F = F0 + (1 - F0) (1 - v.h)^5."""
    return f0 + (1.0 - f0) * (1.0 - v_dot_h.clamp(0.0, 1.0)) ** 5


def specular_f0(base_color: Float[Tensor, "*bs 3"], metallic: Float[Tensor, "*bs 1"]) -> Float[Tensor, "*bs 3"]:
    """Normal-incidence reflectance F0 = lerp(0.04, base_color, metallic)."""
    return DIELECTRIC_F0 + (base_color - DIELECTRIC_F0) * metallic


def cook_torrance_brdf(
    normal: Float[Tensor, "*bs 3"],
    view: Float[Tensor, "*bs 3"],
    light: Float[Tensor, "*bs 3"],
    base_color: Float[Tensor, "*bs 3"],
    roughness: Float[Tensor, "*bs 1"],
    metallic: Float[Tensor, "*bs 1"],
) -> Tuple[Float[Tensor, "*bs 3"], Float[Tensor, "*bs 3"]]:
    """Diffuse and specular reflectance for one light direction, BRDF TIMES COSINE: f(v, l) * max(n.l, 0).

    Multiply by incident radiance L(l) and divide by the sampling pdf to get an estimate of outgoing radiance.
    diffuse = (1 - metallic) base_color / pi * n.l; specular = D G F / (4 n.v) (the n.l of the BRDF cancels).
    Both are zero for lights below the horizon; n.v is floored at 1e-4 (pass views with n.v > 0).
    """
    n_dot_l = dot(normal, light)
    n_dot_v = dot(normal, view).clamp(min=_COS_EPS)
    half = torch.nn.functional.normalize(view + light, dim=-1)
    alpha = roughness_to_alpha(roughness)
    above = n_dot_l > 0
    cos_l = n_dot_l.clamp(min=0.0)
    diffuse = (1.0 - metallic) * base_color / math.pi * cos_l
    lobe = ggx_distribution(dot(normal, half), alpha) * smith_geometry(n_dot_v, cos_l, alpha) / (4.0 * n_dot_v)
    specular = torch.where(above, lobe, torch.zeros_like(lobe)) * fresnel_schlick(
        dot(view, half), specular_f0(base_color, metallic)
    )
    return diffuse, specular


def clamp_view_to_hemisphere(
    normal: Float[Tensor, "*bs 3"], view: Float[Tensor, "*bs 3"], min_cos: float = 1e-3
) -> Float[Tensor, "*bs 3"]:
    """Bend views with n.v < min_cos up to the horizon (n.v >= min_cos), keeping their tangential direction.

    Interpolated or SDF-gradient normals can face away from the camera; the samplers need n.v > 0.
    """
    cos = dot(normal, view)
    tangential = view - cos * normal
    return torch.nn.functional.normalize(tangential + cos.clamp(min=min_cos) * normal, dim=-1)


def orthonormal_frame(normal: Float[Tensor, "*bs 3"]) -> Tuple[Float[Tensor, "*bs 3"], Float[Tensor, "*bs 3"]]:
    """Tangent and bitangent completing `normal` to a right-handed frame, without singularities.

    Branchless construction of Duff et al. 2017, "Building an Orthonormal Basis, Revisited".
    """
    x, y, z = normal.unbind(dim=-1)
    sign = torch.where(z >= 0, torch.ones_like(z), -torch.ones_like(z))
    a = -1.0 / (sign + z)
    b = x * y * a
    tangent = torch.stack([1.0 + sign * x * x * a, sign * b, -sign * x], dim=-1)
    bitangent = torch.stack([b, sign + y * y * a, -y], dim=-1)
    return tangent, bitangent


def _to_world(local: Float[Tensor, "*bs 3"], normal: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
    tangent, bitangent = orthonormal_frame(normal)
    return local[..., 0:1] * tangent + local[..., 1:2] * bitangent + local[..., 2:3] * normal


def _to_local(world: Float[Tensor, "*bs 3"], normal: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
    tangent, bitangent = orthonormal_frame(normal)
    return torch.cat([dot(world, tangent), dot(world, bitangent), dot(world, normal)], dim=-1)


def sample_cosine_hemisphere(
    normal: Float[Tensor, "*bs 3"], u: Float[Tensor, "*bs 2"]
) -> Tuple[Float[Tensor, "*bs 3"], Float[Tensor, "*bs 1"]]:
    """Cosine-weighted directions around `normal` from uniforms u in [0,1)^2 (Malley's method); pdf = n.l / pi."""
    radius = torch.sqrt(u[..., 0:1])
    phi = 2.0 * math.pi * u[..., 1:2]
    cos = torch.sqrt((1.0 - u[..., 0:1]).clamp(min=0.0))
    local = torch.cat([radius * torch.cos(phi), radius * torch.sin(phi), cos], dim=-1)
    return _to_world(local, normal), cos / math.pi


def cosine_hemisphere_pdf(normal: Float[Tensor, "*bs 3"], light: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 1"]:
    """Solid-angle pdf of `sample_cosine_hemisphere` at any direction (zero below the horizon)."""
    return dot(normal, light).clamp(min=0.0) / math.pi


def sample_ggx_vndf(
    normal: Float[Tensor, "*bs 3"],
    view: Float[Tensor, "*bs 3"],
    roughness: Float[Tensor, "*bs 1"],
    u: Float[Tensor, "*bs 2"],
) -> Tuple[Float[Tensor, "*bs 3"], Float[Tensor, "*bs 1"]]:
    """Light directions reflected about GGX visible normals (Heitz 2018), with their solid-angle pdf.

    The view must lie in the upper hemisphere (see `clamp_view_to_hemisphere`). Some reflected directions fall
    below the horizon; they are returned (the BRDF is zero there) so the pdf integrates to 1 over the sphere.
    """
    batch_shape = torch.broadcast_shapes(normal.shape[:-1], view.shape[:-1], roughness.shape[:-1], u.shape[:-1])
    alpha = roughness_to_alpha(roughness).expand(*batch_shape, 1)
    view_local = _to_local(view, normal).expand(*batch_shape, 3)
    view_local = torch.cat([view_local[..., :2], view_local[..., 2:3].clamp(min=0.0)], dim=-1)
    # Stretch the view so the GGX ellipsoid becomes the unit hemisphere.
    stretched = torch.nn.functional.normalize(
        torch.cat([alpha * view_local[..., :2], view_local[..., 2:3]], dim=-1), dim=-1
    )
    length_sq = (stretched[..., :2] ** 2).sum(dim=-1, keepdim=True)
    fallback = torch.zeros_like(stretched)
    fallback[..., 0] = 1.0
    axis_1 = torch.where(
        length_sq > 0,
        torch.cat([-stretched[..., 1:2], stretched[..., 0:1], torch.zeros_like(length_sq)], dim=-1)
        * torch.rsqrt(length_sq.clamp(min=1e-30)),
        fallback,
    )
    axis_2 = torch.linalg.cross(stretched, axis_1, dim=-1)
    # Uniform disk point, warped onto the projected visible half-disk.
    radius = torch.sqrt(u[..., 0:1])
    phi = 2.0 * math.pi * u[..., 1:2]
    t1 = radius * torch.cos(phi)
    t2 = radius * torch.sin(phi)
    blend = 0.5 * (1.0 + stretched[..., 2:3])
    t2 = (1.0 - blend) * torch.sqrt((1.0 - t1 * t1).clamp(min=0.0)) + blend * t2
    lifted = t1 * axis_1 + t2 * axis_2 + torch.sqrt((1.0 - t1 * t1 - t2 * t2).clamp(min=0.0)) * stretched
    half_local = torch.nn.functional.normalize(
        torch.cat([alpha * lifted[..., :2], lifted[..., 2:3].clamp(min=0.0)], dim=-1), dim=-1
    )
    half = _to_world(half_local, normal)
    light = reflect(view, half)
    return light, ggx_vndf_pdf(normal, view, light, roughness)


def ggx_vndf_pdf(
    normal: Float[Tensor, "*bs 3"],
    view: Float[Tensor, "*bs 3"],
    light: Float[Tensor, "*bs 3"],
    roughness: Float[Tensor, "*bs 1"],
) -> Float[Tensor, "*bs 1"]:
    """Solid-angle pdf of `sample_ggx_vndf` at any light direction: G1(v) D(h) / (4 n.v), h = normalize(v + l)."""
    alpha = roughness_to_alpha(roughness)
    n_dot_v = dot(normal, view).clamp(min=_COS_EPS)
    half = torch.nn.functional.normalize(view + light, dim=-1)
    return ggx_smith_g1_exact(n_dot_v, alpha) * ggx_distribution(dot(normal, half), alpha) / (4.0 * n_dot_v)


def power_heuristic_over_pdf(
    pdfs: Float[Tensor, "*bs num_samples num_strategies"], counts: Sequence[int]
) -> Float[Tensor, "*bs num_samples 1"]:
    """Veach's multi-sample MIS with the power heuristic (exponent 2): w_s(l) / (n_s p_s(l)) for each sample l,
    where s is the strategy that drew it (the first counts[0] samples by strategy 0, and so on) and
    w_s = (n_s p_s)^2 / sum_t (n_t p_t)^2. `pdfs` holds every strategy's pdf at every sample already multiplied by
    its count n_t. Zero where the own pdf is zero."""
    starts = [sum(counts[:strategy]) for strategy in range(len(counts))]
    own = torch.cat(
        [pdfs[..., start : start + count, strategy : strategy + 1]
         for strategy, (start, count) in enumerate(zip(starts, counts))],
        dim=-2,
    )
    # Divided through by the largest pdf of each sample, so that squares of huge pdfs cannot overflow.
    scale = pdfs.amax(dim=-1, keepdim=True).clamp(min=1e-30)
    squares = ((pdfs / scale) ** 2).sum(dim=-1, keepdim=True)
    return torch.where(own > 0, (own / scale) / (squares * scale), torch.zeros_like(own))
