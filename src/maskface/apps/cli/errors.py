"""The one mapping from errors to exit statuses: a user mistake ends in one ``error: ...`` line on stderr and
status 2 (usage, models, data folders) or 3 (an input could not be used), never in a traceback. Bad option values
that click catches while parsing end the same way: one line, status 2."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from maskface.apps.cli.output import err
from maskface.errors import ImageError, MaskfaceError, NoFaceError, safe_display

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
    err.print(f"[red]error:[/red] {escape(safe_display(str(message)))}", highlight=False)
    return typer.Exit(code)


@contextmanager
def exit_codes() -> Iterator[None]:
    """Errors of :data:`EXIT_CODES` raised inside end as their one-line message and exit status."""
    try:
        yield
    except tuple(kind for kind, _ in EXIT_CODES) as exc:
        raise fail(exc, exit_code(exc)) from None


#: click's base class of the errors it shows a user (typer vendors click from 0.24 on, older versions use click
#: itself): reached through typer's public ``BadParameter``, so both work.
CLICK_ERROR: type[Exception] = next(k for k in typer.BadParameter.__mro__ if k.__name__ == "ClickException")


def refuse_empty_arguments(args: Sequence[str]) -> None:
    """An empty string is never a valid argument or option value (typer would turn ``""`` into the path ``.``)."""
    for index, arg in enumerate(args):
        if arg == "--":
            return
        option = arg.partition("=")[0] if arg.startswith("--") and arg.endswith("=") else None
        if arg == "" or option:
            before = args[index - 1] if index and args[index - 1].startswith("-") else None
            name = option or (before if arg == "" and before else None)
            raise fail(f"{name + ': ' if name else ''}an empty string is not a valid path or value", USAGE)


class ExitCodeGroup(TyperGroup):
    """The root command group: every command (and sub-group) runs inside :func:`exit_codes`, and what click
    refuses while parsing (a value out of range, a missing option, an empty string) ends in one line, status 2."""

    def invoke(self, ctx: Any) -> Any:
        with exit_codes():
            return super().invoke(ctx)

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        args = list(sys.argv[1:] if args is None else args)
        try:
            refuse_empty_arguments(args)
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Exit as exit_:
            code = exit_.exit_code
        except CLICK_ERROR as exc:
            code = exc.exit_code
            if type(exc).__name__ != "NoArgsIsHelpError":  # that one has printed the help already
                context = getattr(exc, "ctx", None)
                hint = f" (see: {context.command_path} --help)" if context is not None else ""
                fail(f"{exc.format_message()}{hint}", code)
        except typer.Abort:
            err.print("Aborted.")
            code = 1
        sys.exit(code if isinstance(code, int) else 0)
