"""`nero-eval images`: PSNR and SSIM of known cases, and renders matched to ground truth by file name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nero_ns.errors import NeroInputError
from nero_ns.evaluation.cli import EVALUATION_COMMANDS
from nero_ns.components.image_metrics import ImageMetrics
from nero_ns.evaluation.images import compare_images, match_images


def test_psnr_of_a_known_mse_and_ssim_of_identical_images() -> None:
    """Every pixel off by 0.1: MSE 0.01, PSNR exactly 20 dB; an image against itself has SSIM 1."""
    rng = np.random.default_rng(0)
    target = rng.uniform(0.2, 0.8, (32, 32, 3)).astype(np.float32)
    values = compare_images(ImageMetrics(), target + np.float32(0.1), target)
    assert values["psnr"] == pytest.approx(20.0, abs=1e-3)
    assert compare_images(ImageMetrics(), target, target)["ssim"] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(NeroInputError, match="differ in size"):
        compare_images(ImageMetrics(), target[:16], target)


def test_images_matches_by_name_and_reports_missing(tiny_scene: Path, tmp_path: Path) -> None:
    (tmp_path / "renders").mkdir()
    shutil.copy(tiny_scene / "gt/test/images/frame_00002.png", tmp_path / "renders" / "frame_00002.png")
    pairs = match_images(tmp_path / "renders", tiny_scene / "gt" / "test" / "transforms.json")
    assert [pair.name for pair in pairs] == ["frame_00002"]
    assert pairs[0].gt == tiny_scene / "gt/test/images/frame_00002.png"
    command = EVALUATION_COMMANDS["images"](tmp_path / "renders", tiny_scene / "gt/test", json=tmp_path / "m.json")
    assert command.main()["mean"]["psnr"] == pytest.approx(100.0)
    assert json.loads((tmp_path / "m.json").read_text())["per_image"]["frame_00002"]["ssim"] == pytest.approx(1.0)
    (tmp_path / "other_gt").mkdir()
    with pytest.raises(NeroInputError, match="no image shares a file name"):
        match_images(tmp_path / "renders", tmp_path / "other_gt")
    with pytest.raises(NeroInputError, match="missing: not found"):
        match_images(tmp_path / "renders", tmp_path / "missing")
