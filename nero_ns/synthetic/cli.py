"""`nero-synth`: render a synthetic glossy scene into a nerfstudio dataset with ground truth."""

from __future__ import annotations

import argparse
import sys
from typing import List

import tyro

from nero_ns.errors import friendly_errors
from nero_ns.synthetic.config import SyntheticSceneConfig
from nero_ns.synthetic.generator import generate_scene
from nero_ns.synthetic.scene_set import scene_config


def parse_options(arguments: List[str]) -> SyntheticSceneConfig:
    """The options of the command line. With `--scene NAME [--seed K]`, the named scene's options are the defaults,
    so that options given explicitly still win."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--scene")
    parser.add_argument("--seed", type=int, default=0)
    known, _ = parser.parse_known_args(arguments)
    defaults = None if known.scene is None else scene_config(known.scene, known.seed)
    return tyro.cli(SyntheticSceneConfig, default=defaults, args=arguments)


def entrypoint() -> None:
    """Parse the options and generate the scene."""
    with friendly_errors():
        generate_scene(parse_options(sys.argv[1:]))


if __name__ == "__main__":
    entrypoint()
