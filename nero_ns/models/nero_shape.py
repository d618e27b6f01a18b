"""nero-shape: NeRO's shape stage. Rays become pixels through an SDF inside the unit sphere and a far field outside."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
from jaxtyping import Bool, Float
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.data.datasets.base_dataset import InputDataset
from nerfstudio.model_components.ray_samplers import NeuSSampler
from nerfstudio.utils import colormaps
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor
from torch.nn import Parameter

from nero_ns.colors import linear_to_srgb, srgb_to_linear
from nero_ns.components.compositing import alphas_from_densities, weights_from_alphas
from nero_ns.components.floor_from_photos import MIN_AGREEING_VIEWS, floor_colours_from_photos
from nero_ns.components.samplers import InverseDistanceSampler, intersect_unit_sphere
from nero_ns.components.sdf_tracing import march_hits_surface
from nero_ns.components.support_plane import SupportPlane
from nero_ns.models.nero_model import NeroModel, NeroModelConfig
from nero_ns.models.photometric import PhotometricSpace, in_loss_space, linear_target, photometric_loss
from nero_ns.fields.far_field import FarFieldConfig
from nero_ns.fields.floor_texture import FloorTextureConfig
from nero_ns.fields.sdf_field import NeroSDFFieldConfig
from nero_ns.fields.shading_field import NeroShadingFieldConfig, PlainRadianceFieldConfig

# Per-sample shading outputs composited with the inside weights and shown in the viewer.
SHADING_OUTPUTS = ("diffuse", "specular", "albedo", "roughness", "metallic", "occlusion")


def fill_masked(mask: Bool[Tensor, "*mask"], values: Float[Tensor, "count *channels"]) -> Tensor:
    """`values` at the True places of `mask` (in order), zeros elsewhere; differentiable with respect to `values`."""
    return values.new_zeros(*mask.shape, *values.shape[1:]).index_put((mask,), values)


@dataclass
class NeroShapeModelConfig(NeroModelConfig):
    """nero-shape model: every part is configurable from the command line."""

    _target: Type = field(default_factory=lambda: NeroShapeModel)
    sdf_field: NeroSDFFieldConfig = field(default_factory=NeroSDFFieldConfig)
    """SDF inside the unit sphere."""
    far_field: FarFieldConfig = field(default_factory=FarFieldConfig)
    """Background outside the unit sphere."""
    shading: Literal["nero", "plain"] = "nero"
    """'nero': reflection-aware split-sum shading; 'plain': NeuS-style view-dependent radiance (ablation)."""
    nero_shading: NeroShadingFieldConfig = field(default_factory=NeroShadingFieldConfig)
    """Split-sum shading heads (used when shading is 'nero')."""
    plain_shading: PlainRadianceFieldConfig = field(default_factory=PlainRadianceFieldConfig)
    """Baseline radiance head (used when shading is 'plain', and during plain_warmup_steps)."""
    plain_warmup_steps: int = 0
    """With 'nero' shading: steps over which a pixel's colour moves from a plain radiance head's to NeRO's
    (rgb = (1 - t) plain + t nero, t rising from 0 to 1). The plain head fits colours before NeRO's lights are
    learned, so the shape can form sooner; after the warm-up, and outside training, only NeRO's shading remains."""
    num_samples: int = 8
    """Coarse samples inside the sphere (the SDF is evaluated at each, with its gradient). 8 rather than 16: the
    steps saved shape the object sooner than the extra samples do (docs/shape-speed.md)."""
    num_importance_samples: int = 16
    """NeuS importance samples inside the sphere, added over num_upsample_steps rounds."""
    num_upsample_steps: int = 4
    """Rounds of NeuS up-sampling, each with doubled sharpness."""
    base_variance: float = 64.0
    """Sharpness of the first up-sampling round."""
    num_outside_samples: int = 32
    """Far-field samples from the sphere exit to infinity."""
    negligible_weight: float = 1e-4
    """Work skipped where it cannot show: inside samples whose compositing weight is below this are not shaded, and
    rays that keep less than this transmittance past the object do not evaluate the far field (each skipped term
    would change the pixel by less than this fraction of its colour). 0 evaluates everything."""
    eikonal_loss_mult: float = 0.02
    """Weight of the eikonal loss. A fifth of NeuS's 0.1: at 0.1 the starting sphere was carved too slowly for a CPU
    budget, and gaps and loops stayed closed (docs/nero-shape.md, "The eikonal weight")."""
    sdf_prior_loss_mult: float = 0.1
    """Weight of the early prior that keeps the sphere's boundary shell empty (SDF > 0 there)."""
    sdf_prior_steps: int = 500
    """Steps during which the boundary prior is on."""
    occlusion_loss_mult: float = 1.0
    """Weight of the occlusion pseudo-label loss."""
    occlusion_loss_start: int = 300
    """Step at which the occlusion loss starts."""
    occlusion_rays: int = 128
    """Rays per batch whose surface points get an occlusion pseudo-label."""
    occlusion_surface_threshold: float = 0.02
    """Only samples with |SDF| below this get occlusion labels (the march must start on the surface)."""
    occlusion_march_steps: int = 32
    """SDF evaluations along each reflected ray when making pseudo-labels."""
    photometric_space: PhotometricSpace = "linear"
    """Colours the photometric loss compares: linear light, or sRGB-encoded as NeuS and NeRO compare them, which
    weighs dark pixels (shadows, gaps between thin parts) more and bright highlights less."""
    mask_loss_mult: float = 0.0
    """Weight of the optional mask loss (needs masks in the data)."""
    cos_anneal_steps: int = 250
    """Steps over which the NeuS cosine is annealed to the true one. Until it is, every sample counts as entering
    the surface, which lets thin parts separate early but shrinks the surface inside the truth (by a few hundredths
    of the radius); a short anneal ends that bias within a CPU run's first minutes (docs/shape-speed.md)."""
    support_plane: bool = True
    """Find the plane the object stands on in the sparse points (when the data has them) and render the scene as the
    object's SDF joined with the solid below that plane: the floor inside the sphere is then a known surface, and the
    SDF does not fuse the object's base with it. Exported meshes are cut at the plane (a flat, watertight base). A
    scene whose points hold no such plane trains without it (the log says which); False: the SDF models the floor
    (docs/nero-shape.md has the measurements behind the default)."""
    cut_at_floor: bool = True
    """Look for the plane the object stands on in the sparse points even without support_plane, and cut exported
    meshes at it: nothing of the object lies below a surface the photos show, and long runs (thousands of steps)
    otherwise grow the floor inside the sphere into the mesh. Training is unchanged."""
    floor_cut_margin: float = 0.03
    """Height above the plane (normalized frame, object radius 0.9) at which cut-at-floor cuts: a floor the SDF has
    grown sits up to a few hundredths above the plane fitted to the points."""
    floor_texture: FloorTextureConfig = field(default_factory=FloorTextureConfig)
    """Diffuse colour of the floor inside the sphere (with support_plane): one colour per floor point from every
    view, so the floor cannot show what the object in front of it reflects."""
    support_plane_start_step: int = 0
    """Training step from which the support plane is joined to the SDF (always outside training); until then the
    far field shows the floor inside the sphere as well. In the material benchmark, 300 let the thin knot form down
    to the floor (training PSNR at step 700 19.9, against 18.2 from step 0 and 19.7 without the plane) but kept
    little of the blob's gain (nero-material albedo 17.3 dB, against 25.5 from step 0; see docs/nero-shape.md)."""


