"""Bounding sphere estimation (points with outliers, converging cameras) and the normalization map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from nerfstudio.data.dataparsers.base_dataparser import transform_poses_to_original_space

from nero_ns.datamanagers.normalization import (
    Sphere,
    denormalize_points,
    normalization_transform,
    normalize_points,
    normalize_poses,
    sphere_from_cameras,
    sphere_from_points,
)
from nero_ns.errors import NeroInputError
from tests.datamanagers.test_nero_dataparser import look_at_poses


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q * np.linalg.det(q)


def test_known_sphere_maps_to_object_radius_and_back():
    rng = np.random.default_rng(1)
    sphere = Sphere(center=(2.0, -1.0, 5.0), radius=3.0)
    transform, scale = normalization_transform(sphere, object_radius=0.9)
    directions = rng.normal(size=(100, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    on_sphere = torch.tensor(np.array(sphere.center) + sphere.radius * directions, dtype=torch.float32)
    normalized = normalize_points(on_sphere, transform, scale)
    assert torch.allclose(normalized.norm(dim=-1), torch.full((100,), 0.9), atol=1e-5)
    assert torch.allclose(normalize_points(torch.tensor(sphere.center), transform, scale), torch.zeros(3), atol=1e-6)
    assert torch.allclose(denormalize_points(normalized, transform, scale), on_sphere, atol=1e-5)
    back_numpy = denormalize_points(normalized.numpy().astype(np.float64), transform, scale)
    assert isinstance(back_numpy, np.ndarray) and np.allclose(back_numpy, on_sphere.numpy(), atol=1e-5)


def test_poses_round_trip_through_nerfstudio_inverse():
    rng = np.random.default_rng(2)
    poses = np.zeros((6, 3, 4))
    for pose in poses:
        pose[:, :3], pose[:, 3] = random_rotation(rng), rng.normal(size=3) * 4
    poses = torch.tensor(poses, dtype=torch.float32)
    transform, scale = normalization_transform(Sphere(center=(1.0, 2.0, -3.0), radius=0.25), object_radius=0.9)
    normalized = normalize_poses(poses, transform, scale)
    assert torch.allclose(normalized[:, :, :3], poses[:, :, :3])  # identity rotation: orientations unchanged
    assert torch.allclose(normalized[:, :, 3], normalize_points(poses[:, :, 3], transform, scale))
    back = transform_poses_to_original_space(normalized, transform, scale, camera_convention="opengl")
    assert torch.allclose(back, poses, atol=1e-5)


def test_center_from_converging_camera_axes():
    center = np.array([3.0, -2.0, 0.5])
    poses = torch.tensor(look_at_poses(center, distance=5.0, count=12, seed=3, jitter=0.01))[:, :3]
    half_fov = math.radians(20.0)
    sphere = sphere_from_cameras(poses, half_fov, source="transforms.json")
    assert np.linalg.norm(np.array(sphere.center) - center) < 0.1  # aim noise of 0.01 rad at 5 units
    assert sphere.radius == pytest.approx(5.0 * math.sin(half_fov), rel=0.02)
    given = sphere_from_cameras(poses, half_fov, source="transforms.json", center=(3.0, -2.0, 1.5))
    median_distance = float((poses[:, :, 3] - torch.tensor(given.center)).norm(dim=-1).median())
    assert given.center == (3.0, -2.0, 1.5) and given.radius == pytest.approx(median_distance * math.sin(half_fov))


def test_parallel_or_outward_cameras_are_rejected():
    parallel = torch.eye(4)[:3].repeat(6, 1, 1)
    parallel[:, 0, 3] = torch.arange(6.0)
    with pytest.raises(NeroInputError, match="parallel"):
        sphere_from_cameras(parallel, 0.5, source="transforms.json")
    inward = torch.tensor(look_at_poses(np.zeros(3), 3.0, 8))[:, :3]
    outward = inward.clone()
    outward[:, :, 2] *= -1  # now each camera looks away from the center
    outward[:, :, 0] *= -1
    with pytest.raises(NeroInputError, match="transforms.json: .* do not meet in front"):
        sphere_from_cameras(outward, 0.5, source="transforms.json")


def test_outliers_do_not_inflate_the_sphere():
    rng = np.random.default_rng(4)
    center, radius = np.array([1.0, 2.0, -4.0]), 0.7
    directions = rng.normal(size=(2000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    cluster = center + radius * directions * rng.random((2000, 1)) ** (1 / 3)  # filled ball
    far = center + rng.normal(size=(200, 3)) * 10 * radius  # 10% background and mismatches
    sphere = sphere_from_points(np.concatenate([cluster, far]), source="sparse_pc.ply")
    assert np.linalg.norm(np.array(sphere.center) - center) < 0.03 * radius
    assert sphere.radius == pytest.approx(radius, rel=0.03)
    # Without the cut the far points would set the size.
    assert np.quantile(np.linalg.norm(np.concatenate([cluster, far]) - center, axis=1), 0.99) > 5 * radius


def test_noise_free_surface_is_kept_whole_and_quantile_is_configurable():
    rng = np.random.default_rng(5)
    directions = rng.normal(size=(500, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    sphere = sphere_from_points(2.0 * directions, source="sparse_pc.ply", quantile=1.0)
    assert sphere.radius == pytest.approx(2.0, rel=0.01)
    # A filled ball: the q-quantile of distances is the radius times q^(1/3).
    ball = directions * rng.random((500, 1)) ** (1 / 3)
    half = sphere_from_points(ball, source="sparse_pc.ply", quantile=0.6, center=(0.0, 0.0, 0.0))
    assert half.radius == pytest.approx(0.6 ** (1 / 3), rel=0.05)


@pytest.mark.parametrize(
    "points, message",
    [(np.zeros((3, 3)), "has 3 points"), (np.tile([[1.0, 2.0, 3.0]], (40, 1)), "coincide")],
)
def test_degenerate_point_clouds_are_rejected(points, message):
    with pytest.raises(NeroInputError, match=f"^sparse_pc.ply.*{message}") as raised:
        sphere_from_points(points, source="sparse_pc.ply")
    assert "\n" not in str(raised.value)


def floor_scene(rng: np.random.Generator, center: np.ndarray, radius: float):
    """A filled ball (the object, 800 points) standing on a wide floor (2400 points, out to 8 radii) with 5%
    scattered mismatches, as COLMAP gives for a shiny object on a textured floor; cameras above the floor."""
    directions = rng.normal(size=(800, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    ball = center + radius * directions * rng.random((800, 1)) ** (1 / 3)
    angle, distance = rng.uniform(0, 2 * np.pi, 2400), 8 * radius * np.sqrt(rng.random(2400))
    floor = np.stack(
        [center[0] + distance * np.cos(angle), center[1] + distance * np.sin(angle), np.full(2400, center[2] - radius)],
        -1,
    )
    scattered = center + rng.normal(size=(160, 3)) * 6 * radius
    poses = torch.tensor(look_at_poses(center, distance=6 * radius, count=24, seed=6, jitter=0.01))[:, :3]
    above = poses[:, 2, 3] > center[2] + 0.5 * radius
    return np.concatenate([ball, floor, scattered]), poses[above].float()


def test_floor_plane_is_left_out_and_logged(capsys):
    center, radius = np.array([0.5, -1.0, 2.0]), 0.6
    points, poses = floor_scene(np.random.default_rng(7), center, radius)
    # Without the cameras (the behaviour for scenes without a plane) the floor inflates the sphere.
    inflated = sphere_from_points(points, source="sparse_pc.ply")
    assert inflated.radius > 3 * radius
    sphere = sphere_from_points(points, source="sparse_pc.ply", camera_to_worlds=poses)
    assert np.linalg.norm(np.array(sphere.center) - center) < 0.05 * radius
    assert sphere.radius == pytest.approx(radius, rel=0.05)
    logged = capsys.readouterr().out
    assert "sparse_pc.ply: a plane holds 2416 of 3360 points (72%, within 0.072)" in logged
    assert f"radius {sphere.radius:.4g}" in logged


def test_without_a_plane_the_cameras_change_nothing():
    rng = np.random.default_rng(4)
    center, radius = np.array([1.0, 2.0, -4.0]), 0.7
    directions = rng.normal(size=(2000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    points = np.concatenate([center + radius * directions, center + rng.normal(size=(200, 3)) * 10 * radius])
    poses = torch.tensor(look_at_poses(center, distance=4.0, count=12, seed=3))[:, :3].float()
    assert sphere_from_points(points, "sparse_pc.ply", camera_to_worlds=poses) == sphere_from_points(
        points, "sparse_pc.ply"
    )


def test_a_flat_face_of_the_object_is_no_floor():
    # A dome on a flat base: the base disk holds a third of the points but does not reach beyond the object.
    rng = np.random.default_rng(8)
    directions = rng.normal(size=(1000, 3))
    directions[:, 2] = np.abs(directions[:, 2])
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    angle, distance = rng.uniform(0, 2 * np.pi, 500), np.sqrt(rng.random(500))
    base = np.stack([distance * np.cos(angle), distance * np.sin(angle), np.zeros(500)], -1)
    points = np.concatenate([directions, base])
    poses = torch.tensor(look_at_poses(np.zeros(3), distance=4.0, count=16, seed=2))[:, :3].float()
    poses = poses[poses[:, 2, 3] > 0.5]
    assert sphere_from_points(points, "sparse_pc.ply", camera_to_worlds=poses) == sphere_from_points(
        points, "sparse_pc.ply"
    )
