"""The plane an object stands on (a table, the floor), found in the sparse points around it.

Stage I joins the floor to the SDF as a known surface, so the object's SDF does not have to model it (and does not
fuse with it around the object's base). Stage II cuts the geometry at the plane and lights the directions that meet
it with the floor light (`nero_ns.fields.floor_light`): a distant environment cannot know that the floor right under
the object lies in the object's own shadow."""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np
import open3d as o3d
import torch
from jaxtyping import Bool, Float
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor, nn

from nero_ns.components.brdf import orthonormal_frame


def fit_plane(
    points: Float[np.ndarray, "num_points 3"], distance_threshold: float, min_inlier_fraction: float
) -> Optional[Tuple[Float[np.ndarray, "4"], Bool[np.ndarray, "num_points"]]]:
    """The plane (n, d) with unit n, n.x + d = 0 on it, that RANSAC (Open3D's, seeded) finds through the most points
    within `distance_threshold`, and those inliers; None when they are fewer than `min_inlier_fraction` of the
    points."""
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, dtype=np.float64)))
    o3d.utility.random.seed(0)
    plane, inliers = cloud.segment_plane(distance_threshold, ransac_n=3, num_iterations=1000)
    if len(inliers) < min_inlier_fraction * len(points):
        return None
    inlier_mask = np.zeros(len(points), dtype=bool)
    inlier_mask[inliers] = True
    return np.asarray(plane, dtype=np.float64) / np.linalg.norm(plane[:3]), inlier_mask


def find_support_plane(
    points: Float[Tensor, "num_points 3"],
    distance_threshold: float = 0.02,
    min_inlier_fraction: float = 0.2,
    offset_range: Tuple[float, float] = (0.3, 1.5),
) -> Optional[Float[Tensor, "4"]]:
    """`fit_plane` through the sparse points outside the unit sphere (normalized frame), as (n, d) with unit n
    pointing to the object's side: n.x + d = 0 on the plane, d > 0 at the origin.

    None when no plane holds `min_inlier_fraction` of those points within `distance_threshold`, or when the
    origin's distance to it is outside `offset_range` (a plane through the object, or one too far to matter).
    """
    outside = points[points.norm(dim=-1) > 1.0].detach().cpu().double().numpy()
    if len(outside) < 50:
        return None
    found = fit_plane(outside, distance_threshold, min_inlier_fraction)
    if found is None:
        return None
    plane = found[0] if found[0][3] > 0 else -found[0]
    if not offset_range[0] <= plane[3] <= offset_range[1]:
        return None
    return torch.tensor(plane, dtype=torch.float32)


class SupportPlane(nn.Module):
    """The support plane (n, d) as a buffer kept in checkpoints (all zeros: none), with the geometry both stages
    need: ray hits, and the SDF cut at the plane or joined with the solid below it."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("plane", torch.zeros(4))

    @property
    def has_plane(self) -> bool:
        return bool(self.plane[:3].abs().sum() > 0)

    def set_plane(self, plane: Float[Tensor, "4"]) -> None:
        """Use the plane (n, d), unit n toward the object."""
        self.plane = plane.to(self.plane)

    def fit(self, points: Optional[Float[Tensor, "num_points 3"]]) -> bool:
        """Use the plane `find_support_plane` finds in the sparse points (normalized frame), if any; says so."""
        plane = find_support_plane(points) if points is not None else None
        if plane is None:
            return False
        CONSOLE.print(f"Support plane found in the sparse points: normal {plane[:3].tolist()}, "
                      f"{float(plane[3]):.3f} below the center")
        self.set_plane(plane)
        return True

    def height(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 1"]:
        """Signed distance above the plane (negative below it)."""
        return (positions @ self.plane[:3] + self.plane[3])[..., None]

    def frame(self) -> Tuple[Tensor, Tensor, Tensor]:
        """Tangent, bitangent and the foot point of the origin on the plane."""
        normal = self.plane[:3]
        tangent, bitangent = orthonormal_frame(normal)
        return tangent, bitangent, -self.plane[3] * normal

    def intersect(
        self, origins: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"]
    ) -> Tuple[Bool[Tensor, "*bs"], Float[Tensor, "*bs 3"], Float[Tensor, "*bs"]]:
        """Whether each ray (unit direction) meets the plane from above, ahead of its origin, where, and how far (the
        origin and inf on a miss)."""
        if not self.has_plane:
            misses = torch.zeros_like(origins[..., 0], dtype=torch.bool)
            return misses, origins, torch.full_like(origins[..., 0], math.inf)
        height = self.height(origins)[..., 0]
        approach = directions @ self.plane[:3]
        distance = -height / torch.where(approach.abs() > 1e-8, approach, torch.full_like(approach, 1e-8))
        hits = (distance > 0) & (approach < 0) & (height > 0)
        distance = torch.where(hits, distance, torch.full_like(distance, math.inf))
        points = origins + torch.where(hits, distance, torch.zeros_like(distance))[..., None] * directions
        return hits, points, distance

    def clip_sdf(self, positions: Float[Tensor, "*bs 3"], sdf: Float[Tensor, "*bs 1"]) -> Float[Tensor, "*bs 1"]:
        """The object's SDF cut by the plane (CSG intersection with the half-space above it): nothing below the floor
        is object. What a reconstruction puts there no camera saw; the cut leaves a flat, watertight base."""
        return torch.maximum(sdf, -self.height(positions)) if self.has_plane else sdf

    def with_floor(self, positions: Float[Tensor, "*bs 3"], sdf: Float[Tensor, "*bs 1"]) -> Float[Tensor, "*bs 1"]:
        """The scene's SDF: the object joined with the solid below the plane (CSG union), so the floor is a known
        surface that the object's SDF need not model."""
        return torch.minimum(sdf, self.height(positions)) if self.has_plane else sdf
