"""NeroPipeline: a real nero-shape training step feeds its rays' errors back to the datamanager's error map."""

from __future__ import annotations

import pytest
import torch

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
