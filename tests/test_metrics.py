"""Verification and identification metrics: hand-computed cases, brute-force checks, degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from maskface.eval.metrics import (
    accuracy,
    best_threshold,
    cmc,
    eer,
    fdr,
    fnmr_at_fmr,
    kfold_accuracy,
    roc_auc,
    tar_at_far,
    verification_report,
)

SCORES = np.array([0.1, 0.4, 0.35, 0.8])
LABELS = np.array([0, 0, 1, 1])


def test_hand_computed_small_case():
    assert roc_auc(SCORES, LABELS) == pytest.approx(0.75)
    assert eer(SCORES, LABELS) == pytest.approx(0.5)  # at 0.4: FMR 1/2 and FNMR 1/2
    assert fnmr_at_fmr(SCORES, LABELS, 0.01) == pytest.approx(0.5)  # only 0.8 accepted without a false match
    assert tar_at_far(SCORES, LABELS, 0.01) == pytest.approx(0.5)
    assert fdr(SCORES, LABELS) == pytest.approx(13 / 9)  # (0.575-0.25)^2 / (0.050625+0.0225)
    assert best_threshold(SCORES, LABELS) == pytest.approx(0.6)  # 0.225 and 0.6 tie at 3/4; the later one
    assert accuracy(SCORES, LABELS, 0.6) == pytest.approx(0.75)


def test_kfold_uses_the_other_folds_threshold():
    scores = np.array([0.9, 0.2, 0.5, 0.6])
    labels = np.array([1, 0, 1, 0])
    folds = np.array([1, 1, 2, 2])
    result = kfold_accuracy(scores, labels, folds)
    # Fold 2 is inverted, so its best cuts (-0.5 or 1.6, tie -> 1.6) reject everything in fold 1: 1/2 right.
    # Fold 1's best cut 0.55 gets both pairs of fold 2 wrong.
    assert result.accuracies == [0.5, 0.0]
    assert result.thresholds == pytest.approx([1.6, 0.55])
    assert result.mean == pytest.approx(0.25) and result.std == pytest.approx(0.25)


def test_interpolated_eer_between_roc_points():
    scores = np.array([0.9, 0.8, 0.3, 0.6, 0.5, 0.2])
    labels = np.array([1, 1, 1, 0, 0, 0])
    # Cuts: 0.8 -> FMR 0, FNMR 1/3; 0.6 -> FMR 1/3, FNMR 1/3: the curves cross exactly there.
    assert eer(scores, labels) == pytest.approx(1 / 3)


def test_against_scikit_learn_and_brute_force():
    rng = np.random.default_rng(3)
    labels = rng.random(2000) < 0.5
    scores = np.where(labels, rng.normal(1.0, 1.0, 2000), rng.normal(-1.0, 1.0, 2000)).round(3)  # with ties
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))
    genuine, impostor = scores[labels], scores[~labels]
    thresholds = np.concatenate([np.unique(scores), [np.inf]])
    fmr = np.array([(impostor >= t).mean() for t in thresholds])
    fnmr = np.array([(genuine < t).mean() for t in thresholds])
    for target in (1e-2, 1e-3):
        assert fnmr_at_fmr(scores, labels, target) == pytest.approx(fnmr[fmr <= target].min())
    assert abs(eer(scores, labels) - fnmr[np.argmin(np.abs(fmr - fnmr))]) < 2 / len(genuine)
    best = max((np.mean((scores >= t) == labels), t) for t in thresholds)
    assert accuracy(scores, labels, best_threshold(scores, labels)) == pytest.approx(best[0])


@pytest.mark.parametrize("labels,message", [([1, 1, 1], "only genuine"), ([0, 0, 0], "only impostor")])
def test_one_class_inputs_are_refused(labels, message):
    with pytest.raises(ValueError, match=message):
        verification_report(np.array([0.1, 0.2, 0.3]), np.array(labels), np.array([1, 2, 3]))


def test_constant_and_invalid_scores():
    scores, labels = np.full(4, 0.5), np.array([0, 1, 0, 1])
    assert roc_auc(scores, labels) == pytest.approx(0.5)
    assert eer(scores, labels) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="zero variance"):
        fdr(scores, labels)
    with pytest.raises(ValueError, match="NaN"):
        roc_auc(np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match="2 scores but 3 labels"):
        roc_auc(np.array([0.1, 0.2]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="at least two folds"):
        kfold_accuracy(np.array([0.1, 0.9]), np.array([0, 1]), np.array([1, 1]))


def test_cmc_hand_computed():
    similarity = np.array([[0.9, 0.1, 0.2], [0.65, 0.7, 0.6]])  # probe "c" ranks its match third
    curve = cmc(similarity, np.array(["a", "c"]), np.array(["a", "b", "c"]), max_rank=3)
    np.testing.assert_allclose(curve, [0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="closed-set"):
        cmc(similarity, np.array(["a", "z"]), np.array(["a", "b", "c"]))
