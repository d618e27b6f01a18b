"""The photometric loss's colour space: sRGB-encoded comparison weighs dark pixels more than bright ones."""

from __future__ import annotations

import torch

from nero_ns.colors import srgb_to_linear
from nero_ns.models.photometric import in_loss_space, photometric_loss


def test_srgb_space_compares_the_photos_own_values():
    photo = torch.rand(64, 3)
    assert torch.allclose(in_loss_space(srgb_to_linear(photo), "srgb"), photo, atol=1e-6)
    assert torch.equal(in_loss_space(photo, "linear"), photo)


def test_srgb_space_weighs_a_dark_error_more_than_an_equal_bright_one():
    """The same linear error of 0.01 costs about 13 times more on a dark pixel (0.01) than on a bright one (0.8) in
    sRGB; in linear light both cost the same."""
    target = torch.tensor([[0.01, 0.01, 0.01], [0.8, 0.8, 0.8]])
    prediction = target + 0.01

    def losses(space: str) -> torch.Tensor:
        return torch.stack([photometric_loss(in_loss_space(prediction[i:i + 1], space),
                                             in_loss_space(target[i:i + 1], space), "l1") for i in range(2)])

    linear, srgb = losses("linear"), losses("srgb")
    assert torch.allclose(linear[0], linear[1])
    assert srgb[0] > 10 * srgb[1]
