"""The object's bounding sphere in the input frame, and the map that puts it at the origin with radius ~0.9.

Convention (docs/CONVENTIONS.md, nerfstudio's own): `p_normalized = scale * (T[:, :3] @ p_input + T[:, 3])` with
T a 3x4 transform (identity rotation here) and `scale` a float, stored as `dataparser_transform` and
`dataparser_scale`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple, TypeVar

import numpy as np
import torch
from jaxtyping import Float
from nerfstudio.cameras.camera_utils import focus_of_attention
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor

from nero_ns.components.support_plane import MAX_OBJECT_BELOW, ransac_plane, share_below
from nero_ns.errors import NeroInputError

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)

MIN_POINTS = 10
"""A point cloud with fewer points than this cannot size the object."""
MAD_CUT = 3.5
"""Points farther from the median than median distance + MAD_CUT robust deviations are outliers."""
MIN_CUT_OVER_MEDIAN = 1.25
"""The outlier cut is never below this multiple of the median distance, so noise-free surfaces (MAD ~ 0) stay whole."""
CENTER_SAMPLE_SIZE = 50_000
"""The center is fitted to at most this many inliers (a fixed random subset), keeping large clouds to ~0.5 s."""
MIN_AXIS_SPREAD = 1e-3
"""Smallest eigenvalue of mean(I - d d^T) over viewing directions d below which the optical axes are parallel."""
PLANE_MIN_INLIER_FRACTION = 0.2
"""A plane through fewer than this fraction of the sparse points is not a floor worth leaving out."""
PLANE_DISTANCE = 0.02
"""Plane inlier distance, as a fraction of the cameras' median distance to their focus (scale-free COLMAP units).
COLMAP's floor points scatter about this much: at 0.01 a generated floor scene kept a sphere of 2.1 true radii, at
0.02 of 1.15 (docs/data.md)."""
PLANE_MIN_CAMERAS_ABOVE = 0.9
"""A floor has (nearly) every camera on one side of it; a plane with cameras on both sides is left alone."""


@dataclass(frozen=True)
class Sphere:
    """A sphere in the input frame."""

    center: Tuple[float, float, float]
    radius: float


def sphere_from_points(
    points: Float[np.ndarray, "num_points 3"],
    source: str,
    quantile: float = 0.99,
    center: Optional[Tuple[float, float, float]] = None,
    camera_to_worlds: Optional[Float[Tensor, "num_cameras 3 4"]] = None,
) -> Sphere:
    """Smallest sphere holding the `quantile` of the dense cluster of (finite) `points`.

    Outliers (background, mismatches) are points farther from a reference point than a robust (median + MAD) cut.
    Among the inliers, the center minimizes the `quantile` of their distances to it (a minimal enclosing sphere
    that ignores the farthest 1 - quantile), which is the radius. `center` overrides the estimated center.
    The reference is the points' median, unless `camera_to_worlds` are given and the points' dominant plane is a
    floor (see `_floor_rejection`): then that plane's points and those below it are left out, and the reference is
    the cameras' focus, since a floor drags the median off the object. `source` names the file in error messages.
    """
    points = points.astype(np.float64)
    if len(points) < MIN_POINTS:
        raise NeroInputError(
            f"{source} has {len(points)} points (need at least {MIN_POINTS}); re-run ns-process-data so it "
            "writes the sparse point cloud, or remove ply_file_path from transforms.json to size the object from "
            "the cameras"
        )
    if camera_to_worlds is not None:
        sphere = _floor_rejection(points, camera_to_worlds, source, quantile, center)
        if sphere is not None:
            return sphere
    return _cluster_sphere(points, np.median(points, axis=0), source, quantile, center)


def _cluster_sphere(
    points: Float[np.ndarray, "num_points 3"],
    reference: Float[np.ndarray, "3"],
    source: str,
    quantile: float,
    center: Optional[Tuple[float, float, float]],
) -> Sphere:
    """`sphere_from_points` for the cluster of points around `reference`."""
    distances = np.linalg.norm(points - reference, axis=1)
    median_distance = float(np.median(distances))
    robust_deviation = 1.4826 * float(np.median(np.abs(distances - median_distance)))
    cut = max(median_distance + MAD_CUT * robust_deviation, MIN_CUT_OVER_MEDIAN * median_distance)
    inliers = points[distances <= cut]
    if center is None:
        center_array = _minimal_quantile_center(inliers, quantile)
    else:
        center_array = np.asarray(center, dtype=np.float64)
    radius = _quantile_radius(inliers, center_array, quantile)
    if not radius > 1e-9 * max(1.0, float(np.abs(center_array).max())):
        raise NeroInputError(
            f"{source}: its points (nearly) all coincide, so they cannot size the object; re-run ns-process-data to "
            "rebuild it, or remove ply_file_path from transforms.json to size the object from the cameras"
        )
    return Sphere(center=_as_tuple(center_array), radius=radius)


def _floor_rejection(
    points: Float[np.ndarray, "num_points 3"],
    camera_to_worlds: Float[Tensor, "num_cameras 3 4"],
    source: str,
    quantile: float,
    center: Optional[Tuple[float, float, float]],
) -> Optional[Sphere]:
    """The object's sphere with the floor left out, or None when the points' dominant plane is no floor.

    A floor holds `PLANE_MIN_INLIER_FRACTION` of the points within `PLANE_DISTANCE` (relative to the cameras'
    distance), has the cameras on one side, reaches beyond the object (most of its points lie outside the sphere
    fitted without them; a flat face of the object does not), and has little of the object below it: at most
    `MAX_OBJECT_BELOW` of the points in that sphere lie under the plane (a flat object's own mid-plane, when the
    floor gave few points, has half the object below it). Logs what it used.
    """
    focus = camera_focus(camera_to_worlds, source).numpy()
    origins = camera_to_worlds[:, :, 3].double().numpy()
    threshold = PLANE_DISTANCE * float(np.median(np.linalg.norm(origins - focus, axis=1)))
    plane_tensor, inlier_tensor = ransac_plane(torch.as_tensor(points, dtype=torch.float64), threshold)
    plane, inliers = plane_tensor.numpy(), inlier_tensor.numpy()
    if inliers.mean() < PLANE_MIN_INLIER_FRACTION:
        return None
    camera_side = np.sign(origins @ plane[:3] + plane[3])
    plane = plane if camera_side.sum() >= 0 else -plane
    if np.mean(origins @ plane[:3] + plane[3] > 0) < PLANE_MIN_CAMERAS_ABOVE:
        return None
    kept = points @ plane[:3] + plane[3] > threshold
    sphere = _cluster_sphere(points[kept], focus, source, quantile, center)
    in_sphere = np.linalg.norm(points - np.asarray(sphere.center), axis=1) <= sphere.radius
    if np.mean(~in_sphere[inliers]) < 0.5:
        return None
    if share_below(torch.as_tensor(points[in_sphere]), torch.as_tensor(plane), threshold) > MAX_OBJECT_BELOW:
        return None
    CONSOLE.print(
        f"{source}: a plane holds {int(inliers.sum())} of {len(points)} points ({inliers.mean():.0%}, within "
        f"{threshold:.3g}); left out of the object's sphere with the {int((~kept).sum() - inliers.sum())} points "
        f"below it; cameras' focus ({', '.join(f'{value:.4g}' for value in focus)}), sphere center "
        f"({', '.join(f'{value:.4g}' for value in sphere.center)}), radius {sphere.radius:.4g}",
        soft_wrap=True,
        highlight=False,
    )
    return sphere


def _quantile_radius(
    points: Float[np.ndarray, "num_points 3"], center: Float[np.ndarray, "3"], quantile: float
) -> float:
    """The `quantile` of the points' distances to `center`."""
    rank = int(math.ceil(quantile * (len(points) - 1)))
    return float(np.partition(np.linalg.norm(points - center, axis=1), rank)[rank])


