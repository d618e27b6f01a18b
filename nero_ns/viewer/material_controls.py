"""nero-material in ns-viewer: look at the recovered materials under other lights, see the learned light, export.

The model holds a `RelightingControls` (its `relighting` attribute); nerfstudio's viewer finds the GUI elements on
it and lists them in the panel in the alphabetical order of their attribute names, which is why they are named as
they are. With a light other than the training render chosen, the model's camera renders (the viewer's image) come
from `relit_preview`; rendering for training, evaluation and exports is unchanged. See docs/viewer.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Type

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.configs.base_config import InstantiateConfig
from nerfstudio.data.scene_box import OrientedBox
from nerfstudio.utils.rich_utils import CONSOLE
from nerfstudio.viewer.viewer_elements import ViewerButton, ViewerDropdown, ViewerSlider, ViewerText
from torch import Tensor

from nero_ns.components.prefiltered_light import PrefilteredEnvironment
from nero_ns.engine.trained_runs import DefaultsForNewFields
from nero_ns.errors import NeroInputError
from nero_ns.exporters.materials_export import (
    MaterialExportOptions,
    export_materials,
    material_mesh_options,
    tone_mapped,
)
from nero_ns.relight.environment import load_environment
from nero_ns.viewer.panel import EXPORT_RESOLUTIONS, ModelPanel, ViewerMarkdown, markdown_image
from nero_ns.viewer.relit_preview import relit_preview
from nero_ns.viewer.studio_lights import STUDIO_LIGHTS, environment_files, studio_light

if TYPE_CHECKING:
    from nero_ns.models.nero_material import NeroMaterialModel

TRAINING_RENDER = "Training render (learned light)"
"""Menu entry that leaves the model's own Monte Carlo render in the viewer."""

LEARNED_LIGHT = "Learned light (preview)"
"""Menu entry for the preview under the learned environment (and floor light), which rotation and exposure change."""

FILE_PREFIX = "File: "
"""Menu entries of the light folder's maps are this followed by the file name."""


@dataclass
class RelightingControlsConfig(DefaultsForNewFields, InstantiateConfig):
    """nero-material's panel in ns-viewer (docs/viewer.md)."""

    _target: Type = field(default_factory=lambda: RelightingControls)
    light_folder: Optional[Path] = None
    """Folder of lat-long environment maps (.hdr, .exr, .png, .jpg; z up, as nero-relight reads them) listed in the
    viewer's Light menu beside the learned light and the built-in studio lights. The panel's 'Light folder' field
    changes it while viewing (ns-viewer takes no model options)."""
    learned_light_rows: int = 128
    """Rows of the lat-long map the learned light is sampled into for the preview (twice as many columns)."""


class RelightingControls(ModelPanel):
    """The relighting panel: Light menu, exposure, rotation, light folder, learned-light image, textured export."""

    def __init__(self, config: RelightingControlsConfig, model: "NeroMaterialModel") -> None:
        super().__init__(model)
        self.config = config
        self._light_files: Dict[str, Path] = {}
        self._prefiltered: Dict[str, PrefilteredEnvironment] = {}
        self._learned_light_step: Optional[int] = None
        self.light = ViewerDropdown(
            "Light", TRAINING_RENDER, self._light_names(),
            hint="The training render, or a quick split-sum preview of the materials under another light",
        )
        self.light_exposure = ViewerSlider(
            "Exposure (EV)", 0.0, -4.0, 4.0, 0.1, hint="Preview brightness: the light is scaled by 2^EV"
        )
        self.light_rotation = ViewerSlider(
            "Rotation (deg)", 0.0, -180.0, 180.0, 1.0, hint="Turns the preview's light about the up (+z) axis"
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

    # ------------------------------------------------------------------ lights
    def _light_names(self) -> List[str]:
        return [TRAINING_RENDER, LEARNED_LIGHT, *STUDIO_LIGHTS, *self._light_files]

    def read_light_folder(self) -> None:
        """List the maps of the folder in the Light field (an empty field lists none) in the Light menu."""
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
            return self.owner().environment_map(self.config.learned_light_rows)
        if name in STUDIO_LIGHTS:
            return torch.as_tensor(studio_light(name))
        return torch.as_tensor(load_environment(self._light_files[name]))

    def prefiltered_light(self, name: str) -> PrefilteredEnvironment:
        """The chosen light, prefiltered once (the learned one again whenever training has moved on)."""
        model = self.owner()
        if name == LEARNED_LIGHT and self._learned_light_step != model.step:
            self._prefiltered.pop(name, None)
            self._learned_light_step = model.step
        if name not in self._prefiltered:
            self._prefiltered[name] = PrefilteredEnvironment(self._radiance(name), model.device)
        return self._prefiltered[name]

    # ------------------------------------------------------------------ rendering
    @property
    def active(self) -> bool:
        """Whether camera renders show the preview (a light other than the training render is chosen)."""
        return self.light.value != TRAINING_RENDER

    def render(self, camera: Cameras, obb_box: Optional[OrientedBox] = None) -> Dict[str, Tensor]:
        """The preview of one camera under the chosen light, rotation and exposure."""
        light = self.prefiltered_light(self.light.value)
        rays = camera.generate_rays(camera_indices=0, obb_box=obb_box)
        return relit_preview(
            self.owner(), rays, light, float(self.light_rotation.value), float(self.light_exposure.value)
        )

    # ------------------------------------------------------------------ buttons
    def show_learned_light_map(self) -> None:
        """Show the learned light (environment, floor light below the floor) as a tone-mapped lat-long image."""
        radiance = self.owner().environment_map(64).float().cpu().numpy()
        self.shown_learned_light.content = markdown_image(
            tone_mapped(radiance), "Learned light, lat-long (top: up, +z), tone-mapped"
        )

    def export_textured_glb(self) -> Optional[Path]:
        """Write what `ns-export nero-materials` writes (model.glb and the rest) into the run folder, at the
        chosen resolution; the path of model.glb is shown in the panel and returned."""
        resolution = int(self.write_at_resolution.value)
        output_dir = self.export_folder(f"materials-step{self.viewer.step}-res{resolution}")
        mesh_options = material_mesh_options()
        mesh_options.resolution = resolution
        self.written.content = f"Exporting to {output_dir} ..."
        try:
            paths = export_materials(
                self.owner(), self.viewer.pipeline.datamanager.train_dataparser_outputs, mesh_options,
                MaterialExportOptions(), output_dir,
            )
        except NeroInputError as error:
            self.written.content = f"Not exported: {error}"
            return None
        self.written.content = f"Wrote {paths['model.glb']}"
        CONSOLE.print(f"[bold green]Viewer export: {paths['model.glb']}")
        return paths["model.glb"]
