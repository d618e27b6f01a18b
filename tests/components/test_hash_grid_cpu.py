"""The CPU hash-grid kernel gives the PyTorch grid's features, spatial derivative and gradients, on all of torch's
threads and with the same numbers on any number of them."""

from __future__ import annotations

import pytest
import torch

from nero_ns.components.hash_grid import HashGrid
from nero_ns.components.hash_grid_cpu import kernel_applies, load_kernel, pytorch_grid_only
from nero_ns.fields.sdf_field import NeroSDFFieldConfig

pytestmark = pytest.mark.skipif(load_kernel() is None, reason="no C++ compiler: the PyTorch grid alone runs")


def _grid_outputs(grid: HashGrid, points: torch.Tensor, active: int, with_jacobian: bool):
    """Features, Jacobian and the table's gradient of a loss that weighs every output differently."""
    grid.hash_table.grad = None
    features, jacobian = grid(points, active, with_jacobian)
    loss = (features * torch.linspace(-1.0, 2.0, features.shape[1])).square().sum()
    if jacobian is not None:
        # Smooth in the Jacobian (whose entries reach hundreds at fine levels): a sine of it would amplify float
        # rounding of the forward into the gradient.
        loss = loss + (jacobian * torch.linspace(0.5, 1.5, jacobian.shape[-1])).square().sum()
    loss.backward()
    return features.detach(), None if jacobian is None else jacobian.detach(), grid.hash_table.grad.clone()


@pytest.mark.parametrize("active, with_jacobian", [(12, True), (5, True), (12, False)])
def test_kernel_matches_the_pytorch_grid(active: int, with_jacobian: bool) -> None:
    torch.manual_seed(0)
    grid = HashGrid(num_levels=12, min_res=16, max_res=512, log2_hashmap_size=12)
    grid.hash_table.data.normal_()
    points = torch.rand(4000, 3)
    points[:3] = torch.tensor([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.25, 1.0]])  # cube corners and faces
    assert kernel_applies(points, grid.hash_table)
    kernel = _grid_outputs(grid, points, active, with_jacobian)
    with pytorch_grid_only():
        assert not kernel_applies(points, grid.hash_table)
        reference = _grid_outputs(grid, points, active, with_jacobian)
    for name, ours, theirs in zip(("features", "jacobian", "table gradient"), kernel, reference):
        if theirs is None:
            assert ours is None
            continue
        scale = theirs.abs().max()
        assert scale > 0
        assert (ours - theirs).abs().max() <= 1e-5 * scale, name
    assert torch.all(kernel[0][:, active * 2:] == 0)  # locked levels stay zero


def test_sdf_field_training_quantities_are_the_same_with_and_without_the_kernel() -> None:
    """SDF, feature, exact gradient and every parameter's gradient of an eikonal + SDF loss."""
    torch.manual_seed(1)
    field = NeroSDFFieldConfig(hash_implementation="torch", log2_hashmap_size=12).setup()
    field.set_step(10_000)
    with torch.no_grad():
        field.encoding.encoding.hash_table.normal_(0.0, 0.1)
    positions = torch.rand(2000, 3) * 1.6 - 0.8

    def run():
        field.zero_grad()
        sdf, feature, gradient = field.sdf_feature_gradient(positions, create_graph=True)
        loss = sdf.abs().mean() + feature.square().mean() + ((gradient.norm(dim=-1) - 1.0) ** 2).mean()
        loss.backward()
        return [sdf, feature, gradient] + [p.grad.clone() for p in field.parameters() if p.grad is not None]

    kernel = run()
    with pytorch_grid_only():
        reference = run()
    assert len(kernel) == len(reference)
    for ours, theirs in zip(kernel, reference):
        assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-6 * float(theirs.abs().max()) + 1e-9)


def test_positions_that_need_a_gradient_take_the_pytorch_path() -> None:
    """Autograd-mode SDF gradients differentiate with respect to the positions, which the kernel does not."""
    grid = HashGrid(num_levels=4, min_res=4, max_res=32, log2_hashmap_size=10)
    points = torch.rand(100, 3, requires_grad=True)
    assert not kernel_applies(points, grid.hash_table)
    features, _ = grid(points, 4)
    (gradient,) = torch.autograd.grad(features.sum(), points)
    assert gradient.abs().sum() > 0


def test_the_kernel_runs_on_torchs_threads_with_the_same_numbers() -> None:
    torch.manual_seed(0)
    grid = HashGrid(num_levels=12, min_res=16, max_res=512, log2_hashmap_size=12)
    grid.hash_table.data.normal_()
    points = torch.rand(4000, 3)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one_thread = _grid_outputs(grid, points, 12, True)
        assert load_kernel().threads_used(64) == 1
        torch.set_num_threads(2)
        # A build without OpenMP runs at::parallel_for on one thread, whatever torch is given.
        assert load_kernel().threads_used(64) == 2
        two_threads = _grid_outputs(grid, points, 12, True)
    finally:
        torch.set_num_threads(threads)
    for ours, theirs in zip(two_threads, one_thread):
        assert torch.equal(ours, theirs)  # points and levels are split between threads, never one sum
