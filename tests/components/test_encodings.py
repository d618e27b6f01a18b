"""The integrated directional encoding against spherical-harmonic identities: orthonormal, damped by roughness."""

from __future__ import annotations

import math

import torch

from nero_ns.components.encodings import IntegratedDirectionalEncoding


def test_ide_is_orthonormal_and_damped_by_roughness() -> None:
    encoding = IntegratedDirectionalEncoding(degree=3)
    generator = torch.Generator().manual_seed(1)
    directions = torch.nn.functional.normalize(torch.randn(200_000, 3, generator=generator), dim=-1)
    code = encoding(directions, torch.zeros(200_000, 1))
    terms = encoding.num_terms
    energy = (code[:, :terms] ** 2 + code[:, terms:] ** 2).mean(0) * 4 * math.pi
    assert torch.allclose(energy, torch.ones(terms), atol=0.02)
    # Y_1^0 = sqrt(3 / 4pi) z
    assert torch.allclose(code[:5, 0], math.sqrt(3 / (4 * math.pi)) * directions[:5, 2], atol=1e-5)
    rough = encoding(directions[:100], torch.ones(100, 1))
    assert torch.allclose(rough[:, 0], code[:100, 0] * math.exp(-1.0), atol=1e-6)
