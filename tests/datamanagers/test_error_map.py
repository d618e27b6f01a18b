"""PixelErrorMap and error sampling: rays follow the recorded errors, stay in the region, and every cell is visited
before its error counts."""

from __future__ import annotations

import torch

from nero_ns.datamanagers.error_map import PixelErrorMap
from nero_ns.datamanagers.pixel_samplers import ForegroundRatioPixelSamplerConfig
from nero_ns.method_configs import nero_material, nero_shape
from tests.datamanagers.test_pixel_samplers import sampler_batch


def all_pixels(error_map: PixelErrorMap, image: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(error_map.height), torch.arange(error_map.width), indexing="ij")
    return torch.stack([torch.full_like(ys, image), ys, xs], dim=-1).reshape(-1, 3)


def test_rays_follow_recorded_errors():
    error_map = PixelErrorMap(num_images=2, height=32, width=48, cells_per_side=6, decay=1.0)  # cells of 8 px
    for image in range(2):
        pixels = all_pixels(error_map, image)
        hot = (image == 1) & (pixels[:, 1] < 8) & (pixels[:, 2] < 8)  # one cell of image 1
        error_map.record(pixels, torch.where(hot, 0.9, 0.01))
    region = torch.ones(2, 32, 48, dtype=torch.bool)
    drawn = error_map.sample(4000, torch.arange(2), region)
    in_hot_cell = (drawn[:, 0] == 1) & (drawn[:, 1] < 8) & (drawn[:, 2] < 8)
    # 0.9 against 47 cells of 0.01: 0.9 / (0.9 + 0.47) = 66% of the draws
    assert len(drawn) == 4000 and abs(float(in_hot_cell.float().mean()) - 0.66) < 0.04
    # uniform within the cell: every one of its 64 pixels is drawn
    assert len({tuple(p) for p in drawn[in_hot_cell][:, 1:].tolist()}) == 64


def test_draws_stay_in_the_region_and_skip_cells_outside_it():
    error_map = PixelErrorMap(num_images=1, height=16, width=16, cells_per_side=2, decay=1.0)  # four 8 px cells
    error_map.record(all_pixels(error_map, 0), torch.full((256,), 0.5))
    region = torch.zeros(1, 16, 16, dtype=torch.bool)
    region[0, 2:6, 9:12] = True  # part of the top-right cell only
    drawn = error_map.sample(500, torch.arange(1), region)
    assert len(drawn) == 500 and region[drawn[:, 0], drawn[:, 1], drawn[:, 2]].all()


def test_unvisited_cells_are_drawn_first_and_errors_are_running_means():
    error_map = PixelErrorMap(num_images=1, height=8, width=16, cells_per_side=2, decay=0.5)  # two 8 px cells
    left = all_pixels(error_map, 0)[:, 2] < 8
    error_map.record(all_pixels(error_map, 0)[left], torch.full((64,), 0.2))
    assert torch.allclose(error_map.errors[0, 0], torch.tensor([0.6, 1.0]))  # halfway from the initial 1.0
    drawn = error_map.sample(2000, torch.arange(1), torch.ones(1, 8, 16, dtype=torch.bool))
    assert abs(float((drawn[:, 2] >= 8).float().mean()) - 1.0 / 1.6) < 0.04


def test_sampler_draws_its_error_share_by_the_map():
    mask = torch.zeros(2, 32, 32, dtype=torch.bool)
    mask[:, 8:24, 8:24] = True
    sampler = ForegroundRatioPixelSamplerConfig(error_ratio=0.5).setup(num_rays_per_batch=1000, foreground_ratio=0.8)
    sampler.error_map = PixelErrorMap(num_images=2, height=32, width=32, cells_per_side=4, decay=1.0)
    everywhere = torch.cat([all_pixels(sampler.error_map, image) for image in range(2)])
    hot = (everywhere[:, 0] == 0) & (everywhere[:, 1] // 8 == 1) & (everywhere[:, 2] // 8 == 1)
    sampler.error_map.record(everywhere, torch.where(hot, 1.0, 0.0))
    batch = sampler.sample(sampler_batch(mask))
    foreground = batch["indices"][batch["mask"][:, 0]]
    in_hot_cell = (foreground[:, 0] == 0) & (foreground[:, 1] // 8 == 1) & (foreground[:, 2] // 8 == 1)
    # 800 object rays: 400 by the map, all in the one cell with error; 400 uniform, a quarter of image 0's object
    # (an eighth of all) in it
    assert len(foreground) == 800 and abs(int(in_hot_cell.sum()) - 450) < 40


def test_nero_shape_draws_by_error_and_nero_material_does_not():
    assert nero_shape.config.pipeline.datamanager.error_sampling_ratio == 0.5
    assert nero_material.config.pipeline.datamanager.error_sampling_ratio == 0.0
