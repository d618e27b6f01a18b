"""The material benchmark (`benchmarks/material_benchmark.py --quick`) runs end to end: both stages as a user runs
them, the nero-shape mesh scored, the materials scored, the export relit beside the relit truth, and the results
written as data with a finite number for every metric."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from material_benchmark import METRICS  # noqa: E402


@pytest.mark.slow
def test_quick_material_benchmark_end_to_end(tmp_path: Path) -> None:
    output = tmp_path / "material"
    completed = subprocess.run(
        [
            sys.executable, str(ROOT / "benchmarks" / "material_benchmark.py"), "--quick", "--scenes", "metal-knot",
            "--output-dir", str(output),
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    [row] = json.loads((output / "results.json").read_text())["scenes"]
    for metric in METRICS:
        assert row[metric.key] is not None and math.isfinite(row[metric.key]), (metric.key, row[metric.key])
    assert row["shape_chamfer"] > 0.0 and 0.0 <= row["shape_fscore"] <= 1.0
    # 20 s of training at 48 px gives a rough blob: the true mesh and materials relight better than it.
    assert row["relight_ceiling_psnr"] > row["relight_psnr"] > 5.0
    assert row["relight_gap"] == pytest.approx(row["relight_ceiling_psnr"] - row["relight_psnr"])
    assert row["relight_pass"] == (row["relight_gap"] <= 3.0)
    [data_file] = output.glob("????-??-??-*.json")  # --quick writes the results as data into --output-dir
    data = json.loads(data_file.read_text())
    assert data["rows"] == [row] and data["summary"][0]["shape_chamfer_median"] == pytest.approx(row["shape_chamfer"])
    assert "relight below ceiling (dB)" in next(output.glob("????-??-??-*.md")).read_text()
