"""Real COLMAP input: `nero-process images|video` (the README's command, as written) on generated photos registers
them where they were taken, writes a dataset that nero-shape trains on, and the check; too few registered images
stop with one line."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from PIL import Image

from nero_ns.evaluation.alignment import camera_center_errors
from nero_ns.synthetic import generate_scene
from nero_ns.synthetic.scene_set import scene_config
from tests.conftest import tiny_scene_config
from tests.nero_runs import photometric_loss_on_fixed_batches, setup_trainer, small_shape_config

NUM_VIEWS = 40
needs_colmap = pytest.mark.skipif(
    shutil.which("colmap") is None, reason="Debian's colmap is not installed (apt-get install colmap; .ci/run does)"
)


def nero_process(*arguments: str) -> subprocess.CompletedProcess:
    script = shutil.which("nero-process", path=str(Path(sys.executable).parent)) or shutil.which("nero-process")
    assert script is not None, "nero-process is not installed (pip install -e .)"
    return subprocess.run([script, *arguments], capture_output=True, text=True)


@pytest.fixture(scope="module")
def photo_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Large enough images, a textured floor in view and small steps between views, so SIFT features match."""
    return generate_scene(
        tiny_scene_config(
            tmp_path_factory.mktemp("photos"), resolution=256, num_train_views=NUM_VIEWS, num_test_views=1, spp=32,
            fill_fraction=0.4, elevation_range_deg=(25.0, 50.0), masks=False, points=False,
        )
    )


def true_centers(scene: Path) -> List[np.ndarray]:
    """Camera centers of the generated views, in the order of their files."""
    frames = json.loads((scene / "transforms.json").read_text())["frames"]
    return [np.array(frame["transform_matrix"])[:3, 3] for frame in sorted(frames, key=lambda f: f["file_path"])]


def center_errors(processed: Path, truth: Dict[str, np.ndarray]) -> np.ndarray:
    """Registered against true camera centers (`camera_center_errors`), by file name."""
    frames = json.loads((processed / "transforms.json").read_text())["frames"]
    found = np.array([np.array(frame["transform_matrix"])[:3, 3] for frame in frames])
    target = np.array([truth[Path(frame["file_path"]).name] for frame in frames])
    return camera_center_errors(found, target)


def registered_count(output: str) -> int:
    counts = re.findall(r"(\d+) of \d+ images registered", output)
    assert counts, output[-2000:]
    return int(counts[-1])


@pytest.mark.slow
@needs_colmap
def test_nero_process_images_output_trains(photo_scene: Path, tmp_path: Path) -> None:
    processed = tmp_path / "processed"
    result = nero_process("images", "--data", str(photo_scene / "images"), "--output-dir", str(processed))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    frames = json.loads((processed / "transforms.json").read_text())["frames"]
    assert len(frames) >= 0.9 * NUM_VIEWS and registered_count(result.stdout) == len(frames)
    assert (processed / "sparse_pc.ply").exists()
    # nerfstudio's copy numbers the photos from 1, in the order of their names.
    truth = {f"frame_{index + 1:05d}.png": center for index, center in enumerate(true_centers(photo_scene))}
    errors = center_errors(processed, truth)
    assert np.median(errors) < 0.05, errors
    assert "poses are likely wrong" not in " ".join(result.stdout.split())
    # The check ran: per-view reprojection errors and the picture.
    assert "Reprojection error" in result.stdout and "worst views" in result.stdout
    assert f"Wrote {processed / 'check.png'}" in " ".join(result.stdout.split())
    assert Image.open(processed / "check.png").size[0] > 500

    torch.manual_seed(0)
    config = small_shape_config(processed, tmp_path / "runs", steps=80)
    trainer = setup_trainer(config)
    outputs = trainer.pipeline.datamanager.train_dataparser_outputs
    assert 0.5 < outputs.metadata["object_radius"] <= 1.0
    batches = [trainer.pipeline.datamanager.next_train(0) for _ in range(3)]
    loss_before = photometric_loss_on_fixed_batches(trainer, batches)
    trainer.train()
    loss_after = photometric_loss_on_fixed_batches(trainer, batches)
    assert loss_after < 0.9 * loss_before, (loss_before, loss_after)


@pytest.mark.slow
@needs_colmap
def test_nero_process_video_of_an_orbit(photo_scene: Path, tmp_path: Path) -> None:
    # The views in order of azimuth around the object, as frames of a video.
    centers = true_centers(photo_scene)
    order = np.argsort([np.arctan2(center[1], center[0]) for center in centers])
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for position, index in enumerate(order):
        shutil.copy(photo_scene / "images" / f"frame_{index:05d}.png", frames_dir / f"{position:05d}.png")
    video = tmp_path / "orbit.mp4"
    encode = ["ffmpeg", "-loglevel", "error", "-framerate", "8", "-i", str(frames_dir / "%05d.png")]
    subprocess.run([*encode, "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", str(video)], check=True)

    processed = tmp_path / "processed"
    result = nero_process("video", "--data", str(video), "--output-dir", str(processed))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    frames = json.loads((processed / "transforms.json").read_text())["frames"]
    assert len(frames) >= 0.9 * NUM_VIEWS and registered_count(result.stdout) == len(frames)
    truth = {f"frame_{position + 1:05d}.png": centers[index] for position, index in enumerate(order)}
    errors = center_errors(processed, truth)
    assert np.median(errors) < 0.05, errors


@needs_colmap
def test_too_few_registered_images_is_one_line(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(6):  # textureless: no SIFT features, nothing registers
        Image.new("RGB", (64, 64), (30 + 40 * index,) * 3).save(photos / f"photo_{index}.png")
    result = nero_process("images", "--data", str(photos), "--output-dir", str(tmp_path / "processed"))
    assert result.returncode == 2
    errors = [line for line in result.stdout.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "COLMAP registered only 0 of 6 images" in errors[0] and "more background texture" in errors[0]
    assert not (tmp_path / "processed" / "transforms.json").exists()


@pytest.mark.slow
@needs_colmap
def test_a_repeating_floor_is_registered_right_or_the_check_warns(tmp_path: Path) -> None:
    # The scene set's mirror torus on a regular checker, where COLMAP registered every photo at a wrong place
    # (docs/data.md): wrong poses must not pass silently.
    scene = generate_scene(
        scene_config("mirror-torus", resolution=256, num_train_views=48, num_test_views=1, spp=32, masks=False,
                     points=False, output_dir=tmp_path / "photos")
    )
    processed = tmp_path / "processed"
    result = nero_process("images", "--data", str(scene / "images"), "--output-dir", str(processed))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert registered_count(result.stdout) >= 0.9 * 48
    truth = {f"frame_{index + 1:05d}.png": center for index, center in enumerate(true_centers(scene))}
    poses_right = np.median(center_errors(processed, truth)) < 0.05
    output = " ".join(result.stdout.split())
    warned = "Warning: COLMAP's camera 1" in output and "poses are likely wrong" in output
    assert poses_right != warned, (poses_right, output[-3000:])
