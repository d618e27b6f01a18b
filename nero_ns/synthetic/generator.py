"""Write a generated glossy scene to disk as a nerfstudio dataset plus ground truth (see the package docstring)."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import imageio.v3 as iio
import mitsuba as mi
import numpy as np
import trimesh
from jaxtyping import Float, UInt8
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from scipy import ndimage

from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.colors import linear_to_srgb
from nero_ns.io.hdr import write_exr
from nero_ns.io.latlong import ENVMAP_CONVENTION, sample_latlong
from nero_ns.relight.assets import MaterialAssets, write_attribute_ply
from nero_ns.synthetic.cameras import PinholeIntrinsics, camera_distance_for_fill, orbit_cameras
from nero_ns.synthetic.config import FloorStyle, SyntheticSceneConfig
from nero_ns.synthetic.envmap import procedural_environment
from nero_ns.synthetic.render import (
    MASK_SPP,
    DiffuseMesh,
    Floor,
    SceneLayout,
    coverage_scene,
    render_view,
    select_variant,
    shaded_scene,
)
from nero_ns.synthetic.shapes import make_shape

CAMERA_CONVENTION = (
    "transform_matrix is camera-to-world in the world frame (z up), OpenGL/nerfstudio camera: x right, y up, "
    "looking down -z; OPENCV pinhole, principal point at the image center, pixel (i, j) spans [i, i+1]x[j, j+1]"
)
# Independent random streams, so that toggling one option (e.g. --no-floor) leaves everything else unchanged.
STREAM_ENV_TRAIN, STREAM_ENV_RELIGHT, STREAM_TRAIN_CAMERAS, STREAM_TEST_CAMERAS = 0, 1, 2, 3
STREAM_FLOOR, STREAM_DISTRACTORS, STREAM_POINTS = 4, 5, 6
STRIPE_WIDTH = 0.4
"""Height of each band of --material-pattern stripes, in object radii."""
NEWER_OPTIONS = ("scene", "environment", "floor", "material_pattern")
"""Options younger than gt/materials.json's format: recorded there only when they differ from their defaults, so
that a scene of the older options keeps its exact files."""


@dataclass
class RenderJob:
    """One folder of renders: which scene, which cameras, where the images and masks go."""

    name: str
    folder: Path
    poses: Float[np.ndarray, "n 4 4"]
    scene: "mi.Scene"
    coverage_scene: Optional["mi.Scene"]
    """Renders to the object's pixel coverage, thresholded into masks; None writes no masks."""


def _stream(config: SyntheticSceneConfig, stream: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, stream])


def _to_uint8(image: Float[np.ndarray, "h w c"]) -> UInt8[np.ndarray, "h w c"]:
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def _floor_texture(
    rng: np.random.Generator, style: FloorStyle, size: int = 512, cells: int = 16
) -> Float[np.ndarray, "size size 3"]:
    """noise-checker: a checkerboard modulated by multi-scale colored noise and speckles; it reads as a checkered
    floor, but no two patches look alike, so feature matchers (COLMAP's SIFT) find distinctive, non-repeating
    points on it. checker: the plain checkerboard (repeating: ambiguous for matchers). plain: one albedo."""
    tint = rng.uniform(0.85, 1.15, 3)
    if style == "plain":
        return np.broadcast_to(rng.uniform(0.3, 0.5) * tint, (size, size, 3)).copy()
    dark, light = rng.uniform(0.08, 0.15) * tint, rng.uniform(0.45, 0.65) * tint
    coordinates = (np.arange(size) + 0.5) / size
    parity = (np.floor(coordinates[:, None] * cells) + np.floor(coordinates[None, :] * cells)) % 2
    texture = np.where(parity[..., None] == 0, dark, light)
    if style == "checker":
        return texture
    noise = np.zeros((size, size, 3))
    for octave, grid in enumerate((4, 8, 16, 32, 64)):
        coarse = rng.uniform(-1.0, 1.0, (grid, grid, 3))
        noise += ndimage.zoom(coarse, (size / grid, size / grid, 1), order=1)[:size, :size] * 0.5**octave
    texture = texture * np.exp(0.9 * noise)
    speckles = rng.integers(0, size - 2, (3000, 2))
    for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1)):
        texture[speckles[:, 0] + dy, speckles[:, 1] + dx] = rng.uniform(0.0, 0.9, (3000, 3))
    return np.clip(texture, 0.0, 0.95)


def _floor(config: SyntheticSceneConfig, lowest_point: float) -> Floor:
    return Floor(
        center_xy=(config.object_center[0], config.object_center[1]),
        height=lowest_point - 0.01 * config.object_radius,
        half_size=6.0 * config.object_radius,
        texture=_floor_texture(_stream(config, STREAM_FLOOR), config.floor),
    )


