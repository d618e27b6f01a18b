"""The named scene set (`nero-synth --scene NAME --seed K`): every scene renders with ground truth that matches its
pictures, a name and a seed fix the scene, and the quick subset keeps the benchmarks' scenes of before."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import open3d as o3d
import pytest
import trimesh
from jaxtyping import Bool, Float

from nero_ns.errors import NeroInputError
from nero_ns.relight.assets import load_gt_assets
from nero_ns.synthetic import SyntheticSceneConfig, generate_scene
from nero_ns.synthetic.cli import parse_options
from nero_ns.synthetic.generator import camera_poses, environments
from nero_ns.synthetic.scene_set import SCENES, SUBSETS, resolve_scenes, scene_config, scenes_markdown

ROOT = Path(__file__).resolve().parents[2]
TEST_SIZE = dict(resolution=48, num_train_views=2, num_test_views=1, spp=4, num_points=300, envmap_height=64)
"""Small enough for a few seconds per scene; 48 px leaves the thin ring about 2.5 pixels across."""


def pixel_rays(c2w: Float[np.ndarray, "4 4"], meta: dict, subsamples: int) -> Float[np.ndarray, "h*s w*s 6"]:
    """Rays (origin, direction) through a grid of subsamples**2 points in every pixel of an OPENCV camera."""
    offsets = (np.arange(subsamples) + 0.5) / subsamples
    columns = (np.arange(meta["w"])[:, None] + offsets).reshape(-1)
    rows = (np.arange(meta["h"])[:, None] + offsets).reshape(-1)
    u, v = np.meshgrid(columns, rows)
    camera = np.stack([(u - meta["cx"]) / meta["fl_x"], -(v - meta["cy"]) / meta["fl_y"], -np.ones_like(u)], -1)
    directions = camera @ np.asarray(c2w)[:3, :3].T
    origins = np.broadcast_to(np.asarray(c2w)[:3, 3], directions.shape)
    return np.concatenate([origins, directions], -1).astype(np.float32)


def cast(mesh: trimesh.Trimesh, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hit distance (inf for a miss) and hit triangle of every ray, in the rays' image layout."""
    raycaster = o3d.t.geometry.RaycastingScene()
    raycaster.add_triangles(mesh.vertices.astype(np.float32), mesh.faces.astype(np.uint32))
    hits = raycaster.cast_rays(o3d.core.Tensor(rays.reshape(-1, 6)))
    return tuple(hits[name].numpy().reshape(rays.shape[:2]) for name in ("t_hit", "primitive_ids"))


def gt_silhouette(mesh: trimesh.Trimesh, c2w: np.ndarray, meta: dict, subsamples: int = 4) -> Bool[np.ndarray, "h w"]:
    """Pixels more than half covered by the GT mesh, as the generator thresholds its coverage renders."""
    hit = np.isfinite(cast(mesh, pixel_rays(c2w, meta, subsamples))[0])
    return hit.reshape(meta["h"], subsamples, meta["w"], subsamples).mean((1, 3)) >= 0.5


@pytest.mark.parametrize("name", list(SCENES))
def test_named_scene_generates_with_consistent_ground_truth(tmp_path: Path, name: str) -> None:
    """The GT mesh seen through every camera covers the rendered masks (IoU > 0.9), and the GT records the scene."""
    scene = generate_scene(scene_config(name, seed=1, output_dir=tmp_path / name, **TEST_SIZE))
    materials = json.loads((scene / "gt" / "materials.json").read_text())
    assert materials["scene"] == name and materials["shape"] == SCENES[name].options["shape"]
    mesh = trimesh.load(scene / "gt" / "mesh.ply", process=False)
    assert mesh.is_watertight
    for folder in ("", "gt/test", "gt/relight"):
        meta = json.loads((scene / folder / "transforms.json").read_text())
        for frame in meta["frames"]:
            mask = iio.imread(scene / folder / frame["mask_path"]) == 255
            silhouette = gt_silhouette(mesh, frame["transform_matrix"], meta)
            iou = (mask & silhouette).sum() / (mask | silhouette).sum()
            assert iou > 0.9, (folder, frame["file_path"], iou)


