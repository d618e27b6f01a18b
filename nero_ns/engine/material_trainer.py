"""The nero-material trainer: NeroTrainer with the nero-shape run as a top-level option (`--shape-config`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Type

from nero_ns.engine.trainer import NeroTrainer, NeroTrainerConfig
from nero_ns.errors import NeroInputError, friendly_errors

MISSING_SHAPE_CONFIG = (
    "nero-material needs a nero-shape run: pass --shape-config outputs/<experiment>/nero-shape/<timestamp>/config.yml "
    "(written by `ns-train nero-shape`)"
)


@dataclass
class NeroMaterialTrainerConfig(NeroTrainerConfig):
    """NeroTrainerConfig with the nero-shape run as a top-level option (`--shape-config`), copied into the model's
    config (`pipeline.model.shape_config`)."""

    _target: Type = field(default_factory=lambda: NeroMaterialTrainer)
    shape_config: Optional[Path] = None
    """config.yml of a nero-shape run: outputs/<experiment>/nero-shape/<time>/config.yml from `ns-train nero-shape`."""

    def __post_init__(self) -> None:
        # Runs when the command line is parsed, before ns-train saves config.yml, so the saved model config has it.
        self.copy_shape_config()

    def copy_shape_config(self) -> None:
        """Give the model config the top-level --shape-config (when given)."""
        if self.shape_config is not None:
            self.pipeline.model.shape_config = self.shape_config


class NeroMaterialTrainer(NeroTrainer):
    """NeroTrainer that checks the nero-shape run is given before building anything."""

    config: NeroMaterialTrainerConfig

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        self.config.copy_shape_config()
        if self.config.pipeline.model.shape_config is None:
            with friendly_errors():
                raise NeroInputError(MISSING_SHAPE_CONFIG)
        super().setup(test_mode=test_mode)
