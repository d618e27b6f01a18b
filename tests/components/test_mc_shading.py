"""Monte Carlo shading with MIS: furnace tests, closed forms, and unbiasedness against quadrature."""

from __future__ import annotations

import math

import pytest
import torch

from nero_ns.components.brdf import cook_torrance_brdf
from nero_ns.components.mc_shading import monte_carlo_shade
from nero_ns.components.split_sum import SplitSumTable

F64 = torch.float64


def constant_light(directions, points):
    return torch.ones_like(directions)


def surface(n_dot_v: float, count: int):
    """`count` copies of a surface point at the origin with a tilted normal, viewed at angle acos(n_dot_v)."""
    normal = torch.nn.functional.normalize(torch.tensor([0.3, -0.4, 0.8], dtype=F64), dim=0)
    tangent = torch.nn.functional.normalize(torch.linalg.cross(normal, torch.tensor([1.0, 0.0, 0.0], dtype=F64)), dim=0)
    view = n_dot_v * normal + math.sqrt(1 - n_dot_v**2) * tangent
    return torch.zeros(count, 3, dtype=F64), normal.expand(count, 3), view.expand(count, 3)


def quadrature(normal, view, base_color, roughness, metallic, light_fn, visibility_fn=None, n=800):
    """int f(v, l) L(l) V(l) (n.l) dl for one point by midpoint quadrature over the sphere: (diffuse, specular)."""
    theta = (torch.arange(n, dtype=F64) + 0.5) * math.pi / n
    phi = (torch.arange(2 * n, dtype=F64) + 0.5) * math.pi / n
    theta, phi = torch.meshgrid(theta, phi, indexing="ij")
    dirs = torch.stack([theta.sin() * phi.cos(), theta.sin() * phi.sin(), theta.cos()], dim=-1).reshape(-1, 3)
    weights = (theta.sin() * (math.pi / n) ** 2).reshape(-1, 1)
    points = torch.zeros_like(dirs)
    radiance = light_fn(dirs, points)
    if visibility_fn is not None:
        radiance = radiance * visibility_fn(points, dirs)[..., None]
    diffuse, specular = cook_torrance_brdf(normal, view, dirs, base_color, roughness, metallic)
    return (diffuse * radiance * weights).sum(0), (specular * radiance * weights).sum(0)


@pytest.mark.parametrize("n_dot_v,roughness", [(0.9, 0.3), (0.5, 0.6), (0.2, 0.9), (0.7, 0.1)])
def test_white_furnace_metal_matches_quadrature_and_split_sum(n_dot_v, roughness):
    points, normals, views = surface(n_dot_v, 256)
    base_color, metallic = torch.ones(256, 3, dtype=F64), torch.ones(256, 1, dtype=F64)
    rough = torch.full((256, 1), roughness, dtype=F64)
    out = monte_carlo_shade(points, normals, views, base_color, rough, metallic, constant_light, 64, 64,
                            generator=torch.Generator().manual_seed(0))
    estimate = out["specular"][:, 0]
    mean, stderr = estimate.mean().item(), estimate.std().item() / math.sqrt(256)
    assert out["diffuse"].abs().max() == 0 and torch.allclose(out["rgb"], out["specular"])
    _, reference = quadrature(normals[0], views[0], base_color[0], rough[0], metallic[0], constant_light)
    split_sum = SplitSumTable()(torch.tensor([n_dot_v]), torch.tensor([roughness])).sum().item()
    assert abs(mean - reference[0].item()) < 4 * stderr + 1e-3, (mean, stderr, reference[0].item())
    assert abs(split_sum - mean) < 4 * stderr + 1e-2
    if roughness >= 0.3:  # the quadrature resolves the lobe
        assert abs(split_sum - reference[0].item()) < 1e-2
    assert 0 < mean <= 1.0


