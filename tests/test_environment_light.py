"""Stage II's environment light: its lat-long texels hold detail over the whole sphere that the harmonics MLP alone
cannot, they wrap around in azimuth, and checkpoints written before them load as the MLP alone."""

from __future__ import annotations

import math

import torch

from nero_ns.fields.environment_light import EnvironmentLightConfig
from nero_ns.models.warm_start import uniform_directions

CHECKER_CELL = math.radians(6.0)


def checker_sky(directions: torch.Tensor) -> torch.Tensor:
    """Radiance 0.5 e^(+-1) on a lat-long checkerboard of 6-degree cells: detail over the whole sphere."""
    theta = torch.acos(directions[:, 2].clamp(-1.0, 1.0))
    phi = torch.atan2(directions[:, 0], directions[:, 1])
    parity = (torch.floor(theta / CHECKER_CELL) + torch.floor(phi / CHECKER_CELL)) % 2
    return (0.5 * torch.exp(2.0 * parity - 1.0))[:, None].expand(-1, 3)


def log_error_after_fit(config: EnvironmentLightConfig, steps: int = 300) -> float:
    """Fit the light to `checker_sky` in log radiance (as the warm start fits lights); mean squared log error after."""
    torch.manual_seed(0)
    light = config.setup()
    optimizer = torch.optim.Adam(light.parameters(), lr=2e-2)
    generator = torch.Generator().manual_seed(0)

    def error(directions: torch.Tensor) -> torch.Tensor:
        return (light(directions).log() - checker_sky(directions).log()).square().mean()

    for _ in range(steps):
        loss = error(uniform_directions(4096, generator, torch.device("cpu")))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return float(error(uniform_directions(8192, generator, torch.device("cpu"))))


def test_texels_hold_detail_that_the_harmonics_cannot() -> None:
    # The checkerboard's log radiance has variance 1: an error of 1 means nothing was learned.
    with_texels = log_error_after_fit(EnvironmentLightConfig())
    mlp_only = log_error_after_fit(EnvironmentLightConfig(texel_resolutions=()))
    assert with_texels < 0.25, with_texels
    assert mlp_only > 2.0 * with_texels, (mlp_only, with_texels)


def test_texels_wrap_around_in_azimuth() -> None:
    light = EnvironmentLightConfig(texel_resolutions=(8,)).setup()
    with torch.no_grad():
        light.log_texels[0].zero_()
        light.log_texels[0][0, :, 3, 0] = 2.0  # first column (azimuth just past 0)
    # Directions at azimuth phi = atan2(x, y) just below 2 pi and just above 0, on the texel row's polar angle.
    theta = (3 + 0.5) / 8 * math.pi
    phis = torch.tensor([-1e-5, 1e-5])
    directions = torch.stack(
        [math.sin(theta) * torch.sin(phis), math.sin(theta) * torch.cos(phis), torch.full_like(phis, math.cos(theta))],
        dim=-1,
    )
    with torch.no_grad():
        before_seam, after_seam = light(directions)[:, 0]
    # Column 0 is half a texel past the seam: both sides blend it with the last column alike.
    assert torch.isclose(before_seam, after_seam, rtol=1e-2), (before_seam, after_seam)
    assert before_seam > 1.5 * 0.5


def test_checkpoints_without_texels_load_as_the_mlp_alone() -> None:
    old = EnvironmentLightConfig(texel_resolutions=()).setup()
    new = EnvironmentLightConfig().setup()
    new.load_state_dict(old.state_dict())
    directions = uniform_directions(256, torch.Generator().manual_seed(0), torch.device("cpu"))
    with torch.no_grad():
        assert torch.allclose(new(directions), old(directions))
