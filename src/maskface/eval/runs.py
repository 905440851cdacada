"""Verification runs end to end, as ``maskface eval`` starts them: each writes its run folders (report, scores and
plots, by :func:`~maskface.eval.report.write_run`) and returns the reports."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from maskface.data.chips import LFW_FACE
from maskface.data.lfw import LFW
from maskface.data.pairs import Pair
from maskface.errors import DatasetError
from maskface.eval.protocol import (
    SCENARIOS,
    EmbeddingCache,
    MaskSetting,
    crossfit_verification,
    identification,
    verification,
)
from maskface.eval.report import pool_runs, write_run
from maskface.face.pipeline import FaceConfig
from maskface.io.files import atomic_write_text
from maskface.io.locations import cache_dir
from maskface.models.embedder import load_embedder

#: MFR2's mask-status groups: name -> how many of a pair's two faces are masked.
MASK_STATUS_GROUPS = {"unmasked-unmasked": 0, "masked-unmasked": 1, "masked-masked": 2}

#: (pairs, the embedding cache of the model that scores them)
Part = tuple[list[Pair], EmbeddingCache]


def model_cache(model: str, face: FaceConfig, workers: int, cache: Path | None = None,
                device: str | None = None) -> EmbeddingCache:
    """The embedding cache of ``model``: faces cut to the model's chip geometry, files under ``cache`` (default:
    ``eval/`` in the user cache)."""
    embedder = load_embedder(model, device=device)
    return EmbeddingCache(embedder, model, embedder.face_config(face), cache or cache_dir() / "eval", workers)


def run_name(scenario: str, setting: MaskSetting) -> str:
    """A scenario's run folder: ``M-U``, or ``M-U-oracle`` when masked faces are cut with the original's
    landmarks."""
    return scenario + ("-oracle" if setting.oracle_alignment and scenario != "U-U" else "")


def lfw_parts(lfw: LFW, models: list[tuple[str, list[int]]], face: FaceConfig, workers: int,
              cache: Path | None = None, device: str | None = None) -> list[Part]:
    """LFW View 2 pairs split by the model that scores them, one ``(model, folds)`` each; a fold has one model.
    Faces are found as for LFW's chips: the one nearest the centre, with the centre box as the last fallback."""
    face = replace(face, select=LFW_FACE.select, fallback=LFW_FACE.fallback)
    view2 = lfw.view2_pairs()
    parts, seen = [], set()
    for model, folds in models:
        wanted = set(folds)
        if wanted & seen:
            raise ValueError(f"fold(s) {sorted(wanted & seen)} are given to more than one model")
        seen |= wanted
        parts.append(([p for p in view2 if p.fold in wanted], model_cache(model, face, workers, cache, device)))
    return parts


def verification_runs(parts: list[Part], scenarios: list[str], setting: MaskSetting, out_dir: Path) -> list[dict]:
    """One run folder per scenario under ``out_dir``, each part scored by its own model and pooled into one
    10-fold report (cross-fitting when there are several parts)."""
    pairs = [pair for part, _ in parts for pair in part]
    reports = []
    for scenario in dict.fromkeys(scenarios):
        report, result = crossfit_verification(parts, scenario, setting)
        write_run(out_dir / run_name(scenario, setting), report, result, pairs)
        reports.append(report)
    return reports


def identification_run(lfw: LFW, cache: EmbeddingCache, setting: MaskSetting, out_dir: Path) -> dict:
    """Closed-set identification on LFW (unmasked gallery, masked probes), written to ``identification.json``."""
    result = identification(lfw.identities(), cache, setting)
    atomic_write_text(out_dir / "identification.json", json.dumps(result, indent=2) + "\n")
    return result


def pairs_run(pairs: list[Pair], scenario: str, cache: EmbeddingCache, setting: MaskSetting,
              out_dir: Path) -> dict:
    """A pairs file's run in ``out_dir``."""
    report, result = verification(pairs, scenario, cache, setting)
    write_run(out_dir, report, result, pairs)
    return report


def mask_status_runs(pairs: list[Pair], scenario: str, cache: EmbeddingCache, setting: MaskSetting,
                     out_dir: Path) -> tuple[list[dict], list[str]]:
    """One run per mask-status group of labelled pairs (``out_dir/<group>``); returns the reports and, for each
    group that cannot be measured, why."""
    reports, skipped = [], []
    for name, masked_count in MASK_STATUS_GROUPS.items():
        subset = [p for p in pairs if None not in p.masked and sum(bool(m) for m in p.masked) == masked_count]
        if not subset or all(p.same for p in subset) or not any(p.same for p in subset):
            skipped.append(f"{name}: skipped (needs genuine and impostor pairs; has {len(subset)} pairs)")
            continue
        report = pairs_run(subset, scenario, cache, setting, out_dir / name)
        report["scenario"] = f"{scenario} {name}"
        reports.append(report)
    return reports, skipped


def shared_scenarios(halves: list[Path]) -> list[str]:
    """The scenario folders (holding ``report.json``) found in every one of ``halves``: U-U, M-U, M-M, then the
    oracle runs."""
    for folder in halves:
        if not folder.is_dir():
            raise DatasetError(str(folder), "no such run folder")
    common = set.intersection(*({p.parent.name for p in h.glob("*/report.json")} for h in halves))
    order = {scenario: i for i, scenario in enumerate(SCENARIOS)}
    names = sorted(common, key=lambda name: (name.endswith("-oracle"), order.get(name[:3], len(order)), name))
    if not names:
        raise DatasetError(", ".join(map(str, halves)), "no scenario folder (holding report.json) is in all of them")
    return names


def pool_folders(halves: list[Path], out_dir: Path) -> list[dict]:
    """Cross-fitting from finished runs on disjoint folds: each of their :func:`shared_scenarios` pooled into
    ``out_dir/<scenario>``, as one cross-fitted run would have written it."""
    reports = []
    for name in shared_scenarios(halves):
        report, result, pairs = pool_runs([h / name for h in halves])
        write_run(out_dir / name, report, result, pairs)
        reports.append(report)
    return reports
