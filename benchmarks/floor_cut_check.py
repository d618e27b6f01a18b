"""What cutting at the floor does to a long run's mesh: scores the raw marching-cubes meshes that
`benchmarks/gpu_check.py` keeps (OUT/mesh-<run>.npz) as exported without a cut and cut at several heights above the
plane that `find_support_plane` fits to the scene's sparse points.

    python benchmarks/floor_cut_check.py --scene SCENE --meshes OUT/mesh-rays512.npz OUT/mesh-rays4096.npz

The cut here drops the faces with a vertex below the cut height (the export's cut is a CSG intersection of the SDF,
which also closes the base; both remove the same surface). Prints Chamfer / accuracy / completeness / F@0.01 per
mesh and height, and writes benchmarks/results/floor_cut/<date>-<commit>.json and .md (common.write_results).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch
import trimesh
import tyro
from common import markdown_table, print_table, run_record, write_results

from nero_ns.components.support_plane import find_support_plane
from nero_ns.datamanagers.normalization import denormalize_points, normalize_points
from nero_ns.evaluation.geometry import geometry_metrics
from nero_ns.exporters.mesh_export import clean_mesh
from nero_ns.io.meshes import load_mesh


@dataclass
class FloorCutCheck:
    """Score kept marching-cubes meshes with and without the floor cut."""

    scene: Path
    """Generated scene of the runs: sparse_pc.ply and gt/mesh.ply."""
    meshes: Tuple[Path, ...]
    """mesh-<run>.npz files written by gpu_check.py (normalized-frame vertices, faces, dataparser transform)."""
    margins: Tuple[float, ...] = (0.0, 0.02, 0.03, 0.04, 0.06)
    """Cut heights above the fitted plane (normalized frame)."""
    num_points: int = 100_000
    """Surface samples per mesh for the scores."""
    results_dir: Optional[Path] = None
    """Where <date>-<commit>.json and .md go; None: benchmarks/results/floor_cut."""


def main(config: FloorCutCheck) -> None:
    run_record()  # the commit and command that train, recorded before anything runs
    gt = load_mesh(config.scene / "gt" / "mesh.ply")
    points = torch.tensor(np.asarray(trimesh.load(config.scene / "sparse_pc.ply").vertices), dtype=torch.float32)
    rows = []
    for path in config.meshes:
        kept = np.load(path)
        transform, scale = torch.tensor(kept["dataparser_transform"]).double(), float(kept["dataparser_scale"])
        plane = find_support_plane(normalize_points(points.double(), transform, scale))
        assert plane is not None, f"no support plane in {config.scene / 'sparse_pc.ply'}"
        vertices, faces = kept["vertices"].astype(np.float64), kept["faces"]
        heights = vertices @ plane[:3].double().numpy() + float(plane[3])
        for margin in (None, *config.margins):
            cut_faces = faces if margin is None else faces[(heights[faces] > margin).all(axis=1)]
            cleaned_vertices, cleaned_faces = clean_mesh(vertices, cut_faces, "largest", None)
            mesh = trimesh.Trimesh(denormalize_points(cleaned_vertices, transform, scale), cleaned_faces, process=False)
            scores = geometry_metrics(mesh, gt, num_points=config.num_points)
            rows.append({
                "mesh": str(path), "steps": int(kept["steps"]), "cut": margin, "chamfer": scores.chamfer,
                "accuracy": scores.accuracy, "completeness": scores.completeness, "fscore": scores.fscore,
            })
    header = ["mesh", "steps", "cut above plane", "Chamfer", "accuracy", "completeness", "F@0.01"]
    lines = [
        [Path(row["mesh"]).stem, str(row["steps"]), "no cut" if row["cut"] is None else f"{row['cut']:.2f}",
         *(f"{row[key]:.4f}" for key in ("chamfer", "accuracy", "completeness")), f"{row['fscore']:.3f}"]
        for row in rows
    ]
    print_table("Floor cut", header, lines)
    results = {**run_record(), "scene": str(config.scene), "rows": rows}
    markdown = f"# Floor cut, {results['date']}, commit {results['commit']}\n\n`{results['command']}`\n\n"
    write_results("floor_cut", results, markdown + markdown_table(header, lines) + "\n", config.results_dir, False,
                  config.scene)

if __name__ == "__main__":
    main(tyro.cli(FloorCutCheck))
