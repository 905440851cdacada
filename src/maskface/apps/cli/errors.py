"""The one mapping from errors to exit statuses: a user mistake ends in one ``error: ...`` line on stderr and
status 2 (usage, models, data folders) or 3 (an input could not be used), never in a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from maskface.apps.cli.output import err
from maskface.errors import ImageError, MaskfaceError, NoFaceError

#: a bad option or argument, an unknown or broken model, a data folder without the expected layout
USAGE = 2
#: an input image could not be used: unreadable, or no face found (batch commands report this per image)
INPUT_FAILED = 3

#: Exception -> exit status; the first match wins. Registries raise KeyError for an unknown name.
EXIT_CODES: tuple[tuple[type[Exception], int], ...] = (
    (ImageError, INPUT_FAILED),
    (NoFaceError, INPUT_FAILED),
    (MaskfaceError, USAGE),
    (ValueError, USAGE),
    (KeyError, USAGE),
)


def exit_code(exc: BaseException) -> int | None:
    """The exit status of an error in :data:`EXIT_CODES`, or None for a bug (which keeps its traceback)."""
    return next((code for kind, code in EXIT_CODES if isinstance(exc, kind)), None)


def fail(message: object, code: int = USAGE) -> typer.Exit:
    """Print one ``error: ...`` line on stderr and give the exit to raise."""
    if isinstance(message, KeyError) and message.args:
        message = message.args[0]  # str(KeyError) would quote the text
    err.print(f"[red]error:[/red] {escape(str(message))}", highlight=False)
    return typer.Exit(code)


@contextmanager
def exit_codes() -> Iterator[None]:
    """Errors of :data:`EXIT_CODES` raised inside end as their one-line message and exit status."""
    try:
        yield
    except tuple(kind for kind, _ in EXIT_CODES) as exc:
        raise fail(exc, exit_code(exc)) from None


class ExitCodeGroup(TyperGroup):
    """The root command group: every command (and sub-group) runs inside :func:`exit_codes`."""

    def invoke(self, ctx: Any) -> Any:
        with exit_codes():
            return super().invoke(ctx)
