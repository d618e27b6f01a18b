"""`nero-eval`: evaluation subcommands. Add one by writing a dataclass with a `main()` and a line in
`EVALUATION_COMMANDS`; tyro builds the subcommand union from that dict."""

from __future__ import annotations

from typing import Dict, Type

import tyro

from nero_ns.evaluation.geometry import GeometryEvaluation
from nero_ns.evaluation.images import ImageEvaluation
from nero_ns.evaluation.materials import MaterialEvaluation
from nero_ns.evaluation.relighting import RelightEvaluation
from nero_ns.evaluation.scene import SceneEvaluation

EVALUATION_COMMANDS: Dict[str, Type] = {
    "geometry": GeometryEvaluation,
    "images": ImageEvaluation,
    "materials": MaterialEvaluation,
    "relight": RelightEvaluation,
    "scene": SceneEvaluation,
}
"""Subcommand name -> dataclass with a `main()`, shown in this order by `nero-eval --help`."""


def entrypoint() -> None:
    """Console script `nero-eval`."""
    tyro.extras.set_accent_color("bright_yellow")
    tyro.extras.subcommand_cli_from_dict(EVALUATION_COMMANDS, prog="nero-eval").main()


if __name__ == "__main__":
    entrypoint()
