"""`nero-synth`: render a synthetic glossy scene into a nerfstudio dataset with ground truth."""

from __future__ import annotations

import tyro

from nero_ns.errors import friendly_errors
from nero_ns.synthetic.config import SyntheticSceneConfig
from nero_ns.synthetic.generator import generate_scene


def entrypoint() -> None:
    """Parse the options and generate the scene."""
    config = tyro.cli(SyntheticSceneConfig)
    with friendly_errors():
        generate_scene(config)


if __name__ == "__main__":
    entrypoint()
