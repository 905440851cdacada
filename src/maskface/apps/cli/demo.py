"""``maskface demo``: dlib's recogniser and maskface's default side by side on masked LFW pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskface.apps.cli.options import COUNT_RANGE, DataOpt, ModelOpt, Workers
from maskface.apps.cli.output import out, shown
from maskface.defaults import DEFAULT_MODEL

app = typer.Typer()


@app.command()
def demo(data: DataOpt = None,
         out_dir: Annotated[Path, typer.Option("--out", help="Folder for the report and pictures.")]
         = Path("maskface-demo"),
         pairs: Annotated[int, typer.Option(help="Same-person pairs (and as many different-person pairs).",
                                           **COUNT_RANGE)] = 60,
         model: ModelOpt = DEFAULT_MODEL, workers: Workers = 0) -> None:
    """Masked LFW pairs scored by dlib's recogniser (face_recognition's) and by maskface's: table, grid and ROC."""
    from maskface.apps.demo import run_demo

    result = run_demo(data, out_dir, pairs, workers, model=model)
    out.print(f"maskface demo: {result.pairs} LFW pairs (View 2 fold 10)")
    out.print(f"  {'scenario':8s} {'model':20s} {'accuracy':>9s} {'ROC AUC':>8s}")
    for row in result.rows:
        out.print(f"  {row.scenario:8s} {row.model:20s} {row.accuracy:9.1%} {row.auc:8.3f}")
    out.print(f"wrote {shown(result.report)} (with pairs.png and roc.png)"
              + (f"; {result.failures} images failed" if result.failures else ""))
