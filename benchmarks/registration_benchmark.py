"""COLMAP registration on a generated scene: how many photos register, and where, per camera model and strategy.

    python benchmarks/registration_benchmark.py --scene mirror-torus --resolution 256 --num-views 48

Each trial runs nero-process's own registration (`nero_ns.process.colmap.register`: CPU SIFT, exhaustive matching,
one camera for all photos) with one COLMAP camera model and one of nero-process's strategies, then compares the
registered camera centers with the generator's after the best similarity fit (`camera_center_errors`; a correct
registration scores well under 0.05) and says whether `nero-process check` doubts the camera. Prints a table and
writes benchmarks/results/colmap/<date>-<commit>.json and .md (common.write_results).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import tyro
from common import SceneSize, generate_scene, markdown_table, print_table, run_record, write_results
from nerfstudio.data.utils.colmap_parsing_utils import qvec2rotmat, read_cameras_binary, read_images_binary

from nero_ns.evaluation.alignment import camera_center_errors
from nero_ns.process.check import camera_doubts
from nero_ns.process.colmap import MAX_IMAGE_SIZE, MAX_NUM_FEATURES, STRATEGIES, ColmapSettings, register


@dataclass
class RegistrationBenchmark:
    """Register a generated scene's photos with COLMAP in several ways and score the poses."""

    scene: str = "mirror-torus"
    """Scene of the scene set (docs/scenes.md)."""
    resolution: int = 256
    """Image size of the generated photos."""
    num_views: int = 48
    """Photos."""
    trials: Tuple[str, ...] = ("OPENCV:sift", "OPENCV:guided", "OPENCV:relaxed", "SIMPLE_RADIAL:guided",
                               "SIMPLE_RADIAL:relaxed")
    """CAMERA_MODEL:STRATEGY pairs; OPENCV is what nero-process uses for `--camera-type perspective`, the strategies
    are nero-process's (nero_ns/process/colmap.py)."""
    max_num_features: int = MAX_NUM_FEATURES
    """SIFT features per image (nero-process's default)."""
    output_dir: Path = Path("benchmark-output/registration")
    """Where the scene and COLMAP's work folders go."""
    results_dir: Optional[Path] = None
    """Where <date>-<commit>.json and .md go; None: benchmarks/results/colmap."""

    def main(self) -> None:
        record = run_record()
        size = SceneSize(resolution=self.resolution, num_views=self.num_views, num_test_views=1)
        scene = generate_scene(self.scene, size, self.output_dir / self.scene / "scene", self.output_dir / "log.txt")
        frames = json.loads((scene / "transforms.json").read_text())["frames"]
        truth = {Path(frame["file_path"]).name: np.array(frame["transform_matrix"])[:3, 3] for frame in frames}
        strategies = {strategy.name: strategy for strategy in STRATEGIES}
        rows: List[Dict] = []
        for trial in self.trials:
            model, _, strategy = trial.partition(":")
            settings = ColmapSettings(
                image_dir=scene / "images", camera_model=model, matching_method="exhaustive", gpu=False,
                max_num_features=self.max_num_features, max_image_size=MAX_IMAGE_SIZE,
            )
            start = time.perf_counter()
            registration = register(
                settings, self.output_dir / self.scene / trial.replace(":", "-"), strategies[strategy], len(truth)
            )
            row: Dict = {"camera_model": model, "strategy": strategy, "registered": registration.num_registered,
                         "of": registration.num_images, "seconds": round(time.perf_counter() - start, 1)}
            if registration.model_dir is not None:
                row.update(_score(registration.model_dir, truth))
            rows.append(row)
        header = ["camera model", "strategy", "registered", "median center error", "worst", "check doubts",
                  "camera", "seconds"]
        table = [
            [row["camera_model"], row["strategy"], f"{row['registered']} of {row['of']}",
             f"{row['median_center_error']:.3f}" if "median_center_error" in row else "-",
             f"{row['worst_center_error']:.3f}" if "worst_center_error" in row else "-",
             "; ".join(row.get("doubts", [])) or "-", " ".join(f"{value:.3g}" for value in row.get("camera", [])),
             f"{row['seconds']:.0f}"]
            for row in rows
        ]
        title = f"COLMAP registration of {self.scene} ({self.num_views} views, {self.resolution} px)"
        print_table(title, header, table, caption="center errors in units of the cameras' distance to the object")
        markdown = (
            f"# {title}, {record['date']}, commit {record['commit']}\n\n`{record['command']}`\n\n"
            f"{markdown_table(header, table)}\n"
        )
        results = {**record, "scene": self.scene, "resolution": self.resolution, "num_views": self.num_views,
                   "rows": rows}
        write_results("colmap", results, markdown, self.results_dir, False, self.output_dir)


def _score(model_dir: Path, truth: Dict[str, np.ndarray]) -> Dict:
    """Center errors of the registered views, the camera's parameters and the check's doubts about it."""
    found, target = [], []
    for image in read_images_binary(model_dir / "images.bin").values():
        rotation = qvec2rotmat(image.qvec)
        found.append(-rotation.T @ image.tvec)
        target.append(truth[image.name])
    errors = camera_center_errors(np.array(found), np.array(target))
    camera = next(iter(read_cameras_binary(model_dir / "cameras.bin").values()))
    return {"median_center_error": float(np.median(errors)), "worst_center_error": float(errors.max()),
            "camera": [float(value) for value in camera.params], "doubts": camera_doubts(camera)}


if __name__ == "__main__":
    tyro.cli(RegistrationBenchmark).main()