def test_two_material_ground_truth_matches_the_render(tmp_path: Path) -> None:
    """Where the GT says blue dielectric the relit photo is bluer than where it says copper metal: the per-vertex
    GT (gt/*.npy, read by load_gt_assets) is the material that was rendered, vertex for vertex."""
    scene = generate_scene(scene_config("thin-knot", output_dir=tmp_path / "scene", **{**TEST_SIZE, "resolution": 64}))
    gt = load_gt_assets(scene / "gt")
    assert gt.per_vertex and set(np.unique(gt.metallic)) == {0.0, 1.0}
    second = np.asarray(gt.metallic) == 0.0
    assert 0.3 < second.mean() < 0.7
    meta = json.loads((scene / "gt" / "relight" / "transforms.json").read_text())
    frame = meta["frames"][0]
    distance, faces = cast(gt.mesh, pixel_rays(frame["transform_matrix"], meta, subsamples=1))
    hit = np.isfinite(distance)
    face_second = second[gt.mesh.faces[faces[hit]]]
    pixels = (iio.imread(scene / "gt" / "relight" / frame["file_path"]) / 255.0)[hit]
    blueness = pixels[:, 2] - pixels[:, 0]
    on_second, on_first = face_second.all(-1), ~face_second.any(-1)
    assert on_second.sum() > 20 and on_first.sum() > 20
    assert blueness[on_second].mean() > blueness[on_first].mean() + 0.1


def test_name_and_seed_fix_the_scene() -> None:
    """Same name and seed: same options, cameras and light; another seed: other cameras and light, same object."""
    small = dict(num_train_views=4, num_test_views=2, envmap_height=32)
    for name in SCENES:
        first, again, other = (scene_config(name, seed, **small) for seed in (0, 0, 1))
        assert first == again and dataclasses.replace(other, seed=0) == first
        for one, two in zip(camera_poses(first) + environments(first), camera_poses(again) + environments(again)):
            np.testing.assert_array_equal(one, two)
        for one, two in zip(camera_poses(first) + environments(first), camera_poses(other) + environments(other)):
            assert np.abs(one - two).max() > 0.1, name


def test_subsets_and_the_benchmarks_scenes_of_before() -> None:
    """quick holds 2-3 scenes, among them the knot and the blob as the benchmarks generated them before the scene set
    (so old figures compare); full holds at least 8; --scenes accepts a subset or names, and rejects unknown ones."""
    assert 2 <= len(SUBSETS["quick"]) <= 3 and len(SUBSETS["full"]) >= 8
    assert set(SUBSETS["quick"]) <= set(SUBSETS["full"]) <= set(SCENES)
    before = {
        "metal-knot": dict(shape="knot", metallic=1.0, roughness=0.1, base_color=(0.95, 0.7, 0.4)),
        "glossy-blob": dict(shape="blob", metallic=0.0, roughness=0.1, base_color=(0.2, 0.45, 0.8)),
    }
    for name, options in before.items():
        assert name in SUBSETS["quick"]
        assert scene_config(name) == SyntheticSceneConfig(scene=name, **options)
    assert resolve_scenes("quick") == list(SUBSETS["quick"])
    assert resolve_scenes("thin-ring,metal-knot") == ["thin-ring", "metal-knot"]
    for bad in ("thin-ring,nope", ""):
        with pytest.raises(NeroInputError, match="--scenes"):
            resolve_scenes(bad)


def test_named_scene_in_the_generator_writes_what_the_old_options_wrote(tmp_path: Path) -> None:
    """--scene metal-knot renders the same bytes as the options the benchmarks passed before (only the GT's
    materials.json differs: it names the scene)."""
    size = dict(resolution=24, num_train_views=2, num_test_views=1, spp=4, num_points=200)
    named = generate_scene(scene_config("metal-knot", output_dir=tmp_path / "named", **size))
    explicit = generate_scene(SyntheticSceneConfig(
        output_dir=tmp_path / "explicit", shape="knot", metallic=1.0, roughness=0.1, base_color=(0.95, 0.7, 0.4),
        **size,
    ))
    files = sorted(path.relative_to(named) for path in named.rglob("*") if path.is_file())
    assert files == sorted(path.relative_to(explicit) for path in explicit.rglob("*") if path.is_file())
    differing = [str(path) for path in files if (named / path).read_bytes() != (explicit / path).read_bytes()]
    assert differing == ["gt/materials.json"]
    assert "scene" not in json.loads((explicit / "gt" / "materials.json").read_text())


def test_command_line_options_override_the_named_scene(tmp_path: Path) -> None:
    config = parse_options(["--scene", "thin-ring", "--seed", "3", "--roughness", "0.5", "--output-dir", "x"])
    assert config == scene_config("thin-ring", seed=3, roughness=0.5, output_dir=Path("x"))
    assert parse_options(["--output-dir", "x"]) == SyntheticSceneConfig(output_dir=Path("x"))
    with pytest.raises(NeroInputError, match="unknown scene"):
        parse_options(["--scene", "nope"])


def test_scene_list_in_the_docs_is_the_registry() -> None:
    """docs/scenes.md is what scene_set.py writes (regenerate it with `python -m nero_ns.synthetic.scene_set`)."""
    assert (ROOT / "docs" / "scenes.md").read_text() == scenes_markdown()
