"""nerfstudio Trainer with atomic checkpoints and one-line errors for bad input."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
import time
from typing import List, Literal, Optional, Type

import torch
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer, TrainerConfig

from nero_ns.engine.schedulers import WarmupCosineSchedulerConfig
from nero_ns.errors import friendly_errors


@dataclass
class NeroTrainerConfig(TrainerConfig):
    """TrainerConfig whose trainer never leaves a half-written checkpoint, whose learning-rate schedules follow
    --max-num-iterations, and which can train for a wall-clock budget."""

    _target: Type = field(default_factory=lambda: NeroTrainer)
    max_train_seconds: Optional[float] = None
    """Stop after this much wall-clock training time even if --max-num-iterations is not reached; the cosine
    learning-rate schedules are then fitted to the measured speed so they end on time."""


class NeroTrainer(Trainer):
    """Writes each checkpoint to a temporary file and renames it into place, so a crash mid-write loses nothing:
    the newest complete `step-*.ckpt` is always loadable with `--load-dir` to resume."""

    def _cosine_schedules(self) -> List[WarmupCosineSchedulerConfig]:
        schedules = [group.get("scheduler") for group in self.config.optimizers.values()]
        return [schedule for schedule in schedules if isinstance(schedule, WarmupCosineSchedulerConfig)]

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        for schedule in self._cosine_schedules():
            if schedule.max_steps is None:
                schedule.max_steps = self.config.max_num_iterations
        with friendly_errors():
            super().setup(test_mode=test_mode)

    def _follow_time_budget(self, step: int) -> None:
        """Stop when the budget is spent; meanwhile stretch or shrink the cosine schedules to end on time."""
        assert self.config.max_train_seconds is not None
        elapsed = time.perf_counter() - self._train_started
        if elapsed > self.config.max_train_seconds:
            self.stop_training = True
        steps_done = step - self._start_step + 1
        if steps_done >= 10:
            projected = self._start_step + int(steps_done * self.config.max_train_seconds / elapsed)
            for schedule in self._cosine_schedules():
                schedule.max_steps = min(projected, self._start_step + self.config.max_num_iterations)

    def train(self) -> None:
        self._train_started = time.perf_counter()
        if self.config.max_train_seconds is not None:
            self.callbacks.append(
                TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], self._follow_time_budget)
            )
        super().train()

    def save_checkpoint(self, step: int) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        final_path: Path = self.checkpoint_dir / f"step-{step:09d}.ckpt"
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
                if old != final_path:
                    old.unlink()
