"""nero-material: trains through nerfstudio's Trainer on the tiny scene, renders every output, and its
checkpoints load back through `eval_setup` and resume."""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
from pathlib import Path
from typing import Tuple

import imageio.v3 as imageio
import numpy as np
import pytest
import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.trainer import Trainer
from nerfstudio.utils.eval_utils import eval_setup

from nero_ns.colors import linear_to_srgb, srgb_to_linear
from nero_ns.components.grid_lookup import bilinear_lookup
from nero_ns.datamanagers.normalization import normalize_points
from nero_ns.errors import NeroInputError
from nero_ns.method_configs import nero_material, nero_shape
from nero_ns.models.nero_material import STATE_MOVED_TO_PARTS, NeroMaterialModel, NeroMaterialModelConfig
from nero_ns.models.material_priors import floor_prior
from nero_ns.models.photometric import photometric_loss
from nero_ns.models.shape_run import load_shape_run
from nero_ns.io.latlong import latlong_directions
from tests.models.test_shape_run import write_shape_run
from tests.nero_runs import setup_trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from common import render_views  # noqa: E402  (the benchmarks' render command)

TRAIN_STEPS = 30
OUTPUT_CHANNELS = {
    "rgb": 3, "rgb_linear": 3, "albedo": 3, "diffuse": 3, "specular": 3, "normal": 3, "environment": 3,
    "roughness": 1, "metallic": 1, "visibility": 1, "accumulation": 1, "depth": 1,
}


def material_config(data: Path, shape_config: Path, output_dir: Path, steps: int):
    config = copy.deepcopy(nero_material.config)
    config.pipeline.datamanager.data = data
    config.shape_config = shape_config
    config.copy_shape_config()
    config.pipeline.model.mesh_resolution = 48
    config.output_dir = output_dir
    config.vis = "tensorboard"
    config.machine.device_type = "cpu"
    config.max_num_iterations = steps
    config.steps_per_save = TRAIN_STEPS
    config.steps_per_eval_batch = config.steps_per_eval_image = 1_000_000
    return config


def render(model: NeroMaterialModel, pipeline, index: int, seed: int = 0):
    model.eval()
    camera = pipeline.datamanager.train_dataset.cameras[index : index + 1].to(model.device)
    torch.manual_seed(seed)
    return model.get_outputs_for_camera(camera)


def foreground_error(pipeline, indices=(0, 8)) -> float:
    """Mean Charbonnier error on linear colors over the pixels whose rays hit the mesh."""
    errors = []
    for index in indices:
        outputs = render(pipeline.model, pipeline, index)
        image = srgb_to_linear(pipeline.datamanager.train_dataset[index]["image"][..., :3])
        hit = outputs["accumulation"][..., 0] > 0
        errors.append(torch.sqrt((outputs["rgb_linear"][hit] - image[hit]) ** 2 + 1e-6).mean())
    return float(torch.stack(errors).mean())


def floor_loss(pipeline) -> float:
    """The floor light's loss on one fixed training batch."""
    torch.manual_seed(0)
    pipeline.model.train()
    ray_bundle, batch = pipeline.datamanager.next_train(0)
    outputs = pipeline.model(ray_bundle)
    return float(pipeline.model.get_loss_dict(outputs, batch)["floor_loss"].detach())


def material_trainer(data: Path, root: Path, steps: int) -> Tuple[Trainer, Path, Path]:
    """A nero-shape run in ROOT/shape and a nero-material trainer on it in ROOT/material, set up for `steps` steps
    and not yet trained: the trainer, its config.yml and the nero-shape run's config.yml. The nero-shape run is
    untrained, started as a sphere of radius 0.5: inside the tiny scene's blob, it stands in for a trained shape."""
    inside_the_blob = dataclasses.replace(nero_shape.config.pipeline.model.sdf_field, init_radius=0.5)
    shape_config = write_shape_run(data, root / "shape", sdf_field=inside_the_blob)
    config = material_config(data, shape_config, root / "material", steps)
    trainer = setup_trainer(config)
    return trainer, config.get_base_dir() / "config.yml", shape_config


