"""nerfstudio's pipeline, with each training batch's per-ray errors fed back to the datamanager that drew it, and a
model that reads what it needs from the training photos given them before training."""

from __future__ import annotations

from typing import Dict, Literal, Optional, Tuple

from nerfstudio.pipelines.base_pipeline import VanillaPipeline, VanillaPipelineConfig
from torch import Tensor
from torch.amp import GradScaler


class NeroPipeline(VanillaPipeline):
    """VanillaPipeline whose training step also tells the datamanager how wrong each ray's rendering was, when the
    datamanager asks (its error map draws the next rays, `nero_ns/datamanagers/error_map.py`)."""

    def __init__(
        self,
        config: VanillaPipelineConfig,
        device: str,
        test_mode: Literal["test", "val", "inference"] = "val",
        world_size: int = 1,
        local_rank: int = 0,
        grad_scaler: Optional[GradScaler] = None,
    ) -> None:
        super().__init__(config, device, test_mode, world_size, local_rank, grad_scaler)
        if test_mode == "val" and hasattr(self.model, "read_floor_from_photos"):  # training, not loading a run
            self.model.read_floor_from_photos(self.datamanager.train_dataset)

    def get_train_loss_dict(self, step: int) -> Tuple[Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor]]:
        ray_bundle, batch = self.datamanager.next_train(step)
        model_outputs = self._model(ray_bundle)
        metrics_dict = self.model.get_metrics_dict(model_outputs, batch)
        loss_dict = self.model.get_loss_dict(model_outputs, batch, metrics_dict)
        if getattr(self.datamanager, "wants_ray_errors", False):
            self.datamanager.record_ray_errors(batch, self.model.ray_errors(model_outputs, batch))
        return model_outputs, loss_dict, metrics_dict
