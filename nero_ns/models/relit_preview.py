"""Preview of a nero-material model under another light: the nero-shape geometry and the recovered materials, split-sum
shaded under a prefiltered environment (`PrefilteredEnvironment`), one ray per pixel. Rays that miss the object see
the environment itself. Quick enough to follow ns-viewer's camera on a CPU; no shadows or interreflections (the
model's Monte Carlo render has them). ns-viewer's relighting panel (`nero_ns.viewer`) chooses the light."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

import torch
from nerfstudio.cameras.rays import RayBundle
from torch import Tensor

from nero_ns.colors import linear_to_srgb
from nero_ns.components.prefiltered_light import PrefilteredEnvironment
from nero_ns.fields.material_field import MaterialField
from nero_ns.io.latlong import rotation_about_up
from nero_ns.models.shape_geometry import ShapeGeometry


@dataclass
class PreviewLight:
    """A light to preview the materials under: a prefiltered map, turned about the up axis and scaled."""

    environment: PrefilteredEnvironment
    rotation_deg: float = 0.0
    """The light from direction d comes from R_z(rotation_deg) d (counter-clockwise seen from above)."""
    exposure_ev: float = 0.0
    """The light is scaled by 2^exposure_ev."""


@torch.no_grad()
def relit_preview(
    geometry: ShapeGeometry, material_field: MaterialField, ray_bundle: RayBundle, light: PreviewLight
) -> Dict[str, Tensor]:
    """Outputs of every ray of `ray_bundle` (shape *bs) under `light`: the model's output names, shaped
    (*bs, channels), without the Monte Carlo-only one (visibility)."""
    batch_shape = ray_bundle.shape
    origins = ray_bundle.origins.reshape(-1, 3)
    directions = torch.nn.functional.normalize(ray_bundle.directions.reshape(-1, 3), dim=-1)
    hits = geometry.first_hits(origins, directions)
    hit = hits.object
    assert hits.object_points is not None and hits.object_distance is not None
    # Looking up the turned light along d is looking up the map along R^-1 d = R^T d: turn every direction back.
    rotation = torch.as_tensor(
        rotation_about_up(light.rotation_deg)[:3, :3], dtype=origins.dtype, device=origins.device
    )
    exposure = 2.0**light.exposure_ev
    num_rays = origins.shape[0]

    def zeros(channels: int) -> Tensor:
        return torch.zeros(num_rays, channels, device=origins.device, dtype=origins.dtype)

    environment = exposure * light.environment.background(directions @ rotation)
    outputs = {name: zeros(3) for name in ("albedo", "diffuse", "specular", "normal")}
    outputs.update({name: zeros(1) for name in ("roughness", "metallic")})
    rgb_linear = environment.clone()
    points = hits.object_points[hit]
    if points.shape[0] > 0:
        normals = geometry.normals(points, create_graph=False)
        materials = material_field(points)
        shading = light.environment.shade(
            normals @ rotation, -directions[hit] @ rotation, materials["albedo"], materials["roughness"],
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
    outputs["environment"] = linear_to_srgb(environment)
    outputs["accumulation"] = hit.to(origins.dtype)[:, None]
    outputs["depth"] = torch.where(hit, hits.object_distance, torch.zeros_like(hits.object_distance))[:, None]
    # rgb first, as the model's render has it: ns-viewer opens on the first output.
    outputs = {"rgb": linear_to_srgb(rgb_linear), **outputs}
    return {name: value.reshape(*batch_shape, value.shape[-1]) for name, value in outputs.items()}
