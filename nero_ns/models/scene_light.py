"""nero-material's light: what arrives at a surface point from each direction, and the map of it that light samples are
drawn from.

A direction leaving the object sees, by what it meets first (`ShapeGeometry.first_hits`): the object, the indirect
light (by point and direction); the textured square of the floor, the floor light or the indirect light
(`floor_light_use`); the floor beyond that square, the indirect light (it may hold other objects there); nothing, the
distant environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Tuple

import torch
from jaxtyping import Bool, Float
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor, nn

from nero_ns.components.light_sampling import LatLongLightSampler
from nero_ns.fields.environment_light import EnvironmentLightConfig, IndirectLightConfig
from nero_ns.fields.floor_light import FloorLight, FloorLightConfig
from nero_ns.io.latlong import latlong_directions
from nero_ns.models.shape_geometry import ShapeGeometry

FloorLightUse = Literal["indirect", "prior", "direct"]


@dataclass
class SceneLightOptions:
    """Options of nero-material's light (part of the nero-material model config)."""

    environment_light: EnvironmentLightConfig = field(default_factory=EnvironmentLightConfig)
    """Distant light for directions that escape the object."""
    indirect_light: IndirectLightConfig = field(default_factory=IndirectLightConfig)
    """Light for directions blocked by the object."""
    floor_light: FloorLightConfig = field(default_factory=FloorLightConfig)
    """Light leaving the support plane: a texture learned from the camera rays that meet the floor, times the
    share of the sky the object leaves open above each floor point."""
    floor_light_use: FloorLightUse = "indirect"
    """How light directions that meet the textured floor are lit. 'indirect': by the indirect light (by point and
    direction), as other directions the scene blocks; the floor light then shows the floor to camera rays only.
    'prior': the same, pulled toward the floor light by `floor_prior_loss_mult`. 'direct': by the floor light. A near
    mirror shows the floor through the nero-shape normals; where those are off, the exact floor lands in the wrong
    place, which the material field can only blur away with roughness (docs/nero-material.md has the figures)."""
    light_sampling_resolution: int = 128
    """Rows of the lat-long map of the light (environment above the floor, floor light below) that light samples
    are drawn from (twice as many columns)."""
    light_sampling_exponent: float = 2.0
    """Cells of that map are drawn in proportion to luminance^exponent x solid angle: above 1, bright cells get
    more than their share of the energy, so a sun holding a few percent of the light still gets several samples."""
    light_sampling_every: int = 50
    """Training steps between rebuilds of the light sampler from the current light."""


@dataclass
class IncidentLight:
    """Radiance arriving at surface points along directions, and what it came from."""

    radiance: Float[Tensor, "*bs 3"]
    sky: Bool[Tensor, "*bs"]
    """The directions that see the environment (nothing blocks them)."""
    floor_pair: Optional[Tuple[Float[Tensor, "num 3"], Float[Tensor, "num 3"]]] = None
    """With floor_light_use 'prior', in training: the indirect light of the directions that meet the textured floor,
    and the floor light there (detached), for the prior that ties the first to the second."""


