"""GGX BRDF, samplers and MIS weights against closed forms, quadrature and sample histograms."""

from __future__ import annotations

import math

import pytest
import torch

from nero_ns.components.brdf import (
    MIN_ROUGHNESS,
    clamp_view_to_hemisphere,
    cook_torrance_brdf,
    cosine_hemisphere_pdf,
    ggx_distribution,
    ggx_vndf_pdf,
    power_heuristic_over_pdf,
    orthonormal_frame,
    roughness_to_alpha,
    sample_cosine_hemisphere,
    sample_ggx_vndf,
)

F64 = torch.float64


def sphere_grid(n_theta: int, n_phi: int):
    """Midpoint quadrature over the unit sphere in (theta, phi) around +z: directions and solid-angle weights."""
    theta = (torch.arange(n_theta, dtype=F64) + 0.5) * math.pi / n_theta
    phi = (torch.arange(n_phi, dtype=F64) + 0.5) * 2 * math.pi / n_phi
    theta, phi = torch.meshgrid(theta, phi, indexing="ij")
    dirs = torch.stack([theta.sin() * phi.cos(), theta.sin() * phi.sin(), theta.cos()], dim=-1).reshape(-1, 3)
    weights = (theta.sin() * (math.pi / n_theta) * (2 * math.pi / n_phi)).reshape(-1, 1)
    return dirs, weights


def unit(x):
    return torch.nn.functional.normalize(torch.as_tensor(x, dtype=F64), dim=-1)


def tilted_view(normal, angle_deg):
    """A unit view at `angle_deg` from `normal`."""
    tangent, _ = orthonormal_frame(normal)
    angle = math.radians(angle_deg)
    return math.cos(angle) * normal + math.sin(angle) * tangent


def test_orthonormal_frame_is_right_handed_everywhere_including_poles():
    normals = torch.cat(
        [unit(torch.randn(1000, 3, dtype=F64, generator=torch.Generator().manual_seed(0))),
         unit([[0, 0, 1], [0, 0, -1], [1e-9, 0, -1], [0, 1, 0], [1, 0, 0]])]
    )
    tangent, bitangent = orthonormal_frame(normals)
    for a, b in [(tangent, bitangent), (tangent, normals), (bitangent, normals)]:
        assert (a * b).sum(-1).abs().max() < 1e-12
    assert (tangent.norm(dim=-1) - 1).abs().max() < 1e-12 and (bitangent.norm(dim=-1) - 1).abs().max() < 1e-12
    assert torch.allclose(torch.linalg.cross(tangent, bitangent, dim=-1), normals, atol=1e-12)


@pytest.mark.parametrize("roughness", [0.0, 0.1, 0.3, 0.7, 1.0])
def test_ggx_distribution_projected_area_integrates_to_one(roughness):
    alpha = roughness_to_alpha(torch.tensor(roughness, dtype=F64))
    n = 1_000_000
    theta = (torch.arange(n, dtype=F64) + 0.5) * (math.pi / 2) / n
    integrand = ggx_distribution(theta.cos(), alpha) * theta.cos() * theta.sin()
    integral = integrand.sum() * (math.pi / 2) / n * 2 * math.pi
    assert abs(integral.item() - 1.0) < 1e-3
    assert ggx_distribution(torch.tensor(-0.5, dtype=F64), alpha) == 0


def test_roughness_floor():
    assert roughness_to_alpha(torch.tensor(0.0)).item() == pytest.approx(MIN_ROUGHNESS**2)
    assert roughness_to_alpha(torch.tensor(0.5)).item() == pytest.approx(0.25)


def test_cook_torrance_closed_form_at_normal_incidence():
    normal = unit([0.0, 0.0, 1.0])
    base_color = torch.tensor([0.2, 0.5, 0.9], dtype=F64)
    roughness, metallic = torch.tensor([0.5], dtype=F64), torch.tensor([0.3], dtype=F64)
    diffuse, specular = cook_torrance_brdf(normal, normal, normal, base_color, roughness, metallic)
    alpha = 0.25
    f0 = 0.04 * 0.7 + base_color * 0.3
    # D(1) = 1 / (pi alpha^2), G = 1, F = F0, n.v = n.l = 1.
    assert torch.allclose(specular, f0 / (4 * math.pi * alpha**2), rtol=1e-12)
    assert torch.allclose(diffuse, 0.7 * base_color / math.pi, rtol=1e-12)


