"""The benchmarks' figures over scenes and training seeds (benchmarks/common.py): a scene counts with its median over
repeats, the summary gives the median and the worst scene, and the tables show the range over repeats."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import Metric, per_scene, scene_names, spread_cell, summary, summary_table  # noqa: E402

CHAMFER = Metric("chamfer", "Chamfer", ".3f")
FSCORE = Metric("fscore", "F", ".2f", higher_is_better=True)


def test_medians_over_repeats_then_median_and_worst_over_scenes() -> None:
    rows = [
        # scene a: three seeds; scene b: one; scene c: one, the worst Chamfer but the best F-score
        {"scene": "a", "variant": "v", "chamfer": 0.010, "fscore": 0.5},
        {"scene": "a", "variant": "v", "chamfer": 0.030, "fscore": 0.7},
        {"scene": "a", "variant": "v", "chamfer": 0.020, "fscore": 0.2},
        {"scene": "b", "variant": "v", "chamfer": 0.040, "fscore": 0.4},
        {"scene": "c", "variant": "v", "chamfer": 0.100, "fscore": 0.9},
        {"scene": "c", "variant": "w", "chamfer": 0.001, "fscore": None},
    ]
    scene_rows = per_scene(rows, (CHAMFER, FSCORE), ("variant",))
    assert [(row["variant"], row["scene"], row["repeats"]) for row in scene_rows] == [
        ("v", "a", 3), ("v", "b", 1), ("v", "c", 1), ("w", "c", 1)
    ]
    a = scene_rows[0]
    assert a["chamfer"] == pytest.approx(0.02) and (a["chamfer_min"], a["chamfer_max"]) == (0.01, 0.03)
    assert a["fscore"] == pytest.approx(0.5)
    assert scene_rows[-1]["fscore"] is None
    assert spread_cell(a, CHAMFER) == "0.020 (0.010-0.030)" and spread_cell(scene_rows[1], CHAMFER) == "0.040"

    v, w = summary(scene_rows, (CHAMFER, FSCORE), ("variant",))
    assert v["scenes"] == 3 and v["chamfer_median"] == pytest.approx(0.04)
    assert (v["chamfer_worst"], v["chamfer_worst_scene"]) == (0.1, "c")
    assert v["fscore_median"] == pytest.approx(0.5) and (v["fscore_worst"], v["fscore_worst_scene"]) == (0.4, "b")
    assert "fscore_median" not in w
    header, cells = summary_table([v, w], (CHAMFER, FSCORE), ("variant",))
    assert header == ["variant", "scenes", "Chamfer median", "Chamfer worst", "F median", "F worst"]
    assert cells == [["v", "3", "0.040", "0.100 (c)", "0.50", "0.40 (b)"], ["w", "1", "0.001", "0.001 (c)", "-", "-"]]


def test_a_scene_without_surface_is_the_worst_and_says_so() -> None:
    rows = [
        {"scene": "a", "variant": "v", "chamfer": 0.010, "fscore": 0.5},
        {"scene": "b", "variant": "v", "chamfer": 0.040, "fscore": 0.4},
        {"scene": "c", "variant": "v", "chamfer": None, "fscore": None, "no_surface": True},
    ]
    scene_rows = per_scene(rows, (CHAMFER, FSCORE), ("variant",))
    assert spread_cell(scene_rows[2], CHAMFER) == "no surface" and scene_rows[2]["no_surface"] == 1
    (v,) = summary(scene_rows, (CHAMFER, FSCORE), ("variant",))
    assert v["chamfer_median"] == pytest.approx(0.04) and v["fscore_median"] == pytest.approx(0.4)
    _, cells = summary_table([v], (CHAMFER, FSCORE), ("variant",))
    assert cells == [["v", "3", "0.040", "no surface (c)", "0.40", "no surface (c)"]]


def test_scenes_option() -> None:
    assert scene_names(None, "metal-knot,glossy-blob") == ["metal-knot", "glossy-blob"]
    assert scene_names("quick", "metal-knot") == ["metal-knot", "glossy-blob", "thick-knot"]
    with pytest.raises(SystemExit, match="unknown scene"):
        scene_names("metal-knot,teapot", "metal-knot")