@pytest.fixture(scope="module")
def trained_run(tiny_scene, tmp_path_factory):
    """nero-shape run, then nero-material trained TRAIN_STEPS steps; the foreground error before and after."""
    trainer, config_path, shape_config = material_trainer(
        tiny_scene, tmp_path_factory.mktemp("nero_material"), TRAIN_STEPS
    )
    before, floor_before = foreground_error(trainer.pipeline), floor_loss(trainer.pipeline)
    trainer.pipeline.model.train()
    trainer.train()
    after, floor_after = foreground_error(trainer.pipeline), floor_loss(trainer.pipeline)
    return {"trainer": trainer, "config_path": config_path, "shape_config": shape_config,
            "before": before, "after": after, "floor_loss": (floor_before, floor_after)}


def test_training_lowers_the_foreground_error_with_geometry_frozen(trained_run):
    print("foreground error before, after:", trained_run["before"], trained_run["after"])
    assert trained_run["after"] < 0.8 * trained_run["before"], (trained_run["before"], trained_run["after"])
    model = trained_run["trainer"].pipeline.model
    shape_model, _, _ = load_shape_run(trained_run["shape_config"])
    for name, value in shape_model.sdf_field.state_dict().items():
        assert torch.equal(model.geometry.sdf_field.state_dict()[name], value), name
    assert set(model.get_param_groups()) == {"materials", "lights", "environment_texels", "floor"}


def test_outputs_cover_every_pixel_with_their_ranges(trained_run):
    pipeline = trained_run["trainer"].pipeline
    outputs = render(pipeline.model, pipeline, 3)
    cameras = pipeline.datamanager.train_dataset.cameras
    height, width = int(cameras.height[3, 0]), int(cameras.width[3, 0])
    for name, channels in OUTPUT_CHANNELS.items():
        assert outputs[name].shape == (height, width, channels), name
    hit = outputs["accumulation"][..., 0] > 0
    mask = pipeline.datamanager.train_dataset[3]["mask"][..., 0]
    # The nero-shape sphere (radius 0.5) covers much of the object's mask and nothing of the far background.
    assert 0.02 < float(hit.float().mean()) < 0.5 and float(mask[hit].float().mean()) > 0.9
    assert float(outputs["roughness"][hit].min()) >= 0.04 and float(outputs["metallic"][hit].max()) <= 1.0
    assert float(outputs["visibility"][hit].min()) >= 0.0 and float(outputs["visibility"][hit].max()) <= 1.0
    assert float(outputs["albedo"][~hit].abs().max()) == 0.0 and float(outputs["rgb"].max()) <= 1.0
    batch = {"image": pipeline.datamanager.train_dataset[3]["image"]}
    metrics, images = pipeline.model.get_image_metrics_and_images(outputs, batch)
    assert 5.0 < metrics["psnr"] < 60.0 and images["img"].shape == (height, 2 * width, 3)
    environment = pipeline.model.environment_map(16)
    assert environment.shape == (16, 32, 3) and float(environment.min()) > 0.0
    materials = pipeline.model.query_materials(torch.zeros(7, 3))
    assert {name: tuple(value.shape) for name, value in materials.items()} == {
        "albedo": (7, 3), "roughness": (7, 1), "metallic": (7, 1)
    }


def test_checkpoint_round_trips_through_eval_setup(trained_run):
    trained = trained_run["trainer"].pipeline.model
    _, pipeline, checkpoint, step = eval_setup(trained_run["config_path"], test_mode="inference")
    loaded = pipeline.model
    assert isinstance(loaded, NeroMaterialModel) and step == TRAIN_STEPS - 1 and checkpoint.is_file()
    assert torch.equal(loaded.geometry.mesh_faces, trained.geometry.mesh_faces)
    assert torch.equal(loaded.geometry.mesh_vertices, trained.geometry.mesh_vertices)
    for name, value in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    reference = render(trained, trained_run["trainer"].pipeline, 2, seed=3)
    camera = trained_run["trainer"].pipeline.datamanager.train_dataset.cameras[2:3]
    torch.manual_seed(3)
    again = loaded.get_outputs_for_camera(camera)
    for name in ("rgb", "albedo", "environment"):
        assert torch.allclose(again[name], reference[name], atol=1e-6), name


