"""Pixel sampler that draws a fixed share of each batch from the object and the rest from the background.

The object is the mask when the dataset has masks, and otherwise the pixels whose rays cross the unit sphere (the
only rays the SDF can explain): without that, most rays of a small object's images would only train the far field.
Part of the object's share can follow a map of the recent photometric error (`error_map.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Type, Union

import torch
from jaxtyping import Bool, Int
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.data.pixel_samplers import PixelSampler, PixelSamplerConfig
from torch import Tensor

from nero_ns.components.samplers import intersect_unit_sphere
from nero_ns.datamanagers.error_map import PixelErrorMap


@dataclass
class ForegroundRatioPixelSamplerConfig(PixelSamplerConfig):
    """Config for ForegroundRatioPixelSampler."""

    _target: Type = field(default_factory=lambda: ForegroundRatioPixelSampler)
    """Target class to instantiate."""
    foreground_ratio: float = 0.8
    """Share of rays drawn from the object region (NeroDataManagerConfig.foreground_ratio sets it)."""
    error_ratio: float = 0.0
    """Share of the object region's rays drawn by the error map, when there is one (NeroDataManagerConfig's
    error_sampling_ratio sets it)."""


class ForegroundRatioPixelSampler(PixelSampler):
    """`round(ratio * n)` rays come from the object region and the rest from outside it, so the background
    (far-field) branch still sees rays. The region is the mask when the batch has one (kept in the sampled batch
    for an optional mask loss), else `sphere_pixels` when set; with neither (or with ignore_mask) it samples
    uniformly like nerfstudio's PixelSampler.
    """

    config: ForegroundRatioPixelSamplerConfig
    sphere_pixels: Optional[Bool[Tensor, "num_images height width"]] = None
    """Per training image, the pixels whose rays cross the unit sphere (set by the datamanager)."""
    error_map: Optional[PixelErrorMap] = None
    """Recent photometric error per image cell (set by the datamanager when error sampling is on)."""

    def __init__(self, config: ForegroundRatioPixelSamplerConfig, **kwargs) -> None:
        super().__init__(config, **kwargs)
        self.config.foreground_ratio = self.kwargs.get("foreground_ratio", self.config.foreground_ratio)
        self._batch_image_indices: Optional[Int[Tensor, "num_images"]] = None
        """Training-set index of each image of the batch being sampled (the error map is kept per training image)."""

    def collate_image_dataset_batch(self, batch: Dict, num_rays_per_batch: int, keep_full_image: bool = False):
        self._batch_image_indices = batch["image_idx"]
        if "mask" in batch or self.sphere_pixels is None or self.config.ignore_mask:
            return super().collate_image_dataset_batch(batch, num_rays_per_batch, keep_full_image)
        # The sphere region stands in for the mask while sampling; it is not a mask, so it leaves the batch.
        sphere = self.sphere_pixels[batch["image_idx"].cpu()].to(batch["image"].device)
        collated = super().collate_image_dataset_batch({**batch, "mask": sphere}, num_rays_per_batch, keep_full_image)
        collated.pop("mask")
        return collated

    def sample_method(
        self,
        batch_size: int,
        num_images: int,
        image_height: int,
        image_width: int,
        mask: Optional[Tensor] = None,
        device: Union[torch.device, str] = "cpu",
    ) -> Int[Tensor, "batch_size 3"]:
        if not isinstance(mask, Tensor) or self.config.ignore_mask:
            return super().sample_method(batch_size, num_images, image_height, image_width, device=device)
        foreground = mask.reshape(num_images, image_height, image_width).bool()
        num_foreground = round(self.config.foreground_ratio * batch_size)
        foreground_indices = self._sample_by_error(foreground, round(self.config.error_ratio * num_foreground), device)
        foreground_indices = torch.cat(
            [foreground_indices, self._sample_where(foreground, num_foreground - len(foreground_indices), device)]
        )
        # An image set without foreground (or without background) gives all its rays to the other side.
        background_indices = self._sample_where(~foreground, batch_size - len(foreground_indices), device)
        if len(background_indices) < batch_size - len(foreground_indices):
            foreground_indices = self._sample_where(foreground, batch_size - len(background_indices), device)
        indices = torch.cat([foreground_indices, background_indices])
        return indices[torch.randperm(len(indices), device=indices.device)]

    def _sample_by_error(
        self, allowed: Bool[Tensor, "num_images height width"], count: int, device: Union[torch.device, str]
    ) -> Int[Tensor, "count_or_fewer 3"]:
        """Up to `count` indices where `allowed`, drawn by the error map (none without one)."""
        if self.error_map is None or count <= 0 or self._batch_image_indices is None:
            return torch.empty((0, 3), dtype=torch.long, device=device)
        return self.error_map.sample(count, self._batch_image_indices, allowed).to(device)

    def _sample_where(
        self, allowed: Bool[Tensor, "num_images height width"], count: int, device: Union[torch.device, str]
    ) -> Int[Tensor, "count_or_fewer 3"]:
        """`count` uniform (image, y, x) indices where `allowed`, by rejection; fewer only if nothing is allowed.

        Rejection keeps memory flat on large image sets; after max_num_iterations rounds (a tiny allowed region)
        the rest is drawn from the list of allowed pixels.
        """
        shape = torch.tensor(allowed.shape, device=allowed.device)
        chosen = torch.empty((0, 3), dtype=torch.long, device=allowed.device)
        for _ in range(self.config.max_num_iterations):
            if len(chosen) >= count:
                break
            candidates = (torch.rand((2 * (count - len(chosen)), 3), device=allowed.device) * shape).long()
            chosen = torch.cat([chosen, candidates[allowed[candidates[:, 0], candidates[:, 1], candidates[:, 2]]]])
        remaining = count - len(chosen)
        if remaining > 0:
            pixels = torch.nonzero(allowed)
            if len(pixels) > 0:
                chosen = torch.cat([chosen, pixels[torch.randint(len(pixels), (remaining,), device=allowed.device)]])
        return chosen[:count].to(device)


def pixels_crossing_unit_sphere(cameras: Cameras) -> Optional[Bool[Tensor, "num_cameras height width"]]:
    """For each camera (normalized frame), the pixels whose ray passes through the unit sphere; None when the
    cameras differ in size (their images are then sampled uniformly)."""
    if not all_one_size(cameras):
        return None
    crossing = []
    for index in range(cameras.shape[0]):
        rays = cameras.generate_rays(camera_indices=index, keep_shape=True)
        crossing.append(intersect_unit_sphere(rays.origins, rays.directions)[2][..., 0])
    return torch.stack(crossing).cpu()


def all_one_size(cameras: Cameras) -> bool:
    """Whether every camera has the same image size (per-image pixel maps need it)."""
    return len(torch.unique(cameras.height)) == 1 and len(torch.unique(cameras.width)) == 1
