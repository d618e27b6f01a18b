"""`nero-process`: photos or a video -> a nerfstudio dataset for nero-shape (COLMAP on a CPU without display or
network), and the check of such a folder. One dataclass with a `main()` per subcommand."""

from __future__ import annotations

from typing import Dict, Type

import tyro

from nero_ns.errors import friendly_errors
from nero_ns.process.check import DatasetCheck
from nero_ns.process.processors import ProcessImages, ProcessVideo

PROCESS_COMMANDS: Dict[str, Type] = {
    "images": ProcessImages,
    "video": ProcessVideo,
    "check": DatasetCheck,
}
"""Subcommand name -> dataclass with a `main()`, shown in this order by `nero-process --help`."""


def entrypoint() -> None:
    """Console script `nero-process`."""
    tyro.extras.set_accent_color("bright_yellow")
    command = tyro.extras.subcommand_cli_from_dict(PROCESS_COMMANDS, prog="nero-process")
    with friendly_errors():
        command.main()


if __name__ == "__main__":
    entrypoint()
