"""NeroPipeline: a real nero-shape training step feeds its rays' errors back to the datamanager's error map."""

from __future__ import annotations

import pytest
import torch

from nero_ns.colors import linear_to_srgb
from tests.nero_runs import setup_trainer, small_shape_config


def test_a_training_step_records_its_rays_errors(tiny_scene, tmp_path):
    pipeline = setup_trainer(small_shape_config(tiny_scene, tmp_path, steps=2)).pipeline
    datamanager, model = pipeline.datamanager, pipeline.model
    error_map = datamanager.train_pixel_sampler.error_map
    drawn = []
    next_train = datamanager.next_train
    datamanager.next_train = lambda step: drawn.append(next_train(step)) or drawn[-1]
    outputs, _, _ = pipeline.get_train_loss_dict(step=0)
    errors = model.ray_errors(outputs, drawn[0][1])
    cells = error_map._flat_cells(drawn[0][1]["indices"])
    assert 0.0 < float(errors.mean()) < 1.0
    for cell in cells.unique()[:20]:
        expected = 0.5 * 1.0 + 0.5 * float(errors[cells == cell].mean())  # halfway from the initial error
        assert float(error_map.errors.view(-1)[cell]) == pytest.approx(expected, rel=1e-5)
    untouched = torch.ones(error_map.errors.numel(), dtype=torch.bool)
    untouched[cells] = False
    assert (error_map.errors.view(-1)[untouched] == 1.0).all()


def test_the_floor_no_ray_has_reached_takes_the_photos_colours(tiny_scene, tmp_path):
    """At floor_texture.from_photos_step the floor texture takes the floor's colours from the photos: where view 0's
    rays meet the floor inside the sphere, at texels the photos gave, the texture is then half as far from the photo
    as the initial grey (the rest: the views' noise and speckles finer than their 48 pixels, and floor points the
    object hides in view 0)."""
    config = small_shape_config(tiny_scene, tmp_path, steps=2)
    config.pipeline.model.floor_texture.from_photos_step = 300
    pipeline = setup_trainer(config).pipeline
    model, dataset = pipeline.model, pipeline.datamanager.train_dataset
    assert model.support_plane.has_plane
    rays = dataset.cameras.generate_rays(camera_indices=0, keep_shape=True)
    hits, points, _ = model.support_plane.intersect(rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3))
    texture = model.floor_texture
    resolution = texture.config.resolutions[-1]
    texel = ((texture.texture_coordinates(model.support_plane, points) + 1.0) / 2.0 * resolution).long()
    texel = texel.clamp(0, resolution - 1)
    known = model.floor_from_photos[1][texel[:, 1], texel[:, 0]]
    in_sphere = hits & (points.norm(dim=-1) < 1.0) & known
    assert in_sphere.sum() > 100
    photo = dataset.get_image_float32(0)[..., :3].reshape(-1, 3)[in_sphere]

    def error() -> float:
        with torch.no_grad():
            floor = linear_to_srgb(model.floor_texture.radiance(model.support_plane, points[in_sphere]))
        return float((floor - photo).abs().mean(dim=-1).median())

    grey = error()
    model.set_step(299)
    assert error() == grey
    model.set_step(300)
    assert error() < 0.65 * grey  # 0.071 against 0.149 when written
