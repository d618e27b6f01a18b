"""The per-channel scale alignment recovers a known scale, counting only pixels inside the mask; camera centers
are compared after the best similarity."""

from __future__ import annotations

import numpy as np

from nero_ns.evaluation.alignment import camera_center_errors, per_channel_scale


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


def test_camera_centers_are_compared_after_the_best_similarity() -> None:
    rng = np.random.default_rng(2)
    angles = np.linspace(0.0, 2.0 * np.pi, 12, endpoint=False)
    target = np.stack([4.0 * np.cos(angles), 4.0 * np.sin(angles), rng.uniform(1.0, 3.0, 12)], axis=-1)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation *= np.sign(np.linalg.det(rotation))
    found = 0.3 * target @ rotation.T + np.array([5.0, -2.0, 1.0])  # COLMAP's frame: any scale, rotation, shift
    np.testing.assert_allclose(camera_center_errors(found, target), 0.0, atol=1e-9)
    moved = found.copy()
    moved[0] += 0.3 * np.array([0.0, 0.0, 2.0])  # one camera 2 units off in the target's scale
    errors = camera_center_errors(moved, target)
    assert 0.3 < errors[0] < 0.55 and np.median(errors) < 0.1  # ~2 / 4.1, the median distance to the mean
