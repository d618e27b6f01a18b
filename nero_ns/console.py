"""A console without noise the user cannot act on: third-party deprecation warnings, and one line of ours in place
of a tinycudann install hint.

`nero_ns/__init__.py` calls `quiet_third_party_warnings`, so it runs before anything else in the nero-* commands,
and, through the plugin entry points, as soon as ns-train, ns-viewer or ns-export load nero-ns (warnings that
nerfstudio raises while importing itself, before it looks for plugins, still show there).
"""

from __future__ import annotations

import warnings

THIRD_PARTY_MODULES = r"(torch|torchvision|nerfstudio|tyro|viser|gsplat|pymeshlab|open3d|mitsuba|drjit)(\.|$)"
"""Modules whose warnings nero-ns's users cannot act on (the code raising them is not theirs or ours)."""

THIRD_PARTY_USER_WARNINGS = (
    r"Using a non-tuple sequence for multidimensional indexing",  # nerfstudio's cameras, a torch deprecation
    r"This DataLoader will create \d+ worker processes",  # nerfstudio picks the worker count
    r"Converting a tensor with requires_grad=True to a scalar",  # nerfstudio's writer logging our losses
    r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`",  # nerfstudio's optimizers
)
"""UserWarnings of those modules that are deprecation notices or internal choices in substance."""

_tinycudann_reported = False


def quiet_third_party_warnings() -> None:
    """Ignore FutureWarning and DeprecationWarning raised in third-party modules, and their UserWarnings above."""
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=THIRD_PARTY_MODULES)
    for message in THIRD_PARTY_USER_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning, module=THIRD_PARTY_MODULES)


def report_missing_tinycudann() -> None:
    """Say once per process that the hash grids run our own code because tinycudann is not installed."""
    global _tinycudann_reported
    if not _tinycudann_reported:
        _tinycudann_reported = True
        print("nero-ns: tinycudann is not installed; the hash grids run nero-ns's own code (fine on a CPU)")