def test_a_checkpoint_from_before_the_split_into_parts_loads(trained_run):
    """nero-material checkpoints written before the model was split into its geometry and light hold their weights under
    the old names (`STATE_MOVED_TO_PARTS`, e.g. `sdf_field.`, `floor_light.support.plane`): they load into the same
    weights, mesh and support plane."""
    trained = trained_run["trainer"].pipeline.model

    def old_key(key: str) -> str:
        moved = [(old, new) for old, new in STATE_MOVED_TO_PARTS if key.startswith(new)]
        return moved[0][0] + key[len(moved[0][1]) :] if moved else key

    old_state = {old_key(key): value for key, value in trained.state_dict().items()}
    assert {"sdf_field.variance", "mesh_faces", "floor_light.support.plane", "environment_light.log_texels.0"} <= set(
        old_state
    )
    _, pipeline, _, _ = eval_setup(trained_run["config_path"], test_mode="inference")
    loaded = pipeline.model
    with torch.no_grad():
        loaded.light.environment.mlp.layers[-1].weight.zero_()
        loaded.geometry.support_plane.set_plane(torch.zeros(4))
    loaded.load_state_dict(old_state)
    for name, value in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    assert loaded.geometry.support_plane.has_plane


def test_training_resumes_from_the_checkpoint(trained_run, tiny_scene, tmp_path):
    checkpoint_dir = trained_run["config_path"].parent / "nerfstudio_models"
    # nerfstudio trains max_num_iterations more steps after the loaded one.
    config = material_config(tiny_scene, trained_run["shape_config"], tmp_path, 2)
    config.load_dir = checkpoint_dir
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    assert trainer._start_step == TRAIN_STEPS
    assert bool(trainer.pipeline.model.warm_started)  # the resumed run does not fit to nero-shape again
    trained = trained_run["trainer"].pipeline.model
    assert torch.equal(trainer.pipeline.model.geometry.mesh_faces, trained.geometry.mesh_faces)
    weights = trainer.pipeline.model.material_field.mlp.layers[-1].weight
    assert torch.equal(weights, trained.material_field.mlp.layers[-1].weight)
    start = weights.detach().clone()
    trainer.train()
    assert not torch.equal(weights, start)


def test_support_plane_is_the_floor_and_lights_only_light_directions(trained_run, tiny_scene):
    """The tiny scene's floor is found in its sparse points; a light ray from just above it, beside the object,
    going down meets it (and takes the floor light, darker under the object); training rays that meet the floor
    train the floor light."""
    pipeline = trained_run["trainer"].pipeline
    model = pipeline.model
    outputs = pipeline.datamanager.train_dataparser_outputs
    floor_height = json.loads((tiny_scene / "gt" / "materials.json").read_text())["floor_height"]
    floor_point = normalize_points(
        torch.tensor([0.0, 0.0, floor_height]), outputs.dataparser_transform, float(outputs.dataparser_scale)
    )
    floor, support, geometry = model.light.floor, model.geometry.support_plane, model.geometry
    assert support.has_plane and floor.has_visibility
    normal, offset = support.plane[:3], support.plane[3]
    assert float(normal[2]) > 0.99 and abs(float(normal @ floor_point + offset)) < 0.02
    shape_model, _, _ = load_shape_run(trained_run["shape_config"])
    assert torch.equal(support.plane, shape_model.support_plane.plane)  # nero-shape's plane, not fitted again
    above_floor = -(offset - 0.05) * normal + torch.tensor([1.5, 0.0, 0.0])
    down = -normal
    assert bool(support.intersect(above_floor[None], down[None])[0][0])
    assert not bool(geometry.raycaster.occluded(above_floor[None], down[None])[0])
    assert not bool(support.intersect(above_floor[None], normal[None])[0][0])
    heights = geometry.raycaster_vertices() @ normal + offset
    assert float(heights.min()) > -0.01  # the ray-casting mesh is cut at the floor
    # Which light, going down: beside the object, the floor; from above the object, the object.
    above_object = 3.0 * normal
    blocked, on_floor, _ = model.light.sources(torch.stack([above_floor, above_object]), down.expand(2, 3), geometry)
    assert on_floor.tolist() == [True, False] and blocked.tolist() == [False, True]
    foot, aside = -offset * normal, -offset * normal + torch.tensor([2.5, 0.0, 0.0])
    coordinates = floor.texture_coordinates(support, torch.stack([foot, aside]))
    visibility = bilinear_lookup(floor.sky_visibility, coordinates)[:, 0]
    assert float(visibility[0]) < 0.6 < 0.9 < float(visibility[1])
    before, after = trained_run["floor_loss"]
    print("floor loss before / after training:", before, after)
    assert after < 0.9 * before


