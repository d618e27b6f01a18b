"""Light sampling (nero-material's third MIS strategy): pdf, histogram, unbiased shading, and why nero-material needs
it."""

from __future__ import annotations

import math

import pytest
import torch
from tests.components.test_mc_shading import quadrature

from nero_ns.components.light_sampling import LatLongLightSampler
from nero_ns.components.mc_shading import monte_carlo_shade, unit_square_samples
from nero_ns.models.photometric import photometric_loss, split_estimate_loss
from nero_ns.io.latlong import latlong_directions

F64 = torch.float64
SUN = torch.nn.functional.normalize(torch.tensor([0.3, 0.2, 0.9], dtype=F64), dim=0)


def sky_with_sun(strength, cone_cos: float = 0.999, sky: float = 0.2):
    """Light function: a grey sky and a sun of `strength` (a tensor or a float) in a cone around SUN."""

    def light_fn(directions, points=None):
        in_sun = ((directions * SUN).sum(-1, keepdim=True) > cone_cos).to(F64)
        return (sky + in_sun * strength).expand(*directions.shape[:-1], 3)

    return light_fn


def test_pdf_integrates_to_one_and_matches_the_samples():
    radiance = sky_with_sun(30.0, cone_cos=0.99)(torch.as_tensor(latlong_directions(32, 64), dtype=F64))
    sampler = LatLongLightSampler(radiance, exponent=2.0)
    # Midpoint quadrature in (theta, phi) on a grid aligned with the map's cells (8 x 8 points per cell).
    theta = (torch.arange(32 * 8, dtype=F64) + 0.5) * math.pi / (32 * 8)
    phi = (torch.arange(64 * 8, dtype=F64) + 0.5) * 2 * math.pi / (64 * 8)
    theta, phi = torch.meshgrid(theta, phi, indexing="ij")
    directions = torch.stack([theta.sin() * phi.sin(), theta.sin() * phi.cos(), theta.cos()], dim=-1)
    area = theta.sin()[..., None] * (math.pi / (32 * 8)) * (2 * math.pi / (64 * 8))
    assert abs(float((sampler.pdf(directions) * area).sum()) - 1.0) < 1e-4
    u = torch.rand(200_000, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    samples = sampler.sample(u)
    assert torch.allclose(samples.norm(dim=-1), torch.ones(len(u), dtype=F64), atol=1e-5)
    # Counts per cell against the cell masses (chi-square), sub-cells included: 4 x 4 bins per cell.
    theta = torch.acos(samples[:, 2].clamp(-1, 1))
    phi = torch.remainder(torch.atan2(samples[:, 0], samples[:, 1]), 2 * math.pi)
    bins = (theta / math.pi * 128).long().clamp(0, 127) * 256 + (phi / (2 * math.pi) * 256).long().clamp(0, 255)
    counts = torch.bincount(bins, minlength=128 * 256).to(F64)
    fine_theta = (torch.arange(128 * 4, dtype=F64) + 0.5) * math.pi / (128 * 4)
    fine_phi = (torch.arange(256 * 4, dtype=F64) + 0.5) * 2 * math.pi / (256 * 4)
    fine_theta, fine_phi = torch.meshgrid(fine_theta, fine_phi, indexing="ij")
    fine = torch.stack([fine_theta.sin() * fine_phi.sin(), fine_theta.sin() * fine_phi.cos(), fine_theta.cos()], -1)
    fine_area = fine_theta.sin()[..., None] * (math.pi / 512) * (2 * math.pi / 1024)
    mass = (sampler.pdf(fine) * fine_area).reshape(128, 4, 256, 4).sum(dim=(1, 3)).reshape(-1)
    expected = mass * len(samples)
    big = expected > 20
    chi_square = float((((counts - expected) ** 2)[big] / expected[big]).sum())
    dof = int(big.sum())
    assert dof > 100 and chi_square < dof + 6 * math.sqrt(2 * dof), (chi_square, dof)


def test_bright_cells_draw_more_than_their_share_of_the_energy():
    """A sun holding 2.3% of the energy gets that share of samples with exponent 1 and most samples with 2."""
    radiance = sky_with_sun(10.0, cone_cos=0.995)(torch.as_tensor(latlong_directions(128, 256), dtype=F64))
    u = unit_square_samples(
        torch.Size([]), 4096, True, torch.Generator().manual_seed(2), torch.device("cpu"), F64, rows=4096
    )
    shares = {}
    for exponent in (1.0, 2.0):
        samples = LatLongLightSampler(radiance, uniform_share=0.1, exponent=exponent).sample(u)
        shares[exponent] = float(((samples * SUN).sum(-1) > 0.995).to(F64).mean())
    energy_share = 10.0 * 2 * math.pi * 0.005 / (10.0 * 2 * math.pi * 0.005 + 0.2 * 4 * math.pi)
    assert abs(shares[1.0] - 0.9 * energy_share) < 0.01, shares
    assert shares[2.0] > 0.5, shares


def test_shading_with_light_samples_is_unbiased_and_less_noisy_under_a_sun():
    light_fn = sky_with_sun(50.0, cone_cos=0.995)
    sampler = LatLongLightSampler(light_fn(torch.as_tensor(latlong_directions(128, 256), dtype=F64)), exponent=2.0)
    count = 4096
    normal = torch.nn.functional.normalize(torch.tensor([0.2, 0.1, 1.0], dtype=F64), dim=0)
    view = torch.nn.functional.normalize(torch.tensor([-0.3, -0.1, 0.8], dtype=F64), dim=0)
    base_color = torch.tensor([0.7, 0.4, 0.2], dtype=F64)
    rough, metallic = torch.tensor([0.4], dtype=F64), torch.tensor([0.3], dtype=F64)
    reference = sum(quadrature(normal, view, base_color, rough, metallic, light_fn, n=1500))

    def shade(num_light):
        return monte_carlo_shade(
            torch.zeros(count, 3, dtype=F64), normal.expand(count, 3), view.expand(count, 3),
            base_color.expand(count, 3), rough.expand(count, 1), metallic.expand(count, 1), light_fn, 24, 24,
            generator=torch.Generator().manual_seed(5), light_sampler=sampler, num_light=num_light,
        )["rgb"]

    with_light, without = shade(16), shade(0)
    for estimates in (with_light, without):
        mean, stderr = estimates.mean(0), estimates.std(0) / math.sqrt(count)
        assert ((mean - reference).abs() < 4 * stderr + 2e-3 * reference).all(), (mean, stderr, reference)
    assert (with_light.std(0) < 0.5 * without.std(0)).all(), (with_light.std(0), without.std(0))


def test_split_estimates_are_unbiased_independent_and_average_to_the_rendering():
    """`num_estimates 2` splits each strategy's samples into two separately stratified halves: each half is an
    unbiased estimate on its own, the two are uncorrelated, and their mean is the full estimate."""
    light_fn = sky_with_sun(50.0, cone_cos=0.995)
    sampler = LatLongLightSampler(light_fn(torch.as_tensor(latlong_directions(128, 256), dtype=F64)), exponent=2.0)
    count = 4096
    normal = torch.nn.functional.normalize(torch.tensor([0.2, 0.1, 1.0], dtype=F64), dim=0).expand(count, 3)
    view = torch.nn.functional.normalize(torch.tensor([-0.3, -0.1, 0.8], dtype=F64), dim=0).expand(count, 3)
    base_color = torch.tensor([0.7, 0.4, 0.2], dtype=F64).expand(count, 3)
    rough, metallic = torch.full((count, 1), 0.4, dtype=F64), torch.full((count, 1), 0.3, dtype=F64)
    reference = sum(quadrature(normal[0], view[0], base_color[0], rough[0], metallic[0], light_fn, n=1500))
    out = monte_carlo_shade(
        torch.zeros(count, 3, dtype=F64), normal, view, base_color, rough, metallic, light_fn, 24, 24,
        generator=torch.Generator().manual_seed(6), light_sampler=sampler, num_light=16, num_estimates=2,
    )
    estimates = out["estimates"]
    assert estimates.shape == (count, 2, 3)
    assert torch.allclose(estimates.mean(dim=1), out["rgb"])
    for half in (0, 1):
        mean, stderr = estimates[:, half].mean(0), estimates[:, half].std(0) / math.sqrt(count)
        assert ((mean - reference).abs() < 4 * stderr + 2e-3 * reference).all(), (half, mean, stderr, reference)
    first, second = (estimates[:, half, 0] - estimates[:, half, 0].mean() for half in (0, 1))
    assert abs(float((first * second).mean() / (first.std() * second.std()))) < 0.1
    with pytest.raises(ValueError, match="multiple of num_estimates"):
        monte_carlo_shade(torch.zeros(count, 3, dtype=F64), normal, view, base_color, rough, metallic, light_fn, 24,
                          24, light_sampler=sampler, num_light=16, num_estimates=3)


def fitted_sun_strength(num_light: int, split: bool = False, shadowed_half: bool = False) -> float:
    """Fit a sun's strength (true 10, start 1; a cone of 0.006 sr over a grey sky) with the Charbonnier loss to the
    exact shading of a rough white patch, from 24 + 24 (+ num_light) samples per point, rebuilding the light
    sampler from the current light at every step as nero-material does every few steps.

    With `shadowed_half`, the sky's strength is learned too and the sun is blocked over every other point, so only
    the contrast between lit and shadowed points tells the sun from the sky, as on a real object. With `split`, the
    loss is `split_estimate_loss` (split_mult 1) on two halves of the samples."""
    log_strength = torch.zeros((), dtype=F64, requires_grad=True)
    log_sky = torch.tensor(math.log(0.2), dtype=F64, requires_grad=shadowed_half)
    lat_long = torch.as_tensor(latlong_directions(128, 256), dtype=F64)
    count = 256 if shadowed_half else 512
    normal = torch.tensor([0.0, 0.0, 1.0], dtype=F64).expand(count, 3)
    view = torch.nn.functional.normalize(SUN * torch.tensor([-1.0, -1.0, 1.0], dtype=F64), dim=0).expand(count, 3)
    base_color, rough = torch.full((count, 3), 0.8, dtype=F64), torch.ones(count, 1, dtype=F64)
    metallic = torch.zeros(count, 1, dtype=F64)
    shadowed = (torch.arange(count) % 2 == 0) & shadowed_half

    def visibility(points, directions):
        return ~(((directions * SUN).sum(-1) > 0.999) & shadowed[:, None])

    lit, dark = (sum(quadrature(normal[0], view[0], base_color[0], rough[0], metallic[0], sky_with_sun(sun), n=1500))
                 for sun in (10.0, 0.0))
    target = torch.where(shadowed[:, None], dark, lit)
    optimizer = torch.optim.Adam([log_strength, log_sky], lr=0.05)
    generator = torch.Generator().manual_seed(0)
    strengths = []
    steps = 200 if shadowed_half else 250
    for step in range(steps):
        light_fn = sky_with_sun(log_strength.exp(), sky=log_sky.exp())
        with torch.no_grad():
            sampler = LatLongLightSampler(light_fn(lat_long), exponent=2.0)

        out = monte_carlo_shade(
            torch.zeros(count, 3, dtype=F64), normal, view, base_color, rough, metallic, light_fn, 24, 24,
            visibility_fn=visibility, generator=generator, light_sampler=sampler, num_light=num_light,
            num_estimates=2 if split else 1,
        )
        if split:
            loss = split_estimate_loss(out["estimates"][:, 0], out["estimates"][:, 1], target, "charbonnier")
        else:
            loss = photometric_loss(out["rgb"], target, "charbonnier")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= steps - 100:
            strengths.append(log_strength.exp().item())
    return sum(strengths) / len(strengths)


def test_light_samples_let_a_robust_loss_find_a_small_sun():
    """Cosine and GGX samples alone meet the sun in few pixels; the Charbonnier loss fits near the median of that
    skewed estimate and keeps the sun at a fraction of its strength. With light samples it finds it."""
    assert abs(fitted_sun_strength(16) - 10.0) < 1.5
    assert fitted_sun_strength(0) < 3.0


def test_split_estimate_finds_a_sun_that_the_joint_estimate_loses():
    """With the sky learned as well and 8 light samples per point, the sun starts too dim for the light sampler to
    meet it at most points. On the joint estimate, the points that do meet it overshoot and the robust loss pulls
    it down; the sky takes its light. Adding each half's derivative weighted by the other half's residual lets it
    grow."""
    assert fitted_sun_strength(8, shadowed_half=True) < 3.0
    assert abs(fitted_sun_strength(8, split=True, shadowed_half=True) - 10.0) < 1.5


def test_split_estimate_loss_adds_each_halfs_slope_at_the_other():
    generator = torch.Generator().manual_seed(2)
    first, second, target = (torch.rand(64, 3, dtype=F64, generator=generator) for _ in range(3))
    target[0] = 1.0  # clipped: only a rendering below white is penalized there
    first.requires_grad_(True)
    loss = split_estimate_loss(first, second, target, "charbonnier", clipped_highlights=True,
                               charbonnier_epsilon=0.05, split_mult=0.5)
    mean = (first + second) / 2.0
    joint = photometric_loss(mean, target, "charbonnier", True, 0.05)
    assert torch.isclose(loss, joint)
    (joint_gradient,) = torch.autograd.grad(joint, first)
    loss.backward()
    residual = torch.where(target >= 0.999, (second - target).clamp(max=0.0), second - target)
    split_gradient = residual / torch.sqrt(residual**2 + 0.05**2) / (2 * first.numel())
    assert torch.allclose(first.grad, joint_gradient + 0.5 * split_gradient)

    first.grad = None
    alone = split_estimate_loss(first, second, target, "charbonnier", True, 0.05, split_mult=0.5, joint_mult=0.0)
    assert torch.isclose(alone, joint)  # the value stays the loss of the mean
    alone.backward()
    assert torch.allclose(first.grad, 0.5 * split_gradient)


def test_stratified_samples_put_one_point_in_each_cell():
    u = unit_square_samples(torch.Size([5]), 24, True, torch.Generator().manual_seed(3), torch.device("cpu"), F64)
    cells = (u[..., 0] * 4).floor() * 6 + (u[..., 1] * 6).floor()  # 24 = 4 rows x 6 columns
    assert torch.equal(cells.sort(dim=-1).values, torch.arange(24, dtype=F64).expand(5, 24))
    assert not torch.equal(u[0], u[1])  # jittered per point
