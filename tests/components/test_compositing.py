"""Volume compositing against hand-computed weights: known densities give known weights, and two branches
composited in depth order hide the background behind an opaque surface."""

from __future__ import annotations

import math

import torch

from nero_ns.components.compositing import alphas_from_densities, weights_from_alphas


def test_compositing_of_known_densities_gives_known_weights() -> None:
    densities = torch.tensor([[[0.0], [math.log(2.0)], [math.log(4.0)], [1e9]]])
    deltas = torch.ones_like(densities)
    alphas = alphas_from_densities(densities, deltas)
    assert torch.allclose(alphas.squeeze(), torch.tensor([0.0, 0.5, 0.75, 1.0]), atol=1e-6)
    weights = weights_from_alphas(alphas).squeeze()
    # T = 1, 1, 0.5, 0.125 -> w = 0, 0.5, 0.375, 0.125; they sum to one behind an opaque last sample.
    assert torch.allclose(weights, torch.tensor([0.0, 0.5, 0.375, 0.125]), atol=1e-5)
    assert torch.isclose(weights.sum(), torch.tensor(1.0), atol=1e-5)


def test_compositing_two_branches_in_depth_order_hides_the_background() -> None:
    inside = torch.tensor([[[0.0], [1.0]]])  # an opaque surface inside the sphere
    outside = torch.tensor([[[0.9], [0.9]]])
    weights = weights_from_alphas(torch.cat([inside, outside], dim=1)).squeeze()
    assert weights[2:].abs().max() < 1e-5 and torch.isclose(weights[1], torch.tensor(1.0))
