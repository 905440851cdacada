"""ROC, DET and score-histogram pictures for verification runs (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm

from maskface.eval.metrics import error_rates


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _line_style(index: int) -> str:
    """Solid lines for the first ten curves (matplotlib's ten colours), then dashed, so no two curves look alike."""
    return "-" if index < 10 else "--"


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """ROC (TMR against FMR on a log axis) for one or more runs: ``{label: (scores, labels)}``."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for i, (label, (scores, labels)) in enumerate(curves.items()):
        fmr, fnmr, _ = error_rates(scores, labels)
        ax.plot(np.clip(fmr, 1e-5, 1), 1 - fnmr, _line_style(i), label=label)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("true match rate (1 - FNMR)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("ROC")
    _save(fig, path)


def plot_det(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> None:
    """DET curve: FNMR against FMR on normal-deviate axes (ISO/IEC 19795-1)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ticks = np.array([1e-3, 1e-2, 5e-2, 0.2, 0.5])
    for i, (label, (scores, labels)) in enumerate(curves.items()):
        fmr, fnmr, _ = error_rates(scores, labels)
        keep = (fmr > 0) & (fnmr > 0) & (fmr < 1) & (fnmr < 1)
        ax.plot(norm.ppf(fmr[keep]), norm.ppf(fnmr[keep]), _line_style(i), label=label)
    ax.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(5e-4), norm.ppf(0.6))
    ax.set_ylim(norm.ppf(5e-4), norm.ppf(0.6))
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("false non-match rate (FNMR)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("DET")
    _save(fig, path)


def plot_histogram(scores: np.ndarray, labels: np.ndarray, path: Path, title: str = "") -> None:
    scores, labels = np.asarray(scores), np.asarray(labels).astype(bool)
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    bins = np.linspace(scores.min(), scores.max(), 60)
    ax.hist(scores[labels], bins=bins, alpha=0.6, label="genuine", color="tab:green")
    ax.hist(scores[~labels], bins=bins, alpha=0.6, label="impostor", color="tab:red")
    ax.set_xlabel("similarity score (higher = more alike)")
    ax.set_ylabel("pairs")
    ax.legend()
    ax.set_title(title or "score distributions")
    _save(fig, path)


def plot_deocclusion(lfw: dict[str, np.ndarray], real: dict[str, np.ndarray], path: Path) -> None:
    """The completion grid: held-out LFW (original / masked / completed / estimated map) beside real masked photos
    (face as found / completed / estimated map)."""
    left = ["original", "masked", "completed", "estimated_map"]
    right = ["chip", "completed", "estimated_map"]
    rows = max(len(lfw["original"]), len(real.get("chip", [])))
    fig, axes = plt.subplots(rows, len(left) + len(right) + 1, figsize=(1.3 * (len(left) + len(right) + 1),
                                                                        1.35 * rows + 0.5))
    titles = ["LFW original", "masked", "completed", "est. map", "", "real photo", "completed", "est. map"]
    for r in range(rows):
        for c, name in enumerate(left + [None] + right):
            ax = axes[r, c]
            ax.axis("off")
            source = lfw if c < len(left) else real
            if name is None or r >= len(source.get(name, [])):
                continue
            image = source[name][r]
            ax.imshow(image, cmap="gray", vmin=0, vmax=1) if image.ndim == 2 else ax.imshow(image)
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
    _save(fig, path)
