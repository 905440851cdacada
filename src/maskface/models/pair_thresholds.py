"""Per-pair-type verification thresholds for plain recognisers, shipped in ``weights/pair_thresholds.json``.

A masked face sits further from everyone, its own clean photos included, so one threshold cannot serve U-U, M-U
and M-M pairs alike. For a plain recogniser the pair type comes from the front end's mask classifier (a mask-aware
model like ``maskface_v1`` uses its own completion calls and ships its thresholds in its weights file).
The thresholds are set at target false-match rates on AT&T/ORL and Yale with synthetic masks, data that nothing
trains or is tested on (``tools/calibrate_thresholds.py``, docs/results/pair-thresholds.md).
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from maskface.errors import ModelFileError

THRESHOLDS_FILE = "pair_thresholds.json"
PAIR_TYPES = ("U-U", "M-U", "M-M")
#: the false-match rate shipped thresholds are chosen for, per model (others in the file are for reference)
DEFAULT_FMR_KEY = "default_fmr"
#: the false-match rates every shipped table (and a mask-aware model's own) is calibrated at: a user may pick one
#: (``--fmr``), e.g. a stricter one for a large gallery, where each probe meets every enrolled person
FMR_LEVELS = ("1e-2", "1e-3", "1e-4")


def check_fmr(fmr: str | None) -> str | None:
    """``fmr`` if it is one of :data:`FMR_LEVELS` (or None, the model's own choice); else a ``ValueError``."""
    if fmr is not None and fmr not in FMR_LEVELS:
        raise ValueError(f"false-match rate {fmr!r}: thresholds are calibrated at {', '.join(FMR_LEVELS)}")
    return fmr


def pair_type(masked_a: bool, masked_b: bool) -> str:
    """"U-U", "M-U" or "M-M" from whether each face was judged masked."""
    return PAIR_TYPES[int(masked_a) + int(masked_b)]


def fmr_key(fmr: float) -> str:
    """1e-3 -> "1e-3" (the keys of shipped thresholds)."""
    return f"{fmr:.0e}".replace("e-0", "e-")


@lru_cache(maxsize=1)
def _shipped() -> dict:
    from maskface.io.locations import shipped_weights

    path = shipped_weights(THRESHOLDS_FILE)
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(str(path), f"unreadable threshold table ({exc})") from None
    if not isinstance(table, dict) or not isinstance(table.get("models"), dict):
        raise ModelFileError(str(path), "not a threshold table (no 'models' object)")
    return table


def shipped_pair_thresholds(model: str, fmr: str | None = None) -> dict[str, float] | None:
    """``{"U-U": t, "M-U": t, "M-M": t}`` at false-match rate ``fmr`` (one of :data:`FMR_LEVELS`; by default the
    model's shipped one), or None when the model has no calibrated thresholds."""
    entry = _shipped()["models"].get(model)
    if entry is None:
        return None
    fmr = check_fmr(fmr) or entry[DEFAULT_FMR_KEY]
    return {kind: float(entry["thresholds"][kind][fmr]) for kind in PAIR_TYPES}


def shipped_fmr(model: str) -> str | None:
    """The false-match rate (e.g. "1e-3") the model's shipped thresholds were set for on the calibration data."""
    entry = _shipped()["models"].get(model)
    return None if entry is None else entry[DEFAULT_FMR_KEY]


def impostor_thresholds(similarity: np.ndarray, people: np.ndarray, masked: np.ndarray,
                        fmrs: tuple[float, ...], groups: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """Per pair type, the similarity above which a fraction ``fmr`` of its different-identity pairs fall:
    ``{"M-U": {"1e-3": s, ...}, ...}``. ``similarity`` is an ``N x N`` matrix, higher meaning more alike;
    ``groups`` (e.g. the dataset of each face) keeps only pairs within one group."""
    upper = np.triu(np.ones(len(people), dtype=bool), k=1)
    impostor = upper & (people[:, None] != people[None])
    if groups is not None:
        impostor &= groups[:, None] == groups[None]
    kind = masked.astype(int)[:, None] + masked.astype(int)[None]
    thresholds = {}
    for index, name in enumerate(PAIR_TYPES):
        scores = similarity[impostor & (kind == index)]
        if len(scores):
            thresholds[name] = {fmr_key(fmr): float(np.quantile(scores, 1 - fmr)) for fmr in fmrs}
    return thresholds
