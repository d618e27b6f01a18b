"""Cameras to relight from: a nerfstudio transforms.json, or an orbit around the object.

Poses are nerfstudio camera-to-world matrices (OpenGL camera) in the mesh's frame, as in
`nero_ns.synthetic.cameras`; intrinsics are pinhole (distortion ignored), principal point anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List

import numpy as np
from jaxtyping import Float

from nero_ns.errors import NeroInputError
from nero_ns.synthetic.cameras import camera_distance_for_fill, look_at_c2w

INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")


@dataclass(frozen=True)
class RelightCamera:
    """One pinhole view: OpenGL camera-to-world, intrinsics in pixels, and the file name of its render."""

    name: str
    c2w: Float[np.ndarray, "4 4"]
    width: int
    height: int
    fl_x: float
    fl_y: float
    cx: float
    cy: float

    @property
    def fov_x_deg(self) -> float:
        return float(np.rad2deg(2.0 * np.arctan(0.5 * self.width / self.fl_x)))

    def resized(self, width: int) -> "RelightCamera":
        """The same view at `width` pixels across (height follows the aspect ratio)."""
        factor = width / self.width
        return RelightCamera(
            self.name, self.c2w, width, max(1, int(round(self.height * factor))),
            self.fl_x * factor, self.fl_y * factor, self.cx * factor, self.cy * factor,
        )

    def as_frame(self) -> dict:
        """A transforms.json frame naming its render under images/."""
        return {
            "file_path": f"images/{self.name}",
            "transform_matrix": np.asarray(self.c2w).tolist(),
            **{key: getattr(self, key) for key in ("fl_x", "fl_y", "cx", "cy")},
            "w": self.width,
            "h": self.height,
        }


def read_transforms_cameras(path: Path) -> List[RelightCamera]:
    """Every frame of a nerfstudio transforms.json (per-frame intrinsics override the shared ones); renders are
    named after the frames' image files, with a .png suffix."""
    path = Path(path)
    if path.is_dir():
        path = path / "transforms.json"
    if not path.is_file():
        raise NeroInputError(f"{path}: cameras file not found; pass a nerfstudio transforms.json as --cameras")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NeroInputError(f"{path}: not valid JSON ({error}); pass a nerfstudio transforms.json") from error
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not frames:
        raise NeroInputError(f"{path}: has no frames; pass a nerfstudio transforms.json with a frames list")
    cameras = []
    for index, frame in enumerate(frames):
        fields = {**meta, **frame}
        missing = [key for key in (*INTRINSIC_KEYS, "transform_matrix") if key not in fields]
        if missing:
            raise NeroInputError(f"{path}: frame {index} lacks {', '.join(missing)}; write them in transforms.json")
        c2w = np.asarray(fields["transform_matrix"], dtype=np.float64)
        if c2w.shape == (3, 4):
            c2w = np.concatenate([c2w, [[0.0, 0.0, 0.0, 1.0]]])
        if c2w.shape != (4, 4):
            raise NeroInputError(f"{path}: frame {index} transform_matrix is not 4x4; fix transforms.json")
        name = Path(fields.get("file_path", f"frame_{index:05d}")).stem + ".png"
        cameras.append(
            RelightCamera(
                name, c2w, int(fields["w"]), int(fields["h"]), float(fields["fl_x"]), float(fields["fl_y"]),
                float(fields["cx"]), float(fields["cy"]),
            )
        )
    return cameras


def orbit_camera_path(
    count: int,
    center: Float[np.ndarray, "3"],
    radius: float,
    resolution: int,
    fov_x_deg: float = 40.0,
    elevation_deg: float = 20.0,
    fill_fraction: float = 0.6,
) -> List[RelightCamera]:
    """`count` square views evenly spaced in azimuth around world +z at one elevation, each aimed at `center`,
    far enough for a sphere of `radius` to span `fill_fraction` of the width (frames of a turntable video)."""
    distance = camera_distance_for_fill(radius, fov_x_deg, fill_fraction)
    focal = 0.5 * resolution / np.tan(0.5 * np.deg2rad(fov_x_deg))
    elevation = np.deg2rad(elevation_deg)
    cameras = []
    for index in range(count):
        azimuth = 2.0 * np.pi * index / count
        direction = np.array(
            [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
        )
        c2w = look_at_c2w(center + distance * direction, center)
        cameras.append(
            RelightCamera(
                f"frame_{index:05d}.png", c2w, resolution, resolution, focal, focal, 0.5 * resolution,
                0.5 * resolution,
            )
        )
    return cameras


def write_transforms(path: Path, cameras: List[RelightCamera]) -> None:
    """A nerfstudio transforms.json (per-frame intrinsics) of the rendered views."""
    first = cameras[0]
    meta = {
        "camera_model": "OPENCV",
        "fl_x": first.fl_x, "fl_y": first.fl_y, "cx": first.cx, "cy": first.cy, "w": first.width, "h": first.height,
        "frames": [camera.as_frame() for camera in cameras],
    }
    path.write_text(json.dumps(meta, indent=2))
