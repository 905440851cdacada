"""Per-pair-type thresholds: hand-computed impostor quantiles, and the shipped table's shape and order."""

from __future__ import annotations

import json

import numpy as np
import pytest

from maskface.io.locations import shipped_weights
from maskface.models.pair_thresholds import (
    PAIR_TYPES,
    THRESHOLDS_FILE,
    fmr_key,
    impostor_thresholds,
    pair_type,
    shipped_fmr,
    shipped_pair_thresholds,
)


def test_pair_type_and_fmr_key():
    assert [pair_type(False, False), pair_type(True, False), pair_type(False, True), pair_type(True, True)] == [
        "U-U", "M-U", "M-U", "M-M"]
    assert (fmr_key(1e-2), fmr_key(1e-3), fmr_key(1e-4)) == ("1e-2", "1e-3", "1e-4")


def test_impostor_thresholds_on_a_hand_made_matrix():
    """Faces 0, 1: person A (1 masked); 2, 3: person B (3 masked). Impostor pairs: (0,2) U-U 0.1, (0,3) M-U 0.4,
    (1,2) M-U 0.2, (1,3) M-M 0.5; genuine pairs (0,1) and (2,3) are ignored. At FMR 0.5, the median of each type;
    with groups keeping 0-2 and 1-3 apart, only (0,2) and (1,3) remain."""
    similarity = np.array([[1.0, 0.9, 0.1, 0.4],
                           [0.9, 1.0, 0.2, 0.5],
                           [0.1, 0.2, 1.0, 0.8],
                           [0.4, 0.5, 0.8, 1.0]])
    people = np.array(["A", "A", "B", "B"])
    masked = np.array([False, True, False, True])
    got = impostor_thresholds(similarity, people, masked, (0.5,))
    assert got == {"U-U": {"5e-1": pytest.approx(0.1)}, "M-U": {"5e-1": pytest.approx(0.3)},
                   "M-M": {"5e-1": pytest.approx(0.5)}}
    grouped = impostor_thresholds(similarity, people, masked, (0.5,), groups=np.array([0, 1, 0, 1]))
    assert grouped == {"U-U": {"5e-1": pytest.approx(0.1)}, "M-M": {"5e-1": pytest.approx(0.5)}}


def test_shipped_table_covers_every_pair_type_in_order():
    """Every model in the table has all three pair types at FMR 1e-2, 1e-3 and 1e-4, stricter as the FMR falls
    (higher similarity, or lower distance), and ships the 1e-3 ones."""
    table = json.loads(shipped_weights(THRESHOLDS_FILE).read_text())
    assert {"omz_sface_ensemble", "omz_reid_0095", "sface"} <= set(table["models"])
    for model, entry in table["models"].items():
        sign = 1 if entry["metric"] == "cosine" else -1
        for kind in PAIR_TYPES:
            row = entry["thresholds"][kind]
            assert sign * row["1e-2"] <= sign * row["1e-3"] <= sign * row["1e-4"], (model, kind)
        assert shipped_fmr(model) == "1e-3"
        assert shipped_pair_thresholds(model) == {k: entry["thresholds"][k]["1e-3"] for k in PAIR_TYPES}
    assert shipped_pair_thresholds("no_such_model") is None


def test_a_chosen_false_match_rate_picks_that_column_for_plain_and_mask_aware_models(tmp_path):
    """``fmr="1e-4"``: a plain model's thresholds come from the table's 1e-4 column, a mask-aware model's from its
    own 1e-4 calibration; both are stricter than the defaults. An uncalibrated rate is refused by name."""
    from maskface.apps.recognizer import load
    from maskface.models.embedder import load_embedder

    table = json.loads(shipped_weights(THRESHOLDS_FILE).read_text())["models"]["omz_sface_ensemble"]["thresholds"]
    assert shipped_pair_thresholds("omz_sface_ensemble", "1e-4") == {k: table[k]["1e-4"] for k in PAIR_TYPES}
    strict = load("omz_sface_ensemble", device="cpu", fmr="1e-4")
    assert strict.pair_threshold(True, False) == table["M-U"]["1e-4"] > load(
        "omz_sface_ensemble", device="cpu").pair_threshold(True, False)
    module = load_embedder("maskface_v1").module
    aware = load("maskface_v1", fmr="1e-4")
    assert aware.pair_threshold(True, True) == module.threshold(True, True, "1e-4") != module.threshold(True, True)
    with pytest.raises(ValueError, match="calibrated at 1e-2, 1e-3, 1e-4"):
        load("omz_sface_ensemble", device="cpu", fmr="1e-5")
    with pytest.raises(ValueError, match="no thresholds calibrated at false-match rates"):
        load("dlib_resnet_v1", device="cpu", fmr="1e-4")  # it keeps dlib's documented 0.6
    from maskface.apps.gallery import Gallery

    with pytest.raises(ValueError, match="give it to maskface.load"):
        Gallery(tmp_path / "g.db", model=strict, fmr="1e-4")
