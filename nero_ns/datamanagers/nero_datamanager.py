"""Datamanager for nero models: nerfstudio's VanillaDataManager (no worker processes) with the Nero dataparser,
HDR-capable dataset, and foreground-biased ray sampling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Literal, Optional, Tuple, Type, Union

import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig

from nero_ns.datamanagers.nero_dataparser import NeroDataParserConfig
from nero_ns.datamanagers.nero_dataset import NeroDataset
from nero_ns.datamanagers.pixel_samplers import ForegroundRatioPixelSamplerConfig, pixels_crossing_unit_sphere
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
    pixel_sampler: ForegroundRatioPixelSamplerConfig = field(default_factory=ForegroundRatioPixelSamplerConfig)
    """Pixel sampler; its foreground_ratio is set from the one above."""


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
        config.pixel_sampler.foreground_ratio = config.foreground_ratio
        super().__init__(config, device, test_mode, world_size, local_rank, **kwargs)

    def setup_train(self) -> None:
        """nerfstudio's setup, then the unit-sphere region of every training image for mask-free sampling."""
        super().setup_train()
        if self.train_dataparser_outputs.mask_filenames is None:
            self.train_pixel_sampler.sphere_pixels = pixels_crossing_unit_sphere(self.train_dataset.cameras)

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        """nerfstudio's next batch, of initial-num-rays-per-batch rays before initial-rays-steps."""
        initial = self.config.initial_num_rays_per_batch
        rays = initial if initial is not None and step < self.config.initial_rays_steps else None
        self.train_pixel_sampler.set_num_rays_per_batch(rays or self.config.train_num_rays_per_batch)
        return super().next_train(step)
