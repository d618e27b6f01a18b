"""nerfstudio entry points of nero-ns: the nero-shape and nero-material methods and the nero-data dataparser."""

from __future__ import annotations

import torch
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.plugins.types import MethodSpecification

from nero_ns.datamanagers.nero_datamanager import NeroDataManagerConfig
from nero_ns.datamanagers.nero_dataparser import NeroDataParserConfig
from nero_ns.engine.schedulers import WarmupCosineSchedulerConfig
from nero_ns.engine.material_trainer import NeroMaterialTrainerConfig
from nero_ns.engine.optimizers import FusedAdamOptimizerConfig
from nero_ns.engine.trainer import NeroTrainerConfig
from nero_ns.exporters.ns_export import install_export_commands
from nero_ns.models.nero_shape import NeroShapeModelConfig
from nero_ns.viewer.pipeline import MaterialPipelineConfig, ShapePipelineConfig

# `ns-export nero-mesh`: nerfstudio's exporter has a fixed list of subcommands; see nero_ns/exporters/ns_export.py.
install_export_commands()


def this_machine() -> MachineConfig:
    """The GPU when there is one, else the CPU (nerfstudio's default is CUDA, which fails on a CPU machine)."""
    return MachineConfig(device_type="cuda" if torch.cuda.is_available() else "cpu")

nero_shape = MethodSpecification(
    config=NeroTrainerConfig(
        method_name="nero-shape",
        steps_per_eval_batch=100,
        steps_per_eval_image=1000,
        steps_per_eval_all_images=1_000_000,
        steps_per_save=250,
        max_num_iterations=3000,
        mixed_precision=False,
        machine=this_machine(),
        pipeline=ShapePipelineConfig(
            # 1024 rays per step: fewer rays (512 throughout, or for the first 600 steps) form the shape sooner in the
            # first 5 minutes on 2 CPU cores but end worse from 10 minutes on (docs/shape-speed.md). Half of the
            # object's rays go where the renderings are still wrong: thin parts, holes and outlines form sooner
            # (docs/nero-shape.md).
            datamanager=NeroDataManagerConfig(
                dataparser=NeroDataParserConfig(), train_num_rays_per_batch=1024, error_sampling_ratio=0.5
            ),
            model=NeroShapeModelConfig(eval_num_rays_per_chunk=1024),
        ),
        optimizers={
            "fields": {
                "optimizer": FusedAdamOptimizerConfig(lr=1e-2, eps=1e-15),
                "scheduler": WarmupCosineSchedulerConfig(warmup_steps=50),
            },
            "far_field": {
                "optimizer": FusedAdamOptimizerConfig(lr=1e-2, eps=1e-15),
                "scheduler": WarmupCosineSchedulerConfig(warmup_steps=50),
            },
            # The floor texture (used with --pipeline.model.support-plane True): a dense grid, as in nero-material.
            "floor": {
                "optimizer": FusedAdamOptimizerConfig(lr=2e-2, eps=1e-15),
                "scheduler": WarmupCosineSchedulerConfig(warmup_steps=0),
            },
        },
        viewer=ViewerConfig(num_rays_per_chunk=1024),
        vis="viewer",
    ),
    description="NeRO's shape stage: watertight geometry of shiny objects (SDF + far field + split-sum shading).",
)


# ---------------------------------------------------------------- nero-material
from nero_ns.models.nero_material import NeroMaterialModelConfig  # noqa: E402

nero_material = MethodSpecification(
    config=NeroMaterialTrainerConfig(
        method_name="nero-material",
        steps_per_eval_batch=100,
        steps_per_eval_image=500,
        steps_per_eval_all_images=1_000_000,
        steps_per_save=250,
        max_num_iterations=2000,
        mixed_precision=False,
        machine=this_machine(),
        pipeline=MaterialPipelineConfig(
            datamanager=NeroDataManagerConfig(dataparser=NeroDataParserConfig()),
            model=NeroMaterialModelConfig(eval_num_rays_per_chunk=1024),
        ),
        optimizers={
            "materials": {
                "optimizer": FusedAdamOptimizerConfig(lr=1e-2, eps=1e-15),
                "scheduler": WarmupCosineSchedulerConfig(warmup_steps=50),
            },
            "lights": {
                "optimizer": FusedAdamOptimizerConfig(lr=5e-3, eps=1e-15),
                "scheduler": WarmupCosineSchedulerConfig(warmup_steps=50),
            },
            # The floor texture is a dense grid fitted straight to the floor's pixels: faster, and no warm-up (no
            # network to destabilize).
            "floor": {
                "optimizer": FusedAdamOptimizerConfig(lr=2e-2, eps=1e-15),
                "scheduler": WarmupCosineSchedulerConfig(warmup_steps=0),
            },
            # The environment's lat-long grids of log radiance: dense, as the floor texture.
            "environment_texels": {
                "optimizer": FusedAdamOptimizerConfig(lr=2e-2, eps=1e-15),
                "scheduler": WarmupCosineSchedulerConfig(warmup_steps=0),
            },
            # Used only with --pipeline.model.finetune-geometry True.
            "geometry": {
                "optimizer": FusedAdamOptimizerConfig(lr=1e-4, eps=1e-15),
                "scheduler": WarmupCosineSchedulerConfig(warmup_steps=50),
            },
        },
        viewer=ViewerConfig(num_rays_per_chunk=1024),
        vis="viewer",
    ),
    description="NeRO's material stage: PBR materials (albedo, roughness, metallic) and lighting on a nero-shape "
    "geometry (needs --shape-config).",
)
