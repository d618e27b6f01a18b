"""Monte Carlo shading of surface points under a light function, with multiple importance sampling (nero-material).

Estimates L_o(v) = int (f_d + f_s)(v, l) L(l) V(l) (n.l) dl with `num_diffuse` cosine-weighted, `num_specular`
GGX visible-normal and optionally `num_light` samples of a light sampler (`LatLongLightSampler`), combined by
Veach's multi-sample MIS (power heuristic, counts folded into the pdfs):
    sum_s sum_i w_s(l_i) f(l_i) L(l_i) V(l_i) / (n_s p_s(l_i)),  w_s = (n_s p_s)^2 / sum_t (n_t p_t)^2.
The weights sum to 1 wherever f * cos > 0 (the cosine pdf covers the whole upper hemisphere), so the estimate is
unbiased for any light. The diffuse and specular parts use the same weights and are each unbiased.

Gradients: sample directions, pdfs and weights are detached (they only choose where to look), so derivatives wrt
material and light are unbiased estimates of the derivatives of the integral.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from nero_ns.components.brdf import (
    clamp_view_to_hemisphere,
    cook_torrance_brdf,
    cosine_hemisphere_pdf,
    ggx_vndf_pdf,
    power_heuristic_over_pdf,
    sample_cosine_hemisphere,
    sample_ggx_vndf,
)
from nero_ns.components.light_sampling import LatLongLightSampler

SampleVectors = Float[Tensor, "*bs num_samples 3"]
"""Per-sample 3-vectors: unit directions away from the surface, the (repeated) shading points, or radiance."""

LightFn = Callable[[SampleVectors, SampleVectors], SampleVectors]
"""light_fn(directions, points) -> incident radiance arriving at `points` from `directions`."""

VisibilityFn = Callable[[SampleVectors, SampleVectors], Bool[Tensor, "*bs num_samples"]]
"""visibility_fn(points, directions) -> True where the light from that direction reaches the point."""


@dataclass
class LightSamples:
    """Light directions drawn for shading points, with what `shade_samples` needs to weigh them."""

    points: SampleVectors
    """The shading points, repeated for each of their samples."""
    directions: SampleVectors
    """Unit directions away from the surface: cosine samples first, then GGX, then those of the light sampler."""
    view: Float[Tensor, "*bs 1 3"]
    """The view directions, bent up to the shading horizon where they fall below it."""
    weight_over_pdf: Float[Tensor, "*bs num_samples 1"]
    """Each sample's MIS weight over its pdf (counts folded in); detached."""
    counts: Tuple[int, ...]
    """Samples per strategy drawn (cosine, GGX and, when there are any, light sampler)."""
    num_estimates: int
    """Independent estimates the samples are split into (`shade_samples`)."""


def draw_light_samples(
    points: Float[Tensor, "*bs 3"],
    normals: Float[Tensor, "*bs 3"],
    view_dirs: Float[Tensor, "*bs 3"],
    roughness: Float[Tensor, "*bs 1"],
    num_diffuse: int,
    num_specular: int,
    generator: Optional[torch.Generator] = None,
    stratified: bool = True,
    light_sampler: Optional[LatLongLightSampler] = None,
    num_light: int = 0,
    num_estimates: int = 1,
) -> LightSamples:
    """`num_diffuse` cosine-weighted, `num_specular` GGX visible-normal and `num_light` light-sampler directions per
    shading point, with their MIS weights (see `monte_carlo_shade`)."""
    num_light = num_light if light_sampler is not None else 0
    counts = (num_diffuse, num_specular, num_light)
    if min(counts) < 0 or num_diffuse + num_specular == 0 or any(count % num_estimates for count in counts):
        raise ValueError(f"monte_carlo_shade needs sample counts >= 0 with a positive sum of cosine and GGX samples, "
                         f"each a multiple of num_estimates ({num_estimates}), got {num_diffuse}, {num_specular} and "
                         f"{num_light}")
    batch_shape = torch.broadcast_shapes(points.shape, normals.shape, view_dirs.shape)[:-1]
    view = clamp_view_to_hemisphere(normals, view_dirs)[..., None, :]
    normal = normals[..., None, :]
    with torch.no_grad():
        options = dict(stratified=stratified, generator=generator, device=points.device, dtype=points.dtype)
        rough = roughness.detach()[..., None, :]

        def uniforms(count: int, along_first: bool = False) -> Tensor:
            # Each estimate's share of a strategy's samples is stratified on its own grid, estimate after estimate
            # (`along_first`: strata along the first uniform only).
            share = count // num_estimates
            rows = share if along_first else None
            u = unit_square_samples(torch.Size([*batch_shape, num_estimates]), share, rows=rows, **options)
            return u.reshape(*batch_shape, count, 2)

        cosine_u, specular_u = uniforms(num_diffuse), uniforms(num_specular)
        cosine_dirs, _ = sample_cosine_hemisphere(normal, cosine_u)
        specular_dirs, _ = sample_ggx_vndf(normal, view, rough, specular_u)
        strategies = [cosine_dirs.expand(*batch_shape, num_diffuse, 3), specular_dirs]
        if num_light > 0:
            # Strata along the cdf only: the first uniform picks the cell.
            light_u = uniforms(num_light, along_first=True)
            strategies.append(light_sampler.sample(light_u))
        directions = torch.cat(strategies, dim=-2)
        # Every strategy's pdf at every sample, scaled by its sample count (multi-sample MIS, power heuristic).
        pdfs = [num_diffuse * cosine_hemisphere_pdf(normal, directions),
                num_specular * ggx_vndf_pdf(normal, view, directions, rough)]
        if num_light > 0:
            pdfs.append(num_light * light_sampler.pdf(directions))
        weight_over_pdf = power_heuristic_over_pdf(torch.cat(pdfs, dim=-1), counts[: len(pdfs)])
    sample_points = points[..., None, :].expand(*batch_shape, directions.shape[-2], 3)
    return LightSamples(sample_points, directions, view, weight_over_pdf, counts[: len(strategies)], num_estimates)


