"""Datamanager for nero models: nerfstudio's VanillaDataManager (no worker processes) with the Nero dataparser,
HDR-capable dataset, foreground-biased ray sampling, and rays drawn where the renderings are still wrong."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Literal, Optional, Tuple, Type, Union

import torch
from jaxtyping import Float
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from torch import Tensor

from nero_ns.datamanagers.nero_dataparser import NeroDataParserConfig
from nero_ns.datamanagers.error_map import PixelErrorMap
from nero_ns.datamanagers.nero_dataset import NeroDataset
from nero_ns.datamanagers.pixel_samplers import (
    ForegroundRatioPixelSamplerConfig,
    all_one_size,
    pixels_crossing_unit_sphere,
)
from nero_ns.errors import NeroInputError


@dataclass
class NeroDataManagerConfig(VanillaDataManagerConfig):
    """Rays from all cached images; with masks, `foreground_ratio` of each batch from the object."""

    _target: Type = field(default_factory=lambda: NeroDataManager)
    """Target class to instantiate."""
    dataparser: NeroDataParserConfig = field(default_factory=NeroDataParserConfig)
    """Reads and normalizes the dataset."""
    train_num_rays_per_batch: int = 512
    """Rays per training step (from initial-rays-steps on, when initial-num-rays-per-batch is set)."""
    initial_num_rays_per_batch: Optional[int] = None
    """Rays per training step before initial-rays-steps (None: train-num-rays-per-batch throughout). Early steps only
    find the coarse shape, which many cheap steps do faster: for short runs (nero-demo uses 512 with nero-shape's
    1024); on longer ones the full batch from the start ended better."""
    initial_rays_steps: int = 600
    """Training steps that use initial-num-rays-per-batch."""
    eval_num_rays_per_batch: int = 512
    """Rays per evaluation step."""
    foreground_ratio: float = 0.8
    """Share of rays drawn from the object region: mask pixels when the dataset has masks, else pixels whose rays
    cross the unit sphere (the rest from outside it, for the far field)."""
    error_sampling_ratio: float = 0.0
    """Share of the object region's rays drawn in proportion to the recent photometric error of their image cell
    (the rest uniformly): more rays where the renderings are still wrong, such as thin parts, holes and
    silhouettes. 0 draws them all uniformly. Needs training images of one size."""
    error_map_cells: int = 16
    """Cells of the error map along an image's longer side."""
    pixel_sampler: ForegroundRatioPixelSamplerConfig = field(default_factory=ForegroundRatioPixelSamplerConfig)
    """Pixel sampler; its foreground_ratio and error_ratio are set from the ones above."""


class NeroDataManager(VanillaDataManager[NeroDataset]):
    """VanillaDataManager reading NeroDataset with the foreground-ratio sampler. Camera optimization belongs to
    the model in nerfstudio 1.1.5, so nothing here optimizes cameras."""

    config: NeroDataManagerConfig

    def __init__(
        self,
        config: NeroDataManagerConfig,
        device: Union[torch.device, str] = "cpu",
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        **kwargs,
    ):
        if not 0.0 <= config.foreground_ratio <= 1.0:
            raise NeroInputError(
                f"--pipeline.datamanager.foreground-ratio is {config.foreground_ratio}; it must be in [0, 1]"
            )
        if not 0.0 <= config.error_sampling_ratio <= 1.0:
            raise NeroInputError(
                f"--pipeline.datamanager.error-sampling-ratio is {config.error_sampling_ratio}; it must be in [0, 1]"
            )
        config.pixel_sampler.foreground_ratio = config.foreground_ratio
        config.pixel_sampler.error_ratio = config.error_sampling_ratio
        super().__init__(config, device, test_mode, world_size, local_rank, **kwargs)

    def setup_train(self) -> None:
        """nerfstudio's setup, then the unit-sphere region of every training image for mask-free sampling, and the
        error map when error sampling is on."""
        super().setup_train()
        if self.train_dataparser_outputs.mask_filenames is None:
            self.train_pixel_sampler.sphere_pixels = pixels_crossing_unit_sphere(self.train_dataset.cameras)
        cameras = self.train_dataset.cameras
        if self.config.error_sampling_ratio > 0 and all_one_size(cameras):
            self.train_pixel_sampler.error_map = PixelErrorMap(
                len(self.train_dataset), int(cameras.height[0]), int(cameras.width[0]), self.config.error_map_cells
            )

    @property
    def wants_ray_errors(self) -> bool:
        """Whether `record_ray_errors` is used (error sampling is on and training is set up)."""
        return getattr(self.train_pixel_sampler, "error_map", None) is not None

    def record_ray_errors(self, batch: Dict[str, Tensor], errors: Float[Tensor, "num_rays"]) -> None:
        """Feed the photometric errors of a trained batch's rays back to the error map."""
        if self.wants_ray_errors:
            self.train_pixel_sampler.error_map.record(batch["indices"], errors)

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        """nerfstudio's next batch, of initial-num-rays-per-batch rays before initial-rays-steps."""
        initial = self.config.initial_num_rays_per_batch
        rays = initial if initial is not None and step < self.config.initial_rays_steps else None
        self.train_pixel_sampler.set_num_rays_per_batch(rays or self.config.train_num_rays_per_batch)
        return super().next_train(step)
