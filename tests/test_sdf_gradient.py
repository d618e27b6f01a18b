"""The SDF gradient three ways: our hash grid against nerfstudio's, the analytic (written-out) gradient against
autograd's on a trained-looking field, and finite differences against the exact gradient of analytic SDFs."""

from __future__ import annotations

import torch
from nerfstudio.field_components.encodings import HashEncoding

from nero_ns.components.hash_grid import HashGrid
from nero_ns.fields.sdf_field import NeroSDFField, NeroSDFFieldConfig


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


def test_hash_grid_matches_nerfstudio_torch_hash_encoding_and_loads_its_table() -> None:
    options = dict(num_levels=6, min_res=8, max_res=128, log2_hashmap_size=12, features_per_level=2)
    reference = HashEncoding(**options, implementation="torch")
    grid = HashGrid(**options)
    grid.load_state_dict(reference.state_dict())  # the same parameter name and layout: old checkpoints load
    points = torch.rand(5000, 3) * 0.98 + 0.01
    features, jacobian = grid(points)
    assert jacobian is None
    assert torch.allclose(features, reference(points), atol=1e-6)
    locked, _ = grid(points, num_active=2)
    assert torch.equal(locked[:, 4:], torch.zeros_like(locked[:, 4:]))
    assert torch.allclose(locked[:, :4], features[:, :4])


def test_hash_grid_jacobian_is_the_derivative_of_its_features() -> None:
    grid = HashGrid(num_levels=4, min_res=4, max_res=32, log2_hashmap_size=10)
    with torch.no_grad():
        grid.hash_table.normal_()
    points = torch.rand(200, 3, dtype=torch.float64) * 0.9 + 0.05
    grid = grid.double()
    _, jacobian = grid(points, with_jacobian=True)
    assert jacobian is not None
    numeric = torch.autograd.functional.jacobian(lambda p: grid(p[None])[0][0], points[0])  # (features, 3)
    assert torch.allclose(jacobian[0], numeric.T, atol=1e-8)


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
