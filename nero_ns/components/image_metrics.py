"""Image quality metrics (PSNR, SSIM, and LPIPS only when its backbone weights are already on this machine)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import torch
from jaxtyping import Float
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor
from torchmetrics.functional import structural_similarity_index_measure

# torchmetrics' LPIPS (net "alex") builds torchvision's AlexNet with pretrained weights, fetched from the
# network into torch's hub cache. We never fetch: LPIPS is computed only when that file is already cached.
ALEXNET_WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"


def lpips_weights_available() -> bool:
    """Whether torchvision's AlexNet weights sit in the local torch hub cache."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS_FILE).is_file()


class ImageMetrics:
    """Compares a rendered image with its ground truth; images are [H, W, 3] or [N, 3] in [0, 1]."""

    def __init__(self) -> None:
        self._lpips: Optional[torch.nn.Module] = None
        self._lpips_reported = False

    @staticmethod
    def psnr(prediction: Float[Tensor, "*bs 3"], target: Float[Tensor, "*bs 3"]) -> Tensor:
        """Peak signal-to-noise ratio in dB for signals in [0, 1]."""
        mse = ((prediction.clamp(0.0, 1.0) - target) ** 2).mean()
        return -10.0 * torch.log10(mse.clamp(min=1e-10))

    def lpips(self, prediction: Tensor, target: Tensor) -> Optional[Tensor]:
        """LPIPS (AlexNet) for [1, 3, H, W] images, or None (said once) when its weights are not on this machine."""
        if self._lpips is None:
            if not lpips_weights_available():
                if not self._lpips_reported:
                    CONSOLE.print(
                        f"LPIPS unavailable: {ALEXNET_WEIGHTS_FILE} is not in {torch.hub.get_dir()}/checkpoints "
                        "(nothing is downloaded); reporting PSNR and SSIM only."
                    )
                    self._lpips_reported = True
                return None
            from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

            self._lpips = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)
        self._lpips = self._lpips.to(prediction.device)
        return self._lpips(prediction.clamp(0.0, 1.0), target)

    def compare(self, prediction: Float[Tensor, "H W 3"], target: Float[Tensor, "H W 3"]) -> Dict[str, float]:
        """PSNR, SSIM and (where available) LPIPS of one image pair."""
        prediction_nchw = prediction.clamp(0.0, 1.0).permute(2, 0, 1)[None]
        target_nchw = target.permute(2, 0, 1)[None]
        metrics = {
            "psnr": float(self.psnr(prediction, target)),
            "ssim": float(structural_similarity_index_measure(prediction_nchw, target_nchw, data_range=1.0)),
        }
        lpips = self.lpips(prediction_nchw, target_nchw)
        if lpips is not None:
            metrics["lpips"] = float(lpips)
        return metrics