def _minimal_quantile_center(points: Float[np.ndarray, "num_points 3"], quantile: float) -> Float[np.ndarray, "3"]:
    """Center minimizing `_quantile_radius` (Nelder-Mead from the middle of the points' quantile box)."""
    from scipy.optimize import minimize

    if len(points) > CENTER_SAMPLE_SIZE:
        points = points[np.random.default_rng(0).choice(len(points), CENTER_SAMPLE_SIZE, replace=False)]
    low, high = np.quantile(points, [1.0 - quantile, quantile], axis=0)
    start = (low + high) / 2.0
    step = 0.1 * max(_quantile_radius(points, start, quantile), 1e-12)
    result = minimize(
        lambda center: _quantile_radius(points, center, quantile),
        start,
        method="Nelder-Mead",
        options={"initial_simplex": start + np.vstack([np.zeros(3), step * np.eye(3)]), "xatol": 1e-4 * step},
    )
    return result.x


def camera_focus(camera_to_worlds: Float[Tensor, "num_cameras 3 4"], source: str) -> Float[Tensor, "3"]:
    """The point closest to all optical axes (nerfstudio's `focus_of_attention`, which drops cameras that have it
    behind them), in float64. Raises when the axes are parallel or meet behind the cameras; `source` names the file.
    """
    poses = camera_to_worlds.double()
    origins = poses[:, :3, 3]
    directions = -poses[:, :3, 2]
    directions = directions / directions.norm(dim=-1, keepdim=True)
    spread = torch.eye(3, dtype=poses.dtype) - directions[:, :, None] * directions[:, None, :]
    if torch.linalg.eigvalsh(spread.mean(0)).min() < MIN_AXIS_SPREAD:
        raise NeroInputError(
            f"{source}: the cameras' optical axes are parallel, so they do not look at a common object; "
            "photograph the object from around it, or give its center and radius with "
            "--pipeline.datamanager.dataparser.center X Y Z and --pipeline.datamanager.dataparser.radius R"
        )
    homogeneous = torch.cat([poses, poses.new_tensor([0, 0, 0, 1]).expand(len(poses), 1, 4)], dim=1)
    focus = focus_of_attention(homogeneous, initial_focus=origins.mean(0))
    in_front = ((focus - origins) * directions).sum(-1) > 0
    if in_front.double().mean() < 0.5:
        raise NeroInputError(
            f"{source}: the cameras' optical axes do not meet in front of them (most cameras look away from "
            "each other); photograph the object from around it, or give its center and radius with "
            "--pipeline.datamanager.dataparser.center X Y Z and --pipeline.datamanager.dataparser.radius R"
        )
    return focus