def _distractor_meshes(config: SyntheticSceneConfig, ground_height: float) -> List[tuple[trimesh.Trimesh, tuple]]:
    """A box, a ball and a tall cylinder standing on the ground 2.4-3.0 radii from the object center: low enough
    that they never cut the line of sight from a camera at 15 degrees or more to the object's bounding sphere."""
    rng = _stream(config, STREAM_DISTRACTORS)
    radius = config.object_radius
    unit_shapes = [
        trimesh.creation.box(extents=[0.6, 0.6, 0.6]),
        trimesh.creation.icosphere(subdivisions=3, radius=0.35),
        trimesh.creation.cylinder(radius=0.25, height=0.8, sections=32),
    ]
    start = rng.uniform(0.0, 2.0 * np.pi)
    meshes = []
    for index, mesh in enumerate(unit_shapes):
        azimuth = start + index * 2.0 * np.pi / 3.0 + rng.uniform(-0.4, 0.4)
        distance = rng.uniform(2.4, 3.0) * radius
        mesh.apply_transform(trimesh.transformations.rotation_matrix(rng.uniform(0, np.pi), [0, 0, 1]))
        mesh.apply_scale(radius)
        mesh.apply_translation(
            [
                config.object_center[0] + distance * np.cos(azimuth),
                config.object_center[1] + distance * np.sin(azimuth),
                ground_height - mesh.bounds[0, 2],
            ]
        )
        meshes.append((mesh, tuple(rng.uniform(0.15, 0.8, 3).tolist())))
    return meshes


def _floor_albedo(floor: Floor, points_xy: Float[np.ndarray, "n 2"]) -> Float[np.ndarray, "n 3"]:
    uv = np.clip((points_xy - np.asarray(floor.center_xy)) / (2.0 * floor.half_size) + 0.5, 0.0, 1.0 - 1e-9)
    height, width = floor.texture.shape[:2]
    rows, columns = ((1.0 - uv[:, 1]) * height).astype(int), (uv[:, 0] * width).astype(int)
    return floor.texture[rows, columns]


def sparse_points(
    config: SyntheticSceneConfig,
    materials: MaterialAssets,
    floor: Optional[Floor],
    distractors: List[tuple[trimesh.Trimesh, tuple]],
    environment: Float[np.ndarray, "h w 3"],
) -> tuple[Float[np.ndarray, "n 3"], UInt8[np.ndarray, "n 3"]]:
    """COLMAP-like points: the object surface with noise of 0.5% of its radius, plus ~10% outliers on the floor,
    the distractors and far away in the background. Colors are sRGB albedo (background: environment radiance)."""
    rng = _stream(config, STREAM_POINTS)
    radius, center = config.object_radius, np.asarray(config.object_center)
    surface, faces = trimesh.sample.sample_surface(materials.mesh, config.num_points, seed=rng)
    surface = surface + rng.normal(0.0, 0.005 * radius, surface.shape)
    albedo = materials.vertex_albedo()[materials.mesh.faces[faces, 0]]
    surface_colors = albedo * rng.uniform(0.6, 1.0, (len(surface), 1))

    weights = {"floor": 0.5 if floor else 0.0, "distractors": 0.25 if distractors else 0.0, "background": 0.25}
    total_weight = sum(weights.values())
    num_outliers = int(round(config.num_points / 9.0))
    counts = {name: int(round(num_outliers * weight / total_weight)) for name, weight in weights.items()}
    points, colors = [surface], [surface_colors]
    if floor is not None:
        angle = rng.uniform(0.0, 2.0 * np.pi, counts["floor"])
        distance = 4.0 * radius * np.sqrt(rng.uniform(0.0, 1.0, counts["floor"]))
        xy = center[:2] + np.stack([np.cos(angle), np.sin(angle)], -1) * distance[:, None]
        points.append(np.concatenate([xy, np.full((len(xy), 1), floor.height)], -1))
        colors.append(_floor_albedo(floor, xy))
    if distractors:
        merged = trimesh.util.concatenate([mesh for mesh, _ in distractors])
        face_colors = np.concatenate([np.tile(color, (len(mesh.faces), 1)) for mesh, color in distractors])
        on_distractors, face_index = trimesh.sample.sample_surface(merged, counts["distractors"], seed=rng)
        points.append(on_distractors)
        colors.append(face_colors[face_index])
    direction = rng.normal(size=(counts["background"], 3))
    direction[:, 2] = np.abs(direction[:, 2])
    direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
    points.append(center + direction * rng.uniform(6.0, 12.0, (len(direction), 1)) * radius)
    colors.append(sample_latlong(environment, direction))
    return np.concatenate(points), _to_uint8(linear_to_srgb(np.concatenate(colors)))


