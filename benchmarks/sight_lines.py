"""How much of what the cameras saw does a mesh hide? A measure of surfaces that stand where the photos show empty
space (a membrane across a hole, a fused loop), which Chamfer distance weighs little.

    python benchmarks/sight_lines.py --scene SCENE --meshes RUN1/mesh.ply RUN2/mesh.ply

A sight line joins a training camera of a generated scene to one of its sparse points (sparse_pc.ply) that lies on the
GT surface and that the camera sees: the first GT surface on the line, seen within 60 degrees of its normal. A mesh
blocks the line when it crosses it more than `margin` (in GT radii) before the point. Prints, per mesh, the sight
lines and the share blocked (0 for the GT mesh itself), and writes benchmarks/results/sight_lines/<date>-<commit>.json
and .md (common.write_results).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import open3d as o3d
import trimesh
import tyro
from common import markdown_table, print_table, run_record, write_results
from jaxtyping import Bool, Float

from nero_ns.datamanagers.input_files import read_point_cloud
from nero_ns.evaluation.materials import raycasting_scene
from nero_ns.io.meshes import load_mesh
from nero_ns.relight import read_transforms_cameras

ON_SURFACE = 0.02
"""Sparse points farther than this from the GT surface (GT radii) are outliers and make no sight line."""
MIN_COSINE = 0.5
"""A camera sees a point only within 60 degrees of the surface normal (grazing lines are too sensitive to offsets)."""


def _first_hits(raycaster: o3d.t.geometry.RaycastingScene, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
    rays = np.concatenate([np.broadcast_to(origin, directions.shape), directions], axis=-1).astype(np.float32)
    return raycaster.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()


@dataclass
class SightLines:
    """Sight lines from cameras to the surface points they see, against the GT mesh."""

    gt: trimesh.Trimesh
    points: Float[np.ndarray, "num_points 3"]
    camera_centers: Float[np.ndarray, "num_cameras 3"]

    def __post_init__(self) -> None:
        gt_raycaster = raycasting_scene(self.gt)
        _, self.radius = trimesh.nsphere.minimum_nsphere(self.gt)
        distance = gt_raycaster.compute_distance(o3d.core.Tensor(self.points.astype(np.float32))).numpy()
        self.points = self.points[distance < ON_SURFACE * self.radius]
        closest = gt_raycaster.compute_closest_points(o3d.core.Tensor(self.points.astype(np.float32)))
        normals = self.gt.face_normals[closest["primitive_ids"].numpy().astype(np.int64)]
        self.seen = np.stack([self._seen_from(center, gt_raycaster, normals) for center in self.camera_centers])

    def _lines(self, center: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        offsets = self.points - center
        lengths = np.linalg.norm(offsets, axis=-1)
        return offsets / lengths[:, None], lengths

    def _seen_from(self, center: np.ndarray, gt_raycaster, normals: np.ndarray) -> Bool[np.ndarray, "num_points"]:
        directions, lengths = self._lines(center)
        facing = -(normals * directions).sum(-1) > MIN_COSINE
        return facing & (_first_hits(gt_raycaster, center, directions) > lengths - ON_SURFACE * self.radius)

    def blocked_fraction(self, mesh: trimesh.Trimesh, margin: float) -> float:
        """Share of the sight lines that `mesh` crosses more than `margin` GT radii before their point."""
        raycaster, blocked = raycasting_scene(mesh), 0
        for center, seen in zip(self.camera_centers, self.seen):
            directions, lengths = self._lines(center)
            hits = _first_hits(raycaster, center, directions[seen])
            blocked += int((hits < lengths[seen] - margin * self.radius).sum())
        return blocked / max(int(self.seen.sum()), 1)


def scene_sight_lines(scene: Path) -> SightLines:
    """The sight lines of a scene written by nero-synth: its training cameras and sparse points, its GT mesh."""
    centers = np.stack([view.c2w[:3, 3] for view in read_transforms_cameras(scene / "transforms.json")])
    points, _ = read_point_cloud(scene / "sparse_pc.ply")
    return SightLines(load_mesh(scene / "gt" / "mesh.ply"), points.astype(np.float64), centers)


@dataclass
class SightLineCheck:
    """Share of the scene's sight lines each mesh blocks."""

    scene: Path
    """Scene written by nero-synth (transforms.json, sparse_pc.ply, gt/mesh.ply)."""
    meshes: Tuple[Path, ...]
    """Meshes in the scene's frame (as `ns-export nero-mesh` writes them)."""
    margin: float = 0.1
    """How far before its point (GT radii) a mesh must cross a sight line to block it."""
    results_dir: Optional[Path] = None
    """Where <date>-<commit>.json and .md go; None: benchmarks/results/sight_lines."""

    def main(self) -> Dict:
        run_record()
        lines = scene_sight_lines(self.scene)
        rows = [
            {"mesh": str(path), "blocked": lines.blocked_fraction(load_mesh(path), self.margin)} for path in self.meshes
        ]
        header = ["mesh", "blocked sight lines"]
        cells = [[row["mesh"], f"{100 * row['blocked']:.1f}%"] for row in rows]
        caption = f"{int(lines.seen.sum())} sight lines to {len(lines.points)} surface points, margin {self.margin} R"
        print_table(f"sight lines of {self.scene}", header, cells, caption)
        results = {**run_record(), "scene": str(self.scene), "margin": self.margin,
                   "sight_lines": int(lines.seen.sum()), "rows": rows}
        text = f"# Sight lines blocked, {results['date']}, commit {results['commit']}\n\n`{results['command']}`\n\n"
        text += caption + "\n\n" + markdown_table(header, cells) + "\n"
        write_results("sight_lines", results, text, self.results_dir, False, self.scene)
        return results


if __name__ == "__main__":
    tyro.cli(SightLineCheck).main()