def sphere_from_cameras(
    camera_to_worlds: Float[Tensor, "num_cameras 3 4"],
    half_fov: float,
    source: str,
    center: Optional[Tuple[float, float, float]] = None,
) -> Sphere:
    """Sphere the cameras look at, for when there are no points.

    The center is `camera_focus`; the radius is the one that just fills the narrower half field of view `half_fov`
    (radians) at the median camera distance. `center` overrides the estimated center. `source` names the file in
    error messages.
    """
    poses = camera_to_worlds.double()
    origins = poses[:, :3, 3]
    center_tensor = camera_focus(poses, source) if center is None else poses.new_tensor(center)
    distance = float((origins - center_tensor).norm(dim=-1).median())
    return Sphere(center=_as_tuple(center_tensor.numpy()), radius=distance * math.sin(half_fov))


def normalization_transform(sphere: Sphere, object_radius: float) -> Tuple[Float[Tensor, "3 4"], float]:
    """(transform, scale) that map `sphere` to the sphere of radius `object_radius` at the origin."""
    transform = torch.eye(4)[:3, :]
    transform[:, 3] = -torch.tensor(sphere.center, dtype=torch.float32)
    return transform, object_radius / sphere.radius


def normalize_points(
    points: Float[Tensor, "*bs 3"], transform: Float[Tensor, "3 4"], scale: float
) -> Float[Tensor, "*bs 3"]:
    """Input frame -> normalized frame."""
    transform = transform.to(points)
    return scale * (points @ transform[:, :3].T + transform[:, 3])


def denormalize_points(points: ArrayT, transform: Float[Tensor, "3 4"], scale: float) -> ArrayT:
    """Normalized frame -> input frame (e.g. for exported meshes); numpy in, numpy out."""
    if isinstance(points, np.ndarray):
        matrix = transform.double().numpy()
        return ((points / scale - matrix[:, 3]) @ matrix[:, :3]).astype(points.dtype)
    transform = transform.to(points)
    return (points / scale - transform[:, 3]) @ transform[:, :3]


def normalize_poses(
    camera_to_worlds: Float[Tensor, "num_cameras 3 4"], transform: Float[Tensor, "3 4"], scale: float
) -> Float[Tensor, "num_cameras 3 4"]:
    """Camera-to-world poses, input frame -> normalized frame (rotations turn, origins move and scale).

    The inverse is nerfstudio's `transform_poses_to_original_space(..., camera_convention="opengl")`.
    """
    transform = transform.to(camera_to_worlds)
    rotations = transform[:, :3] @ camera_to_worlds[:, :, :3]
    origins = normalize_points(camera_to_worlds[:, :, 3], transform, scale)
    return torch.cat([rotations, origins[:, :, None]], dim=-1)


def _as_tuple(vector: np.ndarray) -> Tuple[float, float, float]:
    return (float(vector[0]), float(vector[1]), float(vector[2]))