class SceneLight(nn.Module):
    """The environment, indirect and floor lights, and a sampler drawing directions from the light.

    `options` is read at each call (the model's config: changing it changes the light's behaviour at once)."""

    def __init__(self, options: SceneLightOptions) -> None:
        super().__init__()
        self.options = options
        self.environment = options.environment_light.setup()
        self.indirect = options.indirect_light.setup()
        self.floor = options.floor_light.setup()
        # Built from the light on first use and every light_sampling_every training steps; not saved.
        self._sampler: Optional[LatLongLightSampler] = None

    def lit_floor(self, geometry: ShapeGeometry) -> Optional[FloorLight]:
        """The floor light when there is a support plane, its sky visibility ray cast on first use."""
        if not geometry.support_plane.has_plane:
            return None
        if not self.floor.has_visibility:
            CONSOLE.print("Ray casting the sky visibility of the floor under the object (once; kept in checkpoints)")
            self.floor.compute_sky_visibility(geometry.support_plane, geometry.raycaster)
        return self.floor

    def floor_radiance(self, geometry: ShapeGeometry, points: Float[Tensor, "num 3"]) -> Float[Tensor, "num 3"]:
        """Radiance leaving points of the support plane (there must be one)."""
        floor = self.lit_floor(geometry)
        assert floor is not None, "floor_radiance needs a support plane"
        return floor(geometry.support_plane, points)

    def sources(
        self, points: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"], geometry: ShapeGeometry
    ) -> Tuple[Bool[Tensor, "*bs"], Bool[Tensor, "*bs"], Float[Tensor, "*bs 3"]]:
        """Which light each direction leaving a surface point sees: (the object or the floor past its textured
        square first: indirect light, the textured floor first: floor light at the returned floor points); the
        rest see the environment."""
        hits = geometry.first_hits(points, directions, from_surface=True)
        if not hits.floor.any():
            return hits.object, hits.floor, hits.floor_points
        # Past the textured square the floor holds other objects, seen with parallax: the indirect light takes it.
        far_floor = hits.floor & ~self.floor.within(geometry.support_plane, hits.floor_points)
        return hits.object | far_floor, hits.floor & ~far_floor, hits.floor_points

    def incident(
        self, points: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"], geometry: ShapeGeometry
    ) -> IncidentLight:
        """Radiance arriving at surface points from `directions` (unit), lit as `sources` says."""
        blocked, on_floor, floor_points = self.sources(points, directions, geometry)
        sky = ~blocked & ~on_floor
        radiance = torch.empty(*directions.shape[:-1], 3, device=directions.device, dtype=directions.dtype)
        # nerfstudio's frequency encoding cannot take an empty batch, so skip a kind that has no samples.
        if sky.any():
            radiance[sky] = self.environment(directions[sky])
        use = self.options.floor_light_use
        indirect = blocked if use == "direct" else blocked | on_floor
        if indirect.any():
            radiance[indirect] = self.indirect(points[indirect], directions[indirect])
        floor_pair = None
        if on_floor.any() and (use == "direct" or (use == "prior" and self.training)):
            floor_radiance = self.floor_radiance(geometry, floor_points[on_floor])
            if use == "direct":
                radiance[on_floor] = floor_radiance
            else:
                floor_pair = (radiance[on_floor], floor_radiance.detach())
        return IncidentLight(radiance, sky, floor_pair)

    @torch.no_grad()
    def environment_map(self, height: int, geometry: ShapeGeometry) -> Float[Tensor, "height width 3"]:
        """The light around the object as an H x 2H lat-long map of linear radiance (`nero_ns.io.latlong`): the
        environment light, and, in directions that meet the support plane from the center of the object, the floor
        light where they meet it (nero-material never lights from below the floor with the environment, so nothing
        trains it there)."""
        device = geometry.mesh_vertices.device
        directions = torch.as_tensor(latlong_directions(height, 2 * height), dtype=torch.float32, device=device)
        environment = self.environment(directions)
        if not geometry.support_plane.has_plane:
            return environment
        meets, floor_points, _ = geometry.support_plane.intersect(torch.zeros_like(directions), directions)
        if meets.any():
            environment[meets] = self.floor_radiance(geometry, floor_points[meets])
        return environment

    # ------------------------------------------------------------------ light sampling
    def sampler(self, geometry: ShapeGeometry) -> LatLongLightSampler:
        """The light sampler, built from the light as it is now on first use."""
        if self._sampler is None:
            self.rebuild_sampler(geometry)
        assert self._sampler is not None
        return self._sampler

    def rebuild_sampler(self, geometry: ShapeGeometry) -> None:
        """Draw light samples from the light as it is now."""
        self._sampler = LatLongLightSampler(
            self.environment_map(self.options.light_sampling_resolution, geometry),
            exponent=self.options.light_sampling_exponent,
        )

    def train(self, mode: bool = True) -> "SceneLight":
        """Entering evaluation drops the light sampler, so renders draw from the light as it is now (a checkpoint
        renders the same after loading)."""
        if not mode:
            self._sampler = None
        return super().train(mode)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        self._sampler = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
