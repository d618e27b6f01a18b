"""Our PyTorch hash grid against nerfstudio's hash encoding, and its Jacobian against autograd."""

from __future__ import annotations

import torch
from nerfstudio.field_components.encodings import HashEncoding

from nero_ns.components.hash_grid import HashGrid


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
