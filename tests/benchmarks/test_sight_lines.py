"""The sight-line check: the GT mesh blocks none of the lines from the cameras to the surface points they see; the
same mesh grown by 30% about its center stands in front of nearly all of them."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from sight_lines import SightLineCheck, scene_sight_lines  # noqa: E402


def test_ground_truth_blocks_no_sight_line_and_a_swollen_mesh_most(tiny_scene: Path, tmp_path: Path) -> None:
    lines = scene_sight_lines(tiny_scene)
    assert lines.seen.sum() > 1000 and len(lines.points) > 100
    assert lines.blocked_fraction(lines.gt, margin=0.1) == 0.0
    swollen = lines.gt.copy()
    swollen.apply_scale(1.3)
    swollen.apply_translation(lines.gt.centroid - swollen.centroid)
    assert lines.blocked_fraction(swollen, margin=0.1) > 0.8
    swollen.export(tmp_path / "swollen.ply")
    results = SightLineCheck(
        tiny_scene, (tiny_scene / "gt" / "mesh.ply", tmp_path / "swollen.ply"), results_dir=tmp_path / "results"
    ).main()
    assert [row["blocked"] for row in results["rows"]] == [0.0, lines.blocked_fraction(swollen, margin=0.1)]
    assert len(list((tmp_path / "results").glob("*.md"))) == 1