def test_environment_map_shows_the_floor_light_below_the_floor(trained_run):
    """The exported light map: the environment light in directions that leave the floor, the floor light where the
    direction from the object's center meets the floor (nero-material never lights from there with the environment)."""
    model = trained_run["trainer"].pipeline.model
    height = 16
    exported = model.environment_map(height)
    learned = model.light.environment.environment_map(height)
    directions = torch.as_tensor(latlong_directions(height, 2 * height), dtype=torch.float32)
    support = model.geometry.support_plane
    normal, offset = support.plane[:3], support.plane[3]
    toward_floor = directions @ normal
    up, down = toward_floor > 0.05, toward_floor < -0.05
    assert torch.equal(exported[up], learned[up])
    feet = directions[down] * (-offset / toward_floor[down])[:, None]
    with torch.no_grad():
        floor_radiance = model.light.floor(support, feet)
    assert torch.allclose(exported[down], floor_radiance, rtol=1e-4, atol=1e-6)
    assert float((exported[down] - learned[down]).abs().max()) > 1e-2


def test_floor_directions_take_the_indirect_light_or_the_floor_light(trained_run):
    """Light going down onto the floor beside the object: with floor-light-use 'indirect' (the default) it is the
    indirect light; 'prior' adds in training the prior's error against the floor light; 'direct' gives the floor
    light itself."""
    model = trained_run["trainer"].pipeline.model
    light, geometry, support = model.light, model.geometry, model.geometry.support_plane
    normal, offset = support.plane[:3], support.plane[3]
    angles = torch.linspace(0.0, 2.0 * torch.pi, 9)[:-1]
    ring = torch.stack([torch.cos(angles), torch.sin(angles), torch.zeros_like(angles)], dim=-1)
    points = 1.5 * ring - (offset - 0.05) * normal
    down = -normal.expand_as(points)
    assert model.config.floor_light_use == "indirect"
    model.train()
    try:
        with torch.no_grad():
            incident = light.incident(points, down, geometry)
            indirect = light.indirect(points, down)
            floor = light.floor(support, points - 0.05 * normal)
        assert not bool(incident.sky.any()) and torch.allclose(incident.radiance, indirect)
        assert incident.floor_pair is None
        model.config.floor_light_use = "prior"
        with torch.no_grad():
            incident = light.incident(points, down, geometry)
        assert torch.allclose(incident.radiance, indirect) and incident.floor_pair is not None
        prior = floor_prior(incident.floor_pair, model.config.photometric_loss)
        expected = photometric_loss(indirect, floor, model.config.photometric_loss)
        assert float(prior) > 0 and torch.isclose(prior, expected)
        model.config.floor_light_use = "direct"
        with torch.no_grad():
            incident = light.incident(points, down, geometry)
        assert incident.floor_pair is None and torch.allclose(incident.radiance, floor, atol=1e-6)
        assert not torch.allclose(floor, indirect, atol=1e-3)
    finally:
        model.config.floor_light_use = "indirect"
        model.eval()


def test_camera_rays_see_the_floor_light_inside_the_sphere_and_the_far_field_beyond(trained_run):
    """nero-material cuts away the floor that nero-shape's SDF held inside the unit sphere: camera rays that miss the
    object and meet the floor there show the floor light; those meeting it outside the sphere keep the far field."""
    model = trained_run["trainer"].pipeline.model
    model.eval()
    support = model.geometry.support_plane
    normal, offset = support.plane[:3], support.plane[3]
    angles = torch.linspace(0.0, 2.0 * torch.pi, 25)[:-1]
    ring = torch.stack([torch.cos(angles), torch.sin(angles), torch.zeros_like(angles)], dim=-1)
    disc_radius = float(torch.sqrt(1.0 - offset**2))  # of the floor inside the sphere
    origins = torch.cat([2.5 * ring, 2.5 * ring]) + 2.0 * normal
    targets = torch.cat([0.9 * disc_radius * ring, 2.0 * ring]) - offset * normal  # inside / outside the sphere
    directions = torch.nn.functional.normalize(targets - origins, dim=-1)
    rays = RayBundle(
        origins=origins, directions=directions, pixel_area=torch.ones(len(origins), 1),
        camera_indices=torch.zeros(len(origins), 1, dtype=torch.long),
    )
    with torch.no_grad():
        rgb = model.get_outputs(rays)["rgb_linear"]
        _, hit, _, _ = model.geometry.raycaster.first_hit(origins, directions)
        floor_light = model.light.floor(support, targets)
        far_field = model.geometry.far_field_radiance(rays)
    inside = (targets.norm(dim=-1) < 1.0) & ~hit
    outside = (targets.norm(dim=-1) > 1.0) & ~hit
    assert int(inside.sum()) >= 6 and int(outside.sum()) >= 6, (int(inside.sum()), int(outside.sum()))
    assert torch.allclose(rgb[inside], floor_light[inside], atol=1e-5)
    assert torch.allclose(rgb[outside], far_field[outside], atol=1e-5)
    assert not torch.allclose(floor_light[inside], far_field[inside], atol=1e-3)


