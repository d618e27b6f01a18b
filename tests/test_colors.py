"""sRGB <-> linear conversion against the IEC 61966-2-1 values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nero_ns.colors import linear_to_srgb, srgb_to_linear

KNOWN = [(0.0, 0.0), (1.0, 1.0), (0.5, 0.21404114), (0.04045, 0.0031308), (0.2, 0.03310477)]


@pytest.mark.parametrize("srgb, linear", KNOWN)
def test_known_values(srgb, linear):
    assert float(srgb_to_linear(np.array(srgb))) == pytest.approx(linear, abs=2e-7)
    assert float(srgb_to_linear(torch.tensor(srgb, dtype=torch.float64))) == pytest.approx(linear, abs=2e-7)
    assert float(linear_to_srgb(np.array(linear))) == pytest.approx(srgb, abs=1e-6)


def test_round_trip_and_numpy_torch_agree():
    values = np.linspace(0.0, 1.0, 1001)
    assert np.allclose(linear_to_srgb(srgb_to_linear(values)), values, atol=1e-7)
    assert np.allclose(srgb_to_linear(linear_to_srgb(values)), values, atol=1e-7)
    as_torch = srgb_to_linear(torch.tensor(values))
    assert isinstance(as_torch, torch.Tensor) and np.allclose(as_torch.numpy(), srgb_to_linear(values), atol=1e-12)
    assert np.allclose(linear_to_srgb(torch.tensor(values)).numpy(), linear_to_srgb(values), atol=1e-12)


def test_curve_is_monotonic_and_clips_above_one():
    values = torch.linspace(0.0, 1.0, 257)
    assert (srgb_to_linear(values).diff() > 0).all()
    assert float(linear_to_srgb(torch.tensor(4.0))) == pytest.approx(1.0)
    assert float(linear_to_srgb(np.array(-0.5))) == 0.0


def test_unclipped_curve_continues_above_one_and_agrees_below():
    values = torch.linspace(0.0, 4.0, 401)
    unclipped = linear_to_srgb(values, clip=False)
    assert (unclipped.diff() > 0).all()
    assert torch.allclose(unclipped[values <= 1.0], linear_to_srgb(values[values <= 1.0]), atol=1e-7)
    assert float(linear_to_srgb(np.array(4.0), clip=False)) == pytest.approx(1.055 * 4.0 ** (1 / 2.4) - 0.055)
