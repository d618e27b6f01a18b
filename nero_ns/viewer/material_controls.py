"""nero-material in ns-viewer: look at the recovered materials under other lights, see the learned light, export.

With a light other than the training render chosen, the panel sets the model's `preview_light`, and the viewer's
image is the split-sum preview (`nero_ns.models.relit_preview`); rendering for training, evaluation and exports is
unchanged. See docs/viewer.md.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, List, Literal, Optional, Type

import torch
from nerfstudio.configs.base_config import InstantiateConfig
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from nerfstudio.utils.rich_utils import CONSOLE
from nerfstudio.viewer.viewer_elements import ViewerButton, ViewerDropdown, ViewerSlider, ViewerText
from torch import Tensor

from nero_ns.components.prefiltered_light import PrefilteredEnvironment
from nero_ns.errors import NeroInputError
from nero_ns.exporters.materials_export import (
    MaterialExportOptions,
    export_materials,
    material_mesh_options,
    tone_mapped,
)
from nero_ns.io.configs import DefaultsForNewFields
from nero_ns.io.latlong import load_environment
from nero_ns.models.nero_material import NeroMaterialModel
from nero_ns.models.relit_preview import PreviewLight
from nero_ns.viewer.panel import EXPORT_RESOLUTIONS, ViewerMarkdown, ViewerPanel, markdown_image
from nero_ns.viewer.studio_lights import STUDIO_LIGHTS, environment_files, studio_light

if TYPE_CHECKING:
    from nerfstudio.pipelines.base_pipeline import VanillaPipeline

TRAINING_RENDER = "Training render (learned light)"
"""Menu entry that leaves the model's own Monte Carlo render in the viewer."""

LEARNED_LIGHT = "Learned light (preview)"
"""Menu entry for the preview under the learned environment (and floor light), which rotation and exposure change."""

OPENING_LIGHTS = {"learned-light-preview": LEARNED_LIGHT, "training-render": TRAINING_RENDER}
"""The menu entry of each `opening_light` choice."""

FILE_PREFIX = "File: "
"""Menu entries of the light folder's maps are this followed by the file name."""


@dataclass
class RelightingPanelConfig(DefaultsForNewFields, InstantiateConfig):
    """nero-material's panel in ns-viewer (docs/viewer.md)."""

    _target: Type = field(default_factory=lambda: RelightingPanel)
    light_folder: Optional[Path] = None
    """Folder of lat-long environment maps (.hdr, .exr, .png, .jpg; z up, as nero-relight reads them) listed in the
    viewer's Light menu beside the learned light and the built-in studio lights. The panel's 'Light folder' field
    changes it while viewing (ns-viewer takes no pipeline options)."""
    opening_light: Literal["learned-light-preview", "training-render"] = "learned-light-preview"
    """What the viewer shows when it opens: the quick preview under the learned light, which follows the camera on a
    CPU, or the model's Monte Carlo render (on a CPU, slow enough that the viewer, training steps and the panel's
    buttons wait for each frame)."""
    learned_light_rows: int = 128
    """Rows of the lat-long map the learned light is sampled into for the preview (twice as many columns)."""
    refresh_every: int = 100
    """Training steps between two refreshes of the learned light's preview while it is shown."""


