"""nero-material warm start: fit the material field and the lights to what nero-shape's split-sum shading learned.

nero-shape already splits the object's appearance into albedo, roughness, metallic, a direct light by direction and an
indirect light by point and direction. nero-material from scratch starts from grey light and materials at 0.5 and must
untangle them again with noisy Monte Carlo gradients. Regressing its fields onto nero-shape's heads first (a few
seconds, no rendering) starts it from a consistent explanation of the photos, which it then refines."""

from __future__ import annotations

from typing import Callable, Dict

import torch
from jaxtyping import Float
from torch import Tensor, nn

from nero_ns.fields.environment_light import EnvironmentLight, IndirectLight
from nero_ns.fields.material_field import MaterialField
from nero_ns.fields.sdf_field import NeroSDFField
from nero_ns.fields.shading_field import NeroShadingField


def uniform_directions(count: int, generator: torch.Generator, device: torch.device) -> Float[Tensor, "count 3"]:
    """Unit vectors uniform on the sphere."""
    return nn.functional.normalize(torch.randn(count, 3, generator=generator, device=device), dim=-1)


def _fit(module: nn.Module, loss_of_batch: Callable[[], Tensor], steps: int, learning_rate: float) -> float:
    """Adam on `module`'s parameters for `steps` batches; returns the last loss."""
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate)
    loss = torch.zeros(())
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of_batch()
        loss.backward()
        optimizer.step()
    return float(loss.detach())


def shape_materials(
    shading: NeroShadingField, sdf_field: NeroSDFField, points: Float[Tensor, "num 3"]
) -> Dict[str, Float[Tensor, "num C"]]:
    """nero-shape's albedo, roughness and metallic at surface points (its material head on the SDF features)."""
    _, features = sdf_field(points)
    return shading.materials(points, features)


def _log_radiance_error(predicted: Float[Tensor, "num 3"], target: Float[Tensor, "num 3"]) -> Float[Tensor, ""]:
    """Mean squared difference of log radiance (lights are HDR); the target is floored away from 0."""
    return (torch.log(predicted) - torch.log(target.clamp(min=1e-4))).square().mean()


def warm_start(
    shading: NeroShadingField,
    sdf_field: NeroSDFField,
    surface_points: Float[Tensor, "num 3"],
    material_field: MaterialField,
    environment_light: EnvironmentLight,
    indirect_light: IndirectLight,
    steps: int,
    batch_size: int = 4096,
    learning_rate: float = 5e-3,
) -> Dict[str, float]:
    """Fit nero-material's fields to nero-shape's heads at `surface_points` (normalized frame); returns the losses.

    Lights are matched in log radiance (they are HDR), materials in value. nero-shape's modules are only read.
    """
    device = surface_points.device
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        targets = shape_materials(shading, sdf_field, surface_points)
    target_materials = torch.cat([targets["albedo"], targets["roughness"], targets["metallic"]], dim=-1)

    def batch_indices() -> Tensor:
        return torch.randint(0, surface_points.shape[0], (batch_size,), generator=generator, device=device)

    def material_loss() -> Tensor:
        index = batch_indices()
        predicted = material_field(surface_points[index])
        stacked = torch.cat([predicted["albedo"], predicted["roughness"], predicted["metallic"]], dim=-1)
        return (stacked - target_materials[index]).square().mean()

    def environment_loss() -> Tensor:
        directions = uniform_directions(batch_size, generator, device)
        with torch.no_grad():
            target = shading.direct_light(shading.ide(directions, torch.zeros_like(directions[:, :1])))
        return _log_radiance_error(environment_light(directions), target)

    def indirect_loss() -> Tensor:
        points = surface_points[batch_indices()]
        directions = uniform_directions(batch_size, generator, device)
        with torch.no_grad():
            code = torch.cat(
                [shading.ide(directions, torch.zeros_like(directions[:, :1])), shading.position_encoding(points)], -1
            )
            target = shading.indirect_light(code)
        return _log_radiance_error(indirect_light(points, directions), target)

    return {
        "materials": _fit(material_field, material_loss, steps, learning_rate),
        "environment": _fit(environment_light, environment_loss, steps, learning_rate),
        "indirect": _fit(indirect_light, indirect_loss, steps, learning_rate),
    }
