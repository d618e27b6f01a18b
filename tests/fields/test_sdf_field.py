"""The SDF field: it starts as a sphere with a unit gradient, on the pure PyTorch grid too, unlocks its levels coarse
to fine, and its gradient is right two ways: the analytic (written-out) gradient against autograd's on a
trained-looking field, and finite differences against the exact gradient of analytic SDFs."""

from __future__ import annotations

import torch

from nero_ns.fields.sdf_field import NeroSDFField, NeroSDFFieldConfig


def random_points_in_ball(count: int, radius: float = 1.0) -> torch.Tensor:
    directions = torch.nn.functional.normalize(torch.randn(count, 3), dim=-1)
    return directions * radius * torch.rand(count, 1) ** (1 / 3)


def test_sdf_field_starts_as_a_sphere_with_unit_gradient() -> None:
    torch.manual_seed(0)
    field = NeroSDFFieldConfig(hash_implementation="torch", init_radius=0.5).setup()
    points = random_points_in_ball(2000)
    sdf, features, gradient = field.sdf_feature_gradient(points, create_graph=False)
    expected = points.norm(dim=-1, keepdim=True) - 0.5
    assert torch.allclose(sdf, expected, atol=1e-5)
    assert torch.allclose(gradient.norm(dim=-1), torch.ones(2000), atol=1e-4)
    assert features.shape == (2000, field.config.feature_dim)


def test_sdf_field_runs_on_pure_pytorch_hash_grid_without_tinycudann() -> None:
    field = NeroSDFFieldConfig(hash_implementation="tcnn").setup()  # falls back to torch when tcnn is absent
    assert field.encoding.supports_jacobian or torch.cuda.is_available()
    points = random_points_in_ball(64).requires_grad_(True)
    sdf, _, gradient = field.sdf_feature_gradient(points, create_graph=True)
    ((gradient.norm(dim=-1) - 1.0) ** 2).mean().add(sdf.abs().mean()).backward()
    assert field.encoding.encoding.hash_table.grad is not None


def test_coarse_to_fine_unlocks_levels() -> None:
    field = NeroSDFFieldConfig(hash_implementation="torch", start_levels=2, steps_per_level=10, num_levels=8).setup()
    with torch.no_grad():
        field.encoding.encoding.hash_table.normal_()
    points = random_points_in_ball(10)
    field.set_step(0)
    active = (field.encoding(points)[0].reshape(10, 8, 2).abs().sum(dim=(0, 2)) > 0).sum()
    assert int(active) == 2
    field.set_step(35)
    active = (field.encoding(points)[0].reshape(10, 8, 2).abs().sum(dim=(0, 2)) > 0).sum()
    assert int(active) == 5


def perturbed_field(**options) -> NeroSDFField:
    """An SDF field with a rough hash grid and MLP, as after training, every level unlocked."""
    torch.manual_seed(0)
    field = NeroSDFFieldConfig(hash_implementation="torch", **options).setup()
    with torch.no_grad():
        field.encoding.encoding.hash_table.normal_(0.0, 0.1)
        for layer in field.layers:
            layer.weight.add_(torch.randn_like(layer.weight) * 0.05)
    field.set_step(100_000)
    return field


def test_analytic_gradient_equals_autograd_gradient_and_trains_the_same_parameters() -> None:
    field = perturbed_field()
    points = torch.rand(3000, 3) * 1.6 - 0.8
    results = {}
    for mode in ("autograd", "analytic"):
        field.config.gradient_mode = mode
        field.zero_grad()
        sdf, feature, gradient = field.sdf_feature_gradient(points, create_graph=True)
        loss = ((gradient.norm(dim=-1) - 1.0) ** 2).mean() + sdf.abs().mean() + feature.square().mean()
        loss.backward()
        results[mode] = (sdf.detach(), gradient.detach(), field.encoding.encoding.hash_table.grad.clone())
    (sdf_a, grad_a, table_a), (sdf_b, grad_b, table_b) = results["autograd"], results["analytic"]
    assert torch.allclose(sdf_a, sdf_b, atol=1e-6)
    assert float(grad_a.norm(dim=-1).mean()) > 1.3  # a rough field: the comparison is not trivial
    assert torch.allclose(grad_a, grad_b, atol=1e-4)
    assert torch.allclose(table_a, table_b, atol=1e-6, rtol=1e-4)
    with torch.no_grad():  # rendering: detached, same numbers
        _, _, detached = field.sdf_feature_gradient(points, create_graph=False)
    assert not detached.requires_grad and torch.allclose(detached, grad_b, atol=1e-5)


class AnalyticSDFField(NeroSDFField):
    """The field's gradient machinery on a known SDF (sphere or box) instead of the network."""

    def __init__(self, shape: str) -> None:
        super().__init__(NeroSDFFieldConfig(hash_implementation="torch", gradient_mode="finite-difference"))
        self.shape = shape
        self.set_step(100_000)  # finest level unlocked: the smallest difference step

    def forward(self, positions):
        if self.shape == "sphere":
            sdf = positions.norm(dim=-1, keepdim=True) - 0.5
        else:
            q = positions.abs() - torch.tensor([0.4, 0.3, 0.2])
            sdf = q.clamp(min=0).norm(dim=-1, keepdim=True) + q.max(dim=-1, keepdim=True).values.clamp(max=0)
        return sdf, positions.new_zeros(*positions.shape[:-1], 1)


def test_finite_difference_gradient_matches_the_exact_gradient_of_analytic_sdfs() -> None:
    torch.manual_seed(0)
    points = torch.rand(4000, 3) * 1.6 - 0.8
    for shape in ("sphere", "box"):
        field = AnalyticSDFField(shape)
        _, _, numeric = field.sdf_feature_gradient(points, create_graph=False)
        exact_points = points.clone().requires_grad_(True)
        (exact,) = torch.autograd.grad(field.forward(exact_points)[0].sum(), exact_points)
        error = (numeric - exact).norm(dim=-1)
        # Central differences are exact up to O(h^2) on smooth parts; near the box's edges and faces the step
        # (1/512) straddles a kink, so a few points differ there.
        assert float(error.median()) < 1e-3, shape
        assert float((error > 1e-2).float().mean()) < 0.02, shape
        eikonal = ((numeric.norm(dim=-1) - 1.0) ** 2).mean()
        assert float(eikonal) < 1e-3, shape  # an exact SDF has no eikonal loss
