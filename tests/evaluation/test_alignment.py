"""The per-channel scale alignment recovers a known scale, counting only pixels inside the mask."""

from __future__ import annotations

import numpy as np

from nero_ns.evaluation.alignment import per_channel_scale


def test_scale_alignment_recovers_a_known_per_channel_scale() -> None:
    rng = np.random.default_rng(1)
    prediction = rng.uniform(0.0, 1.0, (20, 30, 3))
    scale = np.array([2.0, 0.5, 1.25])
    target = prediction * scale
    np.testing.assert_allclose(per_channel_scale(prediction, target), scale, rtol=1e-12)
    mask = rng.uniform(size=(20, 30)) < 0.3
    target[~mask] = 7.0  # pixels outside the mask do not count
    np.testing.assert_allclose(per_channel_scale(prediction, target, mask), scale, rtol=1e-12)
    np.testing.assert_array_equal(per_channel_scale(np.zeros((4, 3)), np.ones((4, 3))), np.ones(3))
