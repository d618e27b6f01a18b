"""Preview of a nero-material model under another light: its Stage I mesh and recovered materials, split-sum shaded
under a prefiltered environment (`PrefilteredEnvironment`), one ray per pixel. Rays that miss the object see the
environment itself. Quick enough to follow the viewer's camera on a CPU; no shadows or interreflections (the
training render, Monte Carlo with the learned indirect light, has them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

import torch
from nerfstudio.cameras.rays import RayBundle
from torch import Tensor

from nero_ns.colors import linear_to_srgb
from nero_ns.components.prefiltered_light import PrefilteredEnvironment
from nero_ns.relight.environment import rotation_about_up

if TYPE_CHECKING:
    from nero_ns.models.nero_material import NeroMaterialModel


@torch.no_grad()
def relit_preview(
    model: "NeroMaterialModel",
    ray_bundle: RayBundle,
    light: PrefilteredEnvironment,
    rotation_deg: float,
    exposure_ev: float,
) -> Dict[str, Tensor]:
    """Outputs of every ray of `ray_bundle` (shape *bs) under `light` turned by `rotation_deg` about the up axis
    (the light from direction d moves to R d) and scaled by 2^`exposure_ev`: the model's output names, shaped
    (*bs, channels), without the Monte Carlo-only ones (visibility)."""
    batch_shape = ray_bundle.shape
    origins, directions = ray_bundle.origins.reshape(-1, 3), ray_bundle.directions.reshape(-1, 3)
    directions = torch.nn.functional.normalize(directions, dim=-1)
    distance, hit, _, hit_points = model.raycaster.first_hit(origins, directions)
    # Looking up the rotated light along d is looking up the light along R^-1 d: turn every direction back.
    unrotate = torch.as_tensor(rotation_about_up(-rotation_deg)[:3, :3], dtype=origins.dtype, device=origins.device)
    exposure = 2.0**exposure_ev
    num_rays = origins.shape[0]

    def zeros(channels: int) -> Tensor:
        return torch.zeros(num_rays, channels, device=origins.device, dtype=origins.dtype)

    environment = exposure * light.background(directions @ unrotate.T)
    outputs = {name: zeros(3) for name in ("albedo", "diffuse", "specular", "normal")}
    outputs.update({name: zeros(1) for name in ("roughness", "metallic")})
    rgb_linear = environment.clone()
    points = hit_points[hit]
    if points.shape[0] > 0:
        _, _, gradient = model.sdf_field.sdf_feature_gradient(points, create_graph=False)
        normals = torch.nn.functional.normalize(gradient, dim=-1)
        materials = model.material_field(points)
        shading = light.shade(
            normals @ unrotate.T, -directions[hit] @ unrotate.T, materials["albedo"], materials["roughness"],
            materials["metallic"],
        )
        rgb_linear[hit] = exposure * shading["rgb"]
        for name in ("diffuse", "specular"):
            outputs[name][hit] = linear_to_srgb(exposure * shading[name])
        outputs["albedo"][hit] = linear_to_srgb(materials["albedo"])
        for name in ("roughness", "metallic"):
            outputs[name][hit] = materials[name]
        outputs["normal"][hit] = (normals + 1.0) / 2.0
    outputs["rgb_linear"] = rgb_linear
    outputs["rgb"] = linear_to_srgb(rgb_linear)
    outputs["environment"] = linear_to_srgb(environment)
    outputs["accumulation"] = hit.to(origins.dtype)[:, None]
    outputs["depth"] = torch.where(hit, distance, torch.zeros_like(distance))[:, None]
    return {name: value.reshape(*batch_shape, value.shape[-1]) for name, value in outputs.items()}
