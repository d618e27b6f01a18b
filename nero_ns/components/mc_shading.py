"""Monte Carlo shading of surface points under a light function, with multiple importance sampling (Stage II).

Estimates L_o(v) = int (f_d + f_s)(v, l) L(l) V(l) (n.l) dl with `num_diffuse` cosine-weighted and `num_specular`
GGX visible-normal samples, combined by Veach's multi-sample MIS (power heuristic, counts folded into the pdfs):
    sum_s sum_i w_s(l_i) f(l_i) L(l_i) V(l_i) / (n_s p_s(l_i)),  w_s = (n_s p_s)^2 / sum_t (n_t p_t)^2.
The weights sum to 1 wherever f * cos > 0 (the cosine pdf covers the whole upper hemisphere), so the estimate is
unbiased for any light. The diffuse and specular parts use the same weights and are each unbiased.

Gradients: sample directions, pdfs and weights are detached (they only choose where to look), so derivatives wrt
material and light are unbiased estimates of the derivatives of the integral.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from nero_ns.components.brdf import (
    clamp_view_to_hemisphere,
    cook_torrance_brdf,
    cosine_hemisphere_pdf,
    ggx_vndf_pdf,
    mis_weight,
    sample_cosine_hemisphere,
    sample_ggx_vndf,
)

SampleVectors = Float[Tensor, "*bs num_samples 3"]
"""Per-sample 3-vectors: unit directions away from the surface, the (repeated) shading points, or radiance."""

LightFn = Callable[[SampleVectors, SampleVectors], SampleVectors]
"""light_fn(directions, points) -> incident radiance arriving at `points` from `directions`."""

VisibilityFn = Callable[[SampleVectors, SampleVectors], Bool[Tensor, "*bs num_samples"]]
"""visibility_fn(points, directions) -> True where the light from that direction reaches the point."""


def monte_carlo_shade(
    points: Float[Tensor, "*bs 3"],
    normals: Float[Tensor, "*bs 3"],
    view_dirs: Float[Tensor, "*bs 3"],
    base_color: Float[Tensor, "*bs 3"],
    roughness: Float[Tensor, "*bs 1"],
    metallic: Float[Tensor, "*bs 1"],
    light_fn: LightFn,
    num_diffuse: int,
    num_specular: int,
    visibility_fn: Optional[VisibilityFn] = None,
    generator: Optional[torch.Generator] = None,
) -> Dict[str, Float[Tensor, "*bs 3"]]:
    """Outgoing radiance toward `view_dirs` (unit, toward the camera) as dict(rgb, diffuse, specular).

    `light_fn` and `visibility_fn` are called once each on all num_diffuse + num_specular samples per point
    (cosine samples first). Occluded samples get zero radiance (hard shadows); for NeRO's indirect light, leave
    `visibility_fn` None and decide inside `light_fn`. Views below the shading horizon are bent up to it.
    `generator` must live on the device of `points`.
    """
    if num_diffuse < 0 or num_specular < 0 or num_diffuse + num_specular == 0:
        raise ValueError(f"monte_carlo_shade needs sample counts >= 0 with a positive sum, got {num_diffuse} and "
                         f"{num_specular}")
    batch_shape = torch.broadcast_shapes(points.shape, normals.shape, view_dirs.shape)[:-1]
    num_samples = num_diffuse + num_specular
    view = clamp_view_to_hemisphere(normals, view_dirs)[..., None, :]
    normal = normals[..., None, :]
    with torch.no_grad():
        u = torch.rand(*batch_shape, num_samples, 2, generator=generator, device=points.device, dtype=points.dtype)
        rough = roughness.detach()[..., None, :]
        cosine_dirs, _ = sample_cosine_hemisphere(normal, u[..., :num_diffuse, :])
        specular_dirs, _ = sample_ggx_vndf(normal, view, rough, u[..., num_diffuse:, :])
        directions = torch.cat([cosine_dirs.expand(*batch_shape, num_diffuse, 3), specular_dirs], dim=-2)
        # Both pdfs at every sample, scaled by their sample counts (multi-sample MIS).
        pdf_cosine = num_diffuse * cosine_hemisphere_pdf(normal, directions)
        pdf_specular = num_specular * ggx_vndf_pdf(normal, view, directions, rough)
        own_pdf = torch.cat([pdf_cosine[..., :num_diffuse, :], pdf_specular[..., num_diffuse:, :]], dim=-2)
        other_pdf = torch.cat([pdf_specular[..., :num_diffuse, :], pdf_cosine[..., num_diffuse:, :]], dim=-2)
        weight_over_pdf = torch.where(
            own_pdf > 0, mis_weight(own_pdf, other_pdf) / own_pdf.clamp(min=1e-30), torch.zeros_like(own_pdf)
        )
    sample_points = points[..., None, :].expand(*batch_shape, num_samples, 3)
    radiance = light_fn(directions, sample_points)
    if visibility_fn is not None:
        radiance = radiance * visibility_fn(sample_points, directions)[..., None].to(radiance.dtype)
    diffuse, specular = cook_torrance_brdf(
        normal, view, directions, base_color[..., None, :], roughness[..., None, :], metallic[..., None, :]
    )
    diffuse = (diffuse * radiance * weight_over_pdf).sum(dim=-2)
    specular = (specular * radiance * weight_over_pdf).sum(dim=-2)
    return {"rgb": diffuse + specular, "diffuse": diffuse, "specular": specular}
