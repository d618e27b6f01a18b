"""nero-material's warm start: its fields reproduce nero-shape's material and light heads after the fit."""

from __future__ import annotations

import torch

from nero_ns.fields.environment_light import EnvironmentLightConfig, IndirectLightConfig
from nero_ns.fields.material_field import MaterialFieldConfig
from nero_ns.models.shape_run import load_shape_run
from nero_ns.models.warm_start import shape_materials, uniform_directions, warm_start
from tests.models.test_shape_run import shape_run_config  # noqa: F401  (module fixture)


def test_fields_match_the_shape_heads_after_the_fit(shape_run_config) -> None:  # noqa: F811
    torch.manual_seed(0)
    shape_model, _, _ = load_shape_run(shape_run_config)
    shading = shape_model.shading_field
    # Give nero-shape's heads spatial and directional variation to reproduce (the saved run is untrained).
    with torch.no_grad():
        for head in (shading.material_head, shading.direct_light):
            for layer in head.layers:
                layer.weight.normal_(0.0, 0.5)
    generator = torch.Generator().manual_seed(1)
    surface = uniform_directions(4096, generator, torch.device("cpu")) * 0.5
    materials = MaterialFieldConfig(hash_implementation="torch").setup()
    environment = EnvironmentLightConfig().setup()
    indirect = IndirectLightConfig().setup()

    def errors():
        with torch.no_grad():
            target = shape_materials(shading, shape_model.sdf_field, surface)
            predicted = materials(surface)
            material_error = sum((predicted[k] - target[k]).square().mean() for k in target) / len(target)
            directions = uniform_directions(2048, generator, torch.device("cpu"))
            light = shading.direct_light(shading.ide(directions, torch.zeros_like(directions[:, :1])))
            light_error = (environment(directions).log() - light.log()).square().mean()
            target_variance = sum(target[k].var() for k in target) / len(target)
        return float(material_error), float(light_error), float(target_variance), float(light.log().var())

    material_before, light_before, material_variance, light_variance = errors()
    losses = warm_start(shading, shape_model.sdf_field, surface, materials, environment, indirect, steps=300)
    material_after, light_after, _, _ = errors()
    print("material error", material_before, "->", material_after, "variance", material_variance)
    print("light log error", light_before, "->", light_after, "variance", light_variance, "losses", losses)
    assert material_after < 0.1 * material_variance < material_before
    assert light_after < 0.1 * light_variance < light_before
    assert all(value < 0.05 for value in losses.values())
