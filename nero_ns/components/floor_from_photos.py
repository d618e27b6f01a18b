"""The floor's colour read straight from the photos: each floor point projected into every view, and the colour
that most views agree on taken as the floor's.

Why: the floor under a knot's loops or a torus's hole is seen only through the object's gaps. A surface that first
spans such a gap (a membrane: the SDF starts as a full sphere) hides the floor behind it from every ray, so the
floor there never learns its colour; removing the membrane would then show a wrong floor, and the photometric loss
keeps the membrane. With the floor's colour read from the photos and given to the texels no ray has reached
(FloorTexture.fill_untrained), a view through the gap is wrong while the membrane is there and right once it is gone.

Why the colour most views agree on rather than the mean: a diffuse floor point looks the same from every view that
sees it, while the views where the object hides it each see another part of a shiny object. The floor is then the
largest group of views that agree, even where it is seen from fewer than half of them.
"""

from __future__ import annotations

from typing import Callable, Tuple

import torch
from jaxtyping import Bool, Float
from nerfstudio.cameras.cameras import Cameras
from torch import Tensor

from nero_ns.components.grid_lookup import bilinear_lookup

AGREEMENT = 0.05
"""Largest difference of two sRGB-encoded colour channels still counted as the same floor colour."""
MIN_AGREEING_VIEWS = 3
"""Views that must agree on a floor point's colour before it is taken."""


def project_to_views(
    cameras: Cameras, points: Float[Tensor, "num_points 3"]
) -> Tuple[Float[Tensor, "num_views num_points 2"], Bool[Tensor, "num_views num_points"]]:
    """Pixel coordinates (column, row; pixel (i, j) spans [i, i+1]) of `points` in every camera (pinhole; lens
    distortion is ignored), and whether each lies in front of the camera and within its image."""
    poses = cameras.camera_to_worlds.to(points)
    rotations, centers = poses[:, :, :3], poses[:, :, 3]
    local = torch.einsum("vji,vpj->vpi", rotations, points[None] - centers[:, None])  # camera frame: x right, y up
    depth = -local[..., 2]
    safe_depth = depth.clamp(min=1e-6)
    columns = cameras.cx.to(points) + cameras.fx.to(points) * local[..., 0] / safe_depth
    rows = cameras.cy.to(points) - cameras.fy.to(points) * local[..., 1] / safe_depth
    inside = (
        (depth > 1e-6) & (columns >= 0) & (rows >= 0)
        & (columns <= cameras.width.to(points)) & (rows <= cameras.height.to(points))
    )
    return torch.stack([columns, rows], dim=-1), inside


def agreed_colours(
    colours: Float[Tensor, "num_views num_points 3"], valid: Bool[Tensor, "num_views num_points"], chunk: int = 4096
) -> Tuple[Float[Tensor, "num_points 3"], Bool[Tensor, "num_points"]]:
    """Per point, the mean of the largest group of views whose colours agree with one view's within AGREEMENT (in
    every channel), and whether that group has MIN_AGREEING_VIEWS views."""
    means, found = [], []
    for start in range(0, colours.shape[1], chunk):
        part, part_valid = colours[:, start:start + chunk], valid[:, start:start + chunk]
        close = (part[:, None] - part[None]).abs().amax(dim=-1) <= AGREEMENT  # [view, other view, point]
        close &= part_valid[:, None] & part_valid[None]
        counts = close.sum(dim=1)  # views agreeing with each view
        best = counts.argmax(dim=0)
        group = close[best, :, torch.arange(part.shape[1])].T.to(part.dtype)  # [view, point]
        size = group.sum(dim=0)
        means.append((group[..., None] * part).sum(dim=0) / size.clamp(min=1)[:, None])
        found.append(size >= MIN_AGREEING_VIEWS)
    return torch.cat(means), torch.cat(found)


def floor_colours_from_photos(
    cameras: Cameras,
    photo: Callable[[int], Float[Tensor, "height width 3"]],
    points: Float[Tensor, "num_points 3"],
    plane_normal: Float[Tensor, "3"],
) -> Tuple[Float[Tensor, "num_points 3"], Bool[Tensor, "num_points"]]:
    """The sRGB-encoded colour most views agree on at each floor point, from the cameras above the plane (through
    `plane_normal`, pointing up), and whether enough views agreed. `photo(i)` gives view i as sRGB in [0, 1]."""
    pixels, inside = project_to_views(cameras, points)
    above = (cameras.camera_to_worlds[:, :, 3].to(points) - points.mean(dim=0)) @ plane_normal > 0
    inside &= above[:, None]
    colours = torch.zeros(*inside.shape, 3, dtype=points.dtype)
    for view in range(len(cameras)):
        if not inside[view].any():
            continue
        image = photo(view)[..., :3].to(points)
        height, width = image.shape[:2]
        coordinates = pixels[view] / torch.tensor([width, height], dtype=points.dtype) * 2.0 - 1.0
        colours[view] = bilinear_lookup(image.permute(2, 0, 1)[None], coordinates)
    return agreed_colours(colours, inside)
