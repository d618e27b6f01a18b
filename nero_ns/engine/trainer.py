"""nerfstudio Trainer with atomic checkpoints and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Literal, Optional, Set, Tuple, Type, Union

import torch
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils import writer

from nero_ns.components.hash_grid_cpu import load_kernel
from nero_ns.engine.schedulers import WarmupCosineSchedulerConfig
from nero_ns.errors import friendly_errors

TIME_CHECKPOINTS_FILE = "time_checkpoints.json"
"""Written in the run folder by --checkpoint-at-seconds: one {"seconds", "elapsed", "step"} row per mark passed."""


@dataclass
class NeroTrainerConfig(TrainerConfig):
    """TrainerConfig whose trainer never leaves a half-written checkpoint, whose learning-rate schedules follow
    --max-num-iterations, and which can train for a wall-clock budget and keep checkpoints at given times."""

    _target: Type = field(default_factory=lambda: NeroTrainer)
    max_train_seconds: Optional[float] = None
    """Train for this many seconds, however many steps that takes: given a budget, --max-num-iterations no longer
    ends training (the budget means the same for every method), and the cosine learning-rate schedules are fitted to
    the measured speed so they end on time. Time spent evaluating and writing checkpoints does not count; a run
    resumed with --load-dir gets the whole budget again."""
    checkpoint_at_seconds: Tuple[float, ...] = ()
    """Also write a checkpoint when the training time (counted as for --max-train-seconds) first passes each of
    these seconds, kept even with --save-only-latest-checkpoint, and list them (mark, measured seconds, step) in
    time_checkpoints.json in the run folder: for quality-against-time curves from one run."""


class NeroTrainer(Trainer):
    """Writes each checkpoint to a temporary file and renames it into place, so a crash mid-write loses nothing:
    the newest complete `step-*.ckpt` is always loadable with `--load-dir` to resume."""

    config: NeroTrainerConfig

    def _cosine_schedules(self) -> List[WarmupCosineSchedulerConfig]:
        schedules = [group.get("scheduler") for group in self.config.optimizers.values()]
        return [schedule for schedule in schedules if isinstance(schedule, WarmupCosineSchedulerConfig)]

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        for schedule in self._cosine_schedules():
            if schedule.max_steps is None:
                schedule.max_steps = self.config.max_num_iterations
        self._untimed_seconds = 0.0
        self._time_checkpoints: List[Dict[str, Union[float, int]]] = []
        self._kept_checkpoints: Set[Path] = set()
        with friendly_errors():
            super().setup(test_mode=test_mode)
        if self.device == "cpu":
            load_kernel()  # checked (or built) now, not on the training clock at the first step

    @contextmanager
    def _off_the_clock(self) -> Iterator[None]:
        """Time spent inside (evaluation, checkpoint writing) does not count as training time."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self._untimed_seconds += time.perf_counter() - started

    def training_seconds(self) -> float:
        """Seconds of training since train() started, without evaluation and checkpoint writing."""
        return time.perf_counter() - self._train_started - self._untimed_seconds

    def _follow_time_budget(self, step: int) -> None:
        """Stop when the budget is spent; meanwhile stretch or shrink the cosine schedules to end on time."""
        assert self.config.max_train_seconds is not None
        elapsed = self.training_seconds()
        if elapsed > self.config.max_train_seconds:
            self.stop_training = True
        steps_done = step - self._start_step + 1
        if steps_done >= 10:
            projected = self._start_step + int(steps_done * self.config.max_train_seconds / elapsed)
            for schedule in self._cosine_schedules():
                schedule.max_steps = projected
            writer.GLOBAL_BUFFER["max_iter"] = projected  # the progress and ETA nerfstudio prints follow it too

    def _checkpoint_at_marks(self, step: int) -> None:
        """Write a kept checkpoint when the training time passes a --checkpoint-at-seconds mark."""
        elapsed = self.training_seconds()
        passed = [mark for mark in self._pending_marks if elapsed >= mark]
        if not passed:
            return
        self._pending_marks = [mark for mark in self._pending_marks if mark not in passed]
        self._kept_checkpoints.add(self._checkpoint_path(step))
        self.save_checkpoint(step)
        with self._off_the_clock():
            self._time_checkpoints += [{"seconds": mark, "elapsed": elapsed, "step": step} for mark in passed]
            path = self.base_dir / TIME_CHECKPOINTS_FILE
            temporary_path = path.with_name(f".{path.name}.partial")
            temporary_path.write_text(json.dumps(self._time_checkpoints, indent=2))
            os.replace(temporary_path, path)

    def train(self) -> None:
        self._train_started = time.perf_counter()
        self._untimed_seconds = 0.0
        self._pending_marks: List[float] = sorted(self.config.checkpoint_at_seconds)
        if self._pending_marks:
            self.callbacks.append(
                TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], self._checkpoint_at_marks)
            )
        if self.config.max_train_seconds is None:
            super().train()
            return
        self.callbacks.append(
            TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], self._follow_time_budget)
        )
        # nerfstudio's loop runs --max-num-iterations steps; under a budget only the clock ends training.
        max_num_iterations = self.config.max_num_iterations
        self.config.max_num_iterations = sys.maxsize
        try:
            super().train()
        finally:
            self.config.max_num_iterations = max_num_iterations

    def eval_iteration(self, step: int) -> None:
        with self._off_the_clock():
            super().eval_iteration(step)

    def _checkpoint_path(self, step: int) -> Path:
        return self.checkpoint_dir / f"step-{step:09d}.ckpt"

    def save_checkpoint(self, step: int) -> None:
        with self._off_the_clock():
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            final_path = self._checkpoint_path(step)
            # The temporary file sits beside the folder: nerfstudio's --load-dir parses every name inside it.
            temporary_path = self.checkpoint_dir.parent / f".{final_path.name}.partial"
            pipeline = self.pipeline.module if hasattr(self.pipeline, "module") else self.pipeline
            torch.save(
                {
                    "step": step,
                    "pipeline": pipeline.state_dict(),  # type: ignore[union-attr]
                    "optimizers": {k: v.state_dict() for (k, v) in self.optimizers.optimizers.items()},
                    "schedulers": {k: v.state_dict() for (k, v) in self.optimizers.schedulers.items()},
                    "scalers": self.grad_scaler.state_dict(),
                },
                temporary_path,
            )
            os.replace(temporary_path, final_path)
            if self.config.save_only_latest_checkpoint:
                for old in self.checkpoint_dir.glob("*.ckpt"):
                    if old != final_path and old not in self._kept_checkpoints:
                        old.unlink()
