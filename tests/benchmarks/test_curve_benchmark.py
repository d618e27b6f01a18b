"""The time-to-quality curve (`benchmarks/curve_benchmark.py --quick`) runs end to end: one training per variant,
a scored mesh per mark with steps growing with the marks, and results written where --results-dir says."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from curve_benchmark import CurveBenchmark, selected_variants  # noqa: E402


def test_variants_are_the_chosen_ones_and_the_extra_ones() -> None:
    config = CurveBenchmark(variants=("previous",), extra_variants=("plain=--pipeline.model.shading plain",))
    assert selected_variants(config) == {
        "previous": (), "plain": ("--pipeline.model.shading", "plain")
    }
    for extra in ("--pipeline.model.shading plain", "previous=--steps-per-save 5"):
        with pytest.raises(SystemExit, match="NAME=OPTIONS"):
            selected_variants(CurveBenchmark(extra_variants=(extra,)))
    with pytest.raises(SystemExit, match="unknown variant"):
        selected_variants(CurveBenchmark(variants=("newest",)))


@pytest.mark.slow
def test_quick_curve_end_to_end(tmp_path: Path) -> None:
    results_dir = tmp_path / "results"
    completed = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "curve_benchmark.py"), "--quick",
            "--output-dir", str(tmp_path / "curve"), "--results-dir", str(results_dir),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    [results_file] = results_dir.glob("*.json")
    results = json.loads(results_file.read_text())
    assert "--quick" in results["command"] and len(results["commit"]) >= 7
    marks = results["marks"]
    assert len(marks) >= 2
    for training in results["trainings"]:
        assert training["steps_per_second"] > 0 and training["peak_memory_mib"] > 0
    rows = results["rows"]
    for scene in results["scenes"]:
        for variant in results["variants"]:
            curve = [row for row in rows if row["scene"] == scene and row["variant"] == variant]
            assert [row["seconds"] for row in curve] == marks
            steps = [row["steps"] for row in curve]
            assert all(earlier < later for earlier, later in zip(steps, steps[1:])), steps
    for row in rows:
        assert row["elapsed"] >= row["seconds"]
        assert math.isfinite(row["chamfer"]) and row["chamfer"] > 0.0, row
        assert math.isfinite(row["normal_error_deg"]), row
        assert 0.0 <= row["fscore"] <= 1.0, row

    assert {(row["scene"], row["variant"], row["seconds"]) for row in results["per_scene"]} == {
        (row["scene"], row["variant"], row["seconds"]) for row in rows
    }
    assert len(results["summary"]) == len(results["variants"]) * len(marks)
    for line in results["summary"]:
        assert line["scenes"] == len(results["scenes"]) and line["chamfer_worst"] >= line["chamfer_median"] > 0.0

    report = results_file.with_suffix(".md").read_text()
    assert all(f"## {scene}" in report for scene in results["scenes"])
    assert "## Over the scenes: median and worst" in report
    for row in rows:
        assert f"| {row['steps']} | {row['chamfer']:.4f} |" in report, row
