"""nerfstudio Trainer with atomic checkpoints and one-line errors for bad input."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Type

import torch
from nerfstudio.engine.trainer import Trainer, TrainerConfig

from nero_ns.engine.schedulers import WarmupCosineSchedulerConfig
from nero_ns.errors import friendly_errors


@dataclass
class NeroTrainerConfig(TrainerConfig):
    """TrainerConfig whose trainer never leaves a half-written checkpoint and whose learning-rate schedules follow
    --max-num-iterations."""

    _target: Type = field(default_factory=lambda: NeroTrainer)


class NeroTrainer(Trainer):
    """Writes each checkpoint to a temporary file and renames it into place, so a crash mid-write loses nothing:
    the newest complete `step-*.ckpt` is always loadable with `--load-dir` to resume."""

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        for group in self.config.optimizers.values():
            scheduler = group.get("scheduler")
            if isinstance(scheduler, WarmupCosineSchedulerConfig) and scheduler.max_steps is None:
                scheduler.max_steps = self.config.max_num_iterations
        with friendly_errors():
            super().setup(test_mode=test_mode)

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
