"""`nero-eval images`: PSNR / SSIM / LPIPS (when its weights are cached) of renders against GT images, matched by
file name (stem). GT may be a folder of images or a nerfstudio transforms.json (its frames' file_path)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import imageio.v3 as iio
import numpy as np
import torch
from jaxtyping import Float
from rich.table import Table

from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.colors import linear_to_srgb
from nero_ns.components.image_metrics import ImageMetrics
from nero_ns.errors import NeroInputError, friendly_errors
from nero_ns.io.hdr import is_hdr_image, read_hdr_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".exr", ".hdr")


@dataclass(frozen=True)
class ImagePair:
    """A render and its ground truth (and the GT's object mask, when the GT transforms name one)."""

    name: str
    render: Path
    gt: Path
    gt_mask: Optional[Path] = None


def read_image(path: Path) -> Float[np.ndarray, "height width channels"]:
    """sRGB-encoded float image in [0, 1] (HDR files are encoded from linear; RGBA keeps its alpha channel)."""
    try:
        if is_hdr_image(path):
            return linear_to_srgb(read_hdr_image(path)).astype(np.float32)
        pixels = np.asarray(iio.imread(path))
    except Exception as error:  # imageio/Mitsuba raise many types for corrupt files
        raise NeroInputError(f"{path}: cannot read it as an image ({error}); pass PNG/JPG/EXR images") from error
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
    return (pixels / float(np.iinfo(pixels.dtype).max)).astype(np.float32)


def read_mask(path: Path) -> np.ndarray:
    """Boolean object mask of a single-channel (or RGB) mask image: > half = object."""
    mask = read_image(path)
    return mask[..., 0] > 0.5


def _gt_entries(gt: Path) -> Dict[str, Tuple[Path, Optional[Path]]]:
    """name (stem) -> (GT image, GT mask or None) from a folder of images or a transforms.json."""
    transforms = gt / "transforms.json" if gt.is_dir() else gt
    if transforms.is_file() and transforms.suffix == ".json":
        frames = json.loads(transforms.read_text()).get("frames", [])
        root = transforms.parent
        return {
            Path(frame["file_path"]).stem: (
                root / frame["file_path"], root / frame["mask_path"] if "mask_path" in frame else None
            )
            for frame in frames
        }
    if not gt.is_dir():
        raise NeroInputError(f"{gt}: not found; pass a folder of GT images or a transforms.json")
    return {path.stem: (path, None) for path in sorted(gt.iterdir()) if path.suffix.lower() in IMAGE_SUFFIXES}


def match_images(renders: Path, gt: Path) -> List[ImagePair]:
    """Pairs of renders (a folder, or a folder holding images/) and GT images with the same stem, sorted."""
    folder = renders / "images" if (renders / "images").is_dir() else renders
    if not folder.is_dir():
        raise NeroInputError(f"{renders}: renders folder not found; pass the folder nero-relight wrote")
    gt_entries = _gt_entries(gt)
    pairs = [
        ImagePair(path.stem, path, *gt_entries[path.stem])
        for path in sorted(folder.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES and path.stem in gt_entries
    ]
    if not pairs:
        raise NeroInputError(f"{folder}: no image shares a file name with {gt}; render from the GT cameras")
    return pairs


def compare_images(
    metrics: ImageMetrics, prediction: Float[np.ndarray, "h w 3"], target: Float[np.ndarray, "h w 3"]
) -> Dict[str, float]:
    """PSNR / SSIM / LPIPS of two sRGB images in [0, 1] of the same size."""
    if prediction.shape != target.shape:
        raise NeroInputError(
            f"render {prediction.shape[:2]} and GT {target.shape[:2]} differ in size; render at GT size"
        )
    return metrics.compare(torch.from_numpy(prediction), torch.from_numpy(target))


def mean_metrics(per_image: Dict[str, Dict[str, float]]) -> Dict[str, float]:
    """Mean of every metric over the images that have it."""
    names = sorted({name for values in per_image.values() for name in values})
    return {name: float(np.mean([v[name] for v in per_image.values() if name in v])) for name in names}


def evaluate_images(renders: Path, gt: Path) -> Dict[str, Dict]:
    """Per-image and mean metrics; RGBA renders are composited over black (the GT is used as is)."""
    metrics = ImageMetrics()
    per_image = {}
    for pair in match_images(renders, gt):
        render = read_image(pair.render)
        if render.shape[-1] == 4:
            render = render[..., :3] * render[..., 3:]
        per_image[pair.name] = compare_images(metrics, render, read_image(pair.gt)[..., :3])
    return {"per_image": per_image, "mean": mean_metrics(per_image)}


def print_table(title: str, results: Dict[str, Dict]) -> None:
    """Rich table of per-image metrics and their mean."""
    mean = results["mean"]
    table = Table(title=title)
    table.add_column("image")
    for name in mean:
        table.add_column(name, justify="right")
    for image, values in results["per_image"].items():
        table.add_row(image, *(f"{values[name]:.4f}" if name in values else "-" for name in mean))
    table.add_row("[bold]mean", *(f"[bold]{mean[name]:.4f}" for name in mean))
    CONSOLE.print(table)


def write_json(path: Optional[Path], record: Dict) -> None:
    """Write `record` as indented JSON (creating folders) and say so."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    CONSOLE.print(f"Wrote {path}")


@dataclass
class ImageEvaluation:
    """PSNR, SSIM and LPIPS (when cached) of renders against GT images with the same file names."""

    renders: Path
    """Folder of renders (or a nero-relight output folder, whose images/ is used)."""
    gt: Path
    """Folder of GT images, or a transforms.json (e.g. SCENE/gt/test/transforms.json)."""
    json: Optional[Path] = None
    """Also write the metrics to this JSON file."""

    def main(self) -> Dict[str, Dict]:
        """Compute, print as a table, optionally write JSON."""
        with friendly_errors():
            results = evaluate_images(self.renders, self.gt)
        print_table(f"{self.renders} vs {self.gt}", results)
        write_json(self.json, {"renders": str(self.renders), "gt": str(self.gt), **results})
        return results
