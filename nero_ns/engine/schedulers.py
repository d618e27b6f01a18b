"""Learning-rate schedule whose state holds plain Python floats.

nerfstudio's own schedulers compute factors with numpy, so numpy scalars end up in optimizer and scheduler
state and the checkpoint no longer loads under torch.load(weights_only=True) (the default of torch >= 2.6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Type

from nerfstudio.engine.schedulers import Scheduler, SchedulerConfig
from torch.optim import Optimizer, lr_scheduler


@dataclass
class WarmupCosineSchedulerConfig(SchedulerConfig):
    """Linear warm-up then cosine decay to `final_factor` of the initial rate."""

    _target: Type = field(default_factory=lambda: WarmupCosineScheduler)
    warmup_steps: int = 100
    """Steps of linear warm-up."""
    max_steps: Optional[int] = None
    """Step at which the cosine reaches its floor; None follows the trainer's --max-num-iterations."""
    final_factor: float = 0.05
    """Learning-rate factor at the end of the decay."""


class WarmupCosineScheduler(Scheduler):
    """Warm-up + cosine decay built from `math`, so checkpoints stay loadable with weights_only=True."""

    config: WarmupCosineSchedulerConfig

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> lr_scheduler.LRScheduler:
        config = self.config
        assert config.max_steps is not None, "NeroTrainer sets max_steps from --max-num-iterations"
        warmup, floor = config.warmup_steps, config.final_factor

        def factor(step: int) -> float:
            if step < warmup:
                return float((step + 1) / (warmup + 1))
            # max_steps is read at every step: NeroTrainer re-estimates it under --max-train-seconds.
            progress = min(1.0, (step - warmup) / max(int(config.max_steps) - warmup, 1))
            return float(floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress)))

        return lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)
