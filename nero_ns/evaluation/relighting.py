"""`nero-eval relight`: relit renders against the GT relit images after per-channel scale alignment.

Light and albedo share one scale per color channel, so one least-squares scale per channel (over the object
pixels of all views, or of each view with `per_image_scale`) is fitted in linear radiance and applied to the
object pixels of the renders; PSNR / SSIM / LPIPS are then taken over the whole sRGB image. Object pixels are the
GT masks (gt/relight/masks). RGBA renders (transparent background) are compared over black with the GT's
background blacked out by its mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import imageio.v3 as iio
import matplotlib
import numpy as np
from jaxtyping import Bool, Float

from nero_ns.colors import linear_to_srgb, srgb_to_linear
from nero_ns.components.image_metrics import ImageMetrics
from nero_ns.errors import NeroInputError, friendly_errors
from nero_ns.evaluation.alignment import per_channel_scale
from nero_ns.evaluation.images import (
    ImagePair,
    compare_images,
    match_images,
    mean_metrics,
    print_table,
    read_image,
    read_mask,
    write_json,
)

DIFFERENCE_COLORMAP = "inferno"


def linear_pair(
    pair: ImagePair,
) -> Tuple[Float[np.ndarray, "h w 3"], Float[np.ndarray, "h w 3"], Bool[np.ndarray, "h w"]]:
    """Linear render, linear GT (background blacked out for RGBA renders) and the GT object mask."""
    if pair.gt_mask is None:
        raise NeroInputError(f"{pair.gt}: its transforms.json names no mask_path; pass GT with masks (gt/relight)")
    render, gt, mask = read_image(pair.render), read_image(pair.gt)[..., :3], read_mask(pair.gt_mask)
    if render.shape[:2] != gt.shape[:2] or mask.shape != gt.shape[:2]:
        raise NeroInputError(
            f"{pair.render}: size {render.shape[:2]} differs from GT {gt.shape[:2]}; render at GT size"
        )
    render_linear, gt_linear = srgb_to_linear(render[..., :3]), srgb_to_linear(gt)
    if render.shape[-1] == 4:
        render_linear, gt_linear = render_linear * render[..., 3:], gt_linear * mask[..., None]
    return render_linear, gt_linear, mask


def difference_figure(
    gt: Float[np.ndarray, "h w 3"], ours: Float[np.ndarray, "h w 3"]
) -> Float[np.ndarray, "h three_w 3"]:
    """GT | ours | |difference| heat map (mean absolute sRGB error, full scale = 0.5), side by side."""
    error = np.clip(np.abs(ours - gt).mean(-1) / 0.5, 0.0, 1.0)
    heat = matplotlib.colormaps[DIFFERENCE_COLORMAP](error)[..., :3]
    return np.concatenate([gt, ours, heat], axis=1)


def evaluate_relighting(
    renders: Path, gt: Path, per_image_scale: bool = False, figures_dir: Optional[Path] = None
) -> Dict[str, Dict]:
    """Per-image and mean metrics after scale alignment, the fitted scales, and (optionally) difference figures."""
    pairs = match_images(renders, gt)
    linear = [linear_pair(pair) for pair in pairs]
    if per_image_scale:
        scales = [per_channel_scale(render, target, mask) for render, target, mask in linear]
    else:
        stacked = [np.concatenate([item[i][item[2]] for item in linear]) for i in (0, 1)]
        scales = [per_channel_scale(*stacked)] * len(linear)
    metrics, per_image = ImageMetrics(), {}
    if figures_dir is not None:
        figures_dir.mkdir(parents=True, exist_ok=True)
    for pair, (render, target, mask), scale in zip(pairs, linear, scales):
        aligned = np.where(mask[..., None], render * scale, render)
        ours, reference = linear_to_srgb(aligned).astype(np.float32), linear_to_srgb(target).astype(np.float32)
        per_image[pair.name] = compare_images(metrics, ours, reference)
        if figures_dir is not None:
            figure = np.round(difference_figure(reference, ours) * 255.0).astype(np.uint8)
            iio.imwrite(figures_dir / f"{pair.name}.png", figure)
    scale_record = {name: scale.tolist() for name, scale in zip(per_image, scales)}
    return {"per_image": per_image, "mean": mean_metrics(per_image), "scales": scale_record}


@dataclass
class RelightEvaluation:
    """PSNR / SSIM / LPIPS of relit renders against GT relit images, after per-channel scale alignment."""

    renders: Path
    """Folder of relit renders (a nero-relight output folder rendered from the GT relight cameras)."""
    gt: Path
    """GT relight transforms.json (or its folder, e.g. SCENE/gt/relight), whose frames name images and masks."""
    per_image_scale: bool = False
    """Fit the per-channel scale to each image instead of once over all images."""
    figures: Optional[Path] = None
    """Write GT | ours | |difference| PNGs into this folder."""
    json: Optional[Path] = None
    """Also write the metrics to this JSON file."""

    def main(self) -> Dict[str, Dict]:
        """Compute, print as a table, optionally write JSON and figures."""
        with friendly_errors():
            results = evaluate_relighting(self.renders, self.gt, self.per_image_scale, self.figures)
        print_table(f"relit {self.renders} vs {self.gt} (scale-aligned)", results)
        write_json(self.json, {"renders": str(self.renders), "gt": str(self.gt), **results})
        return results