def test_a_floor_through_the_object_cuts_it_and_lights_its_base(trained_run):
    """With the floor moved up through the tiny model's sphere, the ray-casting mesh stops at it, and going down
    from the lowest downward-facing vertices the floor comes first (the flat base lies on it)."""
    model = trained_run["trainer"].pipeline.model
    raycaster, model.geometry._raycaster = model.geometry._raycaster, None  # Open3D scenes do not deep-copy
    try:
        cut = copy.deepcopy(model)
    finally:
        model.geometry._raycaster = raycaster
    normal = torch.tensor([0.0, 0.0, 1.0])
    geometry = cut.geometry
    geometry.support_plane.set_plane(torch.cat([normal, torch.tensor([0.3])]))
    geometry.mesh_vertices, geometry.mesh_faces = torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.long)
    cut.light.floor.sky_visibility.fill_(-1.0)  # ray cast again from the new plane and mesh
    heights = geometry.raycaster_vertices() @ normal + 0.3
    assert abs(float(heights.min())) < 0.01
    lowest = (heights > 0.01) & (heights < 0.1) & (geometry.raycaster.vertex_normals @ normal < -0.3)
    assert int(lowest.sum()) > 3
    points = geometry.raycaster_vertices()[lowest]
    blocked, on_floor, _ = cut.light.sources(points, -normal.expand_as(points), geometry)
    assert bool(on_floor.all()) and not bool(blocked.any())


def test_metallic_prior_starts_late_and_pushes_each_point_to_its_side(trained_run):
    """Before metallic-binary-start-step the prior is absent; after it, its value is weight * mean m (1 - m) and its
    gradient lowers metallic below 0.5 and raises it above."""
    model = trained_run["trainer"].pipeline.model
    model.train()
    metallic = torch.tensor([0.2, 0.9, 0.5], requires_grad=True)
    here = torch.cat([torch.full((3, 4), 0.5), metallic[:, None]], dim=-1)
    outputs = {"rgb_linear": torch.zeros(3, 3), "materials_here": here, "materials_nearby": here.detach(),
               "diffuse_light": torch.ones(3, 3)}
    batch = {"image": torch.zeros(3, 3)}
    trained_step = model.step
    try:
        model.step = model.config.metallic_binary_start_step - 1
        assert "metallic_binary_loss" not in model.get_loss_dict(outputs, batch)
        model.step = model.config.metallic_binary_start_step
        loss = model.get_loss_dict(outputs, batch)["metallic_binary_loss"]
    finally:
        model.step = trained_step
    expected = model.config.metallic_binary_loss_mult * (0.16 + 0.09 + 0.25) / 3
    assert float(loss) == pytest.approx(expected)
    loss.backward()
    assert metallic.grad[0] > 0 and metallic.grad[1] < 0 and metallic.grad[2] == 0  # descent: 0.2 down, 0.9 up


