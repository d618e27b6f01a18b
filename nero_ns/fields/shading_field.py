"""Appearance at surface samples: NeRO's reflection-aware split-sum shading, or a plain radiance baseline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Type

import torch
from jaxtyping import Float
from nerfstudio.configs.base_config import InstantiateConfig
from nerfstudio.field_components.encodings import NeRFEncoding, SHEncoding
from nerfstudio.field_components.mlp import MLP
from torch import Tensor, nn

from nero_ns.components.brdf import reflect
from nero_ns.components.encodings import IntegratedDirectionalEncoding
from nero_ns.components.split_sum import SplitSumTable


def _mlp(in_dim: int, out_dim: int, width: int, layers: int, out_activation: nn.Module | None = None) -> MLP:
    return MLP(
        in_dim=in_dim,
        num_layers=layers,
        layer_width=width,
        out_dim=out_dim,
        activation=nn.ReLU(),
        out_activation=out_activation,
        implementation="torch",
    )


class _ExpRadiance(nn.Module):
    """exp activation with a ceiling, so learned lights are positive HDR radiance that cannot overflow."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(x.clamp(max=5.0))


@dataclass
class NeroShadingFieldConfig(InstantiateConfig):
    """Configuration of the split-sum shading heads."""

    _target: Type = field(default_factory=lambda: NeroShadingField)
    ide_degree: int = 4
    """Integrated directional encoding degree (l up to 2^(degree-1))."""
    hidden_dim: int = 64
    """Width of the material and light MLPs."""
    position_frequencies: int = 4
    """Positional-encoding frequencies for the indirect light and occlusion heads."""
    metallic_init_bias: float = 0.0
    """Initial pre-sigmoid bias of metallic (0 gives 0.5)."""


class NeroShadingField(nn.Module):
    """Material at a surface sample, lights along its reflected direction, and the occlusion of that direction.

    color = (1 - metallic) * albedo * L_diffuse(n) + (F0 * A + B) * L_specular(r, roughness), where
    L_specular = occlusion * L_indirect(x, r) + (1 - occlusion) * L_direct(r) and (A, B) is the pre-integrated
    GGX table (split-sum). All colors are linear radiance.
    """

    def __init__(self, config: NeroShadingFieldConfig, feature_dim: int) -> None:
        super().__init__()
        self.config = config
        self.ide = IntegratedDirectionalEncoding(config.ide_degree)
        self.position_encoding = NeRFEncoding(
            in_dim=3, num_frequencies=config.position_frequencies, min_freq_exp=0.0,
            max_freq_exp=config.position_frequencies - 1, include_input=True,
        )
        width = config.hidden_dim
        self.material_head = _mlp(feature_dim + 3, 5, width, 2)
        with torch.no_grad():
            self.material_head.layers[-1].bias[4] = config.metallic_init_bias  # type: ignore[index]
        self.direct_light = _mlp(self.ide.get_out_dim(), 3, width, 2, _ExpRadiance())
        self.indirect_light = _mlp(
            self.ide.get_out_dim() + self.position_encoding.get_out_dim(), 3, width, 2, _ExpRadiance()
        )
        self.occlusion_head = _mlp(
            self.ide.get_out_dim() + self.position_encoding.get_out_dim(), 1, width, 2, nn.Sigmoid()
        )
        self.split_sum = SplitSumTable()

    def occlusion(
        self, positions: Float[Tensor, "*bs 3"], directions: Float[Tensor, "*bs 3"], roughness: Float[Tensor, "*bs 1"]
    ) -> Float[Tensor, "*bs 1"]:
        """Probability that the reflected direction from `positions` hits the object itself."""
        return self.occlusion_head(torch.cat([self.ide(directions, roughness), self.position_encoding(positions)], -1))

    def materials(
        self, positions: Float[Tensor, "*bs 3"], features: Float[Tensor, "*bs feat"]
    ) -> Dict[str, Float[Tensor, "*bs C"]]:
        """albedo "*bs 3", roughness "*bs 1" and metallic "*bs 1" at samples, all in (0, 1)."""
        material = torch.sigmoid(self.material_head(torch.cat([features, positions], dim=-1)))
        return {"albedo": material[..., :3], "roughness": material[..., 3:4], "metallic": material[..., 4:5]}

    def forward(
        self,
        positions: Float[Tensor, "*bs 3"],
        features: Float[Tensor, "*bs feat"],
        normals: Float[Tensor, "*bs 3"],
        view_dirs: Float[Tensor, "*bs 3"],
    ) -> Dict[str, Tensor]:
        """Shade samples; `view_dirs` point from the sample toward the camera."""
        material = self.materials(positions, features)
        albedo, roughness, metallic = material["albedo"], material["roughness"], material["metallic"]
        reflected = reflect(view_dirs, normals)
        reflected_code = self.ide(reflected, roughness)
        position_code = self.position_encoding(positions)
        occlusion = self.occlusion_head(torch.cat([reflected_code, position_code], dim=-1))
        direct = self.direct_light(reflected_code)
        indirect = self.indirect_light(torch.cat([reflected_code, position_code], dim=-1))
        specular_light = occlusion * indirect + (1.0 - occlusion) * direct
        diffuse_light = self.direct_light(self.ide(normals, torch.ones_like(roughness)))
        n_dot_v = (normals * view_dirs).sum(-1, keepdim=True).clamp(1e-4, 1.0)
        table = self.split_sum(n_dot_v, roughness)
        f0 = 0.04 * (1.0 - metallic) + albedo * metallic
        specular = specular_light * (f0 * table[..., 0:1] + table[..., 1:2])
        diffuse = (1.0 - metallic) * albedo * diffuse_light
        return {
            "rgb": diffuse + specular,
            "diffuse": diffuse,
            "specular": specular,
            "albedo": albedo,
            "roughness": roughness,
            "metallic": metallic,
            "occlusion": occlusion,
            "reflected": reflected,
        }


@dataclass
class PlainRadianceFieldConfig(InstantiateConfig):
    """Configuration of the NeuS-style baseline radiance head (the ablation of NeRO's shading)."""

    _target: Type = field(default_factory=lambda: PlainRadianceField)
    hidden_dim: int = 64
    """MLP width."""
    sh_levels: int = 4
    """Spherical-harmonics levels of the view direction."""


class PlainRadianceField(nn.Module):
    """View-dependent color from feature, normal and view direction, with no notion of reflection."""

    def __init__(self, config: PlainRadianceFieldConfig, feature_dim: int) -> None:
        super().__init__()
        self.direction_encoding = SHEncoding(levels=config.sh_levels, implementation="torch")
        self.color_head = _mlp(
            feature_dim + 6 + self.direction_encoding.get_out_dim(), 3, config.hidden_dim, 2, nn.Sigmoid()
        )

    def forward(
        self,
        positions: Float[Tensor, "*bs 3"],
        features: Float[Tensor, "*bs feat"],
        normals: Float[Tensor, "*bs 3"],
        view_dirs: Float[Tensor, "*bs 3"],
    ) -> Dict[str, Tensor]:
        """Linear color of each sample."""
        direction_code = self.direction_encoding((view_dirs + 1.0) / 2.0)
        rgb = self.color_head(torch.cat([features, positions, normals, direction_code], dim=-1))
        return {"rgb": rgb}
