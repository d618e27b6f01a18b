"""nero-shape in ns-viewer: whether nero-shape has converged, and the mesh export at a chosen resolution. See
docs/viewer.md."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Type

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.configs.base_config import InstantiateConfig
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from nerfstudio.utils.rich_utils import CONSOLE
from nerfstudio.viewer.viewer_elements import ViewerButton, ViewerSlider

from nero_ns.components.samplers import intersect_unit_sphere
from nero_ns.errors import NeroInputError
from nero_ns.exporters.mesh_export import MeshExportOptions, export_mesh, write_mesh
from nero_ns.io.configs import DefaultsForNewFields
from nero_ns.models.nero_shape import NeroShapeModel
from nero_ns.viewer.panel import EXPORT_RESOLUTIONS, ViewerMarkdown, ViewerPanel

if TYPE_CHECKING:
    from nerfstudio.pipelines.base_pipeline import VanillaPipeline


@dataclass
class ConvergenceFigures:
    """What tells whether nero-shape has converged."""

    step: int
    inv_s: float
    """NeuS sharpness 1/s: the surface's density falls from full to none over about 1/inv_s; it grows as the
    surface sharpens and levels off at convergence."""
    unlocked_levels: int
    num_levels: int
    """Hash grid levels unlocked so far (coarse to fine) and in all."""
    inside_share: float
    """Of the probe rays that cross the unit sphere, the share whose colour comes mostly (weight > 0.5) from the
    SDF's surface rather than the far field behind it."""
    crossing_rays: int

    def markdown(self) -> str:
        return (
            f"**nero-shape at step {self.step}**  \n"
            f"inv_s (sharpness): {self.inv_s:.1f}  \n"
            f"hash levels unlocked: {self.unlocked_levels} / {self.num_levels}  \n"
            f"rays ending inside the sphere: {100.0 * self.inside_share:.1f}% of {self.crossing_rays} training rays "
            "that cross it"
        )


def probe_rays(cameras: Cameras, num_rays: int, seed: int = 0) -> RayBundle:
    """`num_rays` rays through random pixels of random cameras (the same ones for a given seed)."""
    generator = torch.Generator().manual_seed(seed)
    camera_indices = torch.randint(len(cameras), (num_rays,), generator=generator)
    heights = cameras.height[camera_indices, 0].float()
    widths = cameras.width[camera_indices, 0].float()
    coords = torch.rand(num_rays, 2, generator=generator) * torch.stack([heights, widths], dim=-1)
    return cameras.generate_rays(camera_indices=camera_indices[:, None], coords=coords)


@torch.no_grad()
def convergence_figures(model: NeroShapeModel, rays: RayBundle, step: int) -> ConvergenceFigures:
    """The figures of `model` now, rendering `rays` in evaluation mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        accumulation = model.get_outputs(rays)["accumulation"][:, 0]
    finally:
        model.train(was_training)
    _, _, crosses = intersect_unit_sphere(rays.origins, rays.directions)
    crosses = crosses[:, 0]
    inside_share = float((accumulation[crosses] > 0.5).float().mean()) if crosses.any() else 0.0
    encoding = model.sdf_field.encoding
    return ConvergenceFigures(
        step=step, inv_s=float(model.sdf_field.inv_s()), unlocked_levels=encoding.num_active_levels,
        num_levels=encoding.num_levels, inside_share=inside_share, crossing_rays=int(crosses.sum()),
    )


@dataclass
class ShapePanelConfig(DefaultsForNewFields, InstantiateConfig):
    """nero-shape's panel in ns-viewer (docs/viewer.md)."""

    _target: Type = field(default_factory=lambda: ShapePanel)
    probe_rays: int = 1024
    """Training-image rays the readout renders to measure the share of rays that end inside the sphere."""
    refresh_every: int = 100
    """Training steps between two refreshes of the readout while a viewer is open."""


class ShapePanel(ViewerPanel):
    """The nero-shape panel: convergence readout, mesh export."""

    def __init__(self, config: ShapePanelConfig, pipeline: "VanillaPipeline") -> None:
        super().__init__(pipeline)
        self.config = config
        self._probe_rays: Optional[RayBundle] = None
        self.convergence = ViewerMarkdown("")
        self.write_at_resolution = ViewerSlider(
            "Export resolution", MeshExportOptions().resolution, *EXPORT_RESOLUTIONS,
            hint="Marching-cubes samples per axis of the exported mesh",
        )
        self.write_mesh = ViewerButton("Export mesh (.ply)", cb_hook=lambda _: self.export_mesh_file())
        self.written = ViewerMarkdown("")

    def model(self) -> NeroShapeModel:
        """The nero-shape model shown."""
        model = self.owner().model
        assert isinstance(model, NeroShapeModel), "the shape panel belongs to a nero-shape pipeline"
        return model

    def _setup(self, viewer) -> None:
        """Called by the viewer once its panel exists: choose the probe rays and show the readout."""
        super()._setup(viewer)
        cameras = self.owner().datamanager.train_dataset.cameras
        self._probe_rays = probe_rays(cameras, self.config.probe_rays).to(self.model().device)
        self.refresh_readout(viewer.step)

    def training_callbacks(self) -> List[TrainingCallback]:
        """Refresh the readout every `refresh_every` steps while a viewer shows it."""
        after_step = [TrainingCallbackLocation.AFTER_TRAIN_ITERATION]
        return [
            TrainingCallback(after_step, update_every_num_iters=self.config.refresh_every, func=self.refresh_readout)
        ]

    def refresh_readout(self, step: int) -> Optional[ConvergenceFigures]:
        """Measure and show the convergence figures (nothing without a viewer)."""
        if self._probe_rays is None:
            return None
        figures = convergence_figures(self.model(), self._probe_rays, step)
        self.convergence.content = figures.markdown()
        return figures

    def export_mesh_file(self) -> Optional[Path]:
        """Write what `ns-export nero-mesh` writes (mesh.ply, input frame) into the run folder at the chosen
        resolution; its path is shown in the panel and returned."""
        assert self.viewer is not None, "export buttons work once the viewer has started"
        resolution = int(self.write_at_resolution.value)
        output_dir = self.export_folder(f"mesh-step{self.viewer.step}-res{resolution}")
        self.written.content = f"Exporting to {output_dir} ..."
        try:
            mesh = export_mesh(
                self.model(), self.owner().datamanager.train_dataparser_outputs,
                MeshExportOptions(resolution=resolution),
            )
        except NeroInputError as error:
            self.written.content = f"Not exported: {error}"
            return None
        path = write_mesh(mesh, output_dir, "ply")
        self.written.content = f"Wrote {path} ({len(mesh.faces)} faces)"
        CONSOLE.print(f"[bold green]Viewer export: {path}")
        return path
