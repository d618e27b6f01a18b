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


def test_training_starts_with_the_floor_the_photos_show(tiny_scene, tmp_path):
    """Before the first step, the floor texture already holds the floor's colours: where view 0's rays meet the floor
    inside the sphere, the texture is half as far from the photo as the initial grey (the rest: the views' noise and
    speckles finer than their 48 pixels, and floor points the object hides in view 0)."""
    errors = {}
    for from_photos in (True, False):
        config = small_shape_config(tiny_scene, tmp_path / str(from_photos), steps=2)
        config.pipeline.model.floor_texture.from_photos = from_photos
        pipeline = setup_trainer(config).pipeline
        model, dataset = pipeline.model, pipeline.datamanager.train_dataset
        assert model.support_plane.has_plane
        rays = dataset.cameras.generate_rays(camera_indices=0, keep_shape=True)
        hits, points, _ = model.support_plane.intersect(rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3))
        in_sphere = hits & (points.norm(dim=-1) < 1.0)
        assert in_sphere.sum() > 100
        with torch.no_grad():
            floor = linear_to_srgb(model.floor_texture.radiance(model.support_plane, points[in_sphere]))
        photo = dataset.get_image_float32(0)[..., :3].reshape(-1, 3)[in_sphere]
        errors[from_photos] = float((floor - photo).abs().mean(dim=-1).median())
    assert errors[True] < 0.65 * errors[False]  # 0.075 against 0.150 when written
