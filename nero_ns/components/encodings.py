"""Encodings for NeRO: a coarse-to-fine hash grid and the integrated directional encoding (IDE)."""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from jaxtyping import Float
from torch import Tensor, nn

from nero_ns.components.hash_grid import HashGrid, build_hash_grid


class CoarseToFineHashGrid(nn.Module):
    """Multi-resolution hash grid over [-1, 1]^3 whose finer levels are unlocked during training.

    Locked levels output zeros, so the SDF starts smooth and gains detail as `set_step` unlocks levels. The grid is
    our pure-PyTorch `HashGrid` (locked levels cost nothing; it can return the features' spatial derivative), or
    tinycudann's through nerfstudio's `HashEncoding` when `implementation` is "tcnn" and tinycudann is importable:
    no tcnn object is ever built without it.
    """

    def __init__(
        self,
        num_levels: int = 16,
        min_res: int = 16,
        max_res: int = 1024,
        log2_hashmap_size: int = 17,
        features_per_level: int = 2,
        start_levels: int = 4,
        steps_per_level: int = 100,
        implementation: str = "tcnn",
    ) -> None:
        super().__init__()
        self.encoding = build_hash_grid(
            implementation, num_levels=num_levels, min_res=min_res, max_res=max_res,
            log2_hashmap_size=log2_hashmap_size, features_per_level=features_per_level,
        )
        self.num_levels = num_levels
        self.features_per_level = features_per_level
        self.start_levels = start_levels
        self.steps_per_level = steps_per_level
        self.register_buffer("active_levels", torch.tensor(min(start_levels, num_levels)), persistent=True)
        self.num_active_levels = min(start_levels, num_levels)
        """`active_levels` on the host: reading the buffer every step would wait for the GPU each time."""

    @property
    def supports_jacobian(self) -> bool:
        """Whether `forward(..., with_jacobian=True)` is available (the PyTorch grid; not tinycudann's)."""
        return isinstance(self.encoding, HashGrid)

    def get_out_dim(self) -> int:
        return self.num_levels * self.features_per_level

    def finest_active_resolution(self) -> float:
        """Resolution of the finest unlocked level, in cells per unit of [0, 1]^3."""
        return float(self.encoding.scalings[self.num_active_levels - 1])  # type: ignore[index]

    def set_step(self, step: int) -> None:
        """Unlock one more level every `steps_per_level` steps."""
        unlocked = min(self.start_levels + step // max(self.steps_per_level, 1), self.num_levels)
        if unlocked != self.num_active_levels:
            self.num_active_levels = unlocked
            self.active_levels.fill_(unlocked)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """A checkpoint's unlocked levels become the host copy too."""
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.num_active_levels = int(self.active_levels)

    def forward(
        self, positions: Float[Tensor, "*bs 3"], with_jacobian: bool = False
    ) -> Tuple[Float[Tensor, "*bs features"], Optional[Float[Tensor, "*bs 3 features"]]]:
        """Features at `positions` and, with `with_jacobian` (PyTorch grid only), their derivative along x, y, z."""
        batch_shape = positions.shape[:-1]
        unit_cube = ((positions + 1.0) / 2.0).clamp(0.0, 1.0).reshape(-1, 3)
        if isinstance(self.encoding, HashGrid):
            features, jacobian = self.encoding(unit_cube, self.num_active_levels, with_jacobian)
            features = features.reshape(*batch_shape, -1)
            if jacobian is not None:
                # d(unit cube)/d(position) is 1/2 inside the cube and 0 where the clamp holds.
                inside = ((positions.abs() < 1.0).all(dim=-1, keepdim=True) * 0.5).reshape(-1, 1, 1)
                jacobian = (jacobian * inside).reshape(*batch_shape, 3, -1)
            return features, jacobian
        if with_jacobian:
            raise ValueError("the tinycudann hash grid gives no Jacobian; use the autograd gradient with it")
        features = self.encoding(unit_cube).to(positions.dtype)
        features = features.reshape(*batch_shape, self.num_levels, self.features_per_level)
        level_mask = (torch.arange(self.num_levels, device=positions.device) < self.num_active_levels).to(features.dtype)
        return (features * level_mask[:, None]).flatten(-2), None


def _ide_terms(degree: int) -> List[Tuple[int, int]]:
    """(l, m) pairs used by Ref-NeRF's IDE: l in {1, 2, 4, ...}, m in [0, l]."""
    return [(2**i, m) for i in range(degree) for m in range(2**i + 1)]


def _legendre_coeff(l: int, m: int, k: int) -> float:
    """Coefficient of z^k in d^m/dz^m P_l(z) scaled by (-1)^m, from the Rodrigues formula."""
    # P_l(z) = 1/(2^l l!) d^l/dz^l (z^2 - 1)^l ;  expand (z^2-1)^l = sum_j C(l,j) (-1)^(l-j) z^(2j)
    total = 0.0
    for j in range(l + 1):
        power = 2 * j - l - m  # power of z after differentiating l + m times
        if power != k:
            continue
        derivative_factor = math.perm(2 * j, l + m) if 2 * j >= l + m else 0
        total += math.comb(l, j) * (-1) ** (l - j) * derivative_factor
    return (-1) ** m * total / (2**l * math.factorial(l))


class IntegratedDirectionalEncoding(nn.Module):
    """Ref-NeRF's integrated directional encoding of a direction under a roughness-dependent vMF lobe.

    Spherical harmonics Y_l^m (l = 1, 2, 4, ..., 2^(degree-1)) of the direction, each attenuated by
    exp(-l(l+1)/2 * roughness): rough lobes keep only low frequencies, which is what lets one light MLP serve
    mirror-like and blurry reflections alike.
    """

    def __init__(self, degree: int = 4) -> None:
        super().__init__()
        terms = _ide_terms(degree)
        max_power = max(l for l, _ in terms)
        coefficients = torch.zeros(len(terms), max_power + 1)
        for row, (l, m) in enumerate(terms):
            normalization = math.sqrt(
                (2 * l + 1) * math.factorial(l - m) / (4 * math.pi * math.factorial(l + m))
            )
            for k in range(l - m + 1):
                coefficients[row, k] = normalization * _legendre_coeff(l, m, k)
        self.register_buffer("coefficients", coefficients, persistent=False)
        self.register_buffer("orders_m", torch.tensor([m for _, m in terms], dtype=torch.float32), persistent=False)
        self.register_buffer(
            "attenuation", torch.tensor([l * (l + 1) / 2.0 for l, _ in terms], dtype=torch.float32), persistent=False
        )
        self.num_terms = len(terms)

    def get_out_dim(self) -> int:
        return 2 * self.num_terms

    def forward(
        self, directions: Float[Tensor, "*bs 3"], roughness: Float[Tensor, "*bs 1"]
    ) -> Float[Tensor, "*bs out_dim"]:
        x, y, z = directions[..., 0:1], directions[..., 1:2], directions[..., 2:3]
        powers_of_z = z ** torch.arange(self.coefficients.shape[1], device=z.device, dtype=z.dtype)
        legendre = powers_of_z @ self.coefficients.T.to(z.dtype)
        # (x + iy)^m via polar form avoids complex dtypes (unsupported in some backends).
        radius_xy = torch.sqrt(x**2 + y**2).clamp(min=1e-12)
        angle = torch.atan2(y, x)
        magnitude = radius_xy ** self.orders_m * legendre
        real = magnitude * torch.cos(self.orders_m * angle)
        imaginary = magnitude * torch.sin(self.orders_m * angle)
        damping = torch.exp(-self.attenuation * roughness)
        return torch.cat([real * damping, imaginary * damping], dim=-1)
