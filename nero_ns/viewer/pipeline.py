"""nerfstudio's pipeline with a method's panel in ns-viewer.

nerfstudio's viewer lists the GUI elements it finds on the pipeline and its modules. The panels live here, on the
pipeline, rather than on the models: their buttons run the exporters, a floor above the models (docs/design.md).
The pipeline config names the panel, so `ns-train` (live viewer) and `ns-viewer --load-config` (the run's
config.yml) both build it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Type

from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig

from nero_ns.pipelines.nero_pipeline import NeroPipeline
from nero_ns.viewer.material_controls import RelightingPanelConfig
from nero_ns.viewer.shape_controls import ShapePanelConfig


@dataclass
class ShapePipelineConfig(VanillaPipelineConfig):
    """nerfstudio's pipeline with nero-shape's panel in ns-viewer."""

    _target: Type = field(default_factory=lambda: PanelPipeline)
    panel: ShapePanelConfig = field(default_factory=ShapePanelConfig)
    """Convergence readout and mesh export in ns-viewer."""


@dataclass
class MaterialPipelineConfig(VanillaPipelineConfig):
    """nerfstudio's pipeline with nero-material's panel in ns-viewer."""

    _target: Type = field(default_factory=lambda: PanelPipeline)
    panel: RelightingPanelConfig = field(default_factory=RelightingPanelConfig)
    """Relighting preview, learned light and textured export in ns-viewer."""


class PanelPipeline(NeroPipeline):
    """NeroPipeline that also holds its config's panel (`panel`) and runs the panel's training callbacks."""

    def __init__(self, config: ShapePipelineConfig | MaterialPipelineConfig, *args, **kwargs) -> None:
        """NeroPipeline's arguments (device, test_mode, ...), then the panel."""
        super().__init__(config, *args, **kwargs)
        self.panel = config.panel.setup(pipeline=self)

    def get_eval_image_metrics_and_images(self, step: int):
        """nerfstudio's, on the model's own render even while the viewer shows a preview."""
        with self.panel.model_renders():
            return super().get_eval_image_metrics_and_images(step)

    def get_average_eval_image_metrics(self, *args, **kwargs):
        """nerfstudio's, on the model's own render even while the viewer shows a preview."""
        with self.panel.model_renders():
            return super().get_average_eval_image_metrics(*args, **kwargs)

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> List[TrainingCallback]:
        return super().get_training_callbacks(training_callback_attributes) + self.panel.training_callbacks()
