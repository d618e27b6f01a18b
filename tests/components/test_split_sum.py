"""Split-sum (A, B) table against closed forms at the smooth end, quadrature of our BRDF, and its lookup."""

from __future__ import annotations

import math
import time

import torch

from nero_ns.components.brdf import cook_torrance_brdf, roughness_to_alpha, schlick_ggx_g1
from nero_ns.components.split_sum import SplitSumTable, hammersley, split_sum_table

F64 = torch.float64


def quadrature_b_and_a_plus_b(n_dot_v: float, roughness: float, n: int = 600) -> tuple:
    """int f_spec(v, l) (n.l) dl for F0 = 0 (= B) and F0 = 1 (= A + B), midpoint rule in (theta, phi) around +z."""
    theta = (torch.arange(n, dtype=F64) + 0.5) * (math.pi / 2) / n
    phi = (torch.arange(n, dtype=F64) + 0.5) * 2 * math.pi / n
    theta, phi = torch.meshgrid(theta, phi, indexing="ij")
    light = torch.stack([theta.sin() * phi.cos(), theta.sin() * phi.sin(), theta.cos()], dim=-1)
    weights = (theta.sin() * (math.pi / 2 / n) * (2 * math.pi / n))[..., None]
    normal = torch.tensor([0.0, 0.0, 1.0], dtype=F64)
    view = torch.tensor([math.sqrt(1 - n_dot_v**2), 0.0, n_dot_v], dtype=F64)
    # metallic = 1 makes F0 = base_color: one channel per F0.
    _, specular = cook_torrance_brdf(normal, view, light, torch.tensor([0.0, 1.0, 1.0], dtype=F64),
                                     torch.tensor([roughness], dtype=F64), torch.ones(1, dtype=F64))
    integral = (specular * weights).sum(dim=(0, 1))
    return integral[0].item(), integral[1].item()


def test_hammersley_is_a_stratified_unit_square_set():
    points = hammersley(256)
    assert points.shape == (256, 2) and points.min() >= 0 and points.max() < 1
    assert torch.equal(torch.sort(points[:, 1]).values, torch.arange(256, dtype=F64) / 256)


def test_mirror_limit_matches_closed_form():
    """At the roughness floor the lobe is a mirror: A = G (1 - (1 - n.v)^5), B = G (1 - n.v)^5."""
    lookup = SplitSumTable()
    n_dot_v = torch.linspace(0.1, 1.0, 19)[:, None]
    values = lookup(n_dot_v, torch.zeros_like(n_dot_v))
    geometry = schlick_ggx_g1(n_dot_v, roughness_to_alpha(torch.zeros(1))) ** 2
    schlick = (1 - n_dot_v) ** 5
    assert torch.allclose(values[:, 0:1], geometry * (1 - schlick), atol=5e-3)
    assert torch.allclose(values[:, 1:2], geometry * schlick, atol=5e-3)
    corner = lookup(torch.ones(1), torch.zeros(1))
    assert abs(corner.sum().item() - 1) < 1e-3 and corner[1].item() < 1e-4


def test_table_matches_quadrature_at_random_points():
    lookup = SplitSumTable()
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        n_dot_v = 0.05 + 0.95 * torch.rand(1, generator=gen).item()
        roughness = 0.25 + 0.75 * torch.rand(1, generator=gen).item()
        a, b = lookup(torch.tensor([n_dot_v]), torch.tensor([roughness])).tolist()
        reference_b, reference_ab = quadrature_b_and_a_plus_b(n_dot_v, roughness)
        assert abs(b - reference_b) < 1e-2, (n_dot_v, roughness, b, reference_b)
        assert abs(a + b - reference_ab) < 1e-2, (n_dot_v, roughness, a + b, reference_ab)


def test_lookup_shapes_gradients_and_dtype():
    lookup = SplitSumTable()
    # Seeded: a central difference that straddles a grid line of the bilinear table averages two slopes.
    generator = torch.Generator().manual_seed(0)
    n_dot_v = (0.2 + 0.6 * torch.rand(4, 5, 1, dtype=F64, generator=generator)).requires_grad_()
    roughness = (0.2 + 0.6 * torch.rand(4, 5, 1, dtype=F64, generator=generator)).requires_grad_()
    values = lookup(n_dot_v, roughness)
    assert values.shape == (4, 5, 2) and values.dtype == F64
    grad_n, grad_r = torch.autograd.grad(values[..., 0].sum(), [n_dot_v, roughness])
    # Bilinear: the derivative is the local slope, compare with a small central difference.
    step = 1e-5
    slope_r = (lookup(n_dot_v, roughness + step)[..., 0] - lookup(n_dot_v, roughness - step)[..., 0]) / (2 * step)
    slope_n = (lookup(n_dot_v + step, roughness)[..., 0] - lookup(n_dot_v - step, roughness)[..., 0]) / (2 * step)
    assert torch.allclose(grad_r[..., 0], slope_r, atol=1e-4) and torch.allclose(grad_n[..., 0], slope_n, atol=1e-4)
    assert grad_r.abs().min() > 0 and grad_n.abs().min() > 0
    assert lookup(torch.tensor([[0.5]]), torch.tensor([0.5])).shape == (1, 2)  # broadcasting


def test_table_is_cached_and_not_checkpointed():
    table = split_sum_table()
    start = time.perf_counter()
    lookup = SplitSumTable()
    assert time.perf_counter() - start < 0.1
    assert split_sum_table() is table and torch.equal(lookup.table[0], table)
    assert "table" not in lookup.state_dict()
    assert torch.all((table >= 0) & (table <= 1))
