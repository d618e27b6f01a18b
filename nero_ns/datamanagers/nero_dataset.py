"""nerfstudio's InputDataset, plus linear HDR images (.exr, .hdr), which its PIL reader cannot open."""

from __future__ import annotations

from pathlib import Path

import torch
from jaxtyping import Float
from nerfstudio.data.datasets.base_dataset import InputDataset
from torch import Tensor

from nero_ns.io.hdr import is_hdr_image, read_hdr_image


class NeroDataset(InputDataset):
    """InputDataset that also reads HDR images as float32 linear RGB (8-bit images go through nerfstudio)."""

    def get_image_float32(self, image_idx: int) -> Float[Tensor, "image_height image_width num_channels"]:
        filename = Path(self._dataparser_outputs.image_filenames[image_idx])
        if not is_hdr_image(filename):
            return super().get_image_float32(image_idx)
        image = torch.from_numpy(read_hdr_image(filename))
        if self.scale_factor != 1.0:
            height, width = image.shape[:2]
            size = (int(height * self.scale_factor), int(width * self.scale_factor))
            resized = torch.nn.functional.interpolate(image.permute(2, 0, 1)[None], size=size, mode="bilinear")
            image = resized[0].permute(1, 2, 0).contiguous()
        return image
