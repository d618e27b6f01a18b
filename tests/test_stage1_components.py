"""Stage I building blocks against analytic answers: SDF init, compositing, IDE, occlusion labels, samplers."""

from __future__ import annotations

import math

import torch

from nero_ns.components.compositing import alphas_from_densities, weights_from_alphas
from nero_ns.components.encodings import IntegratedDirectionalEncoding
from nero_ns.components.samplers import intersect_unit_sphere
from nero_ns.components.sdf_tracing import march_hits_surface
from nero_ns.fields.sdf_field import NeroSDFFieldConfig


def random_points_in_ball(count: int, radius: float = 1.0) -> torch.Tensor:
    directions = torch.nn.functional.normalize(torch.randn(count, 3), dim=-1)
    return directions * radius * torch.rand(count, 1) ** (1 / 3)


def test_sdf_field_starts_as_a_sphere_with_unit_gradient() -> None:
    torch.manual_seed(0)
    field = NeroSDFFieldConfig(hash_implementation="torch", init_radius=0.5).setup()
    points = random_points_in_ball(2000)
    sdf, features, gradient = field.sdf_feature_gradient(points, create_graph=False)
    expected = points.norm(dim=-1, keepdim=True) - 0.5
    assert torch.allclose(sdf, expected, atol=1e-5)
    assert torch.allclose(gradient.norm(dim=-1), torch.ones(2000), atol=1e-4)
    assert features.shape == (2000, field.config.feature_dim)


def test_sdf_field_runs_on_pure_pytorch_hash_grid_without_tinycudann() -> None:
    field = NeroSDFFieldConfig(hash_implementation="tcnn").setup()  # falls back to torch when tcnn is absent
    assert field.encoding.supports_jacobian or torch.cuda.is_available()
    points = random_points_in_ball(64).requires_grad_(True)
    sdf, _, gradient = field.sdf_feature_gradient(points, create_graph=True)
    ((gradient.norm(dim=-1) - 1.0) ** 2).mean().add(sdf.abs().mean()).backward()
    assert field.encoding.encoding.hash_table.grad is not None


def test_coarse_to_fine_unlocks_levels() -> None:
    field = NeroSDFFieldConfig(hash_implementation="torch", start_levels=2, steps_per_level=10, num_levels=8).setup()
    with torch.no_grad():
        field.encoding.encoding.hash_table.normal_()
    points = random_points_in_ball(10)
    field.set_step(0)
    active = (field.encoding(points)[0].reshape(10, 8, 2).abs().sum(dim=(0, 2)) > 0).sum()
    assert int(active) == 2
    field.set_step(35)
    active = (field.encoding(points)[0].reshape(10, 8, 2).abs().sum(dim=(0, 2)) > 0).sum()
    assert int(active) == 5


def test_compositing_of_known_densities_gives_known_weights() -> None:
    densities = torch.tensor([[[0.0], [math.log(2.0)], [math.log(4.0)], [1e9]]])
    deltas = torch.ones_like(densities)
    alphas = alphas_from_densities(densities, deltas)
    assert torch.allclose(alphas.squeeze(), torch.tensor([0.0, 0.5, 0.75, 1.0]), atol=1e-6)
    weights = weights_from_alphas(alphas).squeeze()
    # T = 1, 1, 0.5, 0.125 -> w = 0, 0.5, 0.375, 0.125; they sum to one behind an opaque last sample.
    assert torch.allclose(weights, torch.tensor([0.0, 0.5, 0.375, 0.125]), atol=1e-5)
    assert torch.isclose(weights.sum(), torch.tensor(1.0), atol=1e-5)


def test_compositing_two_branches_in_depth_order_hides_the_background() -> None:
    inside = torch.tensor([[[0.0], [1.0]]])  # an opaque surface inside the sphere
    outside = torch.tensor([[[0.9], [0.9]]])
    weights = weights_from_alphas(torch.cat([inside, outside], dim=1)).squeeze()
    assert weights[2:].abs().max() < 1e-5 and torch.isclose(weights[1], torch.tensor(1.0))


def test_sphere_intersection_matches_geometry() -> None:
    origins = torch.tensor([[0.0, 0.0, -3.0], [0.0, 2.0, -3.0]])
    directions = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    near, far, hits = intersect_unit_sphere(origins, directions)
    assert hits.squeeze().tolist() == [True, False]
    assert torch.allclose(near[0], torch.tensor([2.0])) and torch.allclose(far[0], torch.tensor([4.0]))
    assert far[1] > near[1]


def test_ide_is_orthonormal_and_damped_by_roughness() -> None:
    encoding = IntegratedDirectionalEncoding(degree=3)
    generator = torch.Generator().manual_seed(1)
    directions = torch.nn.functional.normalize(torch.randn(200_000, 3, generator=generator), dim=-1)
    code = encoding(directions, torch.zeros(200_000, 1))
    terms = encoding.num_terms
    energy = (code[:, :terms] ** 2 + code[:, terms:] ** 2).mean(0) * 4 * math.pi
    assert torch.allclose(energy, torch.ones(terms), atol=0.02)
    # Y_1^0 = sqrt(3 / 4pi) z
    assert torch.allclose(code[:5, 0], math.sqrt(3 / (4 * math.pi)) * directions[:5, 2], atol=1e-5)
    rough = encoding(directions[:100], torch.ones(100, 1))
    assert torch.allclose(rough[:, 0], code[:100, 0] * math.exp(-1.0), atol=1e-6)


