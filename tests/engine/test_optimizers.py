"""The fused Adam both methods train with: the same updates as nerfstudio's Adam, used by every optimizer."""

from __future__ import annotations

import pytest
import torch
from nerfstudio.engine.optimizers import AdamOptimizerConfig

from nero_ns.engine.optimizers import FusedAdamOptimizerConfig
from nero_ns.method_configs import nero_material, nero_shape


def test_fused_adam_follows_nerfstudio_adam_over_many_steps() -> None:
    torch.manual_seed(0)
    start = [torch.randn(4096, 2), torch.randn(64, 35), torch.randn(64)]
    plain = [tensor.clone().requires_grad_(True) for tensor in start]
    fused = [tensor.clone().requires_grad_(True) for tensor in start]
    optimizers = [AdamOptimizerConfig(lr=1e-2, eps=1e-15).setup(plain),
                  FusedAdamOptimizerConfig(lr=1e-2, eps=1e-15).setup(fused)]
    for step in range(50):
        gradients = [torch.randn_like(tensor) * (step + 1) for tensor in start]
        for parameters, optimizer in zip((plain, fused), optimizers):
            for parameter, gradient in zip(parameters, gradients):
                parameter.grad = gradient.clone()
            optimizer.step()
    moved = max((p - s).abs().max().item() for p, s in zip(plain, start))
    assert moved > 0.1  # the parameters did move, so the comparison means something
    for a, b in zip(plain, fused):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", [nero_shape, nero_material], ids=["nero-shape", "nero-material"])
def test_every_optimizer_of_both_methods_is_fused(method) -> None:
    for group, settings in method.config.optimizers.items():
        optimizer = settings["optimizer"].setup([torch.nn.Parameter(torch.zeros(3))])
        assert optimizer.defaults["fused"], group
