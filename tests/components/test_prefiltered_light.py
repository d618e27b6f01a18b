"""Prefiltered environment maps: a uniform light stays uniform at every roughness, the irradiance of a sky above a
dark ground follows the cosine law, the filtered maps blur a small light with roughness, and split-sum shading
matches its formula."""

from __future__ import annotations

import math

import pytest
import torch

from nero_ns.components.brdf import specular_f0
from nero_ns.components.prefiltered_light import PrefilteredEnvironment
from nero_ns.components.split_sum import SplitSumTable
from nero_ns.io.latlong import latlong_directions


def unit(vectors: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(vectors, dim=-1)


def test_a_uniform_light_stays_uniform_at_every_roughness():
    light = PrefilteredEnvironment(torch.full((32, 64, 3), 0.7), torch.device("cpu"))
    directions = unit(torch.randn(200, 3, generator=torch.Generator().manual_seed(0)))
    for roughness in (0.05, 0.3, 0.55, 0.9):
        specular = light.specular_light(directions, torch.full((200, 1), roughness))
        torch.testing.assert_close(specular, torch.full_like(specular, 0.7), rtol=0.02, atol=0.0)
    torch.testing.assert_close(light.diffuse_light(directions), torch.full((200, 3), 0.7), rtol=0.02, atol=0.0)


def test_the_diffuse_light_of_a_sky_over_a_dark_ground_follows_the_cosine_law():
    up = torch.as_tensor(latlong_directions(64, 128), dtype=torch.float32)[..., 2:3]
    light = PrefilteredEnvironment((up > 0).float().expand(64, 128, 3).contiguous(), torch.device("cpu"))
    # A normal tilted by theta from +z sees the sky with the cosine-weighted share (1 + cos theta) / 2.
    for theta_deg in (0.0, 60.0, 90.0, 120.0, 180.0):
        theta = math.radians(theta_deg)
        normal = torch.tensor([[math.sin(theta), 0.0, math.cos(theta)]])
        expected = (1.0 + math.cos(theta)) / 2.0
        assert float(light.diffuse_light(normal)[0, 0]) == pytest.approx(expected, abs=0.04)


def test_rougher_levels_spread_a_small_light():
    directions = torch.as_tensor(latlong_directions(64, 128), dtype=torch.float32)
    sun = torch.tensor([0.0, 0.0, 1.0])
    radiance = 0.01 + 100.0 * ((directions @ sun) > math.cos(math.radians(3.0))).float()[..., None].expand(64, 128, 3)
    light = PrefilteredEnvironment(radiance.contiguous(), torch.device("cpu"))
    toward, beside = sun[None], unit(torch.tensor([[0.5, 0.0, 1.0]]))  # 27 degrees away

    def seen(direction: torch.Tensor, roughness: float) -> float:
        return float(light.specular_light(direction, torch.tensor([[roughness]]))[0, 0])

    assert seen(toward, 0.1) > seen(toward, 0.5) > seen(toward, 0.9)
    assert seen(beside, 0.1) < seen(beside, 0.5)


def test_shading_is_the_split_sum_formula():
    light = PrefilteredEnvironment(torch.full((16, 32, 3), 2.0), torch.device("cpu"))
    normals = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    view = unit(torch.tensor([[0.0, 0.3, 1.0], [0.4, 0.0, 1.0]]))
    albedo = torch.tensor([[0.8, 0.4, 0.2], [0.1, 0.5, 0.9]])
    roughness, metallic = torch.tensor([[0.3], [0.7]]), torch.tensor([[0.0], [1.0]])
    shading = light.shade(normals, view, albedo, roughness, metallic)
    table = SplitSumTable()(view[:, 2:3], roughness)
    specular = 2.0 * (specular_f0(albedo, metallic) * table[..., 0:1] + table[..., 1:2])
    torch.testing.assert_close(shading["specular"], specular, rtol=0.02, atol=1e-4)
    torch.testing.assert_close(shading["diffuse"], 2.0 * (1.0 - metallic) * albedo, rtol=0.02, atol=1e-4)
    torch.testing.assert_close(shading["rgb"], shading["diffuse"] + shading["specular"])
