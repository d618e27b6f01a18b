"""NeroTrainer under a wall-clock budget: the budget, not --max-num-iterations, ends training; the cosine schedules
end with it; --checkpoint-at-seconds keeps one checkpoint per mark; writing checkpoints does not count as training
time; the timed checkpoints load through nerfstudio's eval_setup (a config with load_step) and the run resumes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import yaml
from nerfstudio.utils.eval_utils import eval_setup

from nero_ns.engine.trainer import TIME_CHECKPOINTS_FILE
from tests.nero_runs import setup_trainer, small_shape_config

MAX_NUM_ITERATIONS = 2
BUDGET_SECONDS = 6.0
MARKS = (2.0, 4.0)
SAVE_DELAY_SECONDS = 1.0


@pytest.fixture(scope="module")
def budgeted_run(tiny_scene: Path, tmp_path_factory: pytest.TempPathFactory):
    """A tiny nero-shape run with a 6 s budget, marks at 2 s and 4 s, and checkpoints that take 1 s longer to save."""
    torch.manual_seed(0)
    config = small_shape_config(tiny_scene, tmp_path_factory.mktemp("runs"), MAX_NUM_ITERATIONS)
    config.steps_per_save = 1_000_000
    config.max_train_seconds = BUDGET_SECONDS
    config.checkpoint_at_seconds = MARKS
    trainer = setup_trainer(config)
    save = torch.save

    def slow_save(*args, **kwargs) -> None:
        time.sleep(SAVE_DELAY_SECONDS)
        save(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "save", slow_save)
        started = time.perf_counter()
        trainer.train()
        wall_seconds = time.perf_counter() - started
    return config, trainer, wall_seconds


def test_the_budget_not_max_num_iterations_ends_training(budgeted_run) -> None:
    config, trainer, wall_seconds = budgeted_run
    assert trainer.step > 5 * MAX_NUM_ITERATIONS
    assert config.max_num_iterations == MAX_NUM_ITERATIONS  # restored after training
    # Each timed checkpoint took a second more to write, and that time was not taken from the budget.
    assert wall_seconds > BUDGET_SECONDS + len(MARKS) * SAVE_DELAY_SECONDS
    for schedule in trainer._cosine_schedules():
        assert abs(schedule.max_steps - trainer.step) <= 0.3 * trainer.step, (schedule.max_steps, trainer.step)


def test_a_checkpoint_is_kept_at_each_mark(budgeted_run) -> None:
    config, trainer, _ = budgeted_run
    rows = json.loads((config.get_base_dir() / TIME_CHECKPOINTS_FILE).read_text())
    assert [row["seconds"] for row in rows] == list(MARKS)
    steps = [row["step"] for row in rows]
    assert 0 < steps[0] < steps[1] < trainer.step
    for row in rows:
        assert row["seconds"] <= row["elapsed"] < row["seconds"] + 1.0
    # save_only_latest_checkpoint (nerfstudio's default) deleted none of them.
    assert config.save_only_latest_checkpoint
    names = sorted(path.name for path in config.get_checkpoint_dir().iterdir())
    assert names == [f"step-{step:09d}.ckpt" for step in (*steps, trainer.step)]


def test_a_timed_checkpoint_loads_through_eval_setup(budgeted_run, tmp_path: Path) -> None:
    config, _, _ = budgeted_run
    step = json.loads((config.get_base_dir() / TIME_CHECKPOINTS_FILE).read_text())[0]["step"]
    saved = yaml.load((config.get_base_dir() / "config.yml").read_text(), Loader=yaml.Loader)
    saved.load_step = step
    copy = tmp_path / "config.yml"
    copy.write_text(yaml.dump(saved))
    _, _, checkpoint_path, loaded_step = eval_setup(copy, test_mode="inference")
    assert loaded_step == step and checkpoint_path.parent == config.get_checkpoint_dir()


def test_a_budgeted_run_resumes(budgeted_run) -> None:
    config, trainer, _ = budgeted_run
    resumed_config = small_shape_config(config.data, config.output_dir, 1)
    resumed_config.timestamp = "resumed"
    resumed_config.load_dir = config.get_checkpoint_dir()
    resumed_config.steps_per_save = 1_000_000
    resumed_config.max_train_seconds = 1.0
    resumed = setup_trainer(resumed_config)
    assert resumed._start_step == trainer.step + 1
    resumed.train()
    assert resumed.step > resumed._start_step + 1
    assert (resumed_config.get_checkpoint_dir() / f"step-{resumed.step:09d}.ckpt").exists()
