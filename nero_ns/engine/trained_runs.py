"""Read a finished `ns-train` run (its config.yml and newest checkpoint) with one-line errors for every bad case.

`ns-export nero-mesh`, `ns-export nero-materials` and nero-material's `--shape-config` all start from a run folder;
they check it here, before nerfstudio loads anything, so a wrong path or method fails in one line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Optional, Tuple

import yaml
from nerfstudio.engine.trainer import TrainerConfig

from nero_ns.errors import NeroInputError


def run_hint(method: str, option: str) -> str:
    """The fix named by every error: which config.yml the option wants."""
    return f"pass {option} outputs/<experiment>/{method}/<timestamp>/config.yml written by `ns-train {method}`"


def read_trained_config(
    config_path: Path,
    method: str,
    model_configs: Tuple[type, ...],
    option: str = "--load-config",
    fixes_for_other_methods: Optional[Mapping[str, str]] = None,
) -> TrainerConfig:
    """The TrainerConfig saved at `config_path`, checked to hold one of `model_configs` (a run of `method`).

    `option` is the command-line option the user passed the path with; `fixes_for_other_methods` maps another
    method's name to the fix to name instead of the generic one when the config is a run of that method.
    """
    config_path = Path(config_path)
    hint = run_hint(method, option)
    if not config_path.is_file():
        raise NeroInputError(f"{config_path}: config not found; {hint}")
    try:
        config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    except (yaml.YAMLError, UnicodeDecodeError, AttributeError, TypeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise NeroInputError(f"{config_path} is not a nerfstudio config.yml ({first_line}); {hint}") from error
    if not isinstance(config, TrainerConfig):
        raise NeroInputError(f"{config_path} is not a nerfstudio config.yml; {hint}")
    if not isinstance(config.pipeline.model, model_configs):
        kind = config.method_name or type(config.pipeline.model).__name__
        fix = (fixes_for_other_methods or {}).get(kind, hint)
        raise NeroInputError(f"{config_path} is a {kind} config, not {method}; {fix}")
    return config


def newest_checkpoint(config_path: Path, config: TrainerConfig, method: str) -> Path:
    """The highest-step `step-*.ckpt` in the run's checkpoint folder (next to config.yml)."""
    checkpoint_dir = Path(config_path).parent / config.relative_model_dir
    steps = {}
    for path in checkpoint_dir.glob("step-*.ckpt"):
        match = re.fullmatch(r"step-(\d+)\.ckpt", path.name)
        if match:
            steps[int(match.group(1))] = path
    if not steps:
        raise NeroInputError(
            f"{checkpoint_dir}: no step-*.ckpt next to {config_path}; "
            f"let `ns-train {method}` run until it saves a checkpoint (every --steps-per-save steps)"
        )
    return steps[max(steps)]
