"""`nero-process check`: what a processed folder will give nero-shape, before training on it.

Per view, the reprojection error of COLMAP's sparse model (large errors: a badly registered photo). Then the folder
goes through the `nero-data` dataparser as training would, and a picture shows the normalized cameras, the model's
unit sphere and the object's sphere over the sparse points, seen from above and from two sides: a sphere that misses
the object, or that the floor has blown up, is visible here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from jaxtyping import Float
from nerfstudio.data.utils.colmap_parsing_utils import (
    Camera,
    qvec2rotmat,
    read_cameras_binary,
    read_images_binary,
    read_points3D_binary,
)
from nerfstudio.utils.rich_utils import CONSOLE
from rich.table import Table

from nero_ns.datamanagers.nero_dataparser import NeroDataParserConfig
from nero_ns.errors import with_friendly_errors

WORST_VIEWS_SHOWN = 8
"""The per-view table lists this many views, the worst first."""
CAMERA_ARROW = 0.3
"""Length of the viewing-direction stroke drawn at each camera (normalized units)."""
SQUARE_PIXEL_TOLERANCE = 0.05
"""Relative difference of fx and fy above which a camera's pixels are not square, as no photo's are."""
FIELD_OF_VIEW_DEG = (10.0, 120.0)
"""Horizontal fields of view a perspective photo has (a fisheye is not held to it)."""
EDGE_DISTORTION = 0.05
"""Share of its distance from the image center by which lens distortion may move a point at the middle of the
longer edge; a perspective photo's lens (or the phone's own correction) keeps it well below (a fisheye is not held
to it)."""


@dataclass(frozen=True)
class ViewError:
    """Reprojection error of the points one view observes, in pixels."""

    name: str
    num_points: int
    mean: float
    median: float
    max: float


def _intrinsics(camera: Camera) -> Tuple[Float[np.ndarray, "3 3"], Float[np.ndarray, "n"], bool]:
    """OpenCV camera matrix, distortion coefficients and whether the model is a fisheye, from a COLMAP camera."""
    params = camera.params
    if camera.model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL"):
        fx = fy = params[0]
        cx, cy = params[1], params[2]
        distortion = np.zeros(4)
        distortion[: len(params) - 3] = params[3:]
    elif camera.model in ("PINHOLE", "OPENCV", "OPENCV_FISHEYE"):
        fx, fy, cx, cy = params[:4]
        distortion = np.zeros(4)
        distortion[: len(params) - 4] = params[4:]
    else:
        raise ValueError(f"camera model {camera.model} is not one nero-process writes")
    matrix = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return matrix, distortion, camera.model == "OPENCV_FISHEYE"


def camera_doubts(camera: Camera) -> List[str]:
    """What is wrong with a COLMAP camera that no real photo gives: non-square pixels, a field of view outside
    FIELD_OF_VIEW_DEG, or more lens distortion than EDGE_DISTORTION. A registration that matched a repeating pattern
    to the wrong copies of itself bent the camera so (docs/data.md): the poses are then wrong too, however many images
    registered."""
    matrix, distortion, fisheye = _intrinsics(camera)
    fx, fy = matrix[0, 0], matrix[1, 1]
    doubts = []
    aspect_error = abs(fx / fy - 1.0)
    if aspect_error > SQUARE_PIXEL_TOLERANCE:
        doubts.append(
            f"focal lengths fx {fx:.0f} px and fy {fy:.0f} px, {aspect_error:.0%} apart (photos have square pixels)"
        )
    if fisheye:
        return doubts
    field_of_view = float(np.degrees(2.0 * np.arctan(camera.width / (2.0 * fx))))
    if not FIELD_OF_VIEW_DEG[0] <= field_of_view <= FIELD_OF_VIEW_DEG[1]:
        doubts.append(f"a horizontal field of view of {field_of_view:.0f} degrees")
    k1, k2, p1, p2 = distortion
    edge = max(camera.width, camera.height) / (2.0 * min(fx, fy))
    # Radial and tangential displacement at the edge, relative to the edge's distance from the center.
    displacement = max(abs(k1 * edge**2 + k2 * edge**4), 3.0 * edge * max(abs(p1), abs(p2)))
    if displacement > EDGE_DISTORTION:
        doubts.append(f"a lens distortion that moves the image edge by {displacement:.0%}")
    return doubts


def _print_camera_doubts(model_dir: Path) -> None:
    for camera in read_cameras_binary(model_dir / "cameras.bin").values():
        doubts = camera_doubts(camera)
        if doubts:
            CONSOLE.print(
                f"[yellow]Warning: COLMAP's camera {camera.id} ({model_dir}) has {' and '.join(doubts)}, so its poses "
                "are likely wrong too: a repeating pattern (a regular checker floor, tiles) matches the wrong copies "
                "of itself. Put something that does not repeat in view (a newspaper, a patterned cloth) and process "
                "the photos again."
            )


def reprojection_errors(model_dir: Path) -> List[ViewError]:
    """Per registered view of the COLMAP model in `model_dir`: distances between its keypoints and the projections
    of their 3D points (COLMAP's own camera model and pixel convention), sorted worst (largest mean) first."""
    cameras = read_cameras_binary(model_dir / "cameras.bin")
    points = read_points3D_binary(model_dir / "points3D.bin")
    errors = []
    for image in read_images_binary(model_dir / "images.bin").values():
        observed = image.point3D_ids >= 0
        if not observed.any():
            errors.append(ViewError(image.name, 0, float("nan"), float("nan"), float("nan")))
            continue
        xyz = np.stack([points[int(index)].xyz for index in image.point3D_ids[observed]])
        matrix, distortion, fisheye = _intrinsics(cameras[image.camera_id])
        rotation = cv2.Rodrigues(qvec2rotmat(image.qvec))[0]
        if fisheye:
            projected = cv2.fisheye.projectPoints(xyz[:, None], rotation, image.tvec, matrix, distortion)[0]
        else:
            projected = cv2.projectPoints(xyz, rotation, image.tvec, matrix, distortion)[0]
        distance = np.linalg.norm(projected.reshape(-1, 2) - image.xys[observed], axis=-1)
        errors.append(
            ViewError(image.name, len(distance), float(distance.mean()), float(np.median(distance)), float(distance.max()))
        )
    return sorted(errors, key=lambda error: -np.nan_to_num(error.mean, nan=np.inf))


def _print_errors(errors: List[ViewError], model_dir: Path) -> None:
    means = np.array([error.mean for error in errors])
    CONSOLE.print(
        f"Reprojection error ({model_dir}): {len(errors)} views, per-view mean error median "
        f"{np.nanmedian(means):.2f} px, worst {np.nanmax(means):.2f} px ({errors[0].name})"
    )
    table = Table(title=f"The {min(WORST_VIEWS_SHOWN, len(errors))} worst views", title_justify="left")
    for column in ("view", "points", "mean px", "median px", "max px"):
        table.add_column(column, justify="left" if column == "view" else "right")
    for error in errors[:WORST_VIEWS_SHOWN]:
        table.add_row(
            error.name, str(error.num_points), f"{error.mean:.2f}", f"{error.median:.2f}", f"{error.max:.2f}"
        )
    CONSOLE.print(table)


def _draw(
    path: Path,
    poses: Float[np.ndarray, "num_cameras 3 4"],
    points: Optional[Float[np.ndarray, "num_points 3"]],
    colors: Optional[Float[np.ndarray, "num_points 3"]],
    object_radius: float,
    title: str,
) -> None:
    """Three orthographic views (x-y, x-z, y-z) of the normalized frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    origins, directions = poses[:, :, 3], -poses[:, :, 2]
    extent = 1.15 * max(1.0, float(np.abs(origins).max()))
    figure, axes = plt.subplots(1, 3, figsize=(15, 5.4))
    circle = np.linspace(0.0, 2.0 * np.pi, 200)
    for axis, (first, second) in zip(axes, ((0, 1), (0, 2), (1, 2))):
        if points is not None:
            axis.scatter(points[:, first], points[:, second], s=1.0, c=colors, alpha=0.6, linewidths=0)
        for radius, style, label in ((1.0, "k--", "unit sphere (the SDF's domain)"), (object_radius, "r-", "object")):
            axis.plot(radius * np.cos(circle), radius * np.sin(circle), style, linewidth=1.2, label=label)
        tips = origins + CAMERA_ARROW * directions
        for origin, tip in zip(origins, tips):
            axis.plot([origin[first], tip[first]], [origin[second], tip[second]], "b-", linewidth=0.8)
        axis.plot(origins[:, first], origins[:, second], "b.", markersize=4, label="cameras")
        axis.set_xlim(-extent, extent)
        axis.set_ylim(-extent, extent)
        axis.set_aspect("equal")
        axis.set_xlabel("xyz"[first])
        axis.set_ylabel("xyz"[second])
    axes[0].legend(loc="upper right", fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


@dataclass
class DatasetCheck:
    """Check a processed folder: COLMAP's per-view reprojection errors, and a picture (PNG) of the normalized cameras
    and spheres over the sparse points, as nero-shape will see them."""

    data: Path
    """The processed folder (transforms.json, images/, sparse_pc.ply, colmap/)."""
    output: Optional[Path] = None
    """The picture to write; default DATA/check.png."""
    colmap_model: Path = Path("colmap/sparse/0")
    """COLMAP's sparse model, relative to DATA (skipped when absent)."""

    @with_friendly_errors
    def main(self) -> Path:
        model_dir = self.data / self.colmap_model
        if (model_dir / "images.bin").exists():
            _print_errors(reprojection_errors(model_dir), model_dir)
            _print_camera_doubts(model_dir)
        else:
            CONSOLE.print(f"No COLMAP model at {model_dir}: reprojection errors skipped")

        outputs = NeroDataParserConfig(data=self.data, eval_mode="all").setup().get_dataparser_outputs("train")
        metadata: Dict = outputs.metadata
        poses = outputs.cameras.camera_to_worlds.numpy()
        points = colors = None
        summary = ""
        if "points3D_xyz" in metadata:
            points = metadata["points3D_xyz"].numpy()
            colors = metadata["points3D_rgb"].numpy() / 255.0
            summary = f"; {np.mean(np.linalg.norm(points, axis=-1) <= 1.0):.0%} of the sparse points in the unit sphere"
        distances = np.linalg.norm(poses[:, :, 3], axis=-1)
        center = ", ".join(f"{value:.3g}" for value in metadata["sphere_center"])
        title = (
            f"{self.data}: object sphere center ({center}), radius {metadata['sphere_radius']:.3g} in transforms.json's "
            f"frame{summary}; cameras {distances.min():.2f}-{distances.max():.2f} from the center (normalized)"
        )
        output = self.output or self.data / "check.png"
        _draw(output, poses, points, colors, metadata["object_radius"], title)
        CONSOLE.print(title)
        CONSOLE.print(f"[bold green]Wrote {output}[/bold green]: the red circle should hug the object's points")
        return output
