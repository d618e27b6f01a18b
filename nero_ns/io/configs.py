"""Config dataclasses as nerfstudio saves them in config.yml: loading a file written before a field existed."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict


class DefaultsForNewFields:
    """Mixin for config dataclasses: a config.yml written before a field existed loads with that field's default.
    PyYAML (and pickle) restore a config's attributes through `__setstate__`; without it a field that has a default
    factory would simply be missing."""

    def __setstate__(self, state: Dict[str, Any]) -> None:
        for spec in dataclasses.fields(self):  # type: ignore[arg-type]
            if spec.name in state:
                continue
            if spec.default is not dataclasses.MISSING:
                state[spec.name] = spec.default
            elif spec.default_factory is not dataclasses.MISSING:
                state[spec.name] = spec.default_factory()
        self.__dict__.update(state)
