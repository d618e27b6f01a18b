"""NeroDataManager: the foreground share measured on sampled rays, ray geometry, masks, HDR input and the batch
schedule."""

from __future__ import annotations

import pytest
import torch

from nero_ns.datamanagers.nero_datamanager import NeroDataManagerConfig
from nero_ns.components.samplers import intersect_unit_sphere
from nero_ns.datamanagers.nero_dataparser import NeroDataParserConfig
from nero_ns.errors import NeroInputError
from tests.datamanagers.test_nero_dataparser import SPHERE_CENTER, SPHERE_RADIUS, write_sphere_scene


@pytest.fixture(scope="module")
def masked_scene(tmp_path_factory):
    return write_sphere_scene(tmp_path_factory.mktemp("masked"))


def make_datamanager(data, **options):
    config = NeroDataManagerConfig(dataparser=NeroDataParserConfig(data=data, eval_mode="all"), **options)
    return config.setup(device="cpu")


def distance_to_true_sphere(datamanager, ray_bundle) -> torch.Tensor:
    """How far each ray passes from the scene's true sphere surface (negative: it goes through the sphere)."""
    outputs = datamanager.train_dataparser_outputs
    transform, scale = outputs.dataparser_transform, outputs.dataparser_scale
    center = scale * (transform[:, :3] @ torch.tensor(SPHERE_CENTER, dtype=torch.float32) + transform[:, 3])
    to_center = center - ray_bundle.origins
    along = (to_center * ray_bundle.directions).sum(-1, keepdim=True)
    closest = (to_center - along * ray_bundle.directions).norm(dim=-1)
    return closest - scale * SPHERE_RADIUS


@pytest.mark.parametrize("ratio", [0.8, 0.5])
def test_foreground_share_is_measured_on_sampled_rays(masked_scene, ratio):
    datamanager = make_datamanager(masked_scene, foreground_ratio=ratio)
    assert datamanager.get_train_rays_per_batch() == 512
    shares, pixel_share = [], float(datamanager.train_image_dataloader.cached_collated_batch["mask"].float().mean())
    for step in range(8):
        ray_bundle, batch = datamanager.next_train(step)
        assert batch["image"].shape == (512, 3) and batch["mask"].shape == (512, 1)
        shares.append(float(batch["mask"].float().mean()))
        # The mask values are the images' own: rays from mask pixels go through the (normalized) sphere.
        gap = distance_to_true_sphere(datamanager, ray_bundle)
        assert (gap[batch["mask"][:, 0]] < 1e-3).all() and (gap[~batch["mask"][:, 0]] > -1e-3).all()
    assert abs(sum(shares) / len(shares) - ratio) < 0.03
    assert pixel_share < 0.35  # uniform sampling would have given about this share


def test_eval_batches_keep_masks_and_ratio(masked_scene):
    datamanager = make_datamanager(masked_scene)
    _, batch = datamanager.next_eval(0)
    assert batch["mask"].shape == (512, 1) and abs(float(batch["mask"].float().mean()) - 0.8) < 0.03


@pytest.mark.parametrize("ratio", [0.95, 0.4])
def test_without_masks_the_unit_sphere_region_gets_the_ratio(tmp_path, ratio):
    """Mask-free data: `ratio` of the rays cross the unit sphere (the only ones the SDF can explain), whatever
    share of the pixels that region covers, and no mask enters the batch."""
    datamanager = make_datamanager(write_sphere_scene(tmp_path / "bare", masks=False, points=False),
                                   foreground_ratio=ratio)
    region = datamanager.train_pixel_sampler.sphere_pixels
    cameras = datamanager.train_dataset.cameras
    assert region.shape == (cameras.shape[0], int(cameras.height[0]), int(cameras.width[0]))
    crossing = []
    for step in range(8):
        ray_bundle, batch = datamanager.next_train(step)
        assert "mask" not in batch and batch["image"].shape == (512, 3)
        crossing.append(intersect_unit_sphere(ray_bundle.origins, ray_bundle.directions)[2])
    pixel_share = float(region.float().mean())
    print(f"unit sphere covers {pixel_share:.2f} of the pixels")
    assert abs(pixel_share - ratio) > 0.2  # (measured 0.72) uniform sampling would give this share
    assert abs(float(torch.cat(crossing).float().mean()) - ratio) < 0.03


def test_hdr_images_reach_the_batch_linear(tmp_path):
    datamanager = make_datamanager(write_sphere_scene(tmp_path / "hdr", hdr=True, masks=False, points=False))
    _, batch = datamanager.next_train(0)
    assert datamanager.train_dataparser_outputs.metadata["color_space"] == "linear"
    assert float(batch["image"].max()) == pytest.approx(3.6, abs=1e-5)


def test_ratio_outside_unit_interval_is_rejected(masked_scene):
    with pytest.raises(NeroInputError, match="foreground-ratio is 1.5"):
        make_datamanager(masked_scene, foreground_ratio=1.5)


def test_foreground_share_on_the_tiny_scene(tiny_scene):
    datamanager = make_datamanager(tiny_scene)
    shares = [float(datamanager.next_train(step)[1]["mask"].float().mean()) for step in range(6)]
    assert abs(sum(shares) / len(shares) - 0.8) < 0.03


def test_initial_rays_per_step_switch_to_the_full_batch(tiny_scene):
    manager = make_datamanager(
        tiny_scene, train_num_rays_per_batch=256, initial_num_rays_per_batch=64, initial_rays_steps=10
    )
    sizes = [manager.next_train(step)[0].shape[0] for step in (0, 9, 10, 50)]
    assert sizes == [64, 64, 256, 256]
    constant = make_datamanager(tiny_scene, train_num_rays_per_batch=128)
    assert [constant.next_train(step)[0].shape[0] for step in (0, 700)] == [128, 128]
