"""The ``maskface`` command line: one module per command group, each parsing options, calling the library and
printing. Every error ends the same way (:mod:`~maskface.apps.cli.errors`): one line on stderr and exit status 2
(usage, models, data) or 3 (some inputs failed), never a traceback."""

from __future__ import annotations

import typer

from maskface.apps.cli import catalog, demo, evaluate, export, faces, gallery, serve, train
from maskface.apps.cli.errors import ExitCodeGroup

app = typer.Typer(cls=ExitCodeGroup, help="maskface: recognise people whose faces are partly hidden by masks.",
                  pretty_exceptions_enable=False, no_args_is_help=True, add_completion=False)
for commands in (faces.app, gallery.app, demo.app, catalog.app, serve.app):
    app.add_typer(commands)
app.add_typer(export.app, name="export")
app.add_typer(train.app, name="train")
app.add_typer(evaluate.app, name="eval")
app.add_typer(gallery.manage, name="gallery")
app.add_typer(serve.keys_app, name="keys")


def main() -> None:
    """The console script ``maskface``."""
    app()
