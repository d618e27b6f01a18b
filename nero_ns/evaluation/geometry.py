"""Geometry metrics of a reconstructed mesh against a ground-truth mesh: Chamfer, normal error, F-score.

Both surfaces are sampled uniformly by area (`num_points` each, the same seed for both, so a mesh against itself
scores exactly 0), and nearest neighbours are found with a k-d tree. Distances are in units of R, the radius of
the ground truth's minimum bounding sphere, so scores compare across objects of any size:
- accuracy: mean distance from predicted samples to the nearest GT sample / R;
- completeness: mean distance from GT samples to the nearest predicted sample / R;
- chamfer: (accuracy + completeness) / 2;
- precision / recall: fraction of predicted / GT samples within `threshold` * R of the other surface;
  fscore: their harmonic mean;
- normal error: angle in degrees between the face normals of nearest-neighbour pairs, averaged over both
  directions. Oriented by default (a surface with flipped winding scores 180); `unsigned_normals` measures the
  angle between the normal lines instead (at most 90), for meshes whose winding is not consistent.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import trimesh
from jaxtyping import Float
from rich.table import Table
from scipy.spatial import cKDTree

from nerfstudio.utils.rich_utils import CONSOLE

from nero_ns.errors import NeroInputError, friendly_errors
from nero_ns.io.meshes import load_mesh


@dataclass
class GeometryMetrics:
    """Scores of one mesh against the ground truth; distances in units of the GT bounding-sphere radius."""

    chamfer: float
    accuracy: float
    completeness: float
    normal_error_deg: float
    precision: float
    recall: float
    fscore: float
    threshold: float
    gt_radius: float
    """Radius R of the GT's minimum bounding sphere, in the meshes' own units (multiply distances by it)."""


def geometry_metrics(
    mesh: trimesh.Trimesh,
    gt: trimesh.Trimesh,
    num_points: int = 100_000,
    threshold: float = 0.01,
    seed: int = 0,
    unsigned_normals: bool = False,
) -> GeometryMetrics:
    """Chamfer, normal error and F-score of `mesh` against `gt` (see the module docstring for definitions)."""
    _, gt_radius = trimesh.nsphere.minimum_nsphere(gt)
    points, normals = sample_surface(mesh, num_points, seed)
    gt_points, gt_normals = sample_surface(gt, num_points, seed)
    to_gt_distance, to_gt_index = cKDTree(gt_points).query(points)
    to_mesh_distance, to_mesh_index = cKDTree(points).query(gt_points)
    to_gt_distance, to_mesh_distance = to_gt_distance / gt_radius, to_mesh_distance / gt_radius
    cosines = np.concatenate(
        [
            np.sum(normals * gt_normals[to_gt_index], axis=-1),
            np.sum(gt_normals * normals[to_mesh_index], axis=-1),
        ]
    )
    if unsigned_normals:
        cosines = np.abs(cosines)
    accuracy, completeness = float(to_gt_distance.mean()), float(to_mesh_distance.mean())
    precision, recall = float((to_gt_distance < threshold).mean()), float((to_mesh_distance < threshold).mean())
    return GeometryMetrics(
        chamfer=(accuracy + completeness) / 2.0,
        accuracy=accuracy,
        completeness=completeness,
        normal_error_deg=float(np.degrees(np.arccos(np.clip(cosines, -1.0, 1.0))).mean()),
        precision=precision,
        recall=recall,
        fscore=2.0 * precision * recall / (precision + recall) if precision + recall > 0.0 else 0.0,
        threshold=threshold,
        gt_radius=float(gt_radius),
    )


def sample_surface(
    mesh: trimesh.Trimesh, num_points: int, seed: int
) -> Tuple[Float[np.ndarray, "num_points 3"], Float[np.ndarray, "num_points 3"]]:
    """Points uniform by area on the mesh, with the unit normals of the faces they lie on."""
    points, face_index = trimesh.sample.sample_surface(mesh, num_points, seed=seed)
    return np.asarray(points), mesh.face_normals[face_index]


@dataclass
class GeometryEvaluation:
    """Chamfer distance, normal error and F-score of a mesh against a ground-truth mesh."""

    mesh: Path
    """Reconstructed mesh (e.g. from `ns-export nero-mesh`), in the same frame as the ground truth."""
    gt: Path
    """Ground-truth mesh."""
    num_points: int = 100_000
    """Points sampled on each surface."""
    threshold: float = 0.01
    """F-score distance threshold, as a fraction of the GT bounding-sphere radius."""
    seed: int = 0
    """Seed of the surface sampling."""
    unsigned_normals: bool = False
    """Ignore normal orientation (for meshes with inconsistent winding)."""
    json: Optional[Path] = None
    """Also write the metrics to this JSON file."""

    def main(self) -> None:
        """Compute, print as a table, optionally write JSON."""
        with friendly_errors():
            if self.num_points < 1 or self.threshold <= 0.0:
                raise NeroInputError(
                    f"--num-points {self.num_points} / --threshold {self.threshold}: both must be positive"
                )
            metrics = geometry_metrics(
                load_mesh(self.mesh), load_mesh(self.gt), self.num_points, self.threshold, self.seed,
                self.unsigned_normals,
            )
        table = Table(title=f"{self.mesh} vs {self.gt}")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for name, value in asdict(metrics).items():
            table.add_row(name, f"{value:.6g}")
        CONSOLE.print(table)
        if self.json is not None:
            self.json.parent.mkdir(parents=True, exist_ok=True)
            record = {"mesh": str(self.mesh), "gt": str(self.gt), "num_points": self.num_points, "seed": self.seed}
            self.json.write_text(json.dumps({**record, **asdict(metrics)}, indent=2))
            CONSOLE.print(f"Wrote {self.json}")
