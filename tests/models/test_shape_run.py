"""Loading a nero-shape run for nero-material: the real config.yml + checkpoint, and one-line errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
from nerfstudio.utils.eval_utils import eval_setup

from nero_ns.errors import NeroInputError
from nero_ns.method_configs import nero_shape
from nero_ns.models.nero_shape import NeroShapeModel
from nero_ns.models.shape_run import load_shape_run


def write_shape_run(data: Path, output_dir: Path, **model_options) -> Path:
    """A nero-shape run written the way `ns-train` writes one (config.yml, then a checkpoint from the Trainer).

    The model is the untrained one (its SDF is the init sphere of radius `init_radius`), so this takes seconds.
    Returns the config.yml path.
    """
    config = copy.deepcopy(nero_shape.config)
    config.pipeline.datamanager.data = data
    config.output_dir = output_dir
    config.vis = "tensorboard"
    for name, value in model_options.items():
        setattr(config.pipeline.model, name, value)
    config.set_timestamp()
    config.save_config()
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.save_checkpoint(7)
    return config.get_base_dir() / "config.yml"


@pytest.fixture(scope="module")
def shape_run_config(tiny_scene, tmp_path_factory) -> Path:
    return write_shape_run(tiny_scene, tmp_path_factory.mktemp("shape_run"))


def test_loads_newest_checkpoint_with_its_weights(shape_run_config):
    checkpoint_dir = shape_run_config.parent / "nerfstudio_models"
    # An older checkpoint with different weights must be ignored in favor of the newest one.
    newest = torch.load(checkpoint_dir / "step-000000007.ckpt", map_location="cpu", weights_only=True)
    older = copy.deepcopy(newest)
    older["pipeline"]["_model.sdf_field.variance"] = torch.tensor(-1.0)
    torch.save(older, checkpoint_dir / "step-000000003.ckpt")
    newest["pipeline"]["_model.sdf_field.variance"] = torch.tensor(0.4321)
    torch.save(newest, checkpoint_dir / "step-000000007.ckpt")

    model, config, checkpoint = load_shape_run(shape_run_config)
    assert isinstance(model, NeroShapeModel) and not model.training
    assert checkpoint.name == "step-000000007.ckpt" and config.method_name == "nero-shape"
    assert model.sdf_field.variance.item() == pytest.approx(0.4321)
    # The untrained SDF is the sphere |x| - init_radius (points above the floor cut, which sits 0.7 below the center).
    radius = model.sdf_field.config.init_radius
    points = torch.tensor([[0.0, 0.0, 0.2], [radius, 0.0, 0.0], [0.0, 0.0, 0.9]])
    assert model.query_sdf(points)[:, 0].tolist() == pytest.approx([0.2 - radius, 0.0, 0.9 - radius], abs=1e-4)


def test_checkpoint_from_before_the_support_plane_loads_without_one(shape_run_config):
    """nero-shape checkpoints written before `support_plane` existed have no plane buffer: they load with none."""
    checkpoint_path = shape_run_config.parent / "nerfstudio_models" / "step-000000007.ckpt"
    state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    state["pipeline"].pop("_model.support_plane.plane")
    torch.save(state, checkpoint_path)
    model, _, _ = load_shape_run(shape_run_config)
    assert not model.support_plane.has_plane


def one_line_error(config_path: Path) -> str:
    with pytest.raises(NeroInputError) as error:
        load_shape_run(config_path)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_config_is_one_line(tmp_path):
    message = one_line_error(tmp_path / "nowhere" / "config.yml")
    assert "nowhere/config.yml" in message and "ns-train nero-shape" in message


def test_other_method_config_is_named(shape_run_config, tmp_path):
    text = shape_run_config.read_text().replace("method_name: nero-shape", "method_name: nerfacto")
    nerfacto_model = "nerfstudio.models.nerfacto.NerfactoModelConfig"
    text = text.replace("nero_ns.models.nero_shape.NeroShapeModelConfig", nerfacto_model)
    other = tmp_path / "config.yml"
    other.write_text(text)
    message = one_line_error(other)
    assert message.startswith(f"{other} is a nerfacto config, not nero-shape")
    garbage = tmp_path / "garbage.yml"
    garbage.write_text("just: [a, list\n")
    assert "not a nerfstudio config.yml" in one_line_error(garbage)


def test_missing_checkpoint_names_folder_and_fix(shape_run_config, tmp_path):
    copied = tmp_path / "run" / "config.yml"
    copied.parent.mkdir()
    copied.write_text(shape_run_config.read_text())
    message = one_line_error(copied)
    assert message.startswith(f"{tmp_path / 'run' / 'nerfstudio_models'}: no step-*.ckpt next to {copied}")
    assert "let `ns-train nero-shape` run until it saves a checkpoint" in message


def test_a_config_written_before_a_field_existed_loads_with_its_default(tiny_scene, tmp_path):
    """A nero-shape config.yml from before the floor texture (a field with a default factory) was added loads, in
    our loader and in nerfstudio's eval_setup, with the field's default."""
    run = write_shape_run(tiny_scene, tmp_path / "old")
    config = yaml.load(run.read_text(), Loader=yaml.Loader)
    del config.pipeline.model.__dict__["floor_texture"]
    run.write_text(yaml.dump(config))
    assert "floor_texture" not in run.read_text()
    model, _, _ = load_shape_run(run)
    assert model.config.floor_texture == nero_shape.config.pipeline.model.floor_texture
    _, pipeline, _, _ = eval_setup(run, test_mode="inference")
    assert pipeline.model.config.floor_texture.resolutions == nero_shape.config.pipeline.model.floor_texture.resolutions
