"""`nero-eval relight`: relit images darkened by a known per-channel scale score near-perfectly after alignment."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from nero_ns.colors import linear_to_srgb, srgb_to_linear
from nero_ns.evaluation.cli import EVALUATION_COMMANDS
from nero_ns.evaluation.relighting import evaluate_relighting


def darkened_copy(gt_relight: Path, folder: Path, scale: np.ndarray) -> None:
    """The GT relit images with object pixels multiplied by `scale` in linear radiance."""
    meta = json.loads((gt_relight / "transforms.json").read_text())
    (folder / "images").mkdir(parents=True)
    for frame in meta["frames"]:
        image = iio.imread(gt_relight / frame["file_path"]) / 255.0
        mask = (iio.imread(gt_relight / frame["mask_path"]) == 255)[..., None]
        linear = srgb_to_linear(image)
        darker = linear_to_srgb(np.where(mask, linear * scale, linear))
        iio.imwrite(folder / "images" / Path(frame["file_path"]).name, np.round(darker * 255).astype(np.uint8))


def test_relight_alignment_undoes_a_per_channel_scale(tiny_scene: Path, tmp_path: Path) -> None:
    """GT relit images darkened per channel on the object score near-perfectly after alignment, and the fitted
    scales are the inverse; the figures are GT | ours | difference."""
    scale = np.array([0.5, 0.7, 0.9])
    darkened_copy(tiny_scene / "gt" / "relight", tmp_path / "renders", scale)
    results = evaluate_relighting(tmp_path / "renders", tiny_scene / "gt" / "relight", figures_dir=tmp_path / "fig")
    assert len(results["per_image"]) == 4
    assert results["mean"]["psnr"] > 40.0 and results["mean"]["ssim"] > 0.99
    np.testing.assert_allclose(next(iter(results["scales"].values())), 1.0 / scale, rtol=0.02)
    unaligned = EVALUATION_COMMANDS["images"](tmp_path / "renders", tiny_scene / "gt" / "relight").main()
    assert unaligned["mean"]["psnr"] < results["mean"]["psnr"] - 10.0
    figure = iio.imread(tmp_path / "fig" / "frame_00000.png")
    assert figure.shape == (48, 144, 3)
