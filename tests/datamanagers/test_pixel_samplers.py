"""ForegroundRatioPixelSampler on hand-made masks: the foreground share, its fallbacks and the ignore-mask mode."""

from __future__ import annotations

import torch

from nero_ns.datamanagers.pixel_samplers import ForegroundRatioPixelSamplerConfig


def sampler_batch(mask: torch.Tensor) -> dict:
    num_images, height, width = mask.shape
    image = torch.rand(num_images, height, width, 3)
    return {"image": image, "mask": mask[..., None], "image_idx": torch.arange(num_images)}


def test_sampler_falls_back_when_one_side_is_empty():
    sampler = ForegroundRatioPixelSamplerConfig().setup(num_rays_per_batch=512, foreground_ratio=0.8)
    no_object = sampler.sample(sampler_batch(torch.zeros(3, 20, 30, dtype=torch.bool)))
    all_object = sampler.sample(sampler_batch(torch.ones(3, 20, 30, dtype=torch.bool)))
    assert len(no_object["mask"]) == 512 and not no_object["mask"].any()
    assert len(all_object["mask"]) == 512 and all_object["mask"].all()


def test_sampler_finds_a_tiny_object_and_spreads_over_images():
    mask = torch.zeros(4, 50, 60, dtype=torch.bool)
    mask[2, 10, 7] = True  # one object pixel among 12000
    sampler = ForegroundRatioPixelSamplerConfig().setup(num_rays_per_batch=512, foreground_ratio=0.8)
    batch = sampler.sample(sampler_batch(mask))
    foreground = batch["indices"][batch["mask"][:, 0]]
    assert len(foreground) == 410 and (foreground == torch.tensor([2, 10, 7])).all()
    background = batch["indices"][~batch["mask"][:, 0]]
    assert set(background[:, 0].tolist()) == {0, 1, 2, 3}


def test_ignore_mask_samples_uniformly():
    mask = torch.zeros(2, 40, 40, dtype=torch.bool)
    mask[:, :4] = True  # 10% of the pixels
    config = ForegroundRatioPixelSamplerConfig(ignore_mask=True)
    batch = config.setup(num_rays_per_batch=4096, foreground_ratio=0.8).sample(sampler_batch(mask))
    assert abs(float(batch["mask"].float().mean()) - 0.1) < 0.03