class RelightingPanel(ViewerPanel):
    """The relighting panel: Light menu, exposure, rotation, light folder, learned-light image, textured export."""

    def __init__(self, config: RelightingPanelConfig, pipeline: "VanillaPipeline") -> None:
        super().__init__(pipeline)
        self.config = config
        self._light_files: Dict[str, Path] = {}
        self._prefiltered: Dict[str, PrefilteredEnvironment] = {}
        self.light = ViewerDropdown(
            "Light", OPENING_LIGHTS[config.opening_light], self._light_names(), cb_hook=lambda _: self.apply(),
            hint="The training render, or a quick split-sum preview of the materials under another light",
        )
        self.light_exposure = ViewerSlider(
            "Exposure (EV)", 0.0, -4.0, 4.0, 0.1, cb_hook=lambda _: self.apply(),
            hint="Preview brightness: the light is scaled by 2^EV",
        )
        self.light_rotation = ViewerSlider(
            "Rotation (deg)", 0.0, -180.0, 180.0, 1.0, cb_hook=lambda _: self.apply(),
            hint="Turns the preview's light about the up (+z) axis",
        )
        self.lights_folder = ViewerText(
            "Light folder", str(config.light_folder or ""), cb_hook=lambda _: self.read_light_folder(),
            hint="Folder of lat-long .hdr/.exr/.png/.jpg maps to add to the Light menu",
        )
        self.lights_folder_status = ViewerMarkdown("")
        self.show_learned_light = ViewerButton("Show learned light", cb_hook=lambda _: self.show_learned_light_map())
        self.shown_learned_light = ViewerMarkdown("")
        self.write_at_resolution = ViewerSlider(
            "Export resolution", material_mesh_options().resolution, *EXPORT_RESOLUTIONS,
            hint="Marching-cubes samples per axis of the exported mesh",
        )
        self.write_glb = ViewerButton("Export textured .glb", cb_hook=lambda _: self.export_textured_glb())
        self.written = ViewerMarkdown("")
        if config.light_folder is not None:
            self.read_light_folder()

    def model(self) -> NeroMaterialModel:
        """The nero-material model shown."""
        model = self.owner().model
        assert isinstance(model, NeroMaterialModel), "the relighting panel belongs to a nero-material pipeline"
        return model

    # ------------------------------------------------------------------ lights
    def _light_names(self) -> List[str]:
        return [TRAINING_RENDER, LEARNED_LIGHT, *STUDIO_LIGHTS, *self._light_files]

    def read_light_folder(self) -> None:
        """List the maps of the folder in the Light field in the Light menu (an empty field lists none)."""
        folder = self.lights_folder.value.strip()
        try:
            files = environment_files(Path(folder)) if folder else []
        except NeroInputError as error:
            files = []
            self.lights_folder_status.content = str(error)
            CONSOLE.print(f"[bold yellow]{error}")
        else:
            self.lights_folder_status.content = f"{len(files)} maps in {folder}" if folder else ""
        self._light_files = {FILE_PREFIX + path.name: path for path in files}
        if self.light.value not in self._light_names():
            self.light.value = TRAINING_RENDER
        self.light.set_options(self._light_names())

    def _radiance(self, name: str) -> Tensor:
        """The linear lat-long map of a menu entry other than the training render."""
        if name == LEARNED_LIGHT:
            return self.model().environment_map(self.config.learned_light_rows)
        if name in STUDIO_LIGHTS:
            return torch.as_tensor(studio_light(name))
        return torch.as_tensor(load_environment(self._light_files[name]))

    def prefiltered_light(self, name: str) -> PrefilteredEnvironment:
        """A menu entry's light, prefiltered on first use (the learned one again at each `apply`: training moves
        it)."""
        if name == LEARNED_LIGHT or name not in self._prefiltered:
            self._prefiltered[name] = PrefilteredEnvironment(self._radiance(name), self.model().device)
        return self._prefiltered[name]

    def apply(self) -> None:
        """Give the model the light, rotation and exposure chosen (none for the training render)."""
        name = self.light.value
        self.model().preview_light = None if name == TRAINING_RENDER else PreviewLight(
            self.prefiltered_light(name), float(self.light_rotation.value), float(self.light_exposure.value)
        )

    @contextmanager
    def model_renders(self) -> Iterator[None]:
        """Evaluation while the viewer shows a preview scores the Monte Carlo render: the preview is paused for the
        while (the trainer evaluates under the lock the viewer renders under; the panel's menus may still change the
        light meanwhile)."""
        model = self.model()
        model.preview_paused = True
        try:
            yield
        finally:
            model.preview_paused = False

    def _setup(self, viewer) -> None:
        """Called by the viewer once its panel exists: show the opening light. While training, the first training
        step does it (`training_callbacks`), after any checkpoint to resume from is loaded."""
        super()._setup(viewer)
        if viewer.trainer is None:
            self.apply()

    def training_callbacks(self) -> List[TrainingCallback]:
        """After the first training step, show the chosen light; then refresh the learned light's preview every
        `refresh_every` steps while it is shown. Without a viewer (`--vis tensorboard`, tests) nothing is shown."""

        def refresh(step: int) -> None:
            if self.viewer is None:
                return
            chosen = self.light.value
            not_yet_shown = chosen != TRAINING_RENDER and self.model().preview_light is None
            if not_yet_shown or (chosen == LEARNED_LIGHT and step % self.config.refresh_every == 0):
                self.apply()

        after_step = [TrainingCallbackLocation.AFTER_TRAIN_ITERATION]
        return [TrainingCallback(after_step, update_every_num_iters=1, func=refresh)]

    # ------------------------------------------------------------------ buttons
    def show_learned_light_map(self) -> None:
        """Show the learned light (environment, floor light below the floor) as a tone-mapped lat-long image."""
        radiance = self.model().environment_map(64).float().cpu().numpy()
        self.shown_learned_light.content = markdown_image(
            tone_mapped(radiance), "Learned light, lat-long (top: up, +z), tone-mapped"
        )

    def export_textured_glb(self) -> Optional[Path]:
        """Write what `ns-export nero-materials` writes (model.glb and the rest) into the run folder, at the
        chosen resolution; the path of model.glb is shown in the panel and returned."""
        assert self.viewer is not None, "export buttons work once the viewer has started"
        resolution = int(self.write_at_resolution.value)
        output_dir = self.export_folder(f"materials-step{self.viewer.step}-res{resolution}")
        mesh_options = material_mesh_options()
        mesh_options.resolution = resolution
        self.written.content = f"Exporting to {output_dir} ..."
        try:
            paths = export_materials(
                self.model(), self.owner().datamanager.train_dataparser_outputs, mesh_options,
                MaterialExportOptions(), output_dir,
            )
        except NeroInputError as error:
            self.written.content = f"Not exported: {error}"
            return None
        self.written.content = f"Wrote {paths['model.glb']}"
        CONSOLE.print(f"[bold green]Viewer export: {paths['model.glb']}")
        return paths["model.glb"]
