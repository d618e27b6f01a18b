"""nero-material: Stage II of NeRO. PBR materials and lighting on the fixed Stage I geometry, by Monte Carlo shading.

Camera rays are cast against a mesh of the Stage I SDF (extracted once, then kept in every checkpoint); each hit is
shaded with GGX + Lambert by `monte_carlo_shade`, where a sampled direction sees the learned indirect light when the
mesh blocks it or it meets the support plane (found in the sparse points; the indirect light is tied there to the
floor light by a prior, or the floor light is used as it is), and the environment light otherwise. Rays that miss
the mesh take the frozen Stage I far field, volume rendered from the sphere exit as in Stage I, or the floor light
where they meet the floor inside the sphere. Renders average several rays per pixel, so silhouette pixels are
blends as in photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
from jaxtyping import Bool, Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.scene_box import OrientedBox
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor
from torch.nn import Parameter

from nero_ns.colors import linear_to_srgb
from nero_ns.components.brdf import orthonormal_frame
from nero_ns.components.compositing import alphas_from_densities, weights_from_alphas
from nero_ns.components.light_sampling import LatLongLightSampler
from nero_ns.components.mc_shading import monte_carlo_shade
from nero_ns.components.raycast import MeshRaycaster
from nero_ns.components.samplers import InverseDistanceSampler, intersect_unit_sphere
from nero_ns.engine.trained_runs import DefaultsForNewFields
from nero_ns.engine.trainer import NeroTrainer, NeroTrainerConfig
from nero_ns.errors import NeroInputError, friendly_errors
from nero_ns.evaluation.image_metrics import ImageMetrics
from nero_ns.models.photometric import PhotometricLossKind, linear_target, photometric_loss, split_estimate_loss
from nero_ns.exporters.marching_cubes import extract_sdf_mesh
from nero_ns.fields.environment_light import EnvironmentLightConfig, IndirectLightConfig
from nero_ns.fields.floor_light import FloorLight, FloorLightConfig
from nero_ns.fields.material_field import MaterialFieldConfig
from nero_ns.fields.shading_field import NeroShadingField
from nero_ns.models.stage_one import load_stage_one
from nero_ns.models.warm_start import warm_start
from nero_ns.synthetic.envmap import latlong_directions
from nero_ns.viewer.material_controls import RelightingControlsConfig

MISSING_SHAPE_CONFIG = (
    "nero-material needs the Stage I run: pass --shape-config outputs/<experiment>/nero-shape/<timestamp>/config.yml "
    "(written by `ns-train nero-shape`)"
)


@dataclass
class NeroMaterialModelConfig(DefaultsForNewFields, ModelConfig):
    """nero-material model: every part is configurable from the command line."""

    _target: Type = field(default_factory=lambda: NeroMaterialModel)
    shape_config: Optional[Path] = None
    """config.yml of the Stage I (nero-shape) run; set from the top-level --shape-config."""
    mesh_resolution: int = 256
    """Marching-cubes samples per axis of the Stage I mesh that rays are cast against (extracted once)."""
    finetune_geometry: bool = False
    """Also optimize the Stage I SDF (through the shading normals) with the small 'geometry' learning rate: advised
    for final assets (on the material benchmark's held-out views, object PSNR +0.43 dB on the knot, +0.11 on the
    blob), at about 15% more time per step."""
    material_field: MaterialFieldConfig = field(default_factory=MaterialFieldConfig)
    """Albedo, roughness and metallic at surface points."""
    environment_light: EnvironmentLightConfig = field(default_factory=EnvironmentLightConfig)
    """Distant light for directions that escape the object."""
    indirect_light: IndirectLightConfig = field(default_factory=IndirectLightConfig)
    """Light for directions blocked by the object."""
    num_diffuse_samples: int = 24
    """Cosine-weighted light directions per pixel (the original uses 512)."""
    num_specular_samples: int = 24
    """GGX visible-normal light directions per pixel (the original uses 256)."""
    num_light_samples: int = 16
    """Light directions per pixel drawn from the learned light itself (`LatLongLightSampler`), the third strategy of
    the multiple importance sampling (0: none). Without them a small bright light such as a sun is met by few
    samples at a huge weight, and the Charbonnier loss, fitting near the median of that skewed estimate, never lets
    the light grow into it."""
    light_sampling_resolution: int = 128
    """Rows of the lat-long map of the light (environment above the floor, floor light below) that light samples
    are drawn from (twice as many columns)."""
    light_sampling_exponent: float = 2.0
    """Cells of that map are drawn in proportion to luminance^exponent x solid angle: above 1, bright cells get
    more than their share of the energy, so a sun holding a few percent of the light still gets several samples."""
    light_sampling_every: int = 50
    """Training steps between rebuilds of the light sampler from the current light."""
    eval_sample_multiplier: int = 1
    """The three sample counts are multiplied by this when rendering outside training (viewer, ns-eval, exports of
    renders): less Monte Carlo noise in the images at no cost to training."""
    eval_pixel_samples: int = 4
    """Rays per pixel when rendering a camera outside training (a square number: a stratified grid over the pixel),
    averaged in linear color. A ray hits the mesh or misses it, so one ray per pixel gives stair-stepped silhouettes
    where a photo blends object and background; the 4 rays also average 4x the Monte Carlo samples."""
    photometric_loss: PhotometricLossKind = "charbonnier"
    """Photometric loss on linear colors."""
    charbonnier_epsilon: float = 0.05
    """Residual (linear) below which the Charbonnier loss is quadratic: within it the fit goes to the mean of the
    photos' noise, beyond it to the median (robust to fireflies and misplaced highlights). The photos' highlights
    are speckle (a few of the renderer's samples meet a small light), whose mean lies above its median, and PSNR
    rewards the mean. With the split estimate, the material benchmark's blob reached object PSNR 27.88 at 0.05
    and 27.86 at 0.001 (one Stage I run); its roughness MAE 0.037 and 0.044."""
    split_estimate_mult: float = 1.0
    """Weight of the split gradient (`split_estimate_loss`) added to the photometric loss's own (0: off). Above 0,
    each hit is shaded in training as two independent halves of its light samples (the counts must be even), and
    each half's derivative is also weighted by the loss's slope at the other half's residual, so a sample that
    meets a small bright light no longer alone sets the sign of its gradient, which pulls such a light down. On the
    material benchmark's blob, this with charbonnier-epsilon 0.05 raised the object PSNR by 0.30 and 0.44 dB over
    neither (split off, epsilon 0.001) on two Stage I runs, passing Stage I's on the second; docs/nero-material.md has the
    figures."""
    split_estimate_joint_mult: float = 1.0
    """With a split estimate, the weight of the photometric loss's own gradient (of the mean of the halves) beside
    the split gradient. 0, the split gradient alone, lets a rarely met light grow past the photos: on the
    benchmark's blob, object PSNR 0.87 dB below the default's."""
    clipped_highlights: bool = True
    """Treat channels of sRGB photos at white (255) as clipped: the loss then only asks the rendering to reach
    white there, not to stay at it (off for linear HDR inputs). In the material benchmark's photos 53% of the blob's
    and 23% of the knot's object pixels have a clipped channel."""
    smoothness_loss_mult: float = 0.1
    """Weight of the material smoothness prior (materials at x and at a tangent offset of x agree)."""
    smoothness_offset: float = 0.05
    """Length of the random tangent offset, in normalized units (the object spans about 1.8)."""
    environment_smoothness_loss_mult: float = 0.005
    """Weight of the total-variation prior on the environment light's lat-long grids
    (`EnvironmentLight.texel_variation`). It clears the texel noise out of the learned (and exported) environment;
    stronger, it blurs detail that a metal needs: on the material benchmark's knot, roughness MAE 0.009 without it,
    0.018 at 0.005, 0.055 at 0.02, 0.059 at 0.1 (the lobe sharpens to make up for the blurred light)."""
    range_prior_loss_mult: float = 1.0
    """Weight of the early prior keeping metallic in [0.02, 0.98] and roughness below 0.98 (no sigmoid saturation)."""
    range_prior_steps: int = 200
    """Steps during which the range prior is on."""
    albedo_ceiling_loss_mult: float = 0.0
    """Weight of the prior keeping each albedo channel below `albedo_ceiling` all through training (0: off). Light and
    albedo trade scale; if the light drifts dim, an albedo channel climbs into the sigmoid's flat top, where its
    gradient vanishes, and holds the light dim from then on (a dielectric's highlights, which the albedo does not
    scale, are then too faint). The prior keeps that scale on the light's side. On the material benchmark's blob
    at 1 (one run): object PSNR 27.92 against 27.82, blue albedo 0.87 instead of pinned at 1, albedo PSNR 30.4 dB
    against 33.7; the knot was not run with it."""
    albedo_ceiling: float = 0.9
    """Albedo (linear) above which `albedo_ceiling_loss_mult` penalizes a channel."""
    diffuse_light_loss_mult: float = 0.1
    """Weight of NeRO's prior that the light reaching the diffuse lobe is grey (its channels agree), which settles
    the trade of colour between albedo and light. Each point counts by its diffuse share, 1 - metallic: a metal has
    no diffuse lobe, and on the metal knot of the material benchmark the prior only bent its light (roughness MAE
    0.055 with it, 0.002 without). Without it the dielectric blob ran to roughness 1 and a light of its complementary
    colour."""
    diffuse_light_prior: Literal["mean", "point"] = "mean"
    """'mean': the diffuse light is grey on average over the object's points in the batch, so one side may be lit
    warmer than another (a sun against a blue sky) while the colour of the light as a whole stays tied (on the
    blob: albedo 36.9 dB against 26.8 with 'point'); 'point': grey at every point, as in NeRO."""
    support_plane: bool = True
    """Find the plane the object stands on in the sparse points (when the data has them) and light the directions
    that meet it with the floor light: the floor under an object lies in its shadow, which a distant environment
    cannot show."""
    floor_light: FloorLightConfig = field(default_factory=FloorLightConfig)
    """Light leaving the support plane: a texture learned from the camera rays that meet the floor, times the
    share of the sky the object leaves open above each floor point."""
    floor_loss_mult: float = 1.0
    """Weight of the photometric loss of the floor light on the training rays that miss the object and meet the
    textured part of the floor."""
    floor_light_use: Literal["indirect", "prior", "direct"] = "indirect"
    """How light directions that meet the textured floor are lit. 'indirect': by the indirect light (by point and
    direction), as other directions the scene blocks; the floor light then shows the floor to camera rays only.
    'prior': the same, pulled toward the floor light by `floor_prior_loss_mult`. 'direct': by the floor light. A near
    mirror shows the floor through the Stage I normals; where those are off, the exact floor lands in the wrong place,
    which the material field can only blur away with roughness (docs/nero-material.md has the figures)."""
    floor_prior_loss_mult: float = 0.1
    """Weight of the prior (photometric loss on linear radiance) tying the indirect light of floor directions to the
    floor light, with floor_light_use 'prior'."""
    metallic_binary_loss_mult: float = 0.05
    """Weight of the prior that metallic is 0 or 1 (real materials are metal or not), mean of m (1 - m): it pushes
    each point to the side it is already on. Without it the dielectric blob of the material benchmark drifted from
    metallic 0.3 at step 1000 to 0.56 at step 7000 for a 0.5 dB gain in training PSNR."""
    metallic_binary_start_step: int = 1000
    """Step from which that prior is on: after the lights have formed and the data has chosen a side."""
    warm_start_steps: int = 300
    """Regression steps fitting materials and lights to Stage I's split-sum heads before training (0: start from
    grey light and mid-range materials; skipped for a Stage I run of the plain-shading ablation)."""
    relighting: RelightingControlsConfig = field(default_factory=RelightingControlsConfig)
    """The relighting panel in ns-viewer: lights to preview the materials under (docs/viewer.md)."""


class NeroMaterialModel(Model):
    """Stage II model: materials and lights on the Stage I geometry, by ray casting and Monte Carlo shading."""

    config: NeroMaterialModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        if self.config.shape_config is None:
            raise NeroInputError(MISSING_SHAPE_CONFIG)
        metadata = self.kwargs.get("metadata") or {}
        self.inputs_are_srgb = metadata.get("color_space", "srgb") == "srgb"
        stage_one, stage_one_config, _ = load_stage_one(self.config.shape_config)
        # Stage I parts are submodules, so their (possibly fine-tuned) weights travel in Stage II checkpoints.
        self.sdf_field = stage_one.sdf_field
        self.far_field = stage_one.far_field
        self.sdf_field.requires_grad_(self.config.finetune_geometry)
        self.far_field.requires_grad_(False)
        # Stage I's material and light heads, read once by the warm start (frozen; None for the plain ablation).
        shading = stage_one.shading_field
        self.stage_one_shading = shading.requires_grad_(False) if isinstance(shading, NeroShadingField) else None
        self.register_buffer("warm_started", torch.tensor(False))
        self.outside_sampler = InverseDistanceSampler(num_samples=stage_one_config.pipeline.model.num_outside_samples)
        self.material_field = self.config.material_field.setup()
        self.environment_light = self.config.environment_light.setup()
        self.indirect_light = self.config.indirect_light.setup()
        self.floor_light = self.config.floor_light.setup()
        # The ray-casting mesh: empty until first needed, then extracted once and saved with every checkpoint.
        self.register_buffer("mesh_vertices", torch.zeros(0, 3))
        self.register_buffer("mesh_faces", torch.zeros(0, 3, dtype=torch.long))
        self._raycaster: Optional[MeshRaycaster] = None
        # Built from the light on first use and every light_sampling_every training steps; not saved.
        self._light_sampler: Optional[LatLongLightSampler] = None
        if self.config.support_plane:
            self.floor_light.support.fit(metadata.get("points3D_xyz"))
        self.image_metrics = ImageMetrics()
        self.relighting = self.config.relighting.setup(model=self)  # ns-viewer panel: preview lights, export
        self.step = 0

    # ------------------------------------------------------------------ optimization
    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        groups = {
            "materials": list(self.material_field.parameters()),
            "lights": list(self.environment_light.mlp.parameters()) + list(self.indirect_light.parameters()),
            "floor": list(self.floor_light.parameters()),
        }
        if len(self.environment_light.log_texels) > 0:
            groups["environment_texels"] = list(self.environment_light.log_texels.parameters())
        if self.config.finetune_geometry:
            groups["geometry"] = list(self.sdf_field.parameters())
        return groups

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> List[TrainingCallback]:
        def set_step(step: int) -> None:
            self.step = step
            if not bool(self.warm_started):
                self._warm_start()
            if step % self.config.light_sampling_every == 0:
                self._update_light_sampler()  # and on first use, in _shade

        before_step = [TrainingCallbackLocation.BEFORE_TRAIN_ITERATION]
        return [TrainingCallback(before_step, update_every_num_iters=1, func=set_step)]

    def train(self, mode: bool = True) -> "NeroMaterialModel":
        """Entering evaluation drops the light sampler, so renders draw from the light as it is now (a checkpoint
        renders the same after loading)."""
        if not mode:
            self._light_sampler = None
        return super().train(mode)

    def _update_light_sampler(self) -> None:
        """Rebuild the light sampler from the light as it is now (none with num_light_samples 0)."""
        if self.config.num_light_samples > 0:
            self._light_sampler = LatLongLightSampler(
                self.environment_map(self.config.light_sampling_resolution),
                exponent=self.config.light_sampling_exponent,
            )

    def _warm_start(self) -> None:
        """Fit materials and lights to Stage I's heads on the ray-casting mesh, once per run (a flag in the
        checkpoint keeps a resumed run from doing it again)."""
        if self.stage_one_shading is not None and self.config.warm_start_steps > 0:
            CONSOLE.print(f"Warm start: fitting materials and lights to Stage I ({self.config.warm_start_steps} steps)")
            losses = warm_start(
                self.stage_one_shading, self.sdf_field, self.raycaster_vertices(), self.material_field,
                self.environment_light, self.indirect_light, self.config.warm_start_steps,
            )
            CONSOLE.print("Warm start losses: " + ", ".join(f"{name} {value:.4f}" for name, value in losses.items()))
        self.warm_started.fill_(True)

    # ------------------------------------------------------------------ geometry
    @property
    def raycaster(self) -> MeshRaycaster:
        """Ray caster on the Stage I mesh, extracting the mesh from the SDF the first time (no checkpoint had it)."""
        if self._raycaster is None:
            if self.mesh_faces.shape[0] == 0:
                self._extract_mesh()
            self._raycaster = MeshRaycaster(self.mesh_vertices, self.mesh_faces)
        return self._raycaster

    def raycaster_vertices(self) -> Float[Tensor, "num_vertices 3"]:
        """Vertices of the ray-casting mesh (extracted on first use)."""
        _ = self.raycaster
        return self.mesh_vertices

    def _floor(self) -> Optional[FloorLight]:
        """The floor light when a support plane was found, its sky visibility ray cast on first use."""
        if not self.floor_light.support.has_plane:
            return None
        if not self.floor_light.has_visibility:
            CONSOLE.print("Ray casting the sky visibility of the floor under the object (once; kept in checkpoints)")
            self.floor_light.compute_sky_visibility(self.raycaster)
        return self.floor_light

    def _extract_mesh(self) -> None:
        resolution = self.config.mesh_resolution
        CONSOLE.print(f"Extracting the Stage I mesh at {resolution}^3 for ray casting (once; kept in checkpoints)")
        vertices, faces = extract_sdf_mesh(
            self.query_sdf, resolution, block_resolution=64, chunk_size=65536, device=self.device
        )
        if len(faces) == 0:
            raise NeroInputError(
                f"{self.config.shape_config}: the Stage I SDF has no surface inside the unit sphere at resolution "
                f"{resolution}; train Stage I longer or raise --pipeline.model.mesh-resolution"
            )
        self.mesh_vertices = torch.as_tensor(vertices, dtype=torch.float32, device=self.device)
        self.mesh_faces = torch.as_tensor(faces, dtype=torch.long, device=self.device)
        CONSOLE.print(f"Stage I mesh: {len(vertices)} vertices, {len(faces)} faces")

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Take the mesh of the checkpoint whatever its size (the buffers start empty)."""
        for name in ("mesh_vertices", "mesh_faces"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name], device=self.device))
        self._raycaster = None
        self._light_sampler = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def query_sdf(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 1"]:
        """Signed distance of the Stage I geometry in the normalized frame (negative inside), cut at the support
        plane when one was found: the ray-casting mesh and the exports stop at the floor."""
        return self.floor_light.support.clip_sdf(positions, self.sdf_field.get_sdf(positions))

    @torch.no_grad()
    def query_materials(self, points: Float[Tensor, "*bs 3"]) -> Dict[str, Float[Tensor, "*bs C"]]:
        """albedo (linear RGB), roughness and metallic at surface points of the normalized frame, for exporters."""
        return self.material_field(points)

    @torch.no_grad()
    def environment_map(self, height: int) -> Float[Tensor, "height width 3"]:
        """The light around the object as an H x 2H lat-long map of linear radiance (`EnvironmentLight`'s
        convention): the learned environment light, and, in directions that meet the support plane from the center
        of the object, the floor light where they meet it (Stage II never lights from below the floor with the
        environment, so nothing trains it there)."""
        directions = torch.as_tensor(latlong_directions(height, 2 * height), dtype=torch.float32, device=self.device)
        environment = self.environment_light(directions)
        floor = self._floor()
        if floor is None:
            return environment
        meets, floor_points, _ = floor.support.intersect(torch.zeros_like(directions), directions)
        if meets.any():
            environment[meets] = floor(floor_points[meets])
        return environment

    # ------------------------------------------------------------------ rendering
    def _far_field_background(self, ray_bundle: RayBundle) -> Float[Tensor, "num_rays 3"]:
        """Stage I's far field volume rendered from the sphere exit (frozen), linear RGB."""
        with torch.no_grad():
            _, exit_distance, _ = intersect_unit_sphere(ray_bundle.origins, ray_bundle.directions)
            samples = self.outside_sampler(ray_bundle, exit_distance, jitter=False)
            density, rgb = self.far_field(samples.frustums.get_positions(), samples.frustums.directions)
            assert samples.deltas is not None
            weights = weights_from_alphas(alphas_from_densities(density, samples.deltas))
            return (weights * rgb).sum(dim=1)

    def _object_first(self, object_distance: Tensor, floor_distance: Tensor) -> Tensor:
        """Whether a ray meets the object before the floor; within the self-hit offset of the floor it does not,
        since the mesh's flat base lies on the floor and is hidden by it."""
        return object_distance < floor_distance - self.raycaster.self_hit_offset

    def light_sources(
        self, points: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"]
    ) -> Tuple[Bool[Tensor, "*bs"], Bool[Tensor, "*bs"], Float[Tensor, "*bs 3"]]:
        """Which light each direction leaving a surface point sees: (blocked by the object or meeting the floor
        past its textured square: indirect light, meets the textured floor first: floor light at the returned floor
        points); the rest see the environment."""
        blocked = self.raycaster.occluded(points, directions)
        floor = self._floor()
        if floor is None:
            return blocked, torch.zeros_like(blocked), points
        on_floor, floor_points, floor_distance = floor.support.intersect(points, directions)
        # A direction that meets both is blocked only if the object comes first.
        both = blocked & on_floor
        if both.any():
            object_distance = self.raycaster.hit_distance(points[both], directions[both])
            blocked[both] = self._object_first(object_distance, floor_distance[both])
        on_floor = on_floor & ~blocked
        # Past the textured square the floor holds other objects, seen with parallax: the indirect light takes it.
        far_floor = on_floor & ~floor.within_texture(floor_points)
        return blocked | far_floor, on_floor & ~far_floor, floor_points

    def incident_light(
        self, points: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"]
    ) -> Tuple[Float[Tensor, "*bs 3"], Bool[Tensor, "*bs"], Optional[Tensor]]:
        """Radiance arriving at surface points from `directions` (see `light_sources`), which directions see the
        environment, and with floor_light_use 'prior' in training the prior's error of the floor directions."""
        blocked, on_floor, floor_points = self.light_sources(points, directions)
        sky = ~blocked & ~on_floor
        radiance = torch.empty(*directions.shape[:-1], 3, device=directions.device, dtype=directions.dtype)
        # nerfstudio's frequency encoding cannot take an empty batch, so skip a kind that has no samples.
        if sky.any():
            radiance[sky] = self.environment_light(directions[sky])
        use = self.config.floor_light_use
        indirect = blocked if use == "direct" else blocked | on_floor
        if indirect.any():
            radiance[indirect] = self.indirect_light(points[indirect], directions[indirect])
        floor_prior = None
        if on_floor.any() and (use == "direct" or (use == "prior" and self.training)):
            floor_radiance = self.floor_light(floor_points[on_floor])
            if use == "direct":
                radiance[on_floor] = floor_radiance
            else:
                floor_prior = photometric_loss(
                    radiance[on_floor], floor_radiance.detach(), self.config.photometric_loss
                )
        return radiance, sky, floor_prior

    def _shade(
        self,
        points: Float[Tensor, "num_hits 3"],
        normals: Float[Tensor, "num_hits 3"],
        view: Float[Tensor, "num_hits 3"],
        materials: Dict[str, Tensor],
    ) -> Dict[str, Tensor]:
        """Monte Carlo shading of surface points; also the visible fraction and the mean diffuse-lobe light."""
        record: Dict[str, Optional[Tensor]] = {}

        def light(directions: Tensor, sample_points: Tensor) -> Tensor:
            radiance, record["visible"], record["floor_prior"] = self.incident_light(sample_points, directions)
            record["radiance"] = radiance
            return radiance

        multiplier = 1 if self.training else self.config.eval_sample_multiplier
        num_diffuse, num_specular, num_light = (count * multiplier for count in self.sample_counts())
        if self._light_sampler is None:
            self._update_light_sampler()
        shading = monte_carlo_shade(
            points, normals, view, materials["albedo"], materials["roughness"], materials["metallic"], light,
            num_diffuse=num_diffuse, num_specular=num_specular, light_sampler=self._light_sampler,
            num_light=num_light, num_estimates=2 if self.training and self.config.split_estimate_mult > 0 else 1,
        )
        shading["visibility"] = record["visible"].float().mean(dim=-1, keepdim=True)
        if record["floor_prior"] is not None:
            shading["floor_prior"] = record["floor_prior"]
        # Cosine samples come first: their mean radiance estimates irradiance / pi, the light of the diffuse lobe.
        shading["diffuse_light"] = record["radiance"][:, :num_diffuse].mean(dim=1)
        return shading

    def sample_counts(self) -> Tuple[int, int, int]:
        """The cosine, GGX and light sample counts per hit, checked even when `split_estimate_mult` halves them."""
        counts = (self.config.num_diffuse_samples, self.config.num_specular_samples, self.config.num_light_samples)
        if self.config.split_estimate_mult > 0 and any(count % 2 for count in counts):
            raise NeroInputError(
                f"--pipeline.model.split-estimate-mult halves the light samples per hit, but the counts are "
                f"{counts[0]}, {counts[1]} and {counts[2]}; make num-diffuse-samples, num-specular-samples and "
                "num-light-samples even, or turn the split off with --pipeline.model.split-estimate-mult 0"
            )
        return counts

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        origins, directions = ray_bundle.origins.reshape(-1, 3), ray_bundle.directions.reshape(-1, 3)
        num_rays = origins.shape[0]
        distance, hit, _, hit_points = self.raycaster.first_hit(origins, directions)
        floor = self._floor()
        if floor is not None:
            # The floor is not in the mesh: a camera ray that reaches it first sees the floor or the background.
            meets_floor, floor_points, floor_distance = floor.support.intersect(origins, directions)
            hit = hit & self._object_first(distance, floor_distance)

        def zeros(channels: int) -> Tensor:
            return torch.zeros(num_rays, channels, device=origins.device, dtype=origins.dtype)

        rgb_linear = zeros(3)
        outputs_floor: Dict[str, Tensor] = {}
        # Inside the unit sphere the floor was Stage I's SDF, which Stage II cuts away: the floor light shows it there.
        floor_seen = zeros(1)[:, 0].bool()
        if floor is not None:
            # Camera rays that miss the object and meet the textured floor show the floor light directly.
            floor_rays = meets_floor & ~hit & floor.within_texture(floor_points)
            floor_seen = floor_rays & (floor_points.norm(dim=-1) < 1.0)
            if self.training or floor_seen.any():
                floor_rgb = floor(floor_points[floor_rays])
                rgb_linear[floor_seen] = floor_rgb[floor_seen[floor_rays]].detach()
                if self.training:
                    outputs_floor = {"floor_rays": floor_rays, "floor_rgb_linear": floor_rgb}
        background = ~hit & ~floor_seen
        if background.any():
            rgb_linear[background] = self._far_field_background(ray_bundle.flatten()[background])
        outputs: Dict[str, Tensor] = {name: zeros(3) for name in ("albedo", "diffuse", "specular", "normal")}
        outputs.update({name: zeros(1) for name in ("roughness", "metallic", "visibility")})
        points = hit_points[hit]
        if points.shape[0] > 0:
            train_geometry = self.training and self.config.finetune_geometry
            _, _, gradient = self.sdf_field.sdf_feature_gradient(points, create_graph=train_geometry)
            normals = torch.nn.functional.normalize(gradient, dim=-1)
            materials = self.material_field(points)
            shading = self._shade(points, normals, -directions[hit], materials)
            if "estimates" in shading:
                halves = rgb_linear[:, None, :].repeat(1, 2, 1)
                outputs["rgb_linear_halves"] = halves.index_put((hit,), shading["estimates"])
            rgb_linear = rgb_linear.index_put((hit,), shading["rgb"])
            for name in ("albedo", "roughness", "metallic"):
                outputs[name] = outputs[name].index_put((hit,), materials[name])
            for name in ("diffuse", "specular", "visibility"):
                outputs[name] = outputs[name].index_put((hit,), shading[name])
            outputs["normal"] = outputs["normal"].index_put((hit,), (normals + 1.0) / 2.0)
            if self.training:
                outputs["diffuse_light"] = shading["diffuse_light"]
                if "floor_prior" in shading:
                    outputs["floor_prior"] = shading["floor_prior"]
                outputs.update(self._smoothness_pairs(points, normals, materials))
        outputs.update(outputs_floor)
        outputs["rgb_linear"] = rgb_linear
        outputs["rgb"] = linear_to_srgb(rgb_linear)
        for name in ("albedo", "diffuse", "specular"):
            outputs[name] = linear_to_srgb(outputs[name])
        outputs["accumulation"] = hit.to(origins.dtype)[:, None]
        outputs["depth"] = torch.where(hit, distance, torch.zeros_like(distance))[:, None]
        with torch.no_grad():
            outputs["environment"] = linear_to_srgb(self.environment_light(directions))
        return outputs

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box: Optional[OrientedBox] = None) -> Dict[str, Tensor]:
        """Render one camera with `eval_pixel_samples` rays per pixel, each on its own pass, and average them (the
        relighting panel's preview instead when it shows another light)."""
        if self.relighting.active:
            return self.relighting.render(camera, obb_box)
        per_side = math.isqrt(self.config.eval_pixel_samples)
        if per_side * per_side != self.config.eval_pixel_samples:
            raise NeroInputError(
                f"--pipeline.model.eval-pixel-samples is {self.config.eval_pixel_samples}; it must be a square "
                "number (1, 4, 9, 16)"
            )
        centers = camera.get_image_coords(index=(0,)).to(camera.device)
        steps = (torch.arange(per_side, device=camera.device) + 0.5) / per_side - 0.5
        sums: Dict[str, Tensor] = {}
        for row_offset in steps:
            for column_offset in steps:
                coords = centers + torch.stack([row_offset, column_offset])
                rays = camera.generate_rays(camera_indices=0, coords=coords, obb_box=obb_box)
                for name, value in self.get_outputs_for_camera_ray_bundle(rays).items():
                    sums[name] = sums[name] + value if name in sums else value
        outputs = {name: total / self.config.eval_pixel_samples for name, total in sums.items()}
        outputs["rgb"] = linear_to_srgb(outputs["rgb_linear"])
        return outputs

    def _smoothness_pairs(
        self, points: Tensor, normals: Tensor, materials: Dict[str, Tensor]
    ) -> Dict[str, Tensor]:
        """Materials at the hits and at a random tangent offset of length `smoothness_offset` from them."""
        tangent, bitangent = orthonormal_frame(normals.detach())
        angle = 2.0 * torch.pi * torch.rand(points.shape[0], 1, device=points.device)
        offset = (torch.cos(angle) * tangent + torch.sin(angle) * bitangent) * self.config.smoothness_offset
        here = torch.cat([materials["albedo"], materials["roughness"], materials["metallic"]], dim=-1)
        moved = self.material_field(points + offset)
        nearby = torch.cat([moved["albedo"], moved["roughness"], moved["metallic"]], dim=-1)
        return {"materials_here": here, "materials_nearby": nearby}

    # ------------------------------------------------------------------ losses and metrics
    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        target = linear_target(batch, self.device, self.inputs_are_srgb)
        clipped = self.config.clipped_highlights and self.inputs_are_srgb
        kind = self.config.photometric_loss
        epsilon = self.config.charbonnier_epsilon
        if "rgb_linear_halves" in outputs:
            halves = outputs["rgb_linear_halves"]
            rgb_loss = split_estimate_loss(
                halves[:, 0], halves[:, 1], target, kind, clipped, epsilon, self.config.split_estimate_mult,
                self.config.split_estimate_joint_mult,
            )
        else:
            rgb_loss = photometric_loss(outputs["rgb_linear"], target, kind, clipped, epsilon)
        loss_dict = {"rgb_loss": rgb_loss}
        if self.training and self.config.floor_loss_mult > 0 and "floor_rays" in outputs:
            floor_rays = outputs["floor_rays"]
            if floor_rays.any():
                floor_error = photometric_loss(outputs["floor_rgb_linear"], target[floor_rays], kind, clipped, epsilon)
                loss_dict["floor_loss"] = self.config.floor_loss_mult * floor_error
        if self.training and self.config.floor_prior_loss_mult > 0 and "floor_prior" in outputs:
            loss_dict["floor_prior_loss"] = self.config.floor_prior_loss_mult * outputs["floor_prior"]
        environment_smoothness = self.config.environment_smoothness_loss_mult
        if self.training and environment_smoothness > 0 and len(self.environment_light.log_texels) > 0:
            loss_dict["environment_smoothness_loss"] = environment_smoothness * self.environment_light.texel_variation()
        if not self.training or "materials_here" not in outputs:
            return loss_dict
        if self.config.smoothness_loss_mult > 0:
            difference = (outputs["materials_here"] - outputs["materials_nearby"]).abs().sum(dim=-1).mean()
            loss_dict["smoothness_loss"] = self.config.smoothness_loss_mult * difference
        if self.config.range_prior_loss_mult > 0 and self.step < self.config.range_prior_steps:
            metallic, roughness = outputs["materials_here"][:, 4], outputs["materials_here"][:, 3]
            outside = torch.relu(metallic - 0.98) + torch.relu(0.02 - metallic) + torch.relu(roughness - 0.98)
            loss_dict["range_prior_loss"] = self.config.range_prior_loss_mult * outside.mean()
        if self.config.albedo_ceiling_loss_mult > 0:
            above = torch.relu(outputs["materials_here"][:, 0:3] - self.config.albedo_ceiling)
            loss_dict["albedo_ceiling_loss"] = self.config.albedo_ceiling_loss_mult * above.sum(dim=-1).mean()
        if self.config.metallic_binary_loss_mult > 0 and self.step >= self.config.metallic_binary_start_step:
            metallic = outputs["materials_here"][:, 4]
            binary = (metallic * (1.0 - metallic)).mean()
            loss_dict["metallic_binary_loss"] = self.config.metallic_binary_loss_mult * binary
        if self.config.diffuse_light_loss_mult > 0:
            loss_dict["diffuse_light_loss"] = self.config.diffuse_light_loss_mult * self._diffuse_light_tint(
                outputs["diffuse_light"], 1.0 - outputs["materials_here"][:, 4:5].detach()
            )
        return loss_dict

    def _diffuse_light_tint(
        self, light: Float[Tensor, "num_hits 3"], diffuse_share: Float[Tensor, "num_hits 1"]
    ) -> Float[Tensor, ""]:
        """How far the light of the diffuse lobe is from grey (sum over channels of |channel - their mean|), at each
        point or for the mean light (`diffuse_light_prior`), scaled by the diffuse share of the points (a metal
        gets none)."""

        def tint(colors: Tensor) -> Tensor:
            return (colors - colors.mean(dim=-1, keepdim=True)).abs().sum(dim=-1, keepdim=True)

        if self.config.diffuse_light_prior == "mean":
            mean_light = (diffuse_share * light).sum(dim=0) / diffuse_share.sum().clamp(min=1e-6)
            return tint(mean_light).squeeze() * diffuse_share.mean()
        return (diffuse_share * tint(light)).mean()

    def get_metrics_dict(self, outputs, batch) -> Dict[str, Tensor]:
        image = batch["image"].to(self.device)[..., :3]
        metrics = {"psnr": self.image_metrics.psnr(outputs["rgb"], image)}
        hit = outputs["accumulation"][:, 0] > 0
        if hit.any():
            metrics["visible_fraction"] = outputs["visibility"][hit].mean()
            metrics["mean_roughness"] = outputs["roughness"][hit].mean()
            metrics["mean_metallic"] = outputs["metallic"][hit].mean()
        return metrics

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        image = batch["image"].to(self.device)[..., :3]
        metrics = self.image_metrics.compare(outputs["rgb"], image)
        images = {
            "img": torch.cat([image, outputs["rgb"]], dim=1),
            "albedo": outputs["albedo"],
            "roughness_metallic": torch.cat(
                [colormaps.apply_colormap(outputs["roughness"]), colormaps.apply_colormap(outputs["metallic"])], dim=1
            ),
            "diffuse_specular": torch.cat([outputs["diffuse"], outputs["specular"]], dim=1),
            "normal": outputs["normal"],
        }
        return metrics, images


@dataclass
class NeroMaterialTrainerConfig(NeroTrainerConfig):
    """NeroTrainerConfig with the Stage I run as a top-level option (`--shape-config`)."""

    _target: Type = field(default_factory=lambda: NeroMaterialTrainer)
    shape_config: Optional[Path] = None
    """config.yml of the Stage I run: outputs/<experiment>/nero-shape/<time>/config.yml from `ns-train nero-shape`."""

    def __post_init__(self) -> None:
        # Runs when the command line is parsed, before ns-train saves config.yml, so the saved model config has it.
        self.copy_shape_config()

    def copy_shape_config(self) -> None:
        """Give the model config the top-level --shape-config (when given)."""
        if self.shape_config is not None:
            self.pipeline.model.shape_config = self.shape_config


class NeroMaterialTrainer(NeroTrainer):
    """NeroTrainer that checks the Stage I run is given before building anything."""

    config: NeroMaterialTrainerConfig

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        self.config.copy_shape_config()
        if self.config.pipeline.model.shape_config is None:
            with friendly_errors():
                raise NeroInputError(MISSING_SHAPE_CONFIG)
        super().setup(test_mode=test_mode)
