"""A run's pair scores in one compact file, ``scores.npz``, with its pairs as indices into a shared pair list.

``scores.npz`` holds ``score`` (float32 similarity), ``same``, ``fold`` and ``pair``: each pair's row in the pair list
named by ``pair_list``. A pair list, ``pairs/<hash>.npz``, holds ``a`` and ``b`` (paths as ``<person>/<file>``),
``same`` and ``fold`` of every pair, and is stored once for every run that can point into it: a run writes into the
``pairs/`` folder one or two levels above it when there is one (``docs/results/pairs`` holds LFW View 2 for every
committed run), else into its own ``pairs/``. Metrics need only ``scores.npz``; the list gives the paths back.
Run folders written before this format hold ``scores.csv`` (``fold,label,score,path_a,path_b``), still read.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np

from maskface.data.pairs import Pair
from maskface.errors import RunFolderError
from maskface.io.files import atomic_write_bytes
from maskface.masks.synth import mask_key

SCORES_FILE = "scores.npz"
LEGACY_SCORES_FILE = "scores.csv"
PAIRS_FOLDER = "pairs"


def _npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def _pair_table(pairs: list[Pair]) -> dict[str, np.ndarray]:
    return {"a": np.array([mask_key(p.a) for p in pairs], dtype=str),
            "b": np.array([mask_key(p.b) for p in pairs], dtype=str),
            "same": np.array([p.same for p in pairs], dtype=bool),
            "fold": np.array([p.fold for p in pairs], dtype=np.int16)}


def _rows(table: dict[str, np.ndarray]) -> list[tuple]:
    return list(zip(table["a"].tolist(), table["b"].tolist(), table["same"].tolist(), table["fold"].tolist()))


def _pair_list_dirs(run_dir: Path) -> list[Path]:
    """Where a run's pair list may lie, nearest first: the run's own ``pairs/``, then its parent's and grandparent's."""
    return [folder / PAIRS_FOLDER for folder in (run_dir, run_dir.parent, run_dir.parent.parent)]


def _store_pairs(run_dir: Path, pairs: list[Pair]) -> tuple[str, np.ndarray]:
    """The name of a pair list holding every pair of the run, and each pair's row in it; writes the list when no
    list in the chosen ``pairs/`` folder holds them all."""
    shared = [d for d in _pair_list_dirs(run_dir)[1:] if d.is_dir()]
    folder = shared[0] if shared else _pair_list_dirs(run_dir)[0]
    table = _pair_table(pairs)
    wanted = _rows(table)
    for candidate in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
        with np.load(candidate) as stored:
            row_of: dict[tuple, int] = {}
            for i, row in enumerate(_rows(stored)):
                row_of.setdefault(row, i)
        if all(row in row_of for row in wanted):
            return candidate.name, np.array([row_of[row] for row in wanted], dtype=np.int32)
    data = _npz_bytes(**table)
    name = hashlib.sha256("\n".join(map(repr, wanted)).encode()).hexdigest()[:16] + ".npz"
    atomic_write_bytes(folder / name, data)
    return name, np.arange(len(pairs), dtype=np.int32)


def write_scores(run_dir: Path, scores: np.ndarray, pairs: list[Pair]) -> None:
    """``run_dir/scores.npz`` for ``scores[i]`` of ``pairs[i]`` (similarities: higher = more alike)."""
    if len(scores) != len(pairs):
        raise ValueError(f"{len(scores)} scores for {len(pairs)} pairs")
    name, rows = _store_pairs(run_dir, pairs)
    atomic_write_bytes(run_dir / SCORES_FILE, _npz_bytes(
        score=np.asarray(scores, dtype=np.float32), same=np.array([p.same for p in pairs], dtype=bool),
        fold=np.array([p.fold for p in pairs], dtype=np.int16), pair=rows, pair_list=np.array(name)))


def read_scores(run_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A run's ``(scores, same, folds)`` in pair order, from ``scores.npz`` (or an older run's ``scores.csv``)."""
    path = run_dir / SCORES_FILE
    if path.is_file():
        with np.load(path) as data:
            return data["score"].astype(np.float64), data["same"], data["fold"].astype(np.int64)
    rows = _legacy_rows(run_dir)
    return (np.array([float(r["score"]) for r in rows]), np.array([r["label"] == "1" for r in rows]),
            np.array([int(r["fold"]) for r in rows]))


def read_pairs(run_dir: Path) -> list[Pair]:
    """A run's pairs in score order, paths as ``<person>/<file>``."""
    path = run_dir / SCORES_FILE
    if not path.is_file():
        return [Pair(Path(r["path_a"]), Path(r["path_b"]), r["label"] == "1", int(r["fold"]))
                for r in _legacy_rows(run_dir)]
    with np.load(path) as data:
        name, rows = str(data["pair_list"]), data["pair"]
    for folder in _pair_list_dirs(run_dir):
        if (folder / name).is_file():
            with np.load(folder / name) as table:
                a, b, same, fold = (table[k][rows] for k in ("a", "b", "same", "fold"))
            return [Pair(Path(x), Path(y), bool(s), int(f)) for x, y, s, f in zip(a, b, same, fold)]
    raise RunFolderError(str(path), f"its pair list {name} is in none of "
                         + ", ".join(str(d) for d in _pair_list_dirs(run_dir)))


def _legacy_rows(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / LEGACY_SCORES_FILE
    if not path.is_file():
        raise RunFolderError(str(run_dir), f"no {SCORES_FILE} (or {LEGACY_SCORES_FILE}) in this run folder")
    with open(path) as handle:
        return list(csv.DictReader(handle))
