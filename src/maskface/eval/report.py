"""Write an evaluation run to a folder (report.json, report.md, scores.npz, ROC/DET/histogram plots) and put
several runs side by side."""

from __future__ import annotations

import json
from pathlib import Path

from maskface.data.pairs import Pair
from maskface.errors import RunFolderError
from maskface.eval.plots import plot_det, plot_histogram, plot_roc
from maskface.eval.protocol import PairScores, fold_span, pooled_report
from maskface.eval.scores import read_pairs, read_scores, write_scores
from maskface.io.files import atomic_write_text

#: The plots ``write_run`` draws beside a report (not kept in docs/results; ``maskface eval compare`` redraws ROC
#: and DET from the scores).
PLOTS = ("roc.png", "det.png", "hist.png")

#: (report key, column title, format) of the Markdown tables.
COLUMNS = [
    ("accuracy_mean", "accuracy", "{:.2%}"),
    ("accuracy_std", "± std", "{:.2%}"),
    ("auc", "AUC", "{:.4f}"),
    ("eer", "EER", "{:.2%}"),
    ("fnmr_at_fmr_1e-2", "FNMR@FMR1e-2", "{:.2%}"),
    ("fnmr_at_fmr_1e-3", "FNMR@FMR1e-3", "{:.2%}"),
    ("tar_at_far_1e-3", "TAR@FAR1e-3", "{:.2%}"),
    ("fdr", "FDR", "{:.2f}"),
    ("failures", "failed pairs", "{}"),
]


def run_label(report: dict) -> str:
    masks = report.get("masks") or {}
    align = " oracle" if masks.get("oracle_alignment") else ""
    return f"{report['model']} {report['scenario']}{align}"


def markdown_table(reports: list[dict]) -> str:
    head = "| run | " + " | ".join(title for _, title, _ in COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(COLUMNS)
    rows = [f"| {run_label(r)} | " + " | ".join(fmt.format(r[key]) for key, _, fmt in COLUMNS) + " |"
            for r in reports]
    return "\n".join([head, rule, *rows]) + "\n"


def run_markdown(report: dict) -> str:
    """The text of a run's ``report.md``: made from ``report.json`` alone, so a committed report can be checked."""
    detectors = "; ".join(f"{side}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                          for side, c in report["detectors"].items())
    folds = "\n".join(f"| {f['fold']} | {f['accuracy']:.2%} | {f['threshold']:.4f} |" for f in report["folds"])
    return (f"# {run_label(report)}\n\n{markdown_table([report])}\n"
            f"Pairs: {report['pairs']}; faces by detector (side a; side b): {detectors}.\n\n"
            "Scores are similarities (higher = more alike; Euclidean distances are negated). Thresholds are chosen "
            "on the other nine folds.\n\n| fold | accuracy | threshold |\n|---:|---:|---:|\n"
            f"{folds}\n\nWritten with this report: `scores.npz` (every pair's score) and the plots "
            + ", ".join(f"`{name}`" for name in PLOTS) + "; `maskface eval compare` draws ROC and DET again from "
            "the scores.\n")


def write_run(out_dir: Path, report: dict, result: PairScores, pairs: list[Pair]) -> None:
    """All the files of one verification run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    write_scores(out_dir, result.scores, pairs)
    label = run_label(report)
    plot_roc({label: (result.scores, result.labels)}, out_dir / "roc.png")
    plot_det({label: (result.scores, result.labels)}, out_dir / "det.png")
    plot_histogram(result.scores, result.labels, out_dir / "hist.png", label)
    atomic_write_text(out_dir / "report.md", run_markdown(report))


def load_run(run_dir: Path) -> tuple[dict, PairScores]:
    """A run folder's report and its scores, as ``write_run`` wrote them."""
    path = run_dir / "report.json"
    if not path.is_file():
        raise RunFolderError(str(run_dir), "not a run folder (no report.json)")
    report = json.loads(path.read_text())
    scores, same, folds = read_scores(run_dir)
    return report, PairScores(scores, same, folds, report["failures"], report["detectors"])


def load_scores(run_dir: Path) -> tuple[dict, PairScores, list[Pair]]:
    """A run folder's report, its scores and its pairs (paths as ``<person>/<file>``)."""
    return (*load_run(run_dir), read_pairs(run_dir))


#: Values of ``report.json`` keys that older reports lack: those written before the front end's version was
#: recorded were made with version 2.
REPORT_DEFAULTS = {"pipeline": 2}


def report_value(report: dict, key: str):
    """A key of a ``report.json``, or its default for reports written before the key existed."""
    return report.get(key, REPORT_DEFAULTS.get(key))


def pool_runs(run_dirs: list[Path]) -> tuple[dict, PairScores, list[Pair]]:
    """Cross-fitting from finished runs: runs of one scenario on disjoint folds, each scored by its own model,
    pooled into one report with the usual 10-fold accuracy (the same numbers as ``crossfit_verification``)."""
    runs = [load_scores(d) for d in run_dirs]
    first = runs[0][0]
    seen: set[int] = set()
    for run_dir, (report, scores, _) in zip(run_dirs, runs):
        for key in ("scenario", "masks", "face", "pipeline"):
            if report_value(report, key) != report_value(first, key):
                raise ValueError(f"{run_dir}: its {key} differs from {run_dirs[0]}'s; only runs of one protocol "
                                 "can be pooled")
        folds = set(scores.folds.tolist())
        if folds & seen:
            raise ValueError(f"{run_dir}: fold(s) {sorted(folds & seen)} are already scored by another run")
        seen |= folds
    model = "; ".join(f"{r['model']} on folds {fold_span(set(s.folds.tolist()))}" for r, s, _ in runs)
    report, result = pooled_report(model, first["scenario"], [s for _, s, _ in runs], first.get("masks"),
                                   first["face"], report_value(first, "pipeline"))
    return report, result, [pair for _, _, pairs in runs for pair in pairs]


def compare_runs(run_dirs: list[Path], out_dir: Path) -> str:
    """One Markdown table and one ROC/DET plot over several run folders; returns the table."""
    runs = [load_run(d) for d in run_dirs]
    table = markdown_table([r for r, _ in runs])
    labels = [run_label(r) for r, _ in runs]
    if len(set(labels)) < len(labels):  # same model and scenario in several folders: name them by folder
        labels = [f"{d.parent.name}/{d.name}" for d in run_dirs]
    curves = {label: (s.scores, s.labels) for label, (_, s) in zip(labels, runs)}
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_roc(curves, out_dir / "roc.png")
    plot_det(curves, out_dir / "det.png")
    atomic_write_text(out_dir / "compare.md", "# Comparison\n\n" + table + "\n![ROC](roc.png) ![DET](det.png)\n")
    return table
