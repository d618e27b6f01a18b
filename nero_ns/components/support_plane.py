"""The plane an object stands on (a table, the floor), found in the sparse points around it.

Stage II lights a direction that escapes the object with a distant environment, which cannot know that the floor
right under the object lies in the object's own shadow: the underside looks dark for want of light, and the
material field paints it dark. Directions that meet the support plane take the floor light instead
(`nero_ns.fields.floor_light`)."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import open3d as o3d
import torch
from jaxtyping import Float
from torch import Tensor


def find_support_plane(
    points: Float[Tensor, "num_points 3"],
    distance_threshold: float = 0.02,
    min_inlier_fraction: float = 0.2,
    offset_range: Tuple[float, float] = (0.3, 1.5),
) -> Optional[Float[Tensor, "4"]]:
    """RANSAC plane through the sparse points outside the unit sphere (normalized frame), as (n, d) with unit n
    pointing to the object's side: n.x + d = 0 on the plane, d > 0 at the origin.

    None when no plane holds `min_inlier_fraction` of those points within `distance_threshold`, or when the
    origin's distance to it is outside `offset_range` (a plane through the object, or one too far to matter).
    """
    outside = points[points.norm(dim=-1) > 1.0].detach().cpu().double().numpy()
    if len(outside) < 50:
        return None
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(outside))
    o3d.utility.random.seed(0)
    plane, inliers = cloud.segment_plane(distance_threshold, ransac_n=3, num_iterations=1000)
    if len(inliers) < min_inlier_fraction * len(outside):
        return None
    plane = np.asarray(plane, dtype=np.float64) / np.linalg.norm(plane[:3])
    plane = plane if plane[3] > 0 else -plane
    if not offset_range[0] <= plane[3] <= offset_range[1]:
        return None
    return torch.tensor(plane, dtype=torch.float32)