def test_albedo_ceiling_prior_lowers_only_channels_above_the_ceiling(trained_run):
    """With albedo-ceiling-loss-mult w, the prior is w x the mean over points of the summed excess of the albedo
    channels over albedo-ceiling; its gradient lowers those channels and leaves the others alone."""
    model = trained_run["trainer"].pipeline.model
    model.train()
    albedo = torch.tensor([[0.95, 0.5, 1.0], [0.2, 0.92, 0.9]], requires_grad=True)
    here = torch.cat([albedo, torch.full((2, 2), 0.5)], dim=-1)
    outputs = {"rgb_linear": torch.zeros(2, 3), "materials_here": here, "materials_nearby": here.detach(),
               "diffuse_light": torch.ones(2, 3)}
    batch = {"image": torch.zeros(2, 3)}
    try:
        model.config.albedo_ceiling_loss_mult = 0.0
        assert "albedo_ceiling_loss" not in model.get_loss_dict(outputs, batch)
        model.config.albedo_ceiling_loss_mult = 2.0
        loss = model.get_loss_dict(outputs, batch)["albedo_ceiling_loss"]
    finally:
        model.config.albedo_ceiling_loss_mult = NeroMaterialModelConfig().albedo_ceiling_loss_mult
    assert float(loss) == pytest.approx(2.0 * ((0.05 + 0.1) + 0.02) / 2)
    loss.backward()
    assert torch.equal(albedo.grad > 0, torch.tensor([[True, False, True], [False, True, False]]))


def diffuse_light_loss(model: NeroMaterialModel, light: torch.Tensor, metallic: torch.Tensor, prior: str):
    """The diffuse-light prior of `get_loss_dict` for these diffuse-lobe lights and metallic values."""
    here = torch.cat([torch.full((light.shape[0], 4), 0.5), metallic[:, None]], dim=-1)
    outputs = {"rgb_linear": torch.zeros_like(light), "materials_here": here, "materials_nearby": here,
               "diffuse_light": light}
    saved = model.config.diffuse_light_prior
    try:
        model.config.diffuse_light_prior = prior
        return model.get_loss_dict(outputs, {"image": torch.zeros_like(light)})["diffuse_light_loss"]
    finally:
        model.config.diffuse_light_prior = saved


def test_diffuse_light_prior_spares_metals_and_with_mean_only_ties_the_average(trained_run):
    """The grey prior on the diffuse lobe's light counts each point by 1 - metallic; 'point' asks every point's light
    to be grey, 'mean' only their average: a warm side and a cool side that average to grey cost nothing there."""
    model = trained_run["trainer"].pipeline.model
    model.train()
    warm_and_cool = torch.tensor([[1.2, 1.0, 0.8], [0.8, 1.0, 1.2]], requires_grad=True)
    dielectric, metal = torch.zeros(2), torch.ones(2)
    weight = model.config.diffuse_light_loss_mult
    point = diffuse_light_loss(model, warm_and_cool, dielectric, "point")
    assert float(point) == pytest.approx(weight * 0.4)  # |0.2| + 0 + |0.2| at each point
    assert float(diffuse_light_loss(model, warm_and_cool, dielectric, "mean")) == pytest.approx(0.0, abs=1e-6)
    for prior in ("point", "mean"):
        assert float(diffuse_light_loss(model, warm_and_cool, metal, prior)) == pytest.approx(0.0, abs=1e-6)
    # Half metal: half the weight; a tint shared by both points costs the same either way.
    tinted = torch.tensor([[1.2, 1.0, 0.8], [1.2, 1.0, 0.8]])
    for prior in ("point", "mean"):
        assert float(diffuse_light_loss(model, tinted, torch.full((2,), 0.5), prior)) == pytest.approx(weight * 0.2)
    point.backward()
    assert float(warm_and_cool.grad[0, 0]) > 0 and float(warm_and_cool.grad[1, 0]) < 0  # descent: toward grey


def test_clipped_highlights_only_ask_the_rendering_to_reach_white(trained_run):
    """A channel at 255 in an sRGB photo is a lower bound: brighter renders cost nothing there, darker ones do;
    other channels, and every channel with clipped-highlights off, are compared as they are."""
    model = trained_run["trainer"].pipeline.model
    model.train()
    batch = {"image": torch.tensor([[1.0, 0.5, 0.2], [1.0, 0.5, 0.2]])}  # sRGB: red clipped in both pixels
    gradients = {}
    try:
        for clipped in (True, False):
            model.config.clipped_highlights = clipped
            prediction = torch.tensor([[1.5, 0.5, 0.2], [0.8, 0.5, 0.2]], requires_grad=True)  # linear
            model.get_loss_dict({"rgb_linear": prediction}, batch)["rgb_loss"].backward()
            gradients[clipped] = prediction.grad
    finally:
        model.config.clipped_highlights = True
    assert gradients[True][0, 0] == 0 and gradients[True][1, 0] < 0  # above white: free; below: raise it
    assert gradients[False][0, 0] > 0 and gradients[False][1, 0] < 0
    assert torch.equal(gradients[True][:, 1:], gradients[False][:, 1:])  # unclipped channels: unchanged
    assert (gradients[True][:, 1:] > 0).all()  # 0.5 linear is above sRGB 0.5 (0.21 linear)


