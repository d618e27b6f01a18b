"""The before/after benchmark (benchmarks/acceptance_benchmark.py): its tables put the after-before difference at
seed 42 beside the after code's seed spread, and it refuses a "before" folder that is not a clean checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from acceptance_benchmark import SHAPE_METRICS, source_commit, stage_table  # noqa: E402


def shape_row(code: str, seed: int, chamfer: float, normal_error: float, fscore: float, scene: str = "knot") -> dict:
    return {
        "stage": "shape", "scene": scene, "code": code, "commit": "abc1234" if code == "before" else "def5678",
        "seed": seed, "steps": 300, "seconds": 100.0, "chamfer": chamfer, "normal_error_deg": normal_error,
        "fscore": fscore,
    }


def test_difference_at_seed_42_beside_the_seed_spread() -> None:
    rows = [
        shape_row("before", 42, 0.0200, 10.0, 0.50),
        shape_row("after", 42, 0.0203, 10.5, 0.49),
        shape_row("after", 43, 0.0190, 11.5, 0.55),
        shape_row("after", 42, 0.9, 90.0, 0.0, scene="blob"),  # another scene: left out of the knot's table
    ]
    header, cells = stage_table(rows, "shape", "knot", SHAPE_METRICS)
    assert header == ["code (commit)", "seed", "steps", "seconds", "Chamfer", "normal err", "F@0.01"]
    assert [line[:2] for line in cells] == [
        ["before (abc1234)", "42"], ["after (def5678)", "42"], ["after (def5678)", "43"], ["after - before", "42"],
        ["after: seed spread (2 seeds)", ""],
    ]
    assert cells[3][4:] == ["+0.0003", "+0.5", "-0.010"]
    assert cells[4][4:] == ["0.0013", "1.0", "0.060"]


def test_one_seed_gives_no_spread_line() -> None:
    _, cells = stage_table([shape_row("before", 42, 0.02, 10.0, 0.5), shape_row("after", 42, 0.02, 10.0, 0.5)],
                           "shape", "knot", SHAPE_METRICS)
    assert [line[0] for line in cells][-1] == "after - before"


def test_the_before_folder_must_be_a_clean_checkout(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not a git checkout"):
        source_commit(tmp_path)

    def git(*arguments: str) -> str:
        completed = subprocess.run(
            ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *arguments],
            cwd=tmp_path, capture_output=True, text=True, check=True,
        )
        return completed.stdout.strip()

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("commit", "-qm", "first")
    assert source_commit(tmp_path) == git("rev-parse", "--short", "HEAD")
    (tmp_path / "code.py").write_text("x = 2\n")
    with pytest.raises(SystemExit, match="uncommitted changes"):
        source_commit(tmp_path)
