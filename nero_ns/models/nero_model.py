"""What both nero models share, as nerfstudio's SurfaceModel serves its NeuS variants: the dataparser's metadata and
whether the photos are sRGB, the training step, the photometric loss's kind, and the metrics and images nerfstudio
logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import torch
from jaxtyping import Float
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.models.base_model import Model, ModelConfig
from torch import Tensor

from nero_ns.components.image_metrics import ImageMetrics
from nero_ns.io.configs import DefaultsForNewFields
from nero_ns.colors import linear_to_srgb
from nero_ns.models.photometric import PhotometricLossKind, linear_target


@dataclass
class NeroModelConfig(DefaultsForNewFields, ModelConfig):
    """Options of both nero models."""

    photometric_loss: PhotometricLossKind = "charbonnier"
    """Photometric loss on linear colors."""


class NeroModel(Model):
    """Base of nero-shape and nero-material."""

    config: NeroModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        self.metadata: Dict[str, Any] = self.kwargs.get("metadata") or {}
        """The dataparser's metadata: the color space of the photos and the sparse points ("points3D_xyz")."""
        self.inputs_are_srgb = self.metadata.get("color_space", "srgb") == "srgb"
        """Whether the photos are sRGB (decoded to linear light for the losses) rather than linear HDR."""
        self.image_metrics = ImageMetrics()
        self.step = 0
        """The training step, set before each one."""

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> List[TrainingCallback]:
        before_each_step = [TrainingCallbackLocation.BEFORE_TRAIN_ITERATION]
        return [TrainingCallback(before_each_step, update_every_num_iters=1, func=self.set_step)]

    def set_step(self, step: int) -> None:
        """Called before each training step; subclasses advance their schedules here too."""
        self.step = step

    def _photo(self, batch: Dict[str, Tensor]) -> Float[Tensor, "*bs 3"]:
        return batch["image"].to(self.device)[..., :3]

    def get_metrics_dict(self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        return {"psnr": self.image_metrics.psnr(outputs["rgb"], self._photo(batch))}

    def ray_errors(self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Float[Tensor, "num_rays"]:
        """Each ray's mean absolute error, sRGB-encoded (as a person sees it: dark gaps count as much as highlights),
        for the datamanager's error map."""
        target = linear_to_srgb(linear_target(batch, self.device, self.inputs_are_srgb))
        return (linear_to_srgb(outputs["rgb_linear"].detach()) - target).abs().mean(dim=-1)

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        """Image metrics of the render against the photo, and the photo beside the render; subclasses add images."""
        image = self._photo(batch)
        metrics = self.image_metrics.compare(outputs["rgb"], image)
        return metrics, {"img": torch.cat([image, outputs["rgb"]], dim=1)}
