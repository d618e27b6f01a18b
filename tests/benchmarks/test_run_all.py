"""The suite report command (`benchmarks/run_all.py --quick`) runs end to end: every step runs as a user would
run it (nero-synth, ns-train both stages and the plain ablation, ns-export, renders, nero-eval scene) and the
report and results hold a finite number for every metric of every row that should have it."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from run_all import METRICS, SHAPE, SHAPE_PLAIN, MATERIAL  # noqa: E402

MATERIAL_ONLY = {"albedo_psnr", "roughness_mae", "metallic_mae", "relight_psnr", "relight_ceiling_psnr"}


@pytest.mark.slow
def test_quick_suite_report_end_to_end(tmp_path: Path) -> None:
    output = tmp_path / "suite"
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--output-dir", str(output)],
        cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]

    rows = json.loads((output / "results.json").read_text())["rows"]
    assert [row["variant"] for row in rows] == [SHAPE, SHAPE_PLAIN, MATERIAL]
    for row in rows:
        assert row["steps"] >= 1 and row["train_seconds"] > 0 and row["peak_memory_mib"] > 0
        for metric, _ in METRICS:
            key = metric.key
            if row["variant"] != MATERIAL and key in MATERIAL_ONLY:
                assert row[key] is None, (row["variant"], key)
            else:
                assert row[key] is not None and math.isfinite(row[key]), (row["variant"], key, row[key])
        assert row["chamfer"] > 0.0 and 0.0 <= row["fscore"] <= 1.0 and row["test_psnr"] > 0.0
    assert 0.0 <= rows[-1]["metallic_mae"] <= 1.0 and 0.0 <= rows[-1]["roughness_mae"] <= 1.0

    report = (output / "report.md").read_text()
    for row in rows:
        assert f"| {row['scene']} | {row['variant']} | {row['chamfer']:.3f} |" in report
    assert "## Over the scenes: median and worst" in report
    [data_file] = output.glob("????-??-??-*.json")  # --quick writes the results as data into --output-dir
    data = json.loads(data_file.read_text())
    assert data["rows"] == rows and len(data["commit"]) >= 7
    assert [line["variant"] for line in data["summary"]] == [SHAPE, SHAPE_PLAIN, MATERIAL]
    assert data["summary"][0]["chamfer_median"] == pytest.approx(rows[0]["chamfer"])
    for figure in ("loss_curves.png", "metrics.png"):
        assert (output / figure).stat().st_size > 10_000, figure
        assert f"]({figure})" in report
