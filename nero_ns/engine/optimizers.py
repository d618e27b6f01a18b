"""Optimizer configs of nero-ns's methods."""

from __future__ import annotations

from dataclasses import dataclass

from nerfstudio.engine.optimizers import AdamOptimizerConfig


@dataclass
class FusedAdamOptimizerConfig(AdamOptimizerConfig):
    """nerfstudio's Adam with every parameter of a group updated by one fused kernel.

    The update is Adam's; on a CPU, where torch otherwise loops over the parameters one tensor operation at a time,
    the fused step over nero-shape's hash tables takes about a third of the time (benchmarks/step_benchmark.py).
    """

    fused: bool = True
    """Use torch's fused Adam kernel (CPU and CUDA)."""
