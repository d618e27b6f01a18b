"""`nero-synth`: render a synthetic glossy scene into a nerfstudio dataset with ground truth."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import tyro

from nero_ns.errors import friendly_errors
from nero_ns.synthetic.config import SyntheticSceneConfig
from nero_ns.synthetic.generator import generate_scene
from nero_ns.synthetic.scene_set import scene_config


def named_scene_defaults(arguments: List[str]) -> Optional[SyntheticSceneConfig]:
    """The options of the named scene that `--scene NAME [--seed K]` in `arguments` asks for, or None without
    --scene: they become the defaults of the command line, so that options given explicitly still win."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--scene")
    parser.add_argument("--seed", type=int, default=0)
    known, _ = parser.parse_known_args(arguments)
    return None if known.scene is None else scene_config(known.scene, known.seed)


def entrypoint() -> None:
    """Parse the options (on top of a named scene's, with --scene) and generate the scene."""
    with friendly_errors():
        defaults = named_scene_defaults(sys.argv[1:])
    config = tyro.cli(SyntheticSceneConfig, default=defaults)
    with friendly_errors():
        generate_scene(config)


if __name__ == "__main__":
    entrypoint()
