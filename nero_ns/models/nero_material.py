"""nero-material: NeRO's material stage. PBR materials and lighting on the fixed nero-shape geometry, by Monte Carlo
shading.

The model wires three parts: the adopted nero-shape geometry (`ShapeGeometry`: SDF, far field, support plane and the
ray-casting mesh), the scene's light (`SceneLight`) and the material field, with the priors of `material_priors`.
Camera rays that meet the object are shaded with GGX + Lambert by Monte Carlo integration of the light arriving along
sampled directions; rays that meet the floor inside the unit sphere show the floor light; the others take the frozen
nero-shape far field, volume rendered from the sphere exit as in nero-shape. Renders average several rays per pixel, so
silhouette pixels are blends as in photos.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Type

import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.scene_box import OrientedBox
from nerfstudio.utils import colormaps
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor
from torch.nn import Parameter

from nero_ns.colors import linear_to_srgb
from nero_ns.components.mc_shading import draw_light_samples, shade_samples
from nero_ns.engine.material_trainer import MISSING_SHAPE_CONFIG
# The config.yml of a run trained before the trainer moved to nero_ns.engine names it in this module.
from nero_ns.engine.material_trainer import NeroMaterialTrainer, NeroMaterialTrainerConfig  # noqa: F401
from nero_ns.errors import NeroInputError
from nero_ns.fields.material_field import MaterialFieldConfig
from nero_ns.fields.shading_field import NeroShadingField
from nero_ns.models.material_priors import MaterialPriorOptions, floor_prior, prior_losses, smoothness_pairs
from nero_ns.models.nero_model import NeroModel, NeroModelConfig
from nero_ns.models.photometric import linear_target, photometric_loss, split_estimate_loss
from nero_ns.models.relit_preview import PreviewLight, relit_preview
from nero_ns.models.scene_light import SceneLight, SceneLightOptions
from nero_ns.models.shape_run import load_shape_run
from nero_ns.models.shape_geometry import ShapeGeometry
from nero_ns.models.warm_start import warm_start

STATE_MOVED_TO_PARTS = (
    ("sdf_field.", "geometry.sdf_field."),
    ("far_field.", "geometry.far_field."),
    ("mesh_vertices", "geometry.mesh_vertices"),
    ("mesh_faces", "geometry.mesh_faces"),
    ("floor_light.support.plane", "geometry.support_plane.plane"),
    ("environment_light.", "light.environment."),
    ("indirect_light.", "light.indirect."),
    ("floor_light.", "light.floor."),
)
"""Checkpoints written before the model was split into its parts (geometry, light) hold these keys (old, new)."""


def key_after_split(key: str) -> str:
    """Where a state-dict key of a checkpoint from before the split into parts sits now (unchanged if it did not
    move)."""
    for old, new in STATE_MOVED_TO_PARTS:
        if key.startswith(old):
            return new + key[len(old) :]
    return key


@dataclass
class NeroMaterialModelConfig(NeroModelConfig, SceneLightOptions, MaterialPriorOptions):
    """nero-material model: every part is configurable from the command line (the light's and the priors' options
    are documented with their code: `SceneLightOptions`, `MaterialPriorOptions`)."""

    _target: Type = field(default_factory=lambda: NeroMaterialModel)
    shape_config: Optional[Path] = None
    """config.yml of the nero-shape run; set from the top-level --shape-config."""
    mesh_resolution: int = 256
    """Marching-cubes samples per axis of the nero-shape mesh that rays are cast against (extracted once)."""
    finetune_geometry: bool = False
    """Also optimize the nero-shape SDF (through the shading normals) with the small 'geometry' learning rate: advised
    for final assets (on the material benchmark's held-out views, object PSNR +0.43 dB on the knot, +0.11 on the
    blob), at about 15% more time per step."""
    material_field: MaterialFieldConfig = field(default_factory=MaterialFieldConfig)
    """Albedo, roughness and metallic at surface points."""
    num_diffuse_samples: int = 24
    """Cosine-weighted light directions per pixel (the original uses 512)."""
    num_specular_samples: int = 24
    """GGX visible-normal light directions per pixel (the original uses 256)."""
    num_light_samples: int = 16
    """Light directions per pixel drawn from the learned light itself (`LatLongLightSampler`), the third strategy of
    the multiple importance sampling (0: none). Without them a small bright light such as a sun is met by few
    samples at a huge weight, and the Charbonnier loss, fitting near the median of that skewed estimate, never lets
    the light grow into it."""
    eval_sample_multiplier: int = 1
    """The three sample counts are multiplied by this when rendering outside training (viewer, ns-eval, exports of
    renders): less Monte Carlo noise in the images at no cost to training."""
    eval_pixel_samples: int = 4
    """Rays per pixel when rendering a camera outside training (a square number: a stratified grid over the pixel),
    averaged in linear color. A ray hits the mesh or misses it, so one ray per pixel gives stair-stepped silhouettes
    where a photo blends object and background; the 4 rays also average 4x the Monte Carlo samples."""
    charbonnier_epsilon: float = 0.05
    """Residual (linear) below which the Charbonnier loss is quadratic: within it the fit goes to the mean of the
    photos' noise, beyond it to the median (robust to fireflies and misplaced highlights). The photos' highlights
    are speckle (a few of the renderer's samples meet a small light), whose mean lies above its median, and PSNR
    rewards the mean. With the split estimate, the material benchmark's blob reached object PSNR 27.88 at 0.05
    and 27.86 at 0.001 (one nero-shape run); its roughness MAE 0.037 and 0.044."""
    split_estimate_mult: float = 1.0
    """Weight of the split gradient (`split_estimate_loss`) added to the photometric loss's own (0: off). Above 0,
    each hit is shaded in training as two independent halves of its light samples (the counts must be even), and
    each half's derivative is also weighted by the loss's slope at the other half's residual, so a sample that
    meets a small bright light no longer alone sets the sign of its gradient, which pulls such a light down. On the
    material benchmark's blob, this with charbonnier-epsilon 0.05 raised the object PSNR by 0.30 and 0.44 dB over
    neither (split off, epsilon 0.001) on two nero-shape runs, passing nero-shape's on the second;
    docs/nero-material.md has the figures."""
    split_estimate_joint_mult: float = 1.0
    """With a split estimate, the weight of the photometric loss's own gradient (of the mean of the halves) beside
    the split gradient. 0, the split gradient alone, lets a rarely met light grow past the photos: on the
    benchmark's blob, object PSNR 0.87 dB below the default's."""
    clipped_highlights: bool = True
    """Treat channels of sRGB photos at white (255) as clipped: the loss then only asks the rendering to reach
    white there, not to stay at it (off for linear HDR inputs). In the material benchmark's photos 53% of the blob's
    and 23% of the knot's object pixels have a clipped channel."""
    support_plane: bool = True
    """Cut the geometry at the plane the object stands on (nero-shape's, or else one found in the sparse points) and
    light the directions that meet it with the floor light: the floor under an object lies in its shadow, which a
    distant environment cannot show."""
    floor_loss_mult: float = 1.0
    """Weight of the photometric loss of the floor light on the training rays that miss the object and meet the
    textured part of the floor."""
    warm_start_steps: int = 300
    """Regression steps fitting materials and lights to nero-shape's split-sum heads before training (0: start from
    grey light and mid-range materials; skipped for a nero-shape run of the plain-shading ablation)."""


class NeroMaterialModel(NeroModel):
    """nero-material model: materials and lights on the nero-shape geometry, by ray casting and Monte Carlo shading."""

    config: NeroMaterialModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        if self.config.shape_config is None:
            raise NeroInputError(MISSING_SHAPE_CONFIG)
        shape_model, _, _ = load_shape_run(self.config.shape_config)
        self.geometry = ShapeGeometry(
            shape_model, self.config.shape_config, self.config.mesh_resolution, self.config.support_plane,
            trainable=self.config.finetune_geometry, sparse_points=self.metadata.get("points3D_xyz"),
        )
        # nero-shape's material and light heads, read once by the warm start (frozen; None for the plain ablation).
        shading = shape_model.shading_field
        # The attribute keeps its old name: it is a state-dict key of saved nero-material checkpoints.
        self.stage_one_shading = shading.requires_grad_(False) if isinstance(shading, NeroShadingField) else None
        self.register_buffer("warm_started", torch.tensor(False))
        self.material_field = self.config.material_field.setup()
        self.light = SceneLight(self.config)
        self.preview_light: Optional[PreviewLight] = None
        """Set by ns-viewer's relighting panel (`nero_ns.viewer`): while set, camera renders are the split-sum
        preview under this light (`relit_preview`) instead of the Monte Carlo render."""
        self.preview_paused = False
        """Set while the pipeline evaluates (`nero_ns.viewer`): camera renders are the Monte Carlo ones even with a
        `preview_light`."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Checkpoints from before the split into parts load with their keys renamed (`STATE_MOVED_TO_PARTS`)."""
        if prefix + "sdf_field.variance" in state_dict:
            for key in [key for key in state_dict if key.startswith(prefix)]:
                state_dict[prefix + key_after_split(key[len(prefix) :])] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ optimization
    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        groups = {
            "materials": list(self.material_field.parameters()),
            "lights": list(self.light.environment.mlp.parameters()) + list(self.light.indirect.parameters()),
            "floor": list(self.light.floor.parameters()),
        }
        if len(self.light.environment.log_texels) > 0:
            groups["environment_texels"] = list(self.light.environment.log_texels.parameters())
        if self.config.finetune_geometry:
            groups["geometry"] = list(self.geometry.sdf_field.parameters())
        return groups

    def set_step(self, step: int) -> None:
        """Warm start once, and rebuild the light sampler every `light_sampling_every` steps."""
        super().set_step(step)
        if not bool(self.warm_started):
            self._warm_start()
        if step % self.config.light_sampling_every == 0 and self.config.num_light_samples > 0:
            self.light.rebuild_sampler(self.geometry)

    def _warm_start(self) -> None:
        """Fit materials and lights to nero-shape's heads on the ray-casting mesh, once per run (a flag in the
        checkpoint keeps a resumed run from doing it again)."""
        if self.stage_one_shading is not None and self.config.warm_start_steps > 0:
            CONSOLE.print(
                f"Warm start: fitting materials and lights to nero-shape ({self.config.warm_start_steps} steps)"
            )
            losses = warm_start(
                self.stage_one_shading, self.geometry.sdf_field, self.geometry.raycaster_vertices(),
                self.material_field, self.light.environment, self.light.indirect, self.config.warm_start_steps,
            )
            CONSOLE.print("Warm start losses: " + ", ".join(f"{name} {value:.4f}" for name, value in losses.items()))
        self.warm_started.fill_(True)

    # ------------------------------------------------------------------ queries (exporters, evaluation)
    def query_sdf(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 1"]:
        """Signed distance of the nero-shape geometry (`ShapeGeometry.query_sdf`)."""
        return self.geometry.query_sdf(positions)

    @torch.no_grad()
    def query_materials(self, points: Float[Tensor, "*bs 3"]) -> Dict[str, Float[Tensor, "*bs C"]]:
        """albedo (linear RGB), roughness and metallic at surface points of the normalized frame, for exporters."""
        return self.material_field(points)

    def environment_map(self, height: int) -> Float[Tensor, "height width 3"]:
        """The light around the object as a lat-long map (`SceneLight.environment_map`)."""
        return self.light.environment_map(height, self.geometry)

    # ------------------------------------------------------------------ rendering
    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        origins, directions = ray_bundle.origins.reshape(-1, 3), ray_bundle.directions.reshape(-1, 3)
        num_rays = origins.shape[0]
        hits = self.geometry.first_hits(origins, directions)
        hit = hits.object
        assert hits.object_points is not None and hits.object_distance is not None

        def zeros(channels: int) -> Tensor:
            return torch.zeros(num_rays, channels, device=origins.device, dtype=origins.dtype)

        rgb_linear = zeros(3)
        outputs_floor: Dict[str, Tensor] = {}
        # Inside the unit sphere the floor was nero-shape's SDF, which nero-material cuts away: the floor light shows
        # it there.
        floor_seen = zeros(1)[:, 0].bool()
        if self.geometry.support_plane.has_plane:
            # Camera rays that miss the object and meet the textured floor show the floor light directly.
            floor_rays = hits.floor & self.light.floor.within(self.geometry.support_plane, hits.floor_points)
            floor_seen = floor_rays & (hits.floor_points.norm(dim=-1) < 1.0)
            if self.training or floor_seen.any():
                floor_rgb = self.light.floor_radiance(self.geometry, hits.floor_points[floor_rays])
                rgb_linear[floor_seen] = floor_rgb[floor_seen[floor_rays]].detach()
                if self.training:
                    outputs_floor = {"floor_rays": floor_rays, "floor_rgb_linear": floor_rgb}
        background = ~hit & ~floor_seen
        if background.any():
            rgb_linear[background] = self.geometry.far_field_radiance(ray_bundle.flatten()[background])
        outputs: Dict[str, Tensor] = {name: zeros(3) for name in ("albedo", "diffuse", "specular", "normal")}
        outputs.update({name: zeros(1) for name in ("roughness", "metallic", "visibility")})
        points = hits.object_points[hit]
        if points.shape[0] > 0:
            normals = self.geometry.normals(points, create_graph=self.training and self.config.finetune_geometry)
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
                outputs.update(
                    smoothness_pairs(self.material_field, points, normals, materials, self.config.smoothness_offset)
                )
        outputs.update(outputs_floor)
        outputs["rgb_linear"] = rgb_linear
        outputs["rgb"] = linear_to_srgb(rgb_linear)
        for name in ("albedo", "diffuse", "specular"):
            outputs[name] = linear_to_srgb(outputs[name])
        outputs["accumulation"] = hit.to(origins.dtype)[:, None]
        outputs["depth"] = torch.where(hit, hits.object_distance, torch.zeros_like(hits.object_distance))[:, None]
        with torch.no_grad():
            outputs["environment"] = linear_to_srgb(self.light.environment(directions))
        return outputs

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box: Optional[OrientedBox] = None) -> Dict[str, Tensor]:
        """Render one camera with `eval_pixel_samples` rays per pixel, each on its own pass, and average them (with
        a `preview_light`, its preview: one ray per pixel)."""
        if self.preview_light is not None and not self.preview_paused:
            rays = camera.generate_rays(camera_indices=0, obb_box=obb_box)
            return relit_preview(self.geometry, self.material_field, rays, self.preview_light)
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
        outputs = {name: total / self.config.eval_pixel_samples for name, total in sums.items() if name != "rgb"}
        # rgb first: ns-viewer opens on the first output.
        return {"rgb": linear_to_srgb(outputs["rgb_linear"]), **outputs}

    def _shade(
        self,
        points: Float[Tensor, "num_hits 3"],
        normals: Float[Tensor, "num_hits 3"],
        view: Float[Tensor, "num_hits 3"],
        materials: Dict[str, Tensor],
    ) -> Dict[str, Tensor]:
        """Monte Carlo shading of surface points (`nero_ns.components.mc_shading`) under the scene's light; also the
        share of their light samples that see the environment ("visibility"), the mean light of their diffuse lobe,
        and with floor_light_use 'prior' the floor prior."""
        multiplier = 1 if self.training else self.config.eval_sample_multiplier
        num_diffuse, num_specular, num_light = (count * multiplier for count in self.sample_counts())
        samples = draw_light_samples(
            points, normals, view, materials["roughness"], num_diffuse, num_specular,
            light_sampler=self.light.sampler(self.geometry) if self.config.num_light_samples > 0 else None,
            num_light=num_light, num_estimates=2 if self.training and self.config.split_estimate_mult > 0 else 1,
        )
        light = self.light.incident(samples.points, samples.directions, self.geometry)
        shading = shade_samples(
            samples, normals, light.radiance, materials["albedo"], materials["roughness"], materials["metallic"]
        )
        shading["visibility"] = light.sky.float().mean(dim=-1, keepdim=True)
        if light.floor_pair is not None:
            shading["floor_prior"] = floor_prior(light.floor_pair, self.config.photometric_loss)
        # Cosine samples come first: their mean radiance estimates irradiance / pi, the light of the diffuse lobe.
        shading["diffuse_light"] = light.radiance[:, :num_diffuse].mean(dim=1)
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
        if not self.training:
            return loss_dict
        if self.config.floor_loss_mult > 0 and "floor_rays" in outputs:
            floor_rays = outputs["floor_rays"]
            if floor_rays.any():
                floor_error = photometric_loss(outputs["floor_rgb_linear"], target[floor_rays], kind, clipped, epsilon)
                loss_dict["floor_loss"] = self.config.floor_loss_mult * floor_error
        loss_dict.update(prior_losses(self.config, self.step, outputs, self.light.environment))
        return loss_dict

    def get_metrics_dict(self, outputs, batch) -> Dict[str, Tensor]:
        metrics = super().get_metrics_dict(outputs, batch)
        hit = outputs["accumulation"][:, 0] > 0
        if hit.any():
            metrics["visible_fraction"] = outputs["visibility"][hit].mean()
            metrics["mean_roughness"] = outputs["roughness"][hit].mean()
            metrics["mean_metallic"] = outputs["metallic"][hit].mean()
        return metrics

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        metrics, images = super().get_image_metrics_and_images(outputs, batch)
        images["albedo"] = outputs["albedo"]
        images["roughness_metallic"] = torch.cat(
            [colormaps.apply_colormap(outputs["roughness"]), colormaps.apply_colormap(outputs["metallic"])], dim=1
        )
        images["diffuse_specular"] = torch.cat([outputs["diffuse"], outputs["specular"]], dim=1)
        images["normal"] = outputs["normal"]
        return metrics, images
