"""Fixed-seed numbers of both models on the tests' tiny scene, to show that a refactor leaves behaviour unchanged.

`record DIR` generates the tiny scene (or takes `--scene`), trains nero-shape 3 steps (without and with the support
plane) and nero-material 3 steps on it through nerfstudio's Trainer, and saves in DIR/snapshot.pt every loss and
metric of those steps, the outputs of both models on a fixed batch (in training and in evaluation), a rendered
camera, the priors' values under other settings, and a render of the nero-material checkpoint loaded back with
`eval_setup`. The runs stay in DIR.

`compare BASE NEW` prints the largest difference of every number between two snapshots, and renders BASE's nero-material
checkpoint with the code that runs the command (so a checkpoint written before a change must load after it and render
the same). Run both with the same thread count (e.g. OMP_NUM_THREADS=1): a reduction splits differently on another.

    PYTHONPATH=<old tree> python benchmarks/model_snapshot.py record /tmp/snap-old
    PYTHONPATH=<new tree> python benchmarks/model_snapshot.py record /tmp/snap-new --scene /tmp/snap-old/scene
    PYTHONPATH=<new tree> python benchmarks/model_snapshot.py compare /tmp/snap-old /tmp/snap-new
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.engine.callbacks import TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer
from nerfstudio.utils.eval_utils import eval_setup

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))
from conftest import tiny_scene_config  # noqa: E402  (the tests' tiny scene)
from nero_runs import setup_trainer, small_shape_config  # noqa: E402

from nero_ns.method_configs import nero_material  # noqa: E402
from nero_ns.synthetic import generate_scene  # noqa: E402

TRAIN_STEPS = 3
TOLERANCE = 1e-6


def detached(value: Any) -> Any:
    """Tensors (also inside dicts) detached and on the CPU; floats as they are."""
    if isinstance(value, dict):
        return {name: detached(item) for name, item in value.items()}
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    return value


def train_steps(trainer: Trainer, steps: int) -> List[Dict[str, Any]]:
    """`steps` training steps as nerfstudio's loop runs them (callbacks before each), from seed 0."""
    torch.manual_seed(0)
    records = []
    for step in range(steps):
        for callback in trainer.callbacks:
            callback.run_callback_at_location(step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        _, loss_dict, metrics_dict = trainer.train_iteration(step)
        records.append(detached({"loss": loss_dict, "metrics": metrics_dict}))
    return records


def fixed_batch(trainer: Trainer, seed: int):
    torch.manual_seed(seed)
    return trainer.pipeline.datamanager.next_train(TRAIN_STEPS)


def render_camera(model, cameras, index: int, seed: int) -> Dict[str, torch.Tensor]:
    model.eval()
    torch.manual_seed(seed)
    return detached(model.get_outputs_for_camera(cameras[index : index + 1].to(model.device)))


def trained_record(config) -> Tuple[Trainer, Dict[str, Any], RayBundle, Dict]:
    """The trainer of `config` (set up from seed 0) after TRAIN_STEPS steps, the record of those steps and of its
    training outputs on a fixed batch, and that batch."""
    torch.manual_seed(0)
    random.seed(0)  # nerfstudio's image cache orders the training images with Python's random
    trainer = setup_trainer(config)
    model = trainer.pipeline.model
    record: Dict[str, Any] = {"steps": train_steps(trainer, TRAIN_STEPS)}
    ray_bundle, batch = fixed_batch(trainer, 1)
    model.train()
    outputs = forward_under(model, ray_bundle, 2)
    record["train_outputs"] = detached(outputs)
    record["train_loss"] = loss_under(model, outputs, batch)
    record["train_metrics"] = detached(model.get_metrics_dict(outputs, batch))
    return trainer, record, ray_bundle, batch


def record_render(record: Dict[str, Any], trainer: Trainer) -> None:
    """Add camera 0 of the training views rendered, and nerfstudio's image metrics and images of it."""
    model, dataset = trainer.pipeline.model, trainer.pipeline.datamanager.train_dataset
    record["render"] = render_camera(model, dataset.cameras, 0, seed=4)
    metrics, images = model.get_image_metrics_and_images(record["render"], {"image": dataset[0]["image"]})
    record["image_metrics"], record["images"] = detached(metrics), detached(images)


def shape_snapshot(scene: Path, folder: Path, support_plane: bool) -> Dict[str, Any]:
    config = small_shape_config(scene, folder, TRAIN_STEPS)
    config.pipeline.model.support_plane = support_plane
    trainer, record, ray_bundle, _ = trained_record(config)
    model = trainer.pipeline.model
    model.eval()
    torch.manual_seed(3)
    with torch.no_grad():
        record["eval_outputs"] = detached(model.get_outputs(ray_bundle))
    record_render(record, trainer)
    trainer.save_checkpoint(TRAIN_STEPS)
    record["config_path"] = str(config.get_base_dir() / "config.yml")
    return record


def material_config(scene: Path, shape_config: Path, folder: Path):
    config = copy.deepcopy(nero_material.config)
    config.pipeline.datamanager.data = scene
    config.pipeline.datamanager.train_num_rays_per_batch = 1024
    config.shape_config = shape_config
    config.copy_shape_config()
    config.pipeline.model.mesh_resolution = 48
    config.pipeline.model.warm_start_steps = 30
    config.output_dir = folder
    config.vis = "tensorboard"
    config.machine.device_type = "cpu"
    config.max_num_iterations = TRAIN_STEPS
    config.steps_per_eval_batch = config.steps_per_eval_image = 1_000_000
    return config


def loss_under(model, outputs, batch, **settings) -> Dict[str, torch.Tensor]:
    """The loss dict of `outputs` with model config `settings` (and `step`) in place for the call."""
    saved = {name: getattr(model.config, name) for name in settings if name != "step"}
    saved_step = model.step
    try:
        for name, value in settings.items():
            if name == "step":
                model.step = value
            else:
                setattr(model.config, name, value)
        return detached(model.get_loss_dict(outputs, batch))
    finally:
        model.step = saved_step
        for name, value in saved.items():
            setattr(model.config, name, value)


def forward_under(model, ray_bundle: RayBundle, seed: int, **settings) -> Dict[str, torch.Tensor]:
    """Training outputs of `ray_bundle` from `seed` with model config `settings` in place for the call."""
    saved = {name: getattr(model.config, name) for name in settings}
    try:
        for name, value in settings.items():
            setattr(model.config, name, value)
        torch.manual_seed(seed)
        return model(ray_bundle)
    finally:
        for name, value in saved.items():
            setattr(model.config, name, value)


def material_snapshot(scene: Path, shape_config: Path, folder: Path) -> Dict[str, Any]:
    config = material_config(scene, shape_config, folder)
    trainer, record, ray_bundle, batch = trained_record(config)
    model = trainer.pipeline.model
    outputs = record["train_outputs"]
    record["loss_metallic_binary_on"] = loss_under(model, outputs, batch, step=model.config.metallic_binary_start_step)
    record["loss_albedo_ceiling_on"] = loss_under(model, outputs, batch, albedo_ceiling_loss_mult=1.0)
    record["loss_diffuse_light_point"] = loss_under(model, outputs, batch, diffuse_light_prior="point")
    for use in ("prior", "direct"):
        varied = forward_under(model, ray_bundle, 2, floor_light_use=use)
        record[f"loss_floor_light_{use}"] = loss_under(model, varied, batch, floor_light_use=use)
    unsplit = forward_under(model, ray_bundle, 2, split_estimate_mult=0.0)
    record["loss_unsplit"] = loss_under(model, unsplit, batch, split_estimate_mult=0.0)
    record_render(record, trainer)
    record["environment_map"] = detached(model.environment_map(16))
    points = torch.linspace(-0.8, 0.8, 30).reshape(10, 3)
    with torch.no_grad():
        record["query_sdf"] = detached(model.query_sdf(points))
    record["query_materials"] = detached(model.query_materials(points))
    record["state_dict"] = detached(dict(model.state_dict()))
    trainer.save_checkpoint(TRAIN_STEPS)
    config_path = config.get_base_dir() / "config.yml"
    record["config_path"] = str(config_path)
    record["loaded_render"] = loaded_render(config_path)
    return record


def loaded_render(config_path: Path) -> Dict[str, torch.Tensor]:
    """Camera 1 of the training views rendered from the checkpoint of the run at `config_path`."""
    _, pipeline, _, _ = eval_setup(config_path, test_mode="inference")
    return render_camera(pipeline.model, pipeline.datamanager.train_dataset.cameras, 1, seed=5)


def record(folder: Path, scene: Path | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if scene is None:
        scene = generate_scene(tiny_scene_config(folder / "scene"))
    snapshot: Dict[str, Any] = {"scene": str(scene)}
    snapshot["shape"] = shape_snapshot(scene, folder / "shape", support_plane=False)
    snapshot["shape_with_plane"] = shape_snapshot(scene, folder / "shape_with_plane", support_plane=True)
    snapshot["material"] = material_snapshot(scene, Path(snapshot["shape"]["config_path"]), folder / "material")
    torch.save(snapshot, folder / "snapshot.pt")
    print(f"wrote {folder / 'snapshot.pt'}")


def flatten(value: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(value, dict):
        return {key: item for name, sub in value.items() for key, item in flatten(sub, f"{prefix}{name}/").items()}
    if isinstance(value, list):
        return {key: item for index, sub in enumerate(value) for key, item in flatten(sub, f"{prefix}{index}/").items()}
    return {prefix.rstrip("/"): value}


def largest_difference(first: Any, second: Any) -> float:
    if isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor):
        if first.shape != second.shape:
            return float("inf")
        if first.dtype == torch.bool or not first.is_floating_point():
            return float((first != second).any())
        return float((first.double() - second.double()).abs().max()) if first.numel() else 0.0
    if isinstance(first, (int, float)) and isinstance(second, (int, float)):
        return abs(float(first) - float(second))
    return 0.0 if first == second else float("inf")


def renamed_state(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """A nero-material state dict with the keys of the layout before the split into parts (issue 25) renamed, as the
    model renames them on load."""
    from nero_ns.models.nero_material import key_after_split

    return {key_after_split(key): value for key, value in state.items()}


def compare(base: Path, new: Path) -> bool:
    first, second = torch.load(base / "snapshot.pt"), torch.load(new / "snapshot.pt")
    for snapshot in (first, second):
        snapshot["material"]["state_dict"] = renamed_state(snapshot["material"]["state_dict"])
    flat_first = {k: v for k, v in flatten(first).items() if not k.endswith("config_path") and k != "scene"}
    flat_second = {k: v for k, v in flatten(second).items() if not k.endswith("config_path") and k != "scene"}
    ok = True
    for key in sorted(set(flat_first) | set(flat_second)):
        if key not in flat_first or key not in flat_second:
            print(f"MISSING {key}: only in {'base' if key in flat_first else 'new'}")
            ok = False
            continue
        difference = largest_difference(flat_first[key], flat_second[key])
        if difference > TOLERANCE:
            print(f"DIFFERS {key}: {difference:.3g}")
            ok = False
    print(f"{len(flat_first)} numbers compared; largest difference allowed {TOLERANCE}")
    reloaded = loaded_render(Path(first["material"]["config_path"]))
    for name, value in first["material"]["loaded_render"].items():
        difference = largest_difference(value, reloaded[name])
        print(f"base checkpoint rendered by this code, {name}: largest difference {difference:.3g}")
        ok = ok and difference <= TOLERANCE
    print("SAME" if ok else "DIFFERENT")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    record_parser = commands.add_parser("record")
    record_parser.add_argument("folder", type=Path)
    record_parser.add_argument("--scene", type=Path, default=None, help="an existing tiny scene to reuse")
    compare_parser = commands.add_parser("compare")
    compare_parser.add_argument("base", type=Path)
    compare_parser.add_argument("new", type=Path)
    arguments = parser.parse_args()
    if arguments.command == "record":
        record(arguments.folder, arguments.scene)
    elif not compare(arguments.base, arguments.new):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
