"""``maskface models``: the catalogue of registered models."""

from __future__ import annotations

import typer

from maskface.apps.cli.output import out

app = typer.Typer()


@app.command()
def models() -> None:
    """List the registered models."""
    from maskface.models.registry import list_models, model_info

    for name in list_models():
        info = model_info(name)
        what = f"{info.spec.chip}:{info.spec.size} {info.spec.metric}" if info.spec else info.kind
        out.print(f"{name:16s} {what:20s} {info.description} (licence: {info.license})")
