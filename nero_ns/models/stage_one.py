"""Load a trained Stage I (nero-shape) run from its config.yml: the geometry that Stage II starts from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Tuple

import torch
import yaml
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.trainer import TrainerConfig

from nero_ns.errors import NeroInputError
from nero_ns.models.nero_shape import NeroShapeModel, NeroShapeModelConfig

MODEL_PREFIX = "_model."
"""Prefix of the model's entries in a nerfstudio pipeline state dict."""


def read_stage_one_config(config_path: Path) -> TrainerConfig:
    """The TrainerConfig saved by `ns-train nero-shape`, checked to be one (one-line errors otherwise)."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise NeroInputError(
            f"{config_path}: Stage I config not found; pass --shape-config "
            "outputs/<experiment>/nero-shape/<timestamp>/config.yml written by `ns-train nero-shape`"
        )
    try:
        config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    except (yaml.YAMLError, UnicodeDecodeError, AttributeError, TypeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise NeroInputError(
            f"{config_path} is not a nerfstudio config.yml ({first_line}); "
            "pass the config.yml written by `ns-train nero-shape`"
        ) from error
    if not isinstance(config, TrainerConfig):
        kind = type(config).__name__
    elif not isinstance(config.pipeline.model, NeroShapeModelConfig):
        kind = config.method_name or type(config.pipeline.model).__name__
    else:
        return config
    raise NeroInputError(
        f"{config_path} is a {kind} config, not nero-shape; pass the config.yml written by `ns-train nero-shape`"
    )


def newest_checkpoint(config_path: Path, config: TrainerConfig) -> Path:
    """The highest-step `step-*.ckpt` in the run's nerfstudio_models folder (next to config.yml)."""
    checkpoint_dir = Path(config_path).parent / config.relative_model_dir
    steps = {}
    for path in checkpoint_dir.glob("step-*.ckpt"):
        match = re.fullmatch(r"step-(\d+)\.ckpt", path.name)
        if match:
            steps[int(match.group(1))] = path
    if not steps:
        raise NeroInputError(
            f"{checkpoint_dir}: no step-*.ckpt; train Stage I first (`ns-train nero-shape --data DIR` saves one "
            "every --steps-per-save steps) and pass its config.yml"
        )
    return steps[max(steps)]


def load_stage_one(config_path: Path) -> Tuple[NeroShapeModel, TrainerConfig, Path]:
    """Build the Stage I NeroShapeModel of a run and load its newest checkpoint, on the CPU, in eval mode.

    Returns the model, the run's TrainerConfig and the checkpoint read. Only the model's weights are read
    (`torch.load(weights_only=True)`): no dataset, datamanager or optimizer is set up.
    """
    config = read_stage_one_config(config_path)
    checkpoint_path = newest_checkpoint(config_path, config)
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        pipeline_state = checkpoint["pipeline"]
    except (RuntimeError, KeyError, EOFError, OSError) as error:
        raise NeroInputError(
            f"{checkpoint_path} is not a readable nerfstudio checkpoint ({type(error).__name__}); "
            "delete it so the previous one is used, or train Stage I again"
        ) from error
    # Runs trained with several GPUs save the pipeline wrapped in DistributedDataParallel ("module." first).
    unwrapped = {key.removeprefix("module."): value for key, value in pipeline_state.items()}
    model_state = {
        key[len(MODEL_PREFIX) :]: value for key, value in unwrapped.items() if key.startswith(MODEL_PREFIX)
    }
    model_config: NeroShapeModelConfig = config.pipeline.model
    model = model_config.setup(
        scene_box=SceneBox(aabb=torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])), num_train_data=0, metadata={}
    )
    model.load_state_dict(model_state)
    model.eval()
    return model, config, checkpoint_path