def test_occlusion_pseudo_labels_match_ray_tracing_of_sphere_above_plane() -> None:
    """Rays leaving a floor under a ball are occluded exactly when they hit the ball inside the unit sphere."""
    center, radius, floor = torch.tensor([0.0, 0.2, 0.0]), 0.35, -0.4

    def sdf(points: torch.Tensor) -> torch.Tensor:
        ball = (points - center).norm(dim=-1, keepdim=True) - radius
        return torch.minimum(ball, points[:, 1:2] - floor)

    generator = torch.Generator().manual_seed(3)
    count = 4000
    xz = (torch.rand(count, 2, generator=generator) - 0.5) * 0.8
    origins = torch.stack([xz[:, 0], torch.full((count,), floor), xz[:, 1]], dim=-1)
    directions = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1)
    directions[:, 1] = directions[:, 1].abs()
    start = origins + 0.01 * torch.tensor([0.0, 1.0, 0.0])
    labels = march_hits_surface(sdf, start, directions, num_steps=128)

    offset = start - center
    b = (offset * directions).sum(-1)
    c = (offset * offset).sum(-1) - radius**2
    analytic = (b * b - c > 0) & (-b - torch.sqrt((b * b - c).clamp(min=0)) > 0)
    agreement = (labels == analytic).float().mean()
    assert 0.1 < analytic.float().mean() < 0.9
    assert agreement > 0.98


def test_rays_that_miss_the_sphere_see_only_the_far_field() -> None:
    """The inside branch runs only for rays that cross the unit sphere: a missing ray renders the far field alone,
    and a crossing ray renders the same whether its batch also holds missing rays or not."""
    from nerfstudio.cameras.rays import RayBundle
    from nerfstudio.data.scene_box import SceneBox

    from nero_ns.models.nero_shape import NeroShapeModelConfig

    torch.manual_seed(0)
    model = NeroShapeModelConfig(num_samples=8, num_importance_samples=8, num_outside_samples=8).setup(
        scene_box=SceneBox(torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])), num_train_data=1
    )
    model.eval()
    origins = torch.tensor([[0.0, 0.0, 3.0], [0.3, 0.0, 3.0], [2.0, 0.0, 3.0], [0.0, 1.5, 3.0]])
    directions = torch.tensor([[0.0, 0.0, -1.0]]).expand(4, -1)
    rays = RayBundle(origins=origins, directions=directions, pixel_area=torch.ones(4, 1),
                     camera_indices=torch.zeros(4, 1, dtype=torch.long))
    crossing = torch.tensor([True, True, False, False])
    with torch.no_grad():
        mixed, alone, missing = model(rays), model(rays[crossing]), model(rays[~crossing])
    assert set(missing) == set(mixed)  # every chunk of an image has the same outputs
    assert (mixed["accumulation"][:2] > 0.95).all()  # the init sphere of radius 0.5 is (nearly) opaque
    assert (mixed["accumulation"][2:] == 0).all() and (mixed["foreground"][2:] == 0).all()
    for name in ("rgb", "accumulation", "depth", "normal", "specular"):
        torch.testing.assert_close(mixed[name][:2], alone[name])
        torch.testing.assert_close(mixed[name][2:], missing[name])
    torch.testing.assert_close(mixed["rgb"][2:], mixed["background"][2:])


def _small_shape_model(**options):
    from nerfstudio.data.scene_box import SceneBox

    from nero_ns.models.nero_shape import NeroShapeModelConfig

    torch.manual_seed(0)
    config = NeroShapeModelConfig(num_samples=8, num_importance_samples=8, num_outside_samples=8, **options)
    return config.setup(scene_box=SceneBox(torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])), num_train_data=1)


def _rays_through_sphere(count: int):
    from nerfstudio.cameras.rays import RayBundle

    generator = torch.Generator().manual_seed(1)
    origins = torch.nn.functional.normalize(torch.randn(count, 3, generator=generator), dim=-1) * 3.0
    targets = 0.6 * (torch.rand(count, 3, generator=generator) - 0.5)
    directions = torch.nn.functional.normalize(targets - origins, dim=-1)
    return RayBundle(origins=origins, directions=directions, pixel_area=torch.ones(count, 1),
                     camera_indices=torch.zeros(count, 1, dtype=torch.long))


def test_skipping_invisible_work_changes_pixels_by_less_than_the_threshold() -> None:
    """Shading only samples of weight above negligible-weight, and the far field only behind rays that keep that
    much light, gives the image of evaluating everything, within a few times the threshold."""
    model = _small_shape_model()
    model.eval()
    rays = _rays_through_sphere(64)
    with torch.no_grad():
        model.sdf_field.variance.fill_(0.6)  # inv_s = exp(6): a sharp sphere, most samples invisible
        skipped = model(rays)
        model.config.negligible_weight = 0.0
        everything = model(rays)
    assert float(everything["accumulation"].min()) > 0.99  # every ray hits the opaque sphere
    for name in ("rgb_linear", "accumulation", "depth", "specular"):
        torch.testing.assert_close(skipped[name], everything[name], atol=1e-3, rtol=0)


def test_plain_warmup_hands_the_colour_to_nero_shading() -> None:
    """During plain-warmup-steps the training colour blends the plain head into NeRO's shading, NeRO's share rising
    linearly; after it, and outside training, the colour is NeRO's alone."""
    model = _small_shape_model(plain_warmup_steps=100, cos_anneal_steps=0)  # geometry the same at every step
    rays = _rays_through_sphere(16)

    def colour(step: int) -> torch.Tensor:
        torch.manual_seed(2)  # the same jittered far-field samples each time
        model.train()
        model.step = step
        with torch.no_grad():
            return model(rays)["rgb_linear"]

    assert model.warmup_shading is not None
    nero_only, start, middle = colour(100), colour(0), colour(50)
    model.eval()
    assert model.nero_share() == 1.0
    assert float((start - nero_only).abs().max()) > 0.01  # the two heads differ
    torch.testing.assert_close(middle, 0.5 * (start + nero_only), atol=1e-5, rtol=0)