def _write_transforms(
    path: Path, intrinsics: PinholeIntrinsics, poses: np.ndarray, with_masks: bool, ply_file: Optional[str] = None
) -> None:
    """A nerfstudio transforms.json for `poses`, naming images/ (and masks/) frames in order."""
    frames = []
    for index, pose in enumerate(poses):
        frame = {"file_path": f"images/frame_{index:05d}.png", "transform_matrix": pose.tolist()}
        if with_masks:
            frame["mask_path"] = f"masks/frame_{index:05d}.png"
        frames.append(frame)
    transforms = {**intrinsics.as_transforms_fields(), "frames": frames}
    if ply_file is not None:
        transforms["ply_file_path"] = ply_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(transforms, indent=2))


def _render_jobs(jobs: List[RenderJob], intrinsics: PinholeIntrinsics, spp: int, seed: int) -> None:
    """Render every job's views to sRGB PNGs (and masks) under one progress bar; render seeds follow `seed`."""
    total = sum(len(job.poses) for job in jobs)
    columns = (
        TextColumn("[bold blue]{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    render_index = 0
    with Progress(*columns, console=CONSOLE) as progress:
        task = progress.add_task("Rendering", total=total)
        for job in jobs:
            progress.update(task, description=job.name)
            (job.folder / "images").mkdir(parents=True, exist_ok=True)
            if job.coverage_scene is not None:
                (job.folder / "masks").mkdir(parents=True, exist_ok=True)
            for index, pose in enumerate(job.poses):
                render_seed = (seed * 1_000_003 + render_index) % 2**32
                render_index += 1
                image = render_view(job.scene, pose, intrinsics, spp, render_seed)
                iio.imwrite(job.folder / "images" / f"frame_{index:05d}.png", _to_uint8(linear_to_srgb(image)))
                if job.coverage_scene is not None:
                    coverage = render_view(job.coverage_scene, pose, intrinsics, MASK_SPP, render_seed)[..., 0]
                    mask = np.where(coverage >= 0.5, 255, 0).astype(np.uint8)
                    iio.imwrite(job.folder / "masks" / f"frame_{index:05d}.png", mask)
                progress.advance(task)


def object_materials(config: SyntheticSceneConfig, object_mesh: trimesh.Trimesh) -> MaterialAssets:
    """The object's materials: the constants, or per vertex (stripes: bands of height STRIPE_WIDTH radii across
    the world z axis alternate the first and the second material)."""
    if config.material_pattern == "uniform":
        return MaterialAssets(object_mesh, config.base_color, config.roughness, config.metallic)
    height = (object_mesh.vertices[:, 2] - config.object_center[2]) / config.object_radius
    second = (np.floor(height / STRIPE_WIDTH) % 2 == 1)[:, None]
    albedo = np.where(second, config.second_base_color, config.base_color)
    roughness = np.where(second[:, 0], config.second_roughness, config.roughness)
    metallic = np.where(second[:, 0], config.second_metallic, config.metallic)
    return MaterialAssets(object_mesh, albedo, roughness, metallic)


def camera_poses(config: SyntheticSceneConfig) -> tuple[Float[np.ndarray, "n 4 4"], Float[np.ndarray, "m 4 4"]]:
    """Training and held-out camera-to-world poses, orbiting the object."""
    center, radius = np.asarray(config.object_center, dtype=np.float64), float(config.object_radius)
    distance = camera_distance_for_fill(radius, config.fov_x_deg, config.fill_fraction)
    train_poses, test_poses = (
        orbit_cameras(_stream(config, stream), count, center, radius, distance, config.elevation_range_deg)
        for stream, count in (
            (STREAM_TRAIN_CAMERAS, config.num_train_views),
            (STREAM_TEST_CAMERAS, config.num_test_views),
        )
    )
    return train_poses, test_poses


def environments(config: SyntheticSceneConfig) -> tuple[Float[np.ndarray, "h w 3"], Float[np.ndarray, "h w 3"]]:
    """The training environment (config.environment) and the relighting one (dusk, its own stream)."""
    return (
        procedural_environment(_stream(config, STREAM_ENV_TRAIN), config.envmap_height, config.environment),
        procedural_environment(_stream(config, STREAM_ENV_RELIGHT), config.envmap_height, "dusk"),
    )


def generate_scene(config: SyntheticSceneConfig) -> Path:
    """Render the configured scene into `config.output_dir` and return that folder."""
    config.validate()
    variant = select_variant(config.variant)
    mi.set_variant(variant)
    output_dir = Path(config.output_dir)
    gt_dir = output_dir / "gt"
    gt_dir.mkdir(parents=True, exist_ok=True)
    center, radius = np.asarray(config.object_center, dtype=np.float64), float(config.object_radius)

    object_mesh = make_shape(config.shape)
    object_mesh.apply_scale(radius)
    object_mesh.apply_translation(center)
    object_mesh.export(gt_dir / "mesh.ply", vertex_normal=True)

    materials = object_materials(config, object_mesh)
    if materials.per_vertex:
        for name in ("albedo", "roughness", "metallic"):
            np.save(gt_dir / f"{name}.npy", np.asarray(getattr(materials, name), dtype=np.float32))

    env_train, env_relight = environments(config)
    write_exr(gt_dir / "env_train.exr", env_train)
    write_exr(gt_dir / "env_relight.exr", env_relight)

    lowest_point = float(object_mesh.vertices[:, 2].min())
    floor = _floor(config, lowest_point) if config.floor != "none" else None
    distractors = _distractor_meshes(config, floor.height if floor else lowest_point) if config.distractors else []

    intrinsics = PinholeIntrinsics(config.resolution, config.resolution, config.fov_x_deg)
    train_poses, test_poses = camera_poses(config)

    with tempfile.TemporaryDirectory(prefix="nero-synth-") as scratch:
        distractor_files = []
        for index, (mesh, color) in enumerate(distractors):
            mesh.export(Path(scratch) / f"distractor_{index}.ply")
            distractor_files.append(DiffuseMesh(Path(scratch) / f"distractor_{index}.ply", color))
        rendered_mesh = gt_dir / "mesh.ply"
        if materials.per_vertex:
            rendered_mesh = Path(scratch) / "object.ply"
            write_attribute_ply(rendered_mesh, materials)
        layout = SceneLayout(
            rendered_mesh, config.base_color, config.metallic, config.roughness, floor, distractor_files,
            vertex_materials=materials.per_vertex,
        )
        train_scene = shaded_scene(layout, gt_dir / "env_train.exr", with_surroundings=True)
        relight_scene = shaded_scene(layout, gt_dir / "env_relight.exr", with_surroundings=False)
        # Ground-truth views always carry masks (evaluation needs them); --no-masks only drops the training masks.
        occluded_coverage = coverage_scene(layout, with_surroundings=True)
        object_coverage = coverage_scene(layout, with_surroundings=False)
        jobs = [
            RenderJob(
                "train views", output_dir, train_poses, train_scene, occluded_coverage if config.masks else None
            ),
            RenderJob("test views", gt_dir / "test", test_poses, train_scene, occluded_coverage),
            RenderJob("relight views", gt_dir / "relight", test_poses, relight_scene, object_coverage),
        ]
        _render_jobs(jobs, intrinsics, config.spp, config.seed)

    ply_file = None
    if config.points:
        xyz, rgb = sparse_points(config, materials, floor, distractors, env_train)
        trimesh.PointCloud(xyz, colors=rgb).export(output_dir / "sparse_pc.ply")
        ply_file = "sparse_pc.ply"
    _write_transforms(output_dir / "transforms.json", intrinsics, train_poses, config.masks, ply_file)
    _write_transforms(gt_dir / "test" / "transforms.json", intrinsics, test_poses, with_masks=True)
    _write_transforms(gt_dir / "relight" / "transforms.json", intrinsics, test_poses, with_masks=True)

    description = {
        "shape": config.shape,
        "base_color": list(config.base_color),
        "metallic": config.metallic,
        "roughness": config.roughness,
        "bsdf": "Mitsuba 3 principled: specular 0.5 (dielectric F0 0.04), no sheen, clearcoat or anisotropy",
        "object_center": center.tolist(),
        "object_radius": radius,
        "up_axis": [0.0, 0.0, 1.0],
        "floor_height": floor.height if floor else None,
        "num_distractors": len(distractors),
        "envmap_train": "env_train.exr",
        "envmap_relight": "env_relight.exr",
        "envmap_convention": ENVMAP_CONVENTION,
        "camera_convention": CAMERA_CONVENTION,
        "relight": "gt/relight: the object alone (no floor, no distractors) under env_relight.exr, test cameras",
        "spp": config.spp,
        "seed": config.seed,
        "mitsuba_variant": variant,
    }
    defaults = SyntheticSceneConfig()
    description.update(
        {name: getattr(config, name) for name in NEWER_OPTIONS if getattr(config, name) != getattr(defaults, name)}
    )
    if materials.per_vertex:
        description["second_material"] = {
            "base_color": list(config.second_base_color),
            "metallic": config.second_metallic,
            "roughness": config.second_roughness,
        }
        description["per_vertex_materials"] = (
            f"albedo.npy [V, 3], roughness.npy [V], metallic.npy [V]: the value at each vertex of mesh.ply (bands of "
            f"{STRIPE_WIDTH} radii in world z alternate the two materials); base_color, metallic, roughness above "
            "are the first material"
        )
    (gt_dir / "materials.json").write_text(json.dumps(description, indent=2))
    CONSOLE.print(f"[bold green]Wrote {config.shape} scene ({variant}) to {output_dir}")
    return output_dir
