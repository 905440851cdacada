"""``maskface export``: models for other runtimes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskface.apps.cli.output import out, shown
from maskface.defaults import TEACHER_MODEL

app = typer.Typer(help="Export models to other runtimes.", no_args_is_help=True)


@app.command("onnx")
def export_onnx_cmd(out_file: Annotated[Path, typer.Option("--out", help="Output .onnx file.")],
                    model: Annotated[str, typer.Option("--model", "-m", help="Registered embedder or "
                                                       "NAME=CHECKPOINT.")] = TEACHER_MODEL,
                    opset: Annotated[int, typer.Option(help="ONNX opset (7 or later).", min=7)] = 17) -> None:
    """Export a model to ONNX (dynamic batch); a .json beside it tells maskface how to feed it."""
    from maskface.apps.export import export_onnx

    path = export_onnx(model, out_file, opset)
    out.print(f"wrote {shown(path)} and {shown(path.with_suffix('.json'))}")
