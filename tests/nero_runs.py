"""Helpers for tests that train real nero runs in-process through nerfstudio's Trainer (no mocks)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Dict, List

import torch
from nerfstudio.engine.trainer import Trainer, TrainerConfig

from nero_ns.method_configs import nero_shape


def small_shape_config(data: Path, output_dir: Path, steps: int) -> TrainerConfig:
    """nero-shape with CPU-test sizes: fewer rays and samples, a checkpoint every half of the run."""
    config = copy.deepcopy(nero_shape.config)
    config.data = data
    config.pipeline.datamanager.data = data
    config.output_dir = output_dir
    config.experiment_name = "test"
    config.timestamp = "run"
    config.vis = "tensorboard"
    config.max_num_iterations = steps
    config.steps_per_save = max(steps // 2, 1)
    config.steps_per_eval_batch = 10_000
    config.steps_per_eval_image = 10_000
    config.steps_per_eval_all_images = 10_000
    config.pipeline.datamanager.train_num_rays_per_batch = 256
    config.pipeline.datamanager.dataparser.eval_mode = "interval"
    model = config.pipeline.model
    model.num_samples, model.num_importance_samples, model.num_outside_samples = 24, 16, 16
    model.num_upsample_steps = 2
    model.occlusion_loss_start = steps // 2
    model.eval_num_rays_per_chunk = 4096
    return config


def setup_trainer(config: TrainerConfig) -> Trainer:
    config.set_timestamp()
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


@torch.no_grad()
def photometric_loss_on_fixed_batches(trainer: Trainer, batches: List[Dict]) -> float:
    """Mean RGB loss of the current model on given (ray_bundle, batch) pairs."""
    model = trainer.pipeline.model
    model.eval()
    losses = []
    for ray_bundle, batch in batches:
        outputs = model(ray_bundle)
        losses.append(float(model.get_loss_dict(outputs, batch)["rgb_loss"]))
    model.train()
    return sum(losses) / len(losses)
