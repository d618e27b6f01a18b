"""`nero-process images|video`: nerfstudio's own image and video processors with COLMAP run by
`nero_ns.process.colmap` (CPU SIFT on a headless machine, no download, strategies for shiny objects), a registration
threshold, and the dataset check at the end."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import tyro
from nerfstudio.process_data import process_data_utils
from nerfstudio.process_data.colmap_converter_to_nerfstudio_dataset import ColmapConverterToNerfstudioDataset
from nerfstudio.process_data.images_to_nerfstudio_dataset import ImagesToNerfstudioDataset
from nerfstudio.process_data.process_data_utils import CAMERA_MODELS
from nerfstudio.process_data.video_to_nerfstudio_dataset import VideoToNerfstudioDataset
from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.errors import NeroInputError
from nero_ns.process.check import DatasetCheck
from nero_ns.process.colmap import (
    MAX_IMAGE_SIZE,
    MAX_NUM_FEATURES,
    ColmapSettings,
    refine_intrinsics,
    register_with_retries,
    use_gpu_sift,
)

ColmapOnly = tyro.conf.Suppress[Literal["any"]]
"""nerfstudio's hloc-related choices, hidden: nero-process runs COLMAP only."""


@dataclass
class _NeroColmapConverter(ColmapConverterToNerfstudioDataset):
    """What nero-process changes in nerfstudio's COLMAP converter: the COLMAP run (`_run_colmap`) and the check."""

    matching_method: Literal["exhaustive", "sequential"] = "exhaustive"
    """exhaustive: every pair of images (unordered photos); sequential: each frame with its neighbours (video).
    Neither downloads anything (nerfstudio's vocab_tree does)."""
    gpu: Optional[bool] = None
    """SIFT on the GPU; None: only when COLMAP is built with CUDA and a CUDA device is visible (otherwise COLMAP's
    GPU SIFT needs a display)."""
    max_num_features: int = MAX_NUM_FEATURES
    """SIFT features per image (COLMAP's default 8192): shiny objects leave few, so keep every one."""
    max_image_size: int = MAX_IMAGE_SIZE
    """Longest side SIFT sees (COLMAP's default 3200): larger photos are shrunk to this before extraction."""
    retry_below: float = 0.9
    """Try COLMAP's next, more permissive strategy while fewer than this fraction of the images registered."""
    min_registered: float = 0.5
    """Stop with an error when, after every strategy, fewer than this fraction of the images registered."""
    check: bool = True
    """Run `nero-process check` on the result (reprojection errors, picture of cameras and sphere)."""
    sfm_tool: ColmapOnly = "any"
    feature_type: ColmapOnly = "any"
    matcher_type: ColmapOnly = "any"
    refine_pixsfm: tyro.conf.Suppress[bool] = False
    use_single_camera_mode: tyro.conf.Suppress[bool] = True

    def _run_colmap(self, mask_path: Optional[Path] = None) -> None:
        image_dir = self.data if self.skip_image_processing else self.image_dir
        num_images = len(process_data_utils.list_images(image_dir))
        settings = ColmapSettings(
            image_dir=image_dir,
            camera_model=CAMERA_MODELS[self.camera_type].value,
            matching_method=self.matching_method,
            gpu=use_gpu_sift(self.colmap_cmd) if self.gpu is None else self.gpu,
            max_num_features=self.max_num_features,
            max_image_size=self.max_image_size,
            camera_mask_path=mask_path,
            colmap_cmd=self.colmap_cmd,
            verbose=self.verbose,
        )
        registration = register_with_retries(settings, self.absolute_colmap_path, num_images, self.retry_below)
        CONSOLE.log(f"[bold]{registration.summary()}[/bold] (strategy {registration.strategy})")
        if registration.model_dir is None or registration.fraction < self.min_registered:
            raise NeroInputError(
                f"COLMAP registered only {registration.num_registered} of {num_images} images in {image_dir} (need "
                f"{self.min_registered:.0%}); "
                "photograph the object over more background texture, at a higher resolution, and with more overlap "
                "between neighbouring photos"
            )
        model_dir = self.output_dir / self.default_colmap_path()
        if model_dir.exists():
            shutil.rmtree(model_dir)
        shutil.copytree(registration.model_dir, model_dir)
        if self.refine_intrinsics:
            refine_intrinsics(model_dir, self.colmap_cmd, self.verbose)

    def _check(self) -> None:
        if self.check:
            DatasetCheck(data=self.output_dir).main()


@dataclass
class ProcessImages(_NeroColmapConverter, ImagesToNerfstudioDataset):
    """Photos -> nerfstudio dataset (transforms.json, images/, sparse_pc.ply) with COLMAP, on a CPU without display or
    network, then the dataset check."""

    def main(self) -> None:
        ImagesToNerfstudioDataset.main(self)
        self._check()


@dataclass
class ProcessVideo(_NeroColmapConverter, VideoToNerfstudioDataset):
    """Video -> frames -> nerfstudio dataset with COLMAP (sequential matching), then the dataset check."""

    matching_method: Literal["exhaustive", "sequential"] = "sequential"
    """sequential: each frame with its neighbours (video); exhaustive: every pair (slower, for short clips)."""

    def main(self) -> None:
        VideoToNerfstudioDataset.main(self)
        self._check()
