"""The demo's preview picture: the mesh drawn from the input cameras lands on the object in the photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from nero_ns.exporters.mesh_preview import write_mesh_preview


def test_preview_draws_the_true_mesh_over_the_object_of_each_photo(tiny_scene: Path, tmp_path: Path) -> None:
    preview = write_mesh_preview(tiny_scene / "gt" / "mesh.ply", tiny_scene / "transforms.json",
                                 tmp_path / "preview.png", num_views=2, height=64)
    picture = np.asarray(Image.open(preview))
    frames = json.loads((tiny_scene / "transforms.json").read_text())["frames"]
    assert picture.shape[0] == 128 and picture.shape[2] == 3  # photos above, mesh views below
    width = picture.shape[1] // 2
    for column, index in enumerate((0, len(frames) - 1)):
        drawn = picture[64:, column * width:(column + 1) * width].min(axis=-1) < 250  # grey mesh on white
        with Image.open(tiny_scene / frames[index]["mask_path"]) as mask:
            object_pixels = np.asarray(mask.convert("L").resize((width, 64), Image.NEAREST)) > 127
        overlap = (drawn & object_pixels).sum() / max((drawn | object_pixels).sum(), 1)
        assert drawn.sum() > 50 and overlap > 0.8, (index, overlap)
