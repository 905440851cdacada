"""Verification and identification metrics.

Convention: a *score* is a similarity, higher = more likely the same person. Distances must be negated first
(:func:`maskface.models.embedder.to_similarity`). ``labels`` are 1 for genuine (same person) and 0 for impostor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def _check(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinity")
    if labels.all() or not labels.any():
        raise ValueError("metrics need both genuine and impostor pairs; got only "
                         + ("genuine" if labels.all() else "impostor") + " pairs")
    return scores, labels


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold maximising accuracy of ``score >= threshold``; ties go to the middle of the best interval."""
    scores, labels = _check(scores, labels)
    values = np.unique(scores)
    # Candidate cuts: below everything, midpoints between distinct scores, above everything.
    cuts = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2.0, [values[-1] + 1.0]])
    order = np.argsort(scores)
    s, y = scores[order], labels[order]
    # For each cut, accepted = scores >= cut. Count genuine accepted and impostors rejected.
    idx = np.searchsorted(s, cuts, side="left")
    genuine_below = np.concatenate([[0], np.cumsum(y)])[idx]
    impostor_below = np.concatenate([[0], np.cumsum(~y)])[idx]
    correct = (y.sum() - genuine_below) + impostor_below
    best = np.flatnonzero(correct == correct.max())
    return float(cuts[best[len(best) // 2]])


def accuracy(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    scores, labels = _check(scores, labels)
    return float(np.mean((scores >= threshold) == labels))


@dataclass
class KFoldResult:
    accuracies: list[float]
    thresholds: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies))


def kfold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> KFoldResult:
    """Accuracy per fold, each at the threshold that is best on all *other* folds (the LFW View 2 protocol)."""
    scores, labels = _check(scores, labels)
    folds = np.asarray(folds).ravel()
    accs, thresholds = [], []
    for fold in np.unique(folds):
        test = folds == fold
        if test.all():
            raise ValueError("k-fold accuracy needs at least two folds")
        threshold = best_threshold(scores[~test], labels[~test])
        accs.append(float(np.mean((scores[test] >= threshold) == labels[test])))
        thresholds.append(threshold)
    return KFoldResult(accs, thresholds)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    scores, labels = _check(scores, labels)
    return float(roc_auc_score(labels, scores))


def error_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FMR, FNMR, thresholds) at every distinct threshold, FMR increasing (from scikit-learn's ROC)."""
    scores, labels = _check(scores, labels)
    fmr, tmr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    return fmr, 1.0 - tmr, thresholds


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate: where FMR = FNMR, linearly interpolated between the two ROC points around the crossing."""
    fmr, fnmr, _ = error_rates(scores, labels)
    diff = fnmr - fmr  # decreasing along the curve
    i = int(np.flatnonzero(diff <= 0)[0])
    if i == 0 or diff[i] == 0:
        return float((fmr[i] + fnmr[i]) / 2.0)
    t = diff[i - 1] / (diff[i - 1] - diff[i])
    return float(fmr[i - 1] + t * (fmr[i] - fmr[i - 1]))


def fnmr_at_fmr(scores: np.ndarray, labels: np.ndarray, target: float) -> float:
    """The lowest FNMR at any threshold whose FMR is at most ``target`` (FMR100: 1e-2, FMR1000: 1e-3)."""
    fmr, fnmr, _ = error_rates(scores, labels)
    return float(fnmr[fmr <= target].min())


def tar_at_far(scores: np.ndarray, labels: np.ndarray, target: float) -> float:
    """True accept rate at false accept rate ``target``: ``1 - fnmr_at_fmr``."""
    return 1.0 - fnmr_at_fmr(scores, labels, target)


def fdr(scores: np.ndarray, labels: np.ndarray) -> float:
    """Fisher discriminant ratio ``(mu_g - mu_i)^2 / (var_g + var_i)`` of genuine vs impostor scores."""
    scores, labels = _check(scores, labels)
    genuine, impostor = scores[labels], scores[~labels]
    spread = genuine.var() + impostor.var()
    if spread == 0:
        raise ValueError("FDR is undefined: genuine and impostor scores have zero variance")
    return float((genuine.mean() - impostor.mean()) ** 2 / spread)


def cmc(similarity: np.ndarray, probe_labels: np.ndarray, gallery_labels: np.ndarray, max_rank: int = 20) -> np.ndarray:
    """Cumulative match characteristic: fraction of probes whose identity is among the top-k gallery entries.

    ``similarity`` is probes x gallery. Every probe's identity must be in the gallery (closed set).
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    probe_labels, gallery_labels = np.asarray(probe_labels), np.asarray(gallery_labels)
    if not np.isin(probe_labels, gallery_labels).all():
        raise ValueError("closed-set identification: every probe identity must be in the gallery")
    # Rank of the best-matching true entry = number of gallery entries scoring strictly higher, + 1.
    true_mask = probe_labels[:, None] == gallery_labels[None, :]
    best_true = np.where(true_mask, similarity, -np.inf).max(axis=1)
    ranks = (np.where(~true_mask, similarity, -np.inf) > best_true[:, None]).sum(axis=1) + 1
    max_rank = min(max_rank, len(gallery_labels))
    return np.array([(ranks <= k).mean() for k in range(1, max_rank + 1)])


def verification_report(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> dict:
    """Every verification metric of DESIGN §6 in one dict (keys as in ``report.json``)."""
    kfold = kfold_accuracy(scores, labels, folds)
    return {
        "accuracy_mean": kfold.mean,
        "accuracy_std": kfold.std,
        "auc": roc_auc(scores, labels),
        "eer": eer(scores, labels),
        "fnmr_at_fmr_1e-2": fnmr_at_fmr(scores, labels, 1e-2),
        "fnmr_at_fmr_1e-3": fnmr_at_fmr(scores, labels, 1e-3),
        "tar_at_far_1e-3": tar_at_far(scores, labels, 1e-3),
        "fdr": fdr(scores, labels),
        "pairs": len(np.asarray(scores).ravel()),
        "folds": [{"fold": int(f), "accuracy": a, "threshold": t}
                  for f, a, t in zip(np.unique(folds), kfold.accuracies, kfold.thresholds)],
    }
