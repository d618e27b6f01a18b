"""Shared fixtures: tiny generated scenes (a few seconds each, deterministic) for dataparser/training/export tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from nero_ns.synthetic import SyntheticSceneConfig, generate_scene


def tiny_scene_config(output_dir: Path, **overrides) -> SyntheticSceneConfig:
    """48 px blob (concave dimples) on a floor among distractors: 16 train views, 4 test views, 8 spp."""
    options = dict(
        output_dir=output_dir,
        shape="blob",
        resolution=48,
        num_train_views=16,
        num_test_views=4,
        spp=8,
        num_points=1500,
        seed=7,
    )
    options.update(overrides)
    return SyntheticSceneConfig(**options)


@pytest.fixture(scope="session")
def make_tiny_scene_config():
    """`tiny_scene_config(output_dir, **overrides)`, for tests that generate their own variant of the tiny scene."""
    return tiny_scene_config


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated scene with masks, sparse_pc.ply, floor and distractors (see nero_ns/synthetic)."""
    return generate_scene(tiny_scene_config(tmp_path_factory.mktemp("tiny_scene")))


@pytest.fixture(scope="session")
def tiny_scene_no_extras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny scene without masks and without sparse_pc.ply."""
    return generate_scene(tiny_scene_config(tmp_path_factory.mktemp("tiny_scene_no_extras"), masks=False, points=False))
