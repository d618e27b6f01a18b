"""The floor's colour read from photos: a textured floor under an object that hides it from most views."""

import math

import torch
from nerfstudio.cameras.cameras import Cameras

from nero_ns.components.floor_from_photos import agreed_colours, floor_colours_from_photos
from nero_ns.components.support_plane import SupportPlane
from nero_ns.fields.floor_texture import FloorTextureConfig

FLOOR_HEIGHT = -0.5
OBJECT_RADIUS = 0.4


def floor_colour(points: torch.Tensor) -> torch.Tensor:
    """A smooth, clearly coloured pattern on the floor (sRGB)."""
    x, y = points[..., 0], points[..., 1]
    return torch.stack([0.5 + 0.4 * torch.sin(3 * x), 0.5 + 0.4 * torch.cos(2 * y), 0.3 + 0.2 * torch.sin(x + y)], -1)


def orbit_cameras(num_views: int, size: int = 96) -> Cameras:
    """Cameras on a ring 35 degrees above the floor, looking at the origin."""
    poses = []
    for index in range(num_views):
        azimuth = 2 * math.pi * index / num_views
        elevation = 0.6
        center = 2.5 * torch.tensor([
            math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation), math.sin(elevation)
        ])
        back = center / center.norm()  # the camera looks down -z, so z points away from the scene
        right = torch.linalg.cross(torch.tensor([0.0, 0.0, 1.0]), back)
        right = right / right.norm()
        up = torch.linalg.cross(back, right)
        poses.append(torch.stack([right, up, back, center], dim=1))
    return Cameras(camera_to_worlds=torch.stack(poses), fx=100.0, fy=100.0, cx=size / 2, cy=size / 2, width=size,
                   height=size)


def render(cameras: Cameras, view: int) -> torch.Tensor:
    """A view of the floor with a ball on it whose colour changes with the view (a shiny object seen from
    elsewhere shows something else)."""
    rays = cameras.generate_rays(camera_indices=view, keep_shape=True)
    origins, directions = rays.origins, rays.directions
    floor_distance = (FLOOR_HEIGHT - origins[..., 2]) / directions[..., 2]
    image = floor_colour(origins + floor_distance[..., None] * directions)
    center = torch.tensor([0.0, 0.0, FLOOR_HEIGHT + OBJECT_RADIUS])
    along = ((center - origins) * directions).sum(-1)
    miss = ((origins + along[..., None] * directions - center).norm(dim=-1))
    hits_ball = miss < OBJECT_RADIUS
    ball = torch.tensor([0.9 * (view % 5) / 4, 0.1 + 0.8 * (view % 3) / 2, 0.95])
    return torch.where(hits_ball[..., None], ball.expand_as(image), image)


def test_the_floor_under_an_object_is_read_from_the_views_that_see_it():
    cameras = orbit_cameras(30)
    # Floor points in a ring around the ball's foot: hidden by the ball in some views, seen in others.
    angles = torch.linspace(0, 2 * math.pi, 40)
    radii = torch.tensor([0.15, 0.2, 0.25, 0.27, 0.3, 0.45, 0.6, 0.9])
    points = torch.stack([
        (radii[:, None] * torch.cos(angles)).ravel(), (radii[:, None] * torch.sin(angles)).ravel(),
        torch.full((len(radii) * len(angles),), FLOOR_HEIGHT),
    ], -1)
    colours, found = floor_colours_from_photos(cameras, lambda view: render(cameras, view), points,
                                               torch.tensor([0.0, 0.0, 1.0]))
    hidden = hidden_share(cameras, points, OBJECT_RADIUS)
    # Views that see the point clear of the ball's outline (pixels there blend ball and floor).
    clear_views = len(cameras) * (1.0 - hidden_share(cameras, points, 1.1 * OBJECT_RADIUS))
    seen = clear_views >= 4
    # Points the ball hides from half the views or more are what the test is about.
    assert (seen & (hidden >= 0.5)).sum() >= 80 and (seen & (hidden > 0.55)).sum() >= 30
    error = (colours - floor_colour(points)).abs().amax(dim=-1)
    assert found[seen].all()
    # Bilinear look-ups on 96-pixel views of a smooth pattern: a few hundredths at most.
    assert error[seen].median() < 0.02 and error[seen].max() < 0.05
    # Points under the ball, seen by no view, are not given the ball's colour: they stay as training leaves them.
    assert not found[hidden > 0.95].any()


def hidden_share(cameras: Cameras, points: torch.Tensor, radius: float) -> torch.Tensor:
    """Share of the views in which a ball of `radius` at the object's center lies between each floor point and the
    camera."""
    center = torch.tensor([0.0, 0.0, FLOOR_HEIGHT + OBJECT_RADIUS])
    origins = cameras.camera_to_worlds[:, :, 3]
    directions = origins[:, None] - points[None]
    lengths = directions.norm(dim=-1, keepdim=True)
    directions = directions / lengths
    along = ((center - points[None]) * directions).sum(-1).clamp(min=0)
    closest = points[None] + along[..., None] * directions
    return ((closest - center).norm(dim=-1) < radius).float().mean(0)


def test_agreement_needs_enough_views():
    floor = torch.tensor([0.2, 0.5, 0.3])
    others = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9], [0.9, 0.9, 0.1], [0.5, 0.9, 0.9]])
    colours = torch.cat([floor.expand(3, 3), others])[:, None]  # 3 views agree, 5 views differ from all
    valid = torch.ones(8, 1, dtype=torch.bool)
    mean, found = agreed_colours(colours, valid)
    assert found.item() and torch.allclose(mean[0], floor)
    valid[0] = False  # two agreeing views are not enough
    assert not agreed_colours(colours, valid)[1].item()


def test_the_texture_fills_only_the_floor_no_ray_has_reached():
    plane = SupportPlane()
    plane.set_plane(torch.tensor([0.0, 0.0, 1.0, 0.5]))
    texture = FloorTextureConfig().setup()
    with torch.no_grad():  # what training has learned so far: the coarse grid, and some of the finest texels
        texture.log_texture[0].normal_(0.0, 0.2)
        texture.log_texture[-1][..., 64:, :].normal_(0.0, 0.2)
    points = texture.texel_points(plane)
    before = texture.radiance(plane, points).detach()
    radiance = floor_colour(points) ** 2.2
    known = torch.ones(points.shape[:2], dtype=torch.bool)
    known[:40, :40] = False  # a corner no view saw
    filled = texture.fill_untrained(plane, radiance, known)
    after = texture.radiance(plane, points).detach()
    untrained = known.clone()
    untrained[64:] = False
    assert filled == int(untrained.sum())
    assert torch.allclose(after[untrained], radiance[untrained], rtol=1e-4)
    assert torch.equal(after[~untrained], before[~untrained])