class NeroShapeModel(NeroModel):
    """nero-shape model: NeuS-style SDF + NeRF++ far field composited together, shaded with NeRO's split-sum."""

    config: NeroShapeModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        self.sdf_field = self.config.sdf_field.setup()
        feature_dim = self.config.sdf_field.feature_dim
        if self.config.shading == "nero":
            self.shading_field = self.config.nero_shading.setup(feature_dim=feature_dim)
        else:
            self.shading_field = self.config.plain_shading.setup(feature_dim=feature_dim)
        warmup = self.config.shading == "nero" and self.config.plain_warmup_steps > 0
        self.warmup_shading = self.config.plain_shading.setup(feature_dim=feature_dim) if warmup else None
        self.far_field = self.config.far_field.setup()
        self.inside_sampler = NeuSSampler(
            num_samples=self.config.num_samples,
            num_samples_importance=self.config.num_importance_samples,
            num_upsample_steps=self.config.num_upsample_steps,
            base_variance=self.config.base_variance,
        )
        self.outside_sampler = InverseDistanceSampler(num_samples=self.config.num_outside_samples)
        self.support_plane = SupportPlane()
        if self.config.support_plane or self.config.cut_at_floor:
            found = self.support_plane.fit(self.metadata.get("points3D_xyz"))
            self._say_how_the_floor_is_drawn(found)
        self.floor_texture = self.config.floor_texture.setup()
        self.floor_from_photos: Optional[Tuple[Tensor, Tensor]] = None
        """Linear floor colours and whether the photos gave them, per finest texel (read_floor_from_photos), until
        they fill the texture."""

    def _say_how_the_floor_is_drawn(self, plane_found: bool) -> None:
        """One line on what the support plane (found or not) does in this run."""
        if self.config.support_plane and plane_found:
            CONSOLE.print("  nero-shape draws the floor inside the sphere as this plane "
                          "(--pipeline.model.support-plane False: the SDF models it)")
        elif self.config.support_plane:
            CONSOLE.print("No support plane in the sparse points (no dominant plane under the object, or no points): "
                          "the SDF models any floor inside the sphere")
        elif plane_found:
            CONSOLE.print("  exported meshes are cut at it; the SDF models the floor inside the sphere "
                          "(--pipeline.model.support-plane True: drawn as this plane)")

    def read_floor_from_photos(self, dataset: InputDataset) -> None:
        """Read the floor's colours from the training photos, to fill the floor texture with at
        floor_texture.from_photos_step, when the floor is drawn as the support plane."""
        if not (self.config.support_plane and self.support_plane.has_plane):
            return
        if self.config.floor_texture.from_photos_step is None:
            return
        def photo(index: int) -> Tensor:
            image = dataset.get_image_float32(index)[..., :3]
            return image if self.inputs_are_srgb else linear_to_srgb(image)
        points = self.floor_texture.texel_points(self.support_plane).cpu()
        resolution = points.shape[0]
        colours, known = floor_colours_from_photos(
            dataset.cameras, photo, points.reshape(-1, 3), self.support_plane.plane[:3].cpu()
        )
        self.floor_from_photos = (
            srgb_to_linear(colours).reshape(resolution, resolution, 3).to(self.device),
            known.reshape(resolution, resolution).to(self.device),
        )
        CONSOLE.print(f"  floor colours read from the photos: {float(known.float().mean()):.0%} of the floor square "
                      f"seen alike by at least {MIN_AGREEING_VIEWS} views (filled in at step "
                      f"{self.config.floor_texture.from_photos_step} where no ray has reached the floor yet)")

    def _fill_floor_from_photos(self) -> None:
        """The floor texels no ray has reached take the photos' colours (read_floor_from_photos); once, at the
        training step floor_texture.from_photos_step (set_step)."""
        if self.floor_from_photos is None:
            return
        filled = self.floor_texture.fill_untrained(self.support_plane, *self.floor_from_photos)
        self.floor_from_photos = None
        CONSOLE.print(f"Step {self.step}: {filled} floor texels no ray had reached took the photos' colours")

    # ------------------------------------------------------------------ optimization
    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        return {
            "fields": list(self.sdf_field.parameters()) + list(self.shading_field.parameters())
            + (list(self.warmup_shading.parameters()) if self.warmup_shading is not None else []),
            "far_field": list(self.far_field.parameters()),
            "floor": list(self.floor_texture.parameters()),
        }

    def set_step(self, step: int) -> None:
        super().set_step(step)
        self.sdf_field.set_step(step)
        if step == self.config.floor_texture.from_photos_step:
            self._fill_floor_from_photos()

    def cos_anneal_ratio(self) -> float:
        """NeuS cosine annealing: 0 at the start, 1 (the true cosine) after cos_anneal_steps; 1 outside training."""
        if not self.training or self.config.cos_anneal_steps <= 0:
            return 1.0
        return min(1.0, self.step / self.config.cos_anneal_steps)

    def nero_share(self) -> float:
        """Share of NeRO's shading in the training colour: rises from 0 to 1 over plain_warmup_steps; 1 without a
        warm-up and outside training."""
        if not self.training or self.warmup_shading is None:
            return 1.0
        return min(1.0, self.step / self.config.plain_warmup_steps)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Checkpoints written before the support plane and the floor texture existed load with an empty plane and
        the initial texture. Only a state that holds this model's weights gets them: nerfstudio's pipeline also
        loads its own keys through here."""
        if prefix + "sdf_field.variance" in state_dict:
            state_dict.setdefault(prefix + "support_plane.plane", torch.zeros(4))
            for name, value in self.floor_texture.state_dict().items():
                state_dict.setdefault(f"{prefix}floor_texture.{name}", value)
            if self.warmup_shading is not None:  # a run trained without the warm-up head
                for name, value in self.warmup_shading.state_dict().items():
                    state_dict.setdefault(f"{prefix}warmup_shading.{name}", value)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ geometry queries (exporters, evaluation)
    def query_sdf(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 1"]:
        """Signed distance of the object in the normalized frame (negative inside), cut floor-cut-margin above the
        support plane when one was found; differentiable, so callers that only need values wrap it in torch.no_grad."""
        return self.support_plane.clip_sdf(positions, self.sdf_field.get_sdf(positions), self.config.floor_cut_margin)

    def join_floor(self, positions: Float[Tensor, "*bs 3"], sdf: Float[Tensor, "*bs 1"]) -> Float[Tensor, "*bs 1"]:
        """The object's `sdf` at `positions` joined with the solid below the support plane, once the plane takes part
        (from `support_plane_start_step` in training, always outside it); otherwise `sdf` itself."""
        return self.support_plane.with_floor(positions, sdf) if self.floor_joined() else sdf

    def floor_joined(self) -> bool:
        """Whether rays meet the support plane: with support_plane, when one was found, from
        `support_plane_start_step` in training and always outside it."""
        started = not self.training or self.step >= self.config.support_plane_start_step
        return self.config.support_plane and started and self.support_plane.has_plane

    def scene_sdf(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 1"]:
        """Signed distance of what rays meet inside the sphere: the object and, once joined, the floor."""
        return self.join_floor(positions, self.sdf_field.get_sdf(positions))

    # ------------------------------------------------------------------ rendering
    def _inside(self, ray_bundle: RayBundle, near: Tensor, far: Tensor) -> Dict[str, Tensor]:
        """Samples inside the unit sphere of rays that cross it: positions, SDF, gradient, normals, opacity and
        shading of each sample (NeuS importance sampling on the current SDF)."""
        ray_bundle.nears, ray_bundle.fars = near, far
        samples = self.inside_sampler(ray_bundle, sdf_fn=lambda s: self.scene_sdf(s.frustums.get_positions()))
        positions = samples.frustums.get_positions()
        directions = samples.frustums.directions
        object_sdf, features, object_gradient = self.sdf_field.sdf_feature_gradient(
            positions, create_graph=self.training
        )
        sdf = self.join_floor(positions, object_sdf)
        floor_first = sdf < object_sdf  # never without the floor
        gradient = torch.where(floor_first, self.support_plane.plane[:3].expand_as(object_gradient), object_gradient)
        normals = torch.nn.functional.normalize(gradient, dim=-1)
        assert samples.deltas is not None
        alpha = self.sdf_field.get_alpha(sdf, gradient, directions, samples.deltas, self.cos_anneal_ratio())
        alpha = alpha * (positions.norm(dim=-1, keepdim=True) < 1.0)
        midpoints = (samples.frustums.starts + samples.frustums.ends) / 2.0
        visible = weights_from_alphas(alpha).detach()[..., 0] > self.config.negligible_weight
        visible[0, 0] = True  # never an empty batch for the shading heads (nerfstudio's encodings reject one)
        shading = self._shade_where(visible, positions, features, normals, -directions)
        if self.floor_joined():  # before the join no sample is floor: no texture lookups
            shading = self._floor_shading(shading, positions, floor_first)
        return {
            "positions": positions, "sdf": sdf, "floor_first": floor_first, "object_gradient": object_gradient,
            "normals": normals, "alpha": alpha, "midpoints": midpoints,
            **{f"shading_{name}": value for name, value in shading.items()},
        }

    def _shade_where(
        self,
        visible: Bool[Tensor, "num_rays num_samples"],
        positions: Float[Tensor, "num_rays num_samples 3"],
        features: Float[Tensor, "num_rays num_samples feat"],
        normals: Float[Tensor, "num_rays num_samples 3"],
        view_directions: Float[Tensor, "num_rays num_samples 3"],
    ) -> Dict[str, Tensor]:
        """Shading of the `visible` samples; zero at the others (their weight makes them invisible)."""
        inputs = (positions[visible], features[visible], normals[visible], view_directions[visible])
        shaded = self.shading_field(*inputs)
        nero_share = self.nero_share()
        if nero_share < 1.0:
            plain = self.warmup_shading(*inputs)["rgb"]  # type: ignore[misc]
            shaded["rgb"] = nero_share * shaded["rgb"] + (1.0 - nero_share) * plain
        return {name: fill_masked(visible, value) for name, value in shaded.items()}

    def _floor_shading(
        self, shading: Dict[str, Tensor], positions: Float[Tensor, "*bs 3"], floor_first: Bool[Tensor, "*bs 1"]
    ) -> Dict[str, Tensor]:
        """Samples where the floor is nearer than the object take the floor texture as their colour (all diffuse);
        the object's other shading quantities are zero there."""
        floor_colour = self.floor_texture.radiance(self.support_plane, positions)
        on_object = {name: value * ~floor_first for name, value in shading.items()}
        colour_names = [name for name in ("rgb", "diffuse") if name in shading]
        colours = {name: torch.where(floor_first, floor_colour, shading[name]) for name in colour_names}
        return {**on_object, **colours}

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        near, exit_distance, crosses = intersect_unit_sphere(ray_bundle.origins, ray_bundle.directions)
        # Only rays that cross the sphere can meet the SDF: the others get empty inside samples for free. One ray
        # always goes through (a missing ray's samples lie outside the sphere and stay transparent), so every
        # chunk of a rendered image has the same outputs.
        selected = crosses[:, 0].clone()
        selected[0] = True
        inside = self._inside(ray_bundle[selected], near[selected], exit_distance[selected])
        per_ray = {name: fill_masked(selected, value) for name, value in inside.items()}
        inside_alpha = per_ray["alpha"]
        num_inside = inside_alpha.shape[1]

        outside = self.outside_sampler(ray_bundle, exit_distance, jitter=self.training)
        assert outside.deltas is not None
        transmittance = torch.prod(1.0 - inside_alpha.detach() + 1e-7, dim=1)[:, 0]
        seen_beyond = transmittance > self.config.negligible_weight
        seen_beyond[0] = True  # never an empty batch for the far field
        outside_positions = outside.frustums.get_positions()
        density, outside_rgb = self.far_field(outside_positions[seen_beyond], outside.frustums.directions[seen_beyond])
        outside_alpha = fill_masked(seen_beyond, alphas_from_densities(density, outside.deltas[seen_beyond]))
        outside_rgb = fill_masked(seen_beyond, outside_rgb)

        weights = weights_from_alphas(torch.cat([inside_alpha, outside_alpha], dim=1))
        inside_weights, outside_weights = weights[:, :num_inside], weights[:, num_inside:]
        foreground = (inside_weights * per_ray["shading_rgb"]).sum(1)
        background = (outside_weights * outside_rgb).sum(1)
        rgb_linear = foreground + background
        accumulation = inside_weights.sum(1)
        depth = (inside_weights * per_ray["midpoints"]).sum(1) / accumulation.clamp(min=1e-4)
        # The object's own opacity, without the joined floor: what a mask (255 = object) says.
        object_accumulation = (inside_weights * ~per_ray["floor_first"]).sum(1)
        normal = (inside_weights * per_ray["normals"]).sum(1)

        outputs: Dict[str, Tensor] = {
            "rgb": linear_to_srgb(rgb_linear),
            "rgb_linear": rgb_linear,
            "accumulation": accumulation,
            "object_accumulation": object_accumulation,
            "depth": depth,
            "normal": (torch.nn.functional.normalize(normal, dim=-1) + 1.0) / 2.0,
            "foreground": linear_to_srgb(foreground),
            "background": linear_to_srgb(background),
        }
        for name in SHADING_OUTPUTS:
            if f"shading_{name}" in per_ray:
                value = (inside_weights * per_ray[f"shading_{name}"]).sum(1)
                outputs[name] = linear_to_srgb(value) if name in ("diffuse", "specular", "albedo") else value
        if self.training:
            outputs["eikonal_gradient"] = inside["object_gradient"][inside["positions"].norm(dim=-1) < 1.0]
            if "shading_occlusion" in inside:
                outputs.update(self._surface_occlusion(inside_weights[selected], inside))
        return outputs

    def _surface_occlusion(self, inside_weights: Tensor, inside: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """At each ray's most visible sample: the predicted occlusion of its reflected direction and its label."""
        best = inside_weights.squeeze(-1).argmax(dim=1)
        rows = torch.arange(best.shape[0], device=best.device)
        near_surface = inside["sdf"].detach()[rows, best].squeeze(-1).abs() < self.config.occlusion_surface_threshold
        on_object = ~inside["floor_first"][rows, best].squeeze(-1)
        visible = (inside_weights.squeeze(-1)[rows, best] > 0.1) & near_surface & on_object
        rows, best = rows[visible][: self.config.occlusion_rays], best[visible][: self.config.occlusion_rays]
        if rows.numel() == 0:  # no ray reaches the surface yet (early training): nothing to label
            return {}
        points = inside["positions"][rows, best].detach()
        reflected = inside["shading_reflected"][rows, best].detach()
        start = points + 0.01 * inside["normals"][rows, best].detach()
        labels = march_hits_surface(
            self.scene_sdf, start, reflected, num_steps=self.config.occlusion_march_steps
        )
        roughness = inside["shading_roughness"][rows, best].detach()
        predicted = self.shading_field.occlusion(points, reflected, roughness)
        return {"occlusion_predicted": predicted.squeeze(-1), "occlusion_label": labels.to(predicted.dtype)}

    # ------------------------------------------------------------------ losses and metrics
    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        target = linear_target(batch, self.device, self.inputs_are_srgb)
        space = self.config.photometric_space
        rgb_loss = photometric_loss(in_loss_space(outputs["rgb_linear"], space), in_loss_space(target, space),
                                    self.config.photometric_loss)
        loss_dict = {"rgb_loss": rgb_loss}
        if self.training:
            gradient = outputs["eikonal_gradient"]
            if gradient.numel() > 0:  # empty when no ray of the batch crosses the sphere
                loss_dict["eikonal_loss"] = self.config.eikonal_loss_mult * ((gradient.norm(dim=-1) - 1.0) ** 2).mean()
            if self.step < self.config.sdf_prior_steps and self.config.sdf_prior_loss_mult > 0:
                loss_dict["sdf_prior_loss"] = self.config.sdf_prior_loss_mult * self._boundary_prior(target.shape[0])
            if "occlusion_predicted" in outputs and self.step >= self.config.occlusion_loss_start:
                occlusion_error = (outputs["occlusion_predicted"] - outputs["occlusion_label"]).abs()
                loss_dict["occlusion_loss"] = self.config.occlusion_loss_mult * occlusion_error.mean()
            if self.config.mask_loss_mult > 0 and "mask" in batch:
                mask = batch["mask"].to(self.device).float().reshape(-1, 1)
                accumulation = outputs["object_accumulation"].clamp(1e-3, 1.0 - 1e-3)
                loss_dict["mask_loss"] = self.config.mask_loss_mult * torch.nn.functional.binary_cross_entropy(
                    accumulation, mask
                )
        return loss_dict

    def _boundary_prior(self, num_points: int) -> Tensor:
        """Penalize negative SDF in the shell 0.9 < |x| < 1, where only background belongs."""
        directions = torch.nn.functional.normalize(torch.randn(num_points, 3, device=self.device), dim=-1)
        radii = 0.9 + 0.1 * torch.rand(num_points, 1, device=self.device)
        return torch.relu(-self.sdf_field.get_sdf(directions * radii)).mean()

    def get_metrics_dict(self, outputs, batch) -> Dict[str, Tensor]:
        metrics = super().get_metrics_dict(outputs, batch)
        metrics["inv_s"] = self.sdf_field.inv_s().detach()
        if "occlusion_label" in outputs and outputs["occlusion_label"].numel() > 0:
            metrics["occluded_fraction"] = outputs["occlusion_label"].mean()
        return metrics

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        metrics, images = super().get_image_metrics_and_images(outputs, batch)
        images["normal"] = outputs["normal"]
        images["accumulation"] = colormaps.apply_colormap(outputs["accumulation"])
        images["depth"] = colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"])
        return metrics, images
