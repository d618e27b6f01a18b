"""nero-material's priors: what the photos cannot decide about materials and light, settled by assumption.

Every prior is a weight times a term (`weighted_terms`); a prior that is on only for part of training gets its weight
from `scheduled_weight`. docs/nero-material.md gives the reasons for each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Literal, Optional, Tuple

import torch
from jaxtyping import Float
from torch import Tensor, nn

from nero_ns.components.brdf import orthonormal_frame
from nero_ns.fields.environment_light import EnvironmentLight
from nero_ns.models.photometric import PhotometricLossKind, photometric_loss


@dataclass
class MaterialPriorOptions:
    """Weights and settings of nero-material's priors (part of the nero-material model config)."""

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
    floor_prior_loss_mult: float = 0.1
    """Weight of the prior (photometric loss on linear radiance) tying the indirect light of floor directions to the
    floor light, with floor_light_use 'prior'."""
    metallic_binary_loss_mult: float = 0.05
    """Weight of the prior that metallic is 0 or 1 (real materials are metal or not), mean of m (1 - m): it pushes
    each point to the side it is already on. Without it the dielectric blob of the material benchmark drifted from
    metallic 0.3 at step 1000 to 0.56 at step 7000 for a 0.5 dB gain in training PSNR."""
    metallic_binary_start_step: int = 1000
    """Step from which that prior is on: after the lights have formed and the data has chosen a side."""


Term = Tuple[float, Callable[[], Float[Tensor, ""]]]
"""A prior's weight and a function computing its unweighted value."""


def scheduled_weight(weight: float, step: int, start_step: int = 0, stop_step: Optional[int] = None) -> float:
    """`weight` from training step `start_step` until before `stop_step` (None: to the end of training), else 0."""
    if step < start_step or (stop_step is not None and step >= stop_step):
        return 0.0
    return weight


def weighted_terms(terms: Dict[str, Term]) -> Dict[str, Float[Tensor, ""]]:
    """weight x value of each term whose weight is above 0; a term weighted 0 is not computed."""
    return {name: weight * value() for name, (weight, value) in terms.items() if weight > 0}


def smoothness_pairs(
    material_field: nn.Module,
    points: Float[Tensor, "num 3"],
    normals: Float[Tensor, "num 3"],
    materials: Dict[str, Tensor],
    offset: float,
) -> Dict[str, Float[Tensor, "num 5"]]:
    """Materials (albedo, roughness, metallic) at surface points and at a random tangent offset of length `offset`
    from them, for the smoothness prior."""
    tangent, bitangent = orthonormal_frame(normals.detach())
    angle = 2.0 * torch.pi * torch.rand(points.shape[0], 1, device=points.device)
    moved = material_field(points + (torch.cos(angle) * tangent + torch.sin(angle) * bitangent) * offset)
    here = torch.cat([materials["albedo"], materials["roughness"], materials["metallic"]], dim=-1)
    nearby = torch.cat([moved["albedo"], moved["roughness"], moved["metallic"]], dim=-1)
    return {"materials_here": here, "materials_nearby": nearby}


def floor_prior(
    floor_pair: Tuple[Float[Tensor, "num 3"], Float[Tensor, "num 3"]], kind: PhotometricLossKind
) -> Float[Tensor, ""]:
    """How far the indirect light of floor directions is from the floor light there (`IncidentLight.floor_pair`)."""
    indirect, floor = floor_pair
    return photometric_loss(indirect, floor, kind)


def diffuse_light_tint(
    light: Float[Tensor, "num_hits 3"], diffuse_share: Float[Tensor, "num_hits 1"], prior: Literal["mean", "point"]
) -> Float[Tensor, ""]:
    """How far the light of the diffuse lobe is from grey (sum over channels of |channel - their mean|), at each
    point ('point') or for the mean light ('mean'), scaled by the diffuse share of the points (a metal gets none)."""

    def tint(colors: Tensor) -> Tensor:
        return (colors - colors.mean(dim=-1, keepdim=True)).abs().sum(dim=-1, keepdim=True)

    if prior == "mean":
        mean_light = (diffuse_share * light).sum(dim=0) / diffuse_share.sum().clamp(min=1e-6)
        return tint(mean_light).squeeze() * diffuse_share.mean()
    return (diffuse_share * tint(light)).mean()


def prior_losses(
    options: MaterialPriorOptions, step: int, outputs: Dict[str, Tensor], environment: EnvironmentLight
) -> Dict[str, Float[Tensor, ""]]:
    """The weighted priors of a training step's outputs (those whose inputs the outputs hold)."""
    terms: Dict[str, Term] = {}
    if "floor_prior" in outputs:
        terms["floor_prior_loss"] = (options.floor_prior_loss_mult, lambda: outputs["floor_prior"])
    if len(environment.log_texels) > 0:
        terms["environment_smoothness_loss"] = (options.environment_smoothness_loss_mult, environment.texel_variation)
    if "materials_here" in outputs:
        here, nearby = outputs["materials_here"], outputs["materials_nearby"]
        albedo, roughness, metallic = here[:, 0:3], here[:, 3], here[:, 4]
        terms["smoothness_loss"] = (options.smoothness_loss_mult, lambda: (here - nearby).abs().sum(dim=-1).mean())
        terms["range_prior_loss"] = (
            scheduled_weight(options.range_prior_loss_mult, step, stop_step=options.range_prior_steps),
            lambda: (torch.relu(metallic - 0.98) + torch.relu(0.02 - metallic) + torch.relu(roughness - 0.98)).mean(),
        )
        terms["albedo_ceiling_loss"] = (
            options.albedo_ceiling_loss_mult,
            lambda: torch.relu(albedo - options.albedo_ceiling).sum(dim=-1).mean(),
        )
        terms["metallic_binary_loss"] = (
            scheduled_weight(options.metallic_binary_loss_mult, step, start_step=options.metallic_binary_start_step),
            lambda: (metallic * (1.0 - metallic)).mean(),
        )
        terms["diffuse_light_loss"] = (
            options.diffuse_light_loss_mult,
            lambda: diffuse_light_tint(
                outputs["diffuse_light"], 1.0 - here[:, 4:5].detach(), options.diffuse_light_prior
            ),
        )
    return weighted_terms(terms)