def test_charbonnier_epsilon_moves_the_fit_from_the_median_to_the_mean(trained_run):
    """The constant that minimizes the nero-material photometric loss over skewed samples (nine at 0.2 linear, one at
    0.7) sits at their median with the default epsilon and near their mean (0.25) with an epsilon above the spread."""
    model = trained_run["trainer"].pipeline.model
    model.train()
    samples = torch.tensor([0.2] * 9 + [0.7])[:, None].expand(-1, 3)
    batch = {"image": linear_to_srgb(samples)}
    fits = {}
    try:
        for epsilon in (1e-3, 1.0):
            model.config.charbonnier_epsilon = epsilon
            constant = torch.full((1, 3), 0.45, requires_grad=True)
            optimizer = torch.optim.Adam([constant], lr=1e-2)
            for _ in range(400):
                optimizer.zero_grad()
                model.get_loss_dict({"rgb_linear": constant.expand(10, 3)}, batch)["rgb_loss"].backward()
                optimizer.step()
            fits[epsilon] = float(constant.detach().mean())
    finally:
        model.config.charbonnier_epsilon = NeroMaterialModelConfig().charbonnier_epsilon
    assert abs(fits[1e-3] - 0.2) < 0.01, fits
    assert abs(fits[1.0] - 0.25) < 0.01, fits


def test_split_estimate_shades_each_hit_twice_and_needs_even_counts(trained_run):
    """In training, split-estimate-mult > 0 (the default) shades every hit from two independent halves of its samples
    (their mean is the rendering) and the loss trains the light through them; evaluation shades once; odd counts are
    refused, unless the split is off."""
    pipeline = trained_run["trainer"].pipeline
    model = pipeline.model
    try:
        model.config.split_estimate_mult = 1.0
        model.train()
        torch.manual_seed(3)
        ray_bundle, batch = pipeline.datamanager.next_train(0)
        outputs = model(ray_bundle)
        halves, hit = outputs["rgb_linear_halves"], outputs["accumulation"][:, 0] > 0
        assert halves.shape == (hit.shape[0], 2, 3)
        assert torch.allclose(halves.mean(dim=1), outputs["rgb_linear"])
        # Independent samples: the halves differ on the object, and agree off it (far field, floor).
        assert (halves[hit, 0] - halves[hit, 1]).abs().mean() > 1e-3
        assert torch.equal(halves[~hit, 0], halves[~hit, 1])
        model.light.environment.zero_grad()
        model.get_loss_dict(outputs, batch)["rgb_loss"].backward()
        assert model.light.environment.log_texels[0].grad.abs().sum() > 0
        model.eval()
        with torch.no_grad():
            assert "rgb_linear_halves" not in model(ray_bundle)
        model.train()
        model.config.num_light_samples = 15
        with pytest.raises(NeroInputError, match="num-light-samples even"):
            model(ray_bundle)
        model.config.split_estimate_mult = 0.0  # off: one estimate, odd counts allowed
        with torch.no_grad():
            assert "rgb_linear_halves" not in model(ray_bundle)
    finally:
        defaults = NeroMaterialModelConfig()
        model.config.split_estimate_mult = defaults.split_estimate_mult
        model.config.num_light_samples = defaults.num_light_samples
        model.zero_grad()


