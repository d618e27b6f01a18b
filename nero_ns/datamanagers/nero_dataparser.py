"""Dataparser for nerfstudio-format data that puts the object in a sphere of radius ~0.9 at the origin.

Parsing itself (intrinsics, distortion, splits, downscaled folders) is nerfstudio's `Nerfstudio` dataparser run with
no reorientation, centering or scaling. Camera poses are then taken as written in transforms.json and normalized
with our own map, so `dataparser_transform`/`dataparser_scale` go from the coordinates of transforms.json (and
sparse_pc.ply) to the normalized frame: nerfstudio's own `dataparser_transform` would also fold in
`applied_transform` (and its scale `applied_scale`), i.e. map from COLMAP's frame, which nothing of ours uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type

import numpy as np
import torch
from jaxtyping import Float, UInt8
from nerfstudio.data.dataparsers.base_dataparser import DataParser, DataParserConfig, DataparserOutputs
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.plugins.registry_dataparser import DataParserSpecification
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor

from nero_ns.datamanagers.input_files import (
    FrameFiles,
    check_frame_files,
    frame_value,
    read_point_cloud,
    read_transforms,
)
from nero_ns.datamanagers.normalization import (
    Sphere,
    normalization_transform,
    normalize_points,
    normalize_poses,
    sphere_from_cameras,
    sphere_from_points,
)
from nero_ns.errors import NeroInputError

MAX_POINTS_OVER_VIEW_RADIUS = 1.5
"""A sphere from the points larger than this multiple of the sphere that fills the photos' narrower field of view
holds background, not the object: the photos show the object whole (measured: COLMAP's points of a glossy blob,
mostly background, gave 3.9 times; the scene set's points 0.6 times)."""

OPTION_PREFIX = "--pipeline.datamanager.dataparser."


@dataclass
class NeroDataParserConfig(DataParserConfig):
    """transforms.json + images (+ masks, + sparse_pc.ply), normalized so the object sits in a sphere at the origin."""

    _target: Type = field(default_factory=lambda: NeroDataParser)
    """Target class to instantiate."""
    data: Path = Path()
    """Folder with transforms.json (or the json file itself)."""
    object_radius: float = 0.9
    """Radius the object's bounding sphere gets in the normalized frame (the model's unit sphere holds it)."""
    center: Optional[Tuple[float, float, float]] = None
    """Object center in the coordinates of transforms.json; estimated from the points or cameras when unset."""
    radius: Optional[float] = None
    """Object radius in the coordinates of transforms.json; estimated from the points or cameras when unset."""
    point_outlier_quantile: float = 0.99
    """Quantile of the dense point cluster that bounds the object (the farthest 1 - q of the points are ignored)."""
    use_points: bool = True
    """Size the object from the point cloud named by ply_file_path when there is one (else from the cameras)."""
    use_masks: bool = True
    """Load the masks named by mask_path when there are some."""
    linearize_srgb: bool = True
    """8-bit images are sRGB and the model decodes them to linear; False: the model takes them as they are."""
    downscale_factor: int = 1
    """Read images (and masks) from images_N/ (masks_N/) made by ns-process-data --num-downscales."""
    eval_mode: Literal["fraction", "filename", "interval", "all"] = "fraction"
    """How to split train/eval images, as in nerfstudio-data."""
    train_split_fraction: float = 0.9
    """Fraction of the images used for training with eval_mode fraction."""
    eval_interval: int = 8
    """Every n-th image is an eval image with eval_mode interval."""
    min_images: int = 5
    """Fewer images than this cannot constrain the shape."""


ADVISED_IMAGES = 30
"""Below this many images a warning is printed: with 10 views of the metal knot (48 px) the far field painted the
whole knot within 20 s of training in one seed of three, and with 30 it did not (docs/data.md)."""


@dataclass(frozen=True)
class _CheckedInput:
    """What the one-time checks found, reused for every split."""

    poses_by_image: Dict[Path, Float[Tensor, "3 4"]]
    sphere: Sphere
    color_space: Literal["srgb", "linear"]
    points: Optional[Tuple[Float[np.ndarray, "num_points 3"], UInt8[np.ndarray, "num_points 3"]]]


class NeroDataParser(DataParser):
    """Checks the input, parses it with nerfstudio's parser, and normalizes cameras and points."""

    config: NeroDataParserConfig

    def __init__(self, config: NeroDataParserConfig):
        super().__init__(config)
        self._nerfstudio_parser = NerfstudioDataParserConfig(
            data=config.data,
            downscale_factor=config.downscale_factor,
            orientation_method="none",
            center_method="none",
            auto_scale_poses=False,
            scale_factor=1.0,
            eval_mode=config.eval_mode,
            train_split_fraction=config.train_split_fraction,
            eval_interval=config.eval_interval,
            load_3D_points=False,
        ).setup()
        self._checked: Optional[_CheckedInput] = None

    def _generate_dataparser_outputs(self, split: str = "train", **kwargs) -> DataparserOutputs:
        if self._checked is None:
            self._checked = self._check_input()
        checked = self._checked
        parsed = self._nerfstudio_parser.get_dataparser_outputs(split)
        if not parsed.image_filenames:
            raise NeroInputError(
                f"The {split} split of {self.config.data} is empty; use {OPTION_PREFIX}eval-mode all, "
                f"interval or a lower {OPTION_PREFIX}train-split-fraction (or add images)"
            )
        transform, scale = normalization_transform(checked.sphere, self.config.object_radius)

        cameras = parsed.cameras
        input_poses = torch.stack([checked.poses_by_image[Path(name)] for name in parsed.image_filenames])
        cameras.camera_to_worlds = normalize_poses(input_poses, transform, scale)

        metadata = {
            **parsed.metadata,
            "color_space": checked.color_space,
            "sphere_center": checked.sphere.center,
            "sphere_radius": checked.sphere.radius,
            "object_radius": self.config.object_radius,
        }
        if checked.points is not None:
            xyz, rgb = checked.points
            metadata["points3D_xyz"] = normalize_points(torch.from_numpy(xyz).float(), transform, scale)
            metadata["points3D_rgb"] = torch.from_numpy(rgb)

        return DataparserOutputs(
            image_filenames=parsed.image_filenames,
            cameras=cameras,
            scene_box=SceneBox(aabb=torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])),
            mask_filenames=parsed.mask_filenames if self.config.use_masks else None,
            dataparser_transform=transform,
            dataparser_scale=scale,
            metadata=metadata,
        )

    def _check_input(self) -> _CheckedInput:
        """Check options and files (headers only) and find the object's sphere, before nerfstudio reads anything."""
        self._check_options()
        transforms_path, meta = read_transforms(self.config.data)
        data_dir = transforms_path.parent
        frames: List[dict] = meta["frames"]
        if len(frames) < self.config.min_images:
            raise NeroInputError(
                f"{transforms_path} lists {len(frames)} images, fewer than {OPTION_PREFIX}min-images "
                f"{self.config.min_images}; add photos from around the object ({ADVISED_IMAGES}+ work best) and re-run "
                "ns-process-data"
            )
        if len(frames) < ADVISED_IMAGES:
            CONSOLE.print(
                f"[yellow]{transforms_path} lists {len(frames)} images; with fewer than {ADVISED_IMAGES} the far field "
                "can take the object's pixels and the shape vanish (docs/data.md): add photos from around the object, "
                "or train nero-shape with --pipeline.model.far-field.sh-levels 1"
            )

        files = [self._frame_files(meta, frame, data_dir) for frame in frames]
        is_hdr = check_frame_files(files, transforms_path, self.config.downscale_factor)
        poses = torch.tensor([frame["transform_matrix"] for frame in frames], dtype=torch.float32)[:, :3, :]

        points = None
        if self.config.use_points and "ply_file_path" in meta:
            points = read_point_cloud(data_dir / meta["ply_file_path"])
        sphere = self._find_sphere(meta, frames, poses, points, transforms_path, data_dir)
        color_space: Literal["srgb", "linear"] = "srgb" if self.config.linearize_srgb and not is_hdr else "linear"
        CONSOLE.log(
            f"Object sphere in the input frame: center ({', '.join(f'{c:.4g}' for c in sphere.center)}), "
            f"radius {sphere.radius:.4g}; images are {'HDR, ' if is_hdr else ''}{color_space}"
        )
        return _CheckedInput(
            poses_by_image={frame.image: pose for frame, pose in zip(files, poses)},
            sphere=sphere,
            color_space=color_space,
            points=points,
        )

    def _check_options(self) -> None:
        config = self.config
        quantile = config.point_outlier_quantile
        checks = [
            ("object-radius", config.object_radius, 0.0 < config.object_radius <= 1.0, "in (0, 1]"),
            ("radius", config.radius, config.radius is None or config.radius > 0.0, "positive"),
            ("point-outlier-quantile", quantile, 0.5 < quantile <= 1.0, "in (0.5, 1]"),
            ("downscale-factor", config.downscale_factor, config.downscale_factor >= 1, "1 or more"),
            ("min-images", config.min_images, config.min_images >= 1, "1 or more"),
        ]
        for name, value, valid, requirement in checks:
            if not valid:
                raise NeroInputError(f"{OPTION_PREFIX}{name} is {value}; it must be {requirement}")

    def _frame_files(self, meta: dict, frame: dict, data_dir: Path) -> FrameFiles:
        """The files nerfstudio's parser will read for `frame` (honouring downscaled folders) and their size."""
        resolve = self._nerfstudio_parser._get_fname  # the exact paths nerfstudio's parser will use
        mask = None
        if self.config.use_masks and "mask_path" in frame:
            mask = resolve(Path(frame["mask_path"]), data_dir, downsample_folder_prefix="masks_")
        shrink = 1.0 / self.config.downscale_factor  # nerfstudio floors the rescaled size
        return FrameFiles(
            image=resolve(Path(frame["file_path"]), data_dir),
            mask=mask,
            width=int(frame_value(meta, frame, "w") * shrink),
            height=int(frame_value(meta, frame, "h") * shrink),
        )

    def _find_sphere(
        self,
        meta: dict,
        frames: List[dict],
        poses: Float[Tensor, "num_frames 3 4"],
        points: Optional[Tuple[np.ndarray, np.ndarray]],
        transforms_path: Path,
        data_dir: Path,
    ) -> Sphere:
        """The user's center/radius where given; the rest from the point cloud, else from the cameras."""
        config = self.config
        if config.center is not None and config.radius is not None:
            return Sphere(center=tuple(float(c) for c in config.center), radius=float(config.radius))
        half_fov = min(
            math.atan(
                min(
                    frame_value(meta, frame, "w") / (2.0 * frame_value(meta, frame, "fl_x")),
                    frame_value(meta, frame, "h") / (2.0 * frame_value(meta, frame, "fl_y")),
                )
            )
            for frame in frames
        )
        in_view = sphere_from_cameras(poses, half_fov, source=str(transforms_path), center=config.center)
        if points is None:
            sphere = in_view
        else:
            ply = data_dir / meta["ply_file_path"]
            sphere = sphere_from_points(
                points[0], source=str(ply), quantile=config.point_outlier_quantile, center=config.center,
                camera_to_worlds=poses,
            )
            if sphere.radius > MAX_POINTS_OVER_VIEW_RADIUS * in_view.radius:
                CONSOLE.print(
                    f"{ply}: the points' sphere (radius {sphere.radius:.4g}) is more than {MAX_POINTS_OVER_VIEW_RADIUS}"
                    f" times the sphere that fills the photos ({in_view.radius:.4g}), so the points are mostly "
                    "background: the object is sized from the cameras instead (give its center and radius with "
                    f"{OPTION_PREFIX}center X Y Z and {OPTION_PREFIX}radius R to set it)",
                    soft_wrap=True,
                    highlight=False,
                )
                sphere = in_view
        return Sphere(center=sphere.center, radius=sphere.radius if config.radius is None else float(config.radius))


nero_dataparser_spec = DataParserSpecification(
    config=NeroDataParserConfig(),
    description="nerfstudio-format data with the object normalized into a sphere of radius 0.9 (for nero-shape)",
)
