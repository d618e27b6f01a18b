"""One-line user-facing errors for bad input, shown without a traceback."""

from __future__ import annotations

import functools
import sys
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

from nerfstudio.utils.rich_utils import CONSOLE

T = TypeVar("T")


class NeroInputError(ValueError):
    """Bad user input. The message is one line that names the file and the fix."""


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn a NeroInputError into a one-line red message and exit code 2."""
    try:
        yield
    except NeroInputError as error:
        CONSOLE.print(f"[bold red]Error:[/bold red] {error}", soft_wrap=True, highlight=False)
        sys.exit(2)


def with_friendly_errors(function: Callable[..., T]) -> Callable[..., T]:
    """Decorator form of `friendly_errors` for command-line entry points."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs) -> T:
        with friendly_errors():
            return function(*args, **kwargs)

    return wrapper
