"""`nero-eval materials`: material metrics on hand-computed cases, scored only where the cameras see."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from nero_ns.errors import NeroInputError
from nero_ns.evaluation.materials import material_metrics
from nero_ns.relight import MaterialAssets


def test_material_metrics_on_hand_computed_cases() -> None:
    """Albedo halved: aligned PSNR saturates, unaligned PSNR is that of the known MSE; MAEs are the offsets.
    Vertices far from the GT surface are dropped with max_distance."""
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    gt = MaterialAssets(sphere, (0.6, 0.4, 0.2), 0.3, 0.9)
    count = len(sphere.vertices)
    far_copy = sphere.copy()
    far_copy.apply_translation([5.0, 0.0, 0.0])
    mesh = trimesh.util.concatenate([sphere, far_copy])
    albedo = np.tile([0.3, 0.2, 0.1], (2 * count, 1))
    roughness = np.concatenate([np.full(count, 0.4), np.full(count, 0.3)])
    metallic = np.concatenate([np.full(count, 0.7), np.full(count, 0.9)])
    prediction = MaterialAssets(mesh, albedo, roughness, metallic)

    everything = material_metrics(prediction, gt)
    assert everything["albedo_scale"] == pytest.approx([2.0, 2.0, 2.0])
    assert everything["albedo_psnr"] == pytest.approx(100.0)  # MSE floored at 1e-10
    assert everything["albedo_psnr_unaligned"] == pytest.approx(-10 * np.log10((0.09 + 0.04 + 0.01) / 3), abs=1e-9)
    assert everything["roughness_mae"] == pytest.approx(0.05)
    assert everything["metallic_mae"] == pytest.approx(0.1)
    near = material_metrics(prediction, gt, max_distance=0.01)
    assert near["num_vertices"] == count and near["fraction_scored"] == pytest.approx(0.5)
    assert near["roughness_mae"] == pytest.approx(0.1) and near["metallic_mae"] == pytest.approx(0.2)


def test_material_metrics_score_only_what_the_cameras_see() -> None:
    """One camera far above a sphere sees its upper half only: the lower half, painted wrong, is left out, and a
    cylinder standing between camera and sphere hides everything."""
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    gt = MaterialAssets(sphere, (0.6, 0.4, 0.2), 0.3, 0.0)
    upper = sphere.vertices[:, 2] > 0.0
    roughness = np.where(sphere.vertices[:, 2] < -0.2, 0.9, 0.3)  # wrong well below the horizon the camera sees
    prediction = MaterialAssets(sphere, np.tile([0.6, 0.4, 0.2], (len(upper), 1)), roughness, np.zeros(len(upper)))
    assert material_metrics(prediction, gt)["roughness_mae"] > 0.2
    seen = material_metrics(prediction, gt, camera_centers=np.array([[0.0, 0.0, 50.0]]))
    assert seen["roughness_mae"] == pytest.approx(0.0)
    assert seen["fraction_scored"] == pytest.approx(upper.mean(), abs=0.05)
    blocker = trimesh.creation.cylinder(radius=3.0, height=0.5)
    blocker.apply_translation([0.0, 0.0, 10.0])
    hidden = MaterialAssets(trimesh.util.concatenate([sphere, blocker]), (0.6, 0.4, 0.2), 0.3, 0.0)
    with pytest.raises(NeroInputError, match="no camera"):
        material_metrics(prediction, hidden, camera_centers=np.array([[0.0, 0.0, 50.0]]))
