"""Reading and checking the user's dataset files before any heavy work, with one-line NeroInputErrors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
from jaxtyping import Float, UInt8
from nerfstudio.cameras.cameras import CAMERA_MODEL_TO_TYPE
from PIL import Image, UnidentifiedImageError
from rich.progress import track

from nero_ns.errors import NeroInputError
from nero_ns.io.hdr import is_hdr_image

INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
"""Camera values nerfstudio needs, either at the top of transforms.json or in every frame."""
LDR_IMAGE_MODES = ("L", "RGB", "RGBA")
"""8-bit PIL modes nerfstudio's InputDataset turns into RGB(A) correctly."""
PROCESS_HINT = "nero-process images --data photos --output-dir DIR"


@dataclass(frozen=True)
class FrameFiles:
    """The files of one frame as they will be read, and the size they must have."""

    image: Path
    mask: Optional[Path]
    width: int
    height: int


def read_transforms(data: Path) -> Tuple[Path, Dict[str, Any]]:
    """Path and content of transforms.json for `data` (a folder or the json file itself).

    Checks that the file exists, is JSON, and has what nerfstudio's parser reads: frames with file_path and a
    4x4 transform_matrix, intrinsics, a known camera_model, mask_path on all frames or none.
    """
    if not data.exists():
        raise NeroInputError(
            f"Data directory {data} does not exist; pass the folder written by ns-process-data or nero-synth "
            "with --data"
        )
    transforms_path = data if data.suffix == ".json" else data / "transforms.json"
    if not transforms_path.is_file():
        raise NeroInputError(f"No transforms.json in {data}; create one from your photos with `{PROCESS_HINT}`")
    try:
        meta = json.loads(transforms_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise NeroInputError(f"{transforms_path} is not UTF-8 text; regenerate it with `{PROCESS_HINT}`") from error
    except json.JSONDecodeError as error:
        reason = f"{error.msg} at line {error.lineno}, column {error.colno}"
        raise NeroInputError(
            f"{transforms_path} is not valid JSON ({reason}); fix it or regenerate it with `{PROCESS_HINT}`"
        ) from error
    _check_structure(meta, transforms_path)
    return transforms_path, meta


def _check_structure(meta: Any, transforms_path: Path) -> None:
    """Raise for a transforms.json nerfstudio's parser would reject with an assertion or KeyError."""
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(frames, list) or not frames:
        raise NeroInputError(f"{transforms_path} has no \"frames\" list; regenerate it with `{PROCESS_HINT}`")
    for index, frame in enumerate(frames):
        if not isinstance(frame, dict) or "file_path" not in frame:
            raise NeroInputError(f"{transforms_path}: frame {index} has no \"file_path\"; add the image path to it")
        if not _is_finite_4x4(frame.get("transform_matrix")):
            raise NeroInputError(
                f"{transforms_path}: frame {index} ({frame['file_path']}) needs a finite 4x4 \"transform_matrix\" "
                "(camera-to-world); fix that frame or regenerate the file with ns-process-data"
            )
        missing = [key for key in INTRINSIC_KEYS if key not in meta and key not in frame]
        if missing:
            raise NeroInputError(
                f"{transforms_path}: frame {index} ({frame['file_path']}) has no {', '.join(missing)}; add them at "
                "the top of the file or in every frame"
            )
    if meta.get("camera_model", "OPENCV") not in CAMERA_MODEL_TO_TYPE:
        raise NeroInputError(
            f"{transforms_path}: unknown camera_model {meta['camera_model']!r}; use one of "
            f"{', '.join(CAMERA_MODEL_TO_TYPE)}"
        )
    with_masks = sum("mask_path" in frame for frame in frames)
    if 0 < with_masks < len(frames):
        raise NeroInputError(
            f"{transforms_path}: {with_masks} of {len(frames)} frames have a mask_path; give every frame a mask or "
            "remove mask_path from all"
        )
    file_paths = [frame["file_path"] for frame in frames]
    if len(set(file_paths)) < len(file_paths):
        raise NeroInputError(f"{transforms_path} lists the same file_path twice; keep one frame per image")


def _is_finite_4x4(value: Any) -> bool:
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return matrix.shape == (4, 4) and bool(np.isfinite(matrix).all())


def frame_value(meta: Dict[str, Any], frame: Dict[str, Any], key: str) -> float:
    """A camera value from the top of transforms.json, else from the frame (nerfstudio's precedence)."""
    return float(meta[key]) if key in meta else float(frame[key])


def check_frame_files(frames: list[FrameFiles], transforms_path: Path, downscale_factor: int) -> bool:
    """Check that every image and mask exists, opens, and has its expected size; True when the images are HDR.

    Only headers are read for 8-bit images (PIL opens lazily); HDR images are decoded by mitsuba.
    """
    hdr = [is_hdr_image(frame.image) for frame in frames]
    if any(hdr) and not all(hdr):
        raise NeroInputError(
            f"{transforms_path} mixes HDR (.exr/.hdr) and 8-bit images; use one kind for all frames"
        )
    for frame in track(frames, description="Checking images", transient=True):
        _check_image(frame, transforms_path, downscale_factor)
        if frame.mask is not None:
            _check_mask(frame, transforms_path, downscale_factor)
    return all(hdr)


def _missing_file_fix(downscale_factor: int) -> str:
    if downscale_factor > 1:
        return (
            f"create the {downscale_factor}x downscaled copies (ns-process-data --num-downscales) or use "
            "--pipeline.datamanager.dataparser.downscale-factor 1"
        )
    return "restore it or remove its frame from transforms.json"


def _image_size(path: Path) -> Tuple[int, int, str]:
    """(width, height, mode) from the header; HDR files are decoded by mitsuba."""
    if is_hdr_image(path):
        import mitsuba as mi

        bitmap = mi.Bitmap(str(path))
        return bitmap.width(), bitmap.height(), "HDR"
    with Image.open(path) as image:
        return image.width, image.height, image.mode


def _check_image(frame: FrameFiles, transforms_path: Path, downscale_factor: int) -> None:
    if not frame.image.is_file():
        raise NeroInputError(
            f"Image {frame.image} (listed in {transforms_path.name}) does not exist; "
            f"{_missing_file_fix(downscale_factor)}"
        )
    try:
        width, height, mode = _image_size(frame.image)
    except (UnidentifiedImageError, OSError, RuntimeError) as error:
        raise NeroInputError(
            f"Image {frame.image} cannot be read ({_one_line(error)}); replace it with a valid PNG/JPEG/EXR or "
            f"remove its frame from {transforms_path.name}"
        ) from error
    if mode != "HDR" and mode not in LDR_IMAGE_MODES:
        raise NeroInputError(
            f"Image {frame.image} has PIL mode {mode}; save it as 8-bit RGB (or RGBA/gray) PNG or JPEG"
        )
    if (width, height) != (frame.width, frame.height):
        raise NeroInputError(
            f"Image {frame.image} is {width}x{height} but {transforms_path.name} says {frame.width}x{frame.height}"
            f"{_downscale_note(downscale_factor)}; fix w/h (and fl_x, fl_y, cx, cy) there or resize the image"
        )


def _check_mask(frame: FrameFiles, transforms_path: Path, downscale_factor: int) -> None:
    assert frame.mask is not None
    if not frame.mask.is_file():
        raise NeroInputError(
            f"Mask {frame.mask} (listed in {transforms_path.name}) does not exist; "
            f"{_missing_file_fix(downscale_factor)}"
        )
    try:
        with Image.open(frame.mask) as mask:
            size, bands = mask.size, len(mask.getbands())
    except (UnidentifiedImageError, OSError) as error:
        raise NeroInputError(
            f"Mask {frame.mask} cannot be read ({_one_line(error)}); replace it with a single-channel PNG "
            "(255 = object)"
        ) from error
    if bands != 1:
        raise NeroInputError(
            f"Mask {frame.mask} has {bands} channels; save it as a single-channel PNG (255 = object, 0 = background)"
        )
    if size != (frame.width, frame.height):
        raise NeroInputError(
            f"Mask {frame.mask} is {size[0]}x{size[1]} but its image {frame.image.name} is "
            f"{frame.width}x{frame.height}{_downscale_note(downscale_factor)}; resize the mask to the image size"
        )


def _downscale_note(downscale_factor: int) -> str:
    return f" after downscaling by {downscale_factor}" if downscale_factor > 1 else ""


def read_point_cloud(path: Path) -> Tuple[Float[np.ndarray, "num_points 3"], UInt8[np.ndarray, "num_points 3"]]:
    """Finite positions and 8-bit colors (gray where the file has none) of a .ply point cloud or mesh's vertices."""
    import trimesh

    if not path.is_file():
        raise NeroInputError(
            f"Point cloud {path} (ply_file_path in transforms.json) does not exist; restore it or remove "
            "ply_file_path from transforms.json"
        )
    try:
        loaded = trimesh.load(path, process=False)
    except Exception as error:  # trimesh raises many types for a broken file
        raise NeroInputError(
            f"Point cloud {path} cannot be read ({_one_line(error)}); regenerate it with ns-process-data or remove "
            "ply_file_path from transforms.json"
        ) from error
    points = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64).reshape(-1, 3)
    finite = np.isfinite(points).all(axis=1)
    if not finite.any():
        raise NeroInputError(
            f"Point cloud {path} has no (finite) points; regenerate it with ns-process-data or remove "
            "ply_file_path from transforms.json to size the object from the cameras"
        )
    colors = np.asarray(loaded.visual.vertex_colors if isinstance(loaded, trimesh.Trimesh) else loaded.colors)
    if colors.shape[:1] != (len(points),):
        colors = np.full((len(points), 3), 128)
    return points[finite], colors[finite, :3].astype(np.uint8)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