def test_lambertian_furnace_is_exact_with_cosine_samples_and_unbiased_with_mis():
    points, normals, views = surface(0.6, 512)
    albedo = torch.tensor([0.2, 0.5, 0.8], dtype=F64).expand(512, 3)
    rough, metallic = torch.ones(512, 1, dtype=F64), torch.zeros(512, 1, dtype=F64)
    cosine_only = monte_carlo_shade(points, normals, views, albedo, rough, metallic, constant_light, 16, 0,
                                    generator=torch.Generator().manual_seed(1))
    # f_d cos / p = (albedo / pi) cos / (cos / pi) = albedo for every sample: L_o = albedo * L exactly.
    assert torch.allclose(cosine_only["diffuse"], albedo, atol=1e-9)
    mixed = monte_carlo_shade(points, normals, views, albedo, rough, metallic, constant_light, 16, 16,
                              generator=torch.Generator().manual_seed(2))
    stderr = mixed["diffuse"].std(0) / math.sqrt(512)
    assert ((mixed["diffuse"].mean(0) - albedo[0]).abs() < 4 * stderr + 1e-4).all()


def test_mis_estimate_is_unbiased_under_structured_light_and_shadows():
    sun = torch.nn.functional.normalize(torch.tensor([0.5, 0.2, 0.8], dtype=F64), dim=0)

    def light_fn(directions, points):
        lobe = ((directions * sun).sum(-1, keepdim=True).clamp(min=0) ** 20) * 8
        return torch.tensor([1.0, 0.6, 0.3], dtype=F64) * (0.3 + lobe)

    def visibility_fn(points, directions):
        return directions[..., 1] < 0.25  # a wall blocking part of the sky

    points, normals, views = surface(0.7, 2048)
    base_color = torch.tensor([0.7, 0.4, 0.2], dtype=F64).expand(2048, 3)
    rough, metallic = torch.full((2048, 1), 0.35, dtype=F64), torch.full((2048, 1), 0.6, dtype=F64)
    out = monte_carlo_shade(points, normals, views, base_color, rough, metallic, light_fn, 8, 8,
                            visibility_fn=visibility_fn, generator=torch.Generator().manual_seed(3))
    ref_diffuse, ref_specular = quadrature(normals[0], views[0], base_color[0], rough[0], metallic[0], light_fn,
                                           visibility_fn)
    for key, reference in [("diffuse", ref_diffuse), ("specular", ref_specular), ("rgb", ref_diffuse + ref_specular)]:
        mean, stderr = out[key].mean(0), out[key].std(0) / math.sqrt(2048)
        assert ((mean - reference).abs() < 4 * stderr + 2e-3 * reference).all(), (key, mean, stderr, reference)
    unshadowed = monte_carlo_shade(points, normals, views, base_color, rough, metallic, light_fn, 8, 8,
                                   generator=torch.Generator().manual_seed(3))
    assert (unshadowed["rgb"].mean(0) > out["rgb"].mean(0)).all()


def test_gradients_reach_material_and_light_and_shapes_follow_batch():
    base_color = torch.full((4, 5, 3), 0.5, requires_grad=True)
    roughness = torch.full((4, 5, 1), 0.4, requires_grad=True)
    metallic = torch.full((4, 5, 1), 0.5, requires_grad=True)
    light_scale = torch.tensor(2.0, requires_grad=True)
    normals = torch.tensor([0.0, 0.0, 1.0]).expand(4, 5, 3)
    views = torch.tensor([0.6, 0.0, 0.8]).expand(4, 5, 3)
    out = monte_carlo_shade(torch.zeros(4, 5, 3), normals, views, base_color, roughness, metallic,
                            lambda d, p: light_scale * torch.ones_like(d), 8, 8,
                            visibility_fn=lambda p, d: torch.ones(d.shape[:-1], dtype=torch.bool))
    assert out["rgb"].shape == (4, 5, 3)
    out["rgb"].sum().backward()
    for tensor in (base_color, roughness, metallic, light_scale):
        assert torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0


def test_backfacing_view_and_blocked_light_give_finite_zero():
    normals = torch.tensor([[0.0, 0.0, 1.0]])
    out = monte_carlo_shade(torch.zeros(1, 3), normals, torch.tensor([[0.0, 0.6, -0.8]]), torch.ones(1, 3),
                            torch.full((1, 1), 0.05), torch.ones(1, 1), constant_light, 32, 32)
    assert torch.isfinite(out["rgb"]).all()
    dark = monte_carlo_shade(torch.zeros(1, 3), normals, normals, torch.ones(1, 3), torch.full((1, 1), 0.5),
                             torch.zeros(1, 1), constant_light, 8, 8, visibility_fn=lambda p, d: d[..., 2] < -2)
    assert dark["rgb"].abs().max() == 0
