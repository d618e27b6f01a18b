"""Geometry metrics on hand-checkable meshes, and the `nero-eval geometry` command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trimesh

from nero_ns.errors import NeroInputError
from nero_ns.evaluation.geometry import geometry_metrics
from nero_ns.io.meshes import load_mesh

UNIT_SPHERE = trimesh.creation.icosphere(subdivisions=5, radius=1.0)
LARGER_SPHERE = trimesh.creation.icosphere(subdivisions=5, radius=1.1)


def test_concentric_spheres():
    """Radii 1.1 vs GT 1: every point is 0.1 away, R = 1; normals agree."""
    metrics = geometry_metrics(LARGER_SPHERE, UNIT_SPHERE, num_points=50_000, threshold=0.05)
    assert metrics.gt_radius == pytest.approx(1.0, abs=1e-6)
    assert metrics.chamfer == pytest.approx(0.1, abs=0.002)
    assert metrics.accuracy == pytest.approx(0.1, abs=0.002)
    assert metrics.completeness == pytest.approx(0.1, abs=0.002)
    assert metrics.normal_error_deg < 1.0
    assert metrics.precision == metrics.recall == metrics.fscore == 0.0
    assert geometry_metrics(LARGER_SPHERE, UNIT_SPHERE, num_points=50_000, threshold=0.2).fscore == 1.0


def test_distances_are_in_units_of_the_gt_radius():
    """Swapping the roles: the GT is now the 1.1 sphere, so the same 0.1 gap reads 0.1 / 1.1."""
    metrics = geometry_metrics(UNIT_SPHERE, LARGER_SPHERE, num_points=50_000)
    assert metrics.gt_radius == pytest.approx(1.1, abs=1e-6)
    assert metrics.chamfer == pytest.approx(0.1 / 1.1, abs=0.002)


def test_mesh_against_itself_scores_perfectly():
    metrics = geometry_metrics(UNIT_SPHERE, UNIT_SPHERE, num_points=20_000)
    assert metrics.chamfer == 0.0
    assert metrics.normal_error_deg == pytest.approx(0.0, abs=1e-5)  # arccos of 1 - 1 ulp
    assert metrics.precision == metrics.recall == metrics.fscore == 1.0


def test_translated_copy():
    """A unit sphere moved by d is |d cos(theta)| away on average over the sphere: Chamfer d / 2."""
    shift = 0.1
    moved = UNIT_SPHERE.copy()
    moved.apply_translation([shift, 0.0, 0.0])
    metrics = geometry_metrics(moved, UNIT_SPHERE, num_points=100_000, threshold=0.01)
    assert metrics.chamfer == pytest.approx(shift / 2.0, rel=0.05)
    # Within 0.01 of the other sphere: |cos(theta)| < 0.1, a band of 10% of the area; the sample spacing
    # (~0.005 at 100k points on the unit sphere) adds to point-to-point distances and pushes some out of it.
    assert 0.05 < metrics.fscore <= 0.1


def test_normal_orientation_signed_and_unsigned():
    flipped = UNIT_SPHERE.copy()
    flipped.invert()
    # Nearest samples may sit on a neighbouring facet: facet normals of this icosphere differ by about 1 degree.
    assert geometry_metrics(flipped, UNIT_SPHERE, num_points=20_000).normal_error_deg == pytest.approx(180.0, abs=1.0)
    unsigned = geometry_metrics(flipped, UNIT_SPHERE, num_points=20_000, unsigned_normals=True)
    assert unsigned.normal_error_deg == pytest.approx(0.0, abs=1.0)


def test_deterministic_with_a_seed():
    first = geometry_metrics(LARGER_SPHERE, UNIT_SPHERE, num_points=5_000, seed=3)
    assert first == geometry_metrics(LARGER_SPHERE, UNIT_SPHERE, num_points=5_000, seed=3)
    assert first != geometry_metrics(LARGER_SPHERE, UNIT_SPHERE, num_points=5_000, seed=4)


def test_unreadable_inputs_give_one_line_errors(tmp_path):
    with pytest.raises(NeroInputError, match="missing.ply: mesh file not found"):
        load_mesh(tmp_path / "missing.ply")
    points = tmp_path / "points.ply"
    trimesh.PointCloud(UNIT_SPHERE.vertices).export(points)
    with pytest.raises(NeroInputError, match="points.ply: has no triangles"):
        load_mesh(points)


def test_nero_eval_geometry_command(tmp_path):
    """The console script prints the table and writes JSON; a missing file is one line with exit code 2."""
    nero_eval = shutil.which("nero-eval", path=str(Path(sys.executable).parent)) or shutil.which("nero-eval")
    assert nero_eval is not None
    mesh, gt, output = tmp_path / "mesh.ply", tmp_path / "gt.obj", tmp_path / "out" / "metrics.json"
    LARGER_SPHERE.export(mesh)
    UNIT_SPHERE.export(gt)
    command = [nero_eval, "geometry", "--mesh", str(mesh), "--gt", str(gt), "--num-points", "20000"]
    result = subprocess.run([*command, "--threshold", "0.2", "--json", str(output)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "chamfer" in result.stdout and "fscore" in result.stdout
    written = json.loads(output.read_text())
    assert written["chamfer"] == pytest.approx(0.1, abs=0.005) and written["fscore"] == 1.0
    assert written["threshold"] == 0.2 and written["num_points"] == 20000

    missing_command = [nero_eval, "geometry", "--mesh", "nope.ply", "--gt", str(gt)]
    missing = subprocess.run(missing_command, capture_output=True, text=True)
    assert missing.returncode == 2
    assert "nope.ply: mesh file not found" in missing.stdout and "Traceback" not in missing.stdout + missing.stderr
