"""Write an evaluation run to a folder (report.json, report.md, scores.csv, ROC/DET/histogram plots) and put
several runs side by side."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from maskface.data.pairs import Pair
from maskface.eval.plots import plot_det, plot_histogram, plot_roc
from maskface.eval.protocol import PairScores, fold_span, pooled_report
from maskface.io.files import atomic_write_text
from maskface.masks.synth import mask_key

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


def write_run(out_dir: Path, report: dict, result: PairScores, pairs: list[Pair]) -> None:
    """All the files of one verification run."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["fold", "label", "score", "path_a", "path_b"])  # paths as <person>/<file>
    for pair, score in zip(pairs, result.scores):
        writer.writerow([pair.fold, int(pair.same), f"{score:.6f}", mask_key(pair.a), mask_key(pair.b)])
    atomic_write_text(out_dir / "scores.csv", buffer.getvalue())
    label = run_label(report)
    plot_roc({label: (result.scores, result.labels)}, out_dir / "roc.png")
    plot_det({label: (result.scores, result.labels)}, out_dir / "det.png")
    plot_histogram(result.scores, result.labels, out_dir / "hist.png", label)
    detectors = "; ".join(f"{side}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items()))
                          for side, c in report["detectors"].items())
    folds = "\n".join(f"| {f['fold']} | {f['accuracy']:.2%} | {f['threshold']:.4f} |" for f in report["folds"])
    text = (f"# {label}\n\n{markdown_table([report])}\n"
            f"Pairs: {report['pairs']}; faces by detector (side a; side b): {detectors}.\n\n"
            "Scores are similarities (higher = more alike; Euclidean distances are negated). Thresholds are chosen "
            "on the other nine folds.\n\n| fold | accuracy | threshold |\n|---:|---:|---:|\n"
            f"{folds}\n\n![ROC](roc.png) ![DET](det.png) ![scores](hist.png)\n")
    atomic_write_text(out_dir / "report.md", text)


def load_scores(run_dir: Path) -> tuple[dict, PairScores, list[Pair]]:
    """A run folder's report, its scores and its pairs (paths as ``<person>/<file>``), as ``write_run`` wrote them."""
    report = json.loads((run_dir / "report.json").read_text())
    with open(run_dir / "scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    pairs = [Pair(Path(r["path_a"]), Path(r["path_b"]), r["label"] == "1", int(r["fold"])) for r in rows]
    scores = PairScores(np.array([float(r["score"]) for r in rows]), np.array([p.same for p in pairs]),
                        np.array([p.fold for p in pairs]), report["failures"], report["detectors"])
    return report, scores, pairs


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
    runs = [load_scores(d)[:2] for d in run_dirs]
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
