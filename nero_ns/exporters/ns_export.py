"""Adds nero subcommands (`ns-export nero-mesh`, ...) to nerfstudio's own `ns-export`.

Why a hook: `ns-export` is `from nerfstudio.scripts.exporter import entrypoint; entrypoint()`, and `entrypoint()`
runs `tyro.cli(Commands)` on a fixed Union global of that module. nerfstudio imports our plugin (entry points in
the `nerfstudio.method_configs` / `nerfstudio.dataparser_configs` groups, which point at `nero_ns.method_configs`)
while `exporter.py` is still executing its imports, before `Exporter`, `Commands` and `entrypoint` exist, so
nothing can be added to `Commands` at plugin-import time.

Mechanism: `install_export_commands()` (called by `nero_ns.method_configs`) switches the `__class__` of the module
object `nerfstudio.scripts.exporter` to `_NeroExporterModule`, a `types.ModuleType` subclass (Python supports
`__class__` assignment between module types). The module may be fully imported, half-imported (in `sys.modules`
while its body still runs: the usual case under `ns-export`), or not imported yet (then a `sys.meta_path` finder
wraps its loader's `exec_module` and switches the class before the body runs). The subclass has properties
`entrypoint` and `get_parser_fn`: properties are data descriptors, so they win over the module `__dict__` for
attribute access, which is what `from nerfstudio.scripts.exporter import entrypoint` uses, while the module's own
`def entrypoint` still stores the original in `__dict__`. Each property returns a wrapper that, when called,
sets the module global `Commands` to nerfstudio's union plus the registered commands, then calls the original.

Properties of this design: nothing in site-packages is edited; nerfstudio's own subcommands are untouched (the
union keeps them, in order); installing twice, or calling the wrapper twice, gives the same union (registered
classes are filtered out before being appended); registered commands are resolved only when the CLI runs, so the
classes may subclass `nerfstudio.scripts.exporter.Exporter`, which does not exist yet at install time.
Not covered: `python -m nerfstudio.scripts.exporter` (that runs a fresh `__main__` module, not this one).
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import sys
import types
from importlib.machinery import ModuleSpec
from typing import Annotated, Any, Callable, Dict, Optional, Sequence, Type, Union, get_args, get_origin

import tyro

EXPORTER_MODULE = "nerfstudio.scripts.exporter"

_EXPORT_COMMANDS: Dict[str, Union[Type, str]] = {
    "nero-mesh": "nero_ns.exporters.nero_mesh:ExportNeroMesh",
    "nero-materials": "nero_ns.exporters.nero_materials:ExportNeroMaterials",
}
"""Subcommand name -> exporter dataclass, or its "module:ClassName" path, resolved when `ns-export` runs."""


def register_export_command(name: str, command: Union[Type, str]) -> None:
    """Add `ns-export <name>`: a dataclass with a `main()` (like nerfstudio's `Exporter`s) or its "module:Class"."""
    _EXPORT_COMMANDS[name] = command
    install_export_commands()


def install_export_commands() -> None:
    """Make `nerfstudio.scripts.exporter` serve nerfstudio's commands plus ours (idempotent)."""
    module = sys.modules.get(EXPORTER_MODULE)
    if module is not None:
        _switch_module_class(module)
    elif not any(isinstance(finder, _ExporterModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ExporterModuleFinder())


def commands_with_registered(commands: Any) -> Any:
    """nerfstudio's `Commands` union (possibly wrapped in tyro markers) with the registered subcommands appended."""
    registered = {name: _resolve(command) for name, command in _EXPORT_COMMANDS.items()}
    union, *markers = get_args(commands) if get_origin(commands) is Annotated else (commands,)
    members = get_args(union) if get_origin(union) is Union else (union,)
    kept = [member for member in members if _command_class(member) not in registered.values()]
    added = [Annotated[cls, tyro.conf.subcommand(name=name)] for name, cls in registered.items()]
    extended = Union[tuple(kept + added)]  # type: ignore[valid-type]
    return Annotated[(extended, *markers)] if markers else extended


class _NeroExporterModule(types.ModuleType):
    """Module type of `nerfstudio.scripts.exporter` once hooked: its CLI functions see our subcommands."""

    @property
    def entrypoint(self) -> Callable[..., Any]:
        return _with_registered_commands(self, "entrypoint")

    @entrypoint.setter
    def entrypoint(self, function: Callable[..., Any]) -> None:
        self.__dict__["entrypoint"] = function

    @property
    def get_parser_fn(self) -> Callable[..., Any]:
        return _with_registered_commands(self, "get_parser_fn")

    @get_parser_fn.setter
    def get_parser_fn(self, function: Callable[..., Any]) -> None:
        self.__dict__["get_parser_fn"] = function


def _with_registered_commands(module: types.ModuleType, name: str) -> Callable[..., Any]:
    """The module's own function `name`, called after extending the module's `Commands` global."""
    try:
        function = module.__dict__[name]
    except KeyError:
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}") from None

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        module.__dict__["Commands"] = commands_with_registered(module.__dict__["Commands"])
        return function(*args, **kwargs)

    return wrapper


def _switch_module_class(module: types.ModuleType) -> None:
    if not isinstance(module, _NeroExporterModule):
        module.__class__ = _NeroExporterModule


class _ExporterModuleFinder(importlib.abc.MetaPathFinder):
    """Finds `nerfstudio.scripts.exporter` through the other finders and hooks it before its body runs."""

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]], target: Optional[types.ModuleType] = None
    ) -> Optional[ModuleSpec]:
        if fullname != EXPORTER_MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _HookingLoader(spec.loader)
                sys.meta_path.remove(self)
                return spec
        return None


class _HookingLoader(importlib.abc.Loader):
    """Delegates to the real loader; switches the module class before executing the module body."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> Optional[types.ModuleType]:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        _switch_module_class(module)
        self.loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


def _resolve(command: Union[Type, str]) -> Type:
    if not isinstance(command, str):
        return command
    module_name, class_name = command.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def _command_class(member: Any) -> Any:
    return get_args(member)[0] if get_origin(member) is Annotated else member
