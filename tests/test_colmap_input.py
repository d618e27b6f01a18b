"""Real COLMAP input: `ns-process-data images` on generated photos gives a dataset that nero-shape trains on."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from nero_runs import photometric_loss_on_fixed_batches, setup_trainer, small_shape_config

from nero_ns.synthetic import generate_scene

NUM_VIEWS = 40


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("colmap") is None, reason="Debian's colmap is not installed (apt-get install colmap; .ci/run does)"
)
def test_ns_process_data_output_trains(make_tiny_scene_config, tmp_path: Path) -> None:
    # Large enough images, a textured floor in view and small steps between views, so SIFT features match.
    scene = generate_scene(
        make_tiny_scene_config(
            tmp_path / "scene", resolution=256, num_train_views=NUM_VIEWS, num_test_views=1, spp=32,
            fill_fraction=0.4, elevation_range_deg=(25.0, 50.0), masks=False, points=False,
        )
    )
    processed = tmp_path / "processed"
    result = subprocess.run(
        [
            "ns-process-data", "images", "--data", str(scene / "images"), "--output-dir", str(processed),
            "--no-gpu", "--matching-method", "exhaustive", "--num-downscales", "0",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    frames = json.loads((processed / "transforms.json").read_text())["frames"]
    assert len(frames) >= 0.8 * NUM_VIEWS, f"COLMAP registered only {len(frames)} of {NUM_VIEWS} images"
    assert (processed / "sparse_pc.ply").exists()

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