def test_cook_torrance_is_reciprocal_and_zero_below_horizon():
    gen = torch.Generator().manual_seed(1)
    normal = unit(torch.randn(500, 3, dtype=F64, generator=gen))
    view = unit(torch.randn(500, 3, dtype=F64, generator=gen))
    light = unit(torch.randn(500, 3, dtype=F64, generator=gen))
    # Flip both into the normal's hemisphere.
    view = view * (normal * view).sum(-1, keepdim=True).sign()
    light = light * (normal * light).sum(-1, keepdim=True).sign()
    base_color = torch.rand(500, 3, dtype=F64, generator=gen)
    roughness, metallic = torch.rand(500, 1, dtype=F64, generator=gen), torch.rand(500, 1, dtype=F64, generator=gen)
    _, spec_vl = cook_torrance_brdf(normal, view, light, base_color, roughness, metallic)
    _, spec_lv = cook_torrance_brdf(normal, light, view, base_color, roughness, metallic)
    cos_v, cos_l = (normal * view).sum(-1, keepdim=True), (normal * light).sum(-1, keepdim=True)
    assert torch.allclose(spec_vl / cos_l, spec_lv / cos_v, rtol=1e-9)
    diffuse, specular = cook_torrance_brdf(normal, view, -light, base_color, roughness, metallic)
    assert diffuse.abs().max() == 0 and specular.abs().max() == 0


def test_cook_torrance_gradients_match_finite_differences():
    gen = torch.Generator().manual_seed(2)
    normal = unit(torch.tensor([[0.1, 0.2, 1.0]] * 4, dtype=F64))
    view = unit([[0.3, 0.0, 1.0]] * 4)
    light = unit(torch.rand(4, 3, dtype=F64, generator=gen) + torch.tensor([0, 0, 1.0], dtype=F64))
    inputs = (torch.rand(4, 3, dtype=F64, generator=gen).requires_grad_(),
              (0.2 + 0.7 * torch.rand(4, 1, dtype=F64, generator=gen)).requires_grad_(),
              torch.rand(4, 1, dtype=F64, generator=gen).requires_grad_())
    assert torch.autograd.gradcheck(lambda c, r, m: cook_torrance_brdf(normal, view, light, c, r, m), inputs)


def test_clamp_view_to_hemisphere_bends_only_backfacing_views():
    normal = unit([[0.0, 0.0, 1.0]] * 3)
    views = unit([[1.0, 0.0, 1.0], [1.0, 0.0, -0.2], [0.0, 0.0, -1.0]])
    bent = clamp_view_to_hemisphere(normal, views, min_cos=1e-3)
    assert torch.allclose(bent[0], views[0])
    assert (bent[1:, 2] >= 1e-3 - 1e-12).all() and torch.allclose(bent.norm(dim=-1), torch.ones(3, dtype=F64))
    assert bent[1, 0] > 0.99  # keeps its tangential direction


def test_cosine_sampling_pdf_normalized_and_matches_histogram():
    normal = unit([0.3, -0.5, 0.8])
    dirs, weights = sphere_grid(400, 400)
    assert abs((cosine_hemisphere_pdf(normal, dirs) * weights).sum().item() - 1) < 1e-4
    u = torch.rand(200_000, 2, dtype=F64, generator=torch.Generator().manual_seed(3))
    samples, pdf = sample_cosine_hemisphere(normal, u)
    assert torch.allclose(samples.norm(dim=-1), torch.ones(len(u), dtype=F64))
    assert torch.allclose(pdf, cosine_hemisphere_pdf(normal, samples))
    assert_histogram_matches_pdf(samples, normal, lambda d: cosine_hemisphere_pdf(normal, d))


@pytest.mark.parametrize("roughness", [0.2, 0.5, 1.0])
@pytest.mark.parametrize("view_angle", [0.0, 45.0, 80.0])
def test_vndf_pdf_integrates_to_one_over_the_sphere(roughness, view_angle):
    normal = unit([-0.2, 0.4, 0.9])
    view = tilted_view(normal, view_angle)
    dirs, weights = sphere_grid(1000, 500)
    rough = torch.tensor([roughness], dtype=F64)
    total = (ggx_vndf_pdf(normal, view, dirs, rough) * weights).sum().item()
    assert abs(total - 1.0) < 2e-3


