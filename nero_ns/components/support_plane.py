"""The plane an object stands on (a table, the floor), found in the sparse points around it.

nero-shape joins the floor to the SDF as a known surface, so the object's SDF does not have to model it (and does not
fuse with it around the object's base). nero-material cuts the geometry at the plane and lights the directions that meet
it with the floor light (`nero_ns.fields.floor_light`): a distant environment cannot know that the floor right under
the object lies in the object's own shadow."""

from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from jaxtyping import Bool, Float
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor, nn

from nero_ns.components.brdf import orthonormal_frame

MAX_OBJECT_BELOW = 0.15
"""A floor has at most this share of the object's points below it (noise, a glossy floor's reflections); a plane
with more cuts through the object (a flat object's own mid-plane)."""


def share_below(
    points: Float[Tensor, "num_points 3"], plane: Float[Tensor, "4"], distance_threshold: float
) -> float:
    """Share of `points` more than `distance_threshold` below `plane` (n, d): n.x + d < -threshold; 0 for none."""
    if len(points) == 0:
        return 0.0
    return float((points @ plane[:3] + plane[3] < -distance_threshold).double().mean())


def find_support_plane(
    points: Float[Tensor, "num_points 3"],
    distance_threshold: float = 0.02,
    min_inlier_fraction: float = 0.2,
    offset_range: Tuple[float, float] = (0.1, 1.5),
    max_object_below: float = MAX_OBJECT_BELOW,
) -> Optional[Float[Tensor, "4"]]:
    """RANSAC plane through the sparse points outside the unit sphere (normalized frame), as (n, d) with unit n
    pointing to the object's side: n.x + d = 0 on the plane, d > 0 at the origin.

    None when no plane holds `min_inlier_fraction` of those points within `distance_threshold`, when the origin's
    distance to it is outside `offset_range` (a plane through the middle of the sphere, or one too far to matter),
    or when more than `max_object_below` of the points inside the sphere lie below it (a plane through the object;
    a few points below are allowed: noise, a glossy floor's reflections). The bound on the offset is low because a
    flat object lying on the floor has its floor near the center (0.27 below it for the scene set's genus2-ceramic).
    """
    points = points.detach().cpu().double()
    radii = points.norm(dim=-1)
    outside = points[radii > 1.0]
    if len(outside) < 50:
        return None
    plane, inliers = ransac_plane(outside, distance_threshold)
    if int(inliers.sum()) < min_inlier_fraction * len(outside):
        return None
    plane = plane if plane[3] > 0 else -plane
    if not offset_range[0] <= float(plane[3]) <= offset_range[1]:
        return None
    if share_below(points[radii <= 1.0], plane, distance_threshold) > max_object_below:
        return None
    return plane.float()


def ransac_plane(
    points: Float[Tensor, "num_points 3"],
    distance_threshold: float,
    num_hypotheses: int = 1000,
    max_scored_points: int = 20000,
    seed: int = 0,
) -> Tuple[Float[Tensor, "4"], Bool[Tensor, "num_points"]]:
    """The plane (unit n, d) through three of `points` that the most points lie within `distance_threshold` of, and
    those inliers. All hypotheses are scored at once on at most `max_scored_points` points (a fixed-seed sample),
    so the answer is deterministic and memory stays bounded on large point clouds."""
    generator = torch.Generator().manual_seed(seed)
    triplets = points[torch.randint(len(points), (num_hypotheses, 3), generator=generator)]
    normals = torch.cross(triplets[:, 1] - triplets[:, 0], triplets[:, 2] - triplets[:, 0], dim=-1)
    lengths = normals.norm(dim=-1, keepdim=True)
    normals = normals / lengths.clamp(min=1e-12)
    offsets = -(normals * triplets[:, 0]).sum(-1)
    scored = points
    if len(points) > max_scored_points:
        scored = points[torch.randperm(len(points), generator=generator)[:max_scored_points]]
    counts = ((scored @ normals.T + offsets).abs() < distance_threshold).sum(0)
    best = int(torch.argmax(counts * (lengths[:, 0] > 1e-12)))
    plane = torch.cat([normals[best], offsets[best, None]])
    return plane, (points @ plane[:3] + plane[3]).abs() < distance_threshold


class SupportPlane(nn.Module):
    """The support plane (n, d) as a buffer kept in checkpoints (all zeros: none), with the geometry both stages
    need: ray hits, and the SDF cut at the plane or joined with the solid below it."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("plane", torch.zeros(4))
        self.has_plane = False
        """Whether a plane is set, kept on the host: reading the buffer every step would wait for the GPU."""

    def set_plane(self, plane: Float[Tensor, "4"]) -> None:
        """Use the plane (n, d), unit n toward the object."""
        self.plane = plane.to(self.plane)
        self.has_plane = bool(plane[:3].abs().sum() > 0)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A checkpoint's plane (all zeros: none) sets `has_plane` too."""
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.has_plane = bool(self.plane[:3].abs().sum() > 0)

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

    def clip_sdf(
        self, positions: Float[Tensor, "*bs 3"], sdf: Float[Tensor, "*bs 1"], margin: float = 0.0
    ) -> Float[Tensor, "*bs 1"]:
        """The object's SDF cut `margin` above the plane (CSG intersection with the half-space there): nothing below
        the floor is object. What a reconstruction puts there no camera saw; the cut leaves a flat, watertight base."""
        return torch.maximum(sdf, margin - self.height(positions)) if self.has_plane else sdf

    def with_floor(self, positions: Float[Tensor, "*bs 3"], sdf: Float[Tensor, "*bs 1"]) -> Float[Tensor, "*bs 1"]:
        """The scene's SDF: the object joined with the solid below the plane (CSG union), so the floor is a known
        surface that the object's SDF need not model."""
        return torch.minimum(sdf, self.height(positions)) if self.has_plane else sdf
