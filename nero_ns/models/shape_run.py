"""Load a trained nero-shape run from its config.yml: the geometry that nero-material starts from."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

import torch
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.trainer import TrainerConfig

from nero_ns.engine.trained_runs import newest_checkpoint, read_trained_config
from nero_ns.errors import NeroInputError
from nero_ns.models.nero_shape import NeroShapeModel, NeroShapeModelConfig

MODEL_PREFIX = "_model."
"""Prefix of the model's entries in a nerfstudio pipeline state dict."""


def load_shape_run(config_path: Path) -> Tuple[NeroShapeModel, TrainerConfig, Path]:
    """Build the nero-shape NeroShapeModel of a run and load its newest checkpoint, on the CPU, in eval mode.

    Returns the model, the run's TrainerConfig and the checkpoint read. Only the model's weights are read
    (`torch.load(weights_only=True)`): no dataset, datamanager or optimizer is set up.
    """
    config = read_trained_config(config_path, "nero-shape", (NeroShapeModelConfig,), option="--shape-config")
    checkpoint_path = newest_checkpoint(config_path, config, "nero-shape")
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        pipeline_state = checkpoint["pipeline"]
    except (RuntimeError, KeyError, EOFError, OSError) as error:
        raise NeroInputError(
            f"{checkpoint_path} is not a readable nerfstudio checkpoint ({type(error).__name__}); "
            "delete it so the previous one is used, or train nero-shape again"
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