@pytest.mark.parametrize("roughness,view_angle", [(0.5, 0.0), (0.5, 60.0), (0.8, 75.0), (0.35, 30.0)])
def test_vndf_samples_match_pdf(roughness, view_angle):
    normal = unit([0.6, 0.0, 0.8])
    view = tilted_view(normal, view_angle)
    rough = torch.tensor([roughness], dtype=F64)
    u = torch.rand(200_000, 2, dtype=F64, generator=torch.Generator().manual_seed(4))
    samples, pdf = sample_ggx_vndf(normal, view, rough, u)
    assert torch.allclose(samples.norm(dim=-1), torch.ones(len(u), dtype=F64))
    assert torch.allclose(pdf, ggx_vndf_pdf(normal, view, samples, rough), rtol=1e-6)
    assert_histogram_matches_pdf(samples, normal, lambda d: ggx_vndf_pdf(normal, view, d, rough))


def assert_histogram_matches_pdf(samples, normal, pdf_fn, n_cos=24, n_phi=24, sub=24):
    """Chi-square test of sample counts in (cos theta, phi) bins of the normal's frame against the pdf's bin mass."""
    tangent, bitangent = orthonormal_frame(normal)
    local = torch.stack([(samples * tangent).sum(-1), (samples * bitangent).sum(-1), (samples * normal).sum(-1)], -1)
    cos_bin = ((local[:, 2] + 1) / 2 * n_cos).long().clamp(0, n_cos - 1)
    phi = torch.atan2(local[:, 1], local[:, 0]) % (2 * math.pi)
    phi_bin = (phi / (2 * math.pi) * n_phi).long().clamp(0, n_phi - 1)
    counts = torch.bincount(cos_bin * n_phi + phi_bin, minlength=n_cos * n_phi).to(F64)
    # Bin masses: midpoint rule on a sub-grid, in cos theta (uniform measure d cos d phi = solid angle).
    cos = -1 + (torch.arange(n_cos * sub, dtype=F64) + 0.5) * 2 / (n_cos * sub)
    phi = (torch.arange(n_phi * sub, dtype=F64) + 0.5) * 2 * math.pi / (n_phi * sub)
    cos, phi = torch.meshgrid(cos, phi, indexing="ij")
    sin = (1 - cos**2).sqrt()
    dirs = (sin * phi.cos())[..., None] * tangent + (sin * phi.sin())[..., None] * bitangent + cos[..., None] * normal
    density = pdf_fn(dirs.reshape(-1, 3)).reshape(n_cos, sub, n_phi, sub)
    mass = density.sum(dim=(1, 3)).reshape(-1) * (2 / (n_cos * sub)) * (2 * math.pi / (n_phi * sub))
    expected = mass * len(samples)
    assert abs(mass.sum().item() - 1) < 2e-3
    big = expected > 20
    assert abs(counts[~big].sum() - expected[~big].sum()) < 5 * expected[~big].sum().sqrt() + 10
    chi_square = (((counts - expected) ** 2)[big] / expected[big]).sum().item()
    dof = int(big.sum())
    assert chi_square < dof + 6 * math.sqrt(2 * dof), (chi_square, dof)


def test_power_heuristic_over_pdf():
    """Weights of two strategies (one sample each, at the same five directions) sum to 1 and follow Veach's
    power heuristic; a zero own pdf gives zero, a huge one does not overflow; three strategies weigh p^2."""
    a = torch.tensor([1.0, 2.0, 0.0, 1e30, 3.0])
    b = torch.tensor([1.0, 1.0, 5.0, 1.0, 0.0])
    weights = []
    for first, second in ((a, b), (b, a)):
        pdfs = torch.stack([first, second], dim=-1)[:, None, :].expand(5, 2, 2)  # sample 0 by strategy 0, 1 by 1
        weights.append(power_heuristic_over_pdf(pdfs, (1, 1))[:, 0, 0] * first)
    assert torch.allclose(weights[0], torch.tensor([0.5, 0.8, 0.0, 1.0, 1.0]))
    assert torch.allclose(weights[0][:2] + weights[1][:2], torch.ones(2))
    three = torch.tensor([[[1.0, 2.0, 3.0]] * 3])  # one sample per strategy, all at a point with pdfs 1, 2, 3
    over_pdf = power_heuristic_over_pdf(three, (1, 1, 1))[0, :, 0]
    assert torch.allclose(over_pdf * torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 4.0, 9.0]) / 14.0)