def test_evaluation_renders_with_more_samples_and_less_noise(trained_run):
    """Two renders with other random samples differ about half as much with 4x the samples (1 / sqrt(4)); the
    4 rays per pixel of renders average 4x samples again, in both."""
    pipeline = trained_run["trainer"].pipeline
    model = pipeline.model

    def noise(multiplier: int) -> float:
        model.config.eval_sample_multiplier = multiplier
        first, second = render(model, pipeline, 1, seed=1), render(model, pipeline, 1, seed=2)
        hit = first["accumulation"][..., 0] > 0
        return float((first["rgb_linear"][hit] - second["rgb_linear"][hit]).std())

    try:
        ratio = noise(4) / noise(1)
    finally:
        model.config.eval_sample_multiplier = NeroMaterialModelConfig.eval_sample_multiplier
    print("noise ratio with 4x samples:", ratio)
    assert 0.3 < ratio < 0.7


def test_benchmark_renders_take_their_own_monte_carlo_settings(trained_run, tiny_scene, tmp_path):
    """The benchmarks' render command overrides a nero-material run's rays per pixel and sample multiplier: two renders
    at 16 rays per pixel differ about a quarter as much as two at 1 (1 / sqrt(16)); a nero-shape run refuses it."""
    cameras = tiny_scene / "gt" / "test" / "transforms.json"

    def noise(rays_per_pixel: int) -> float:
        renders = []
        for seed in (1, 2):
            torch.manual_seed(seed)
            folder = tmp_path / f"{rays_per_pixel}-{seed}"
            render_views(trained_run["config_path"], cameras, folder, monte_carlo=(rays_per_pixel, 1))
            renders.append(np.stack([imageio.imread(path) / 255.0 for path in sorted(folder.glob("*.png"))]))
        return float((renders[0] - renders[1]).std())

    ratio = noise(16) / noise(1)
    print("render noise ratio, 16 / 1 rays per pixel:", ratio)
    assert 0.1 < ratio < 0.45
    with pytest.raises(SystemExit, match="nero-material runs only"):
        render_views(trained_run["shape_config"], cameras, tmp_path / "shape", monte_carlo=(4, 1))


def test_several_rays_per_pixel_give_the_covered_share_of_silhouette_pixels(trained_run):
    """The hit share (accumulation) of each pixel with 1 and 4 rays per pixel against 16 (close to the covered
    area): 4 rays halve the error or better, and only silhouette pixels take values between 0 and 1."""
    pipeline = trained_run["trainer"].pipeline
    model = pipeline.model

    def coverage(rays_per_pixel: int) -> torch.Tensor:
        model.config.eval_pixel_samples = rays_per_pixel
        return render(model, pipeline, 2)["accumulation"][..., 0]

    try:
        single, four, reference = coverage(1), coverage(4), coverage(16)
        model.config.eval_pixel_samples = 3
        with pytest.raises(NeroInputError, match="square number"):
            render(model, pipeline, 2)
    finally:
        model.config.eval_pixel_samples = NeroMaterialModelConfig.eval_pixel_samples
    error_single, error_four = (single - reference).abs().mean(), (four - reference).abs().mean()
    print("coverage error with 1 / 4 rays per pixel:", float(error_single), float(error_four))
    assert float(error_four) < 0.5 * float(error_single)
    partial = (reference > 0) & (reference < 1)
    assert 0 < int(partial.sum()) < 0.3 * int((reference > 0).sum())
    assert set(single.unique().tolist()) <= {0.0, 1.0}


def test_model_without_a_shape_run_is_a_one_line_error():
    with pytest.raises(NeroInputError, match="--shape-config") as error:
        NeroMaterialModelConfig().setup(scene_box=SceneBox(torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=1)
    assert "\n" not in str(error.value)


def test_finetune_geometry_trains_the_sdf_with_its_own_group(trained_run, tiny_scene, tmp_path):
    config = material_config(tiny_scene, trained_run["shape_config"], tmp_path, 3)
    config.pipeline.model.finetune_geometry = True
    config.set_timestamp()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    model = trainer.pipeline.model
    assert set(trainer.optimizers.optimizers) == {"materials", "lights", "environment_texels", "floor", "geometry"}
    watched = {
        "sdf": model.geometry.sdf_field.layers[0].weight,
        "environment": model.light.environment.mlp.layers[-1].weight,
        "materials": model.material_field.mlp.layers[-1].weight,
    }
    start = {name: value.detach().clone() for name, value in watched.items()}
    trainer.train()
    for name, value in watched.items():
        assert not torch.equal(value, start[name]), name
    assert trainer.optimizers.optimizers["geometry"].param_groups[0]["lr"] <= 1e-4
