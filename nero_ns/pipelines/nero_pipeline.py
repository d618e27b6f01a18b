"""nerfstudio's pipeline, with each training batch's per-ray errors fed back to the datamanager that drew it."""

from __future__ import annotations

from typing import Dict, Tuple

from nerfstudio.pipelines.base_pipeline import VanillaPipeline
from torch import Tensor


class NeroPipeline(VanillaPipeline):
    """VanillaPipeline whose training step also tells the datamanager how wrong each ray's rendering was, when the
    datamanager asks (its error map draws the next rays, `nero_ns/datamanagers/error_map.py`)."""

    def get_train_loss_dict(self, step: int) -> Tuple[Dict[str, Tensor], Dict[str, Tensor], Dict[str, Tensor]]:
        ray_bundle, batch = self.datamanager.next_train(step)
        model_outputs = self._model(ray_bundle)
        metrics_dict = self.model.get_metrics_dict(model_outputs, batch)
        loss_dict = self.model.get_loss_dict(model_outputs, batch, metrics_dict)
        if getattr(self.datamanager, "wants_ray_errors", False):
            self.datamanager.record_ray_errors(batch, self.model.ray_errors(model_outputs, batch))
        return model_outputs, loss_dict, metrics_dict