def shade_samples(
    samples: LightSamples,
    normals: Float[Tensor, "*bs 3"],
    radiance: SampleVectors,
    base_color: Float[Tensor, "*bs 3"],
    roughness: Float[Tensor, "*bs 1"],
    metallic: Float[Tensor, "*bs 1"],
) -> Dict[str, Float[Tensor, "*bs 3"]]:
    """Outgoing radiance toward the view as dict(rgb, diffuse, specular) from the `radiance` arriving along each
    sample's direction, and with several estimates also "estimates" (see `monte_carlo_shade`)."""
    diffuse, specular = cook_torrance_brdf(
        normals[..., None, :], samples.view, samples.directions, base_color[..., None, :], roughness[..., None, :],
        metallic[..., None, :],
    )
    diffuse = diffuse * radiance * samples.weight_over_pdf
    specular = specular * radiance * samples.weight_over_pdf
    shading = {"diffuse": diffuse.sum(dim=-2), "specular": specular.sum(dim=-2)}
    shading["rgb"] = shading["diffuse"] + shading["specular"]
    num_estimates = samples.num_estimates
    if num_estimates > 1:
        # Each estimate has 1/num_estimates of every strategy's samples: the same MIS weights (the power heuristic
        # does not change when all counts are scaled alike), num_estimates times the weight over pdf.
        estimate_of_sample = torch.cat([
            torch.arange(num_estimates, device=radiance.device).repeat_interleave(count // num_estimates)
            for count in samples.counts
        ])
        contributions = (diffuse + specular) * num_estimates
        estimates = contributions.new_zeros(*contributions.shape[:-2], num_estimates, 3)
        shading["estimates"] = estimates.index_add(-2, estimate_of_sample, contributions)
    return shading


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
    stratified: bool = True,
    light_sampler: Optional[LatLongLightSampler] = None,
    num_light: int = 0,
    num_estimates: int = 1,
) -> Dict[str, Float[Tensor, "*bs 3"]]:
    """Outgoing radiance toward `view_dirs` (unit, toward the camera) as dict(rgb, diffuse, specular), and with
    `num_estimates` > 1 also "estimates" (*bs, num_estimates, 3): the samples split into that many independent,
    separately stratified estimates of rgb (each count must divide by it), whose mean is rgb.

    `light_fn` and `visibility_fn` are called once each on all num_diffuse + num_specular (+ num_light) samples per
    point (cosine samples first, then GGX, then those of `light_sampler`). Occluded samples get zero radiance (hard
    shadows); for NeRO's indirect light, leave `visibility_fn` None and decide inside `light_fn`. Views below the
    shading horizon are bent up to it. `generator` must live on the device of `points`. With `stratified`, each
    strategy's uniforms are jittered on a grid (`unit_square_samples`), else drawn independently. A caller that
    needs more of the light than its radiance calls `draw_light_samples` and `shade_samples` itself.
    """
    samples = draw_light_samples(
        points, normals, view_dirs, roughness, num_diffuse, num_specular, generator, stratified, light_sampler,
        num_light, num_estimates,
    )
    radiance = light_fn(samples.directions, samples.points)
    if visibility_fn is not None:
        radiance = radiance * visibility_fn(samples.points, samples.directions)[..., None].to(radiance.dtype)
    return shade_samples(samples, normals, radiance, base_color, roughness, metallic)


def unit_square_samples(
    batch_shape: torch.Size,
    count: int,
    stratified: bool,
    generator: Optional[torch.Generator],
    device: torch.device,
    dtype: torch.dtype,
    rows: Optional[int] = None,
) -> Float[Tensor, "*bs count 2"]:
    """`count` uniform points of [0, 1)^2 per point of the batch: independent, or with `stratified` one in each cell
    of a rows x columns grid, jittered independently per point; `rows` must divide `count` (default: its largest
    divisor up to its square root).

    A stratified sample is uniform within its cell, so the sum over the cells keeps the expectation of independent
    samples (the estimate stays unbiased) while every region of the unit square, and so of each strategy's
    directions, gets its share of samples rather than a binomial count."""
    jitter = torch.rand(*batch_shape, count, 2, generator=generator, device=device, dtype=dtype)
    if not stratified or count == 0:
        return jitter
    if rows is None:
        rows = max(divisor for divisor in range(1, math.isqrt(count) + 1) if count % divisor == 0)
    columns = count // rows
    index = torch.arange(count, device=device)
    cells = torch.stack([(index // columns).to(dtype) / rows, (index % columns).to(dtype) / columns], dim=-1)
    return cells + jitter * torch.tensor([1.0 / rows, 1.0 / columns], device=device, dtype=dtype)
