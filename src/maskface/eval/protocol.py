"""Verification and identification protocols with synthetic masks: U-U, M-U and M-M.

A masked image goes through the same front end as a user's photo: the mask is rendered on the full image (placed
by the landmarks of the unmasked original, drawn deterministically from ``(seed, relative image path)``), then
detection and landmarks run on the *masked* image. With ``oracle_alignment`` the chip is cut with the original's
landmarks instead, separating alignment errors from recognition errors. Every detector fallback is counted.

Chips of each image variant (clean, or masked with given settings) are cached on disk and shared by every model
with the same chip geometry; embeddings are cached per model, so the three scenarios share the work.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances

from maskface.data.pairs import Pair
from maskface.eval.metrics import cmc, verification_report
from maskface.face.batch import run_face_batch, worker_pipeline
from maskface.face.pipeline import PIPELINE_VERSION, FaceConfig
from maskface.io.files import atomic_write_bytes
from maskface.io.images import load_image
from maskface.io.parallel import BatchReport
from maskface.masks.render import RENDER_VERSION
from maskface.masks.synth import mask_key, shared_synthesizer
from maskface.models.embedder import Embedder, compare, to_similarity

#: scenario -> (first image masked, second image masked)
SCENARIOS = {"U-U": (False, False), "M-U": (True, False), "M-M": (True, True)}


@dataclass(frozen=True)
class MaskSetting:
    """How test masks are drawn: the seed, the type (None = drawn per image) and the alignment regime."""

    seed: int = 0
    mask_type: str | None = None
    oracle_alignment: bool = False


def variant_chip(job: tuple[str, bool, MaskSetting]) -> tuple[np.ndarray, str]:
    """Chip of one image variant (runs in a worker): clean, or masked then re-detected (or oracle-aligned)."""
    path, masked, setting = job
    pipeline = worker_pipeline()
    image = load_image(path)
    original = pipeline.align(image, path)
    if not masked:
        return original.chip, original.detector
    synthesizer = shared_synthesizer(setting.seed, setting.mask_type)
    masked_image = synthesizer(image, original.landmarks, key=mask_key(path)).image
    if setting.oracle_alignment:
        face = pipeline.align_with_landmarks(masked_image, original.landmarks, original.detection)
        return face.chip, "oracle"
    face = pipeline.align(masked_image, path)
    return face.chip, face.detector


@dataclass
class VariantEmbeddings:
    """Embeddings of one image variant: ``path -> vector``, ``path -> detector``, ``path -> failure reason``."""

    vectors: dict[str, np.ndarray]
    detectors: dict[str, str]
    failures: dict[str, str]


class EmbeddingCache:
    """Embeddings of image variants for one model and face configuration, cached as ``.npz`` files."""

    def __init__(self, embedder: Embedder, model: str, face: FaceConfig, cache_dir: Path | None, workers: int):
        self.embedder, self.model, self.face, self.workers = embedder, model, face, workers
        self.cache_dir = cache_dir

    def _file(self, masked: bool, setting: MaskSetting) -> Path | None:
        if self.cache_dir is None:
            return None
        key = json.dumps([self.model, self.embedder.fingerprint, asdict(self.face), PIPELINE_VERSION, masked,
                          [asdict(setting), RENDER_VERSION] if masked else None])
        return self.cache_dir / f"emb-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"

    def _chip_file(self, masked: bool, setting: MaskSetting) -> Path | None:
        """Chips depend on the front end and the masks only, so every model with the same chip geometry shares
        them (detection on masked photos is most of an evaluation's cost)."""
        if self.cache_dir is None:
            return None
        key = json.dumps([asdict(self.face), PIPELINE_VERSION, masked,
                          [asdict(setting), RENDER_VERSION] if masked else None])
        return self.cache_dir / f"chips-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"

    def chips(self, paths: list[str], masked: bool, setting: MaskSetting, label: str) -> VariantChips:
        """The chips of an image variant for ``paths``, computed for those not cached yet."""
        file = self._chip_file(masked, setting)
        known = VariantChips.load(file) if file and file.is_file() else VariantChips({}, {}, {})
        missing = [p for p in dict.fromkeys(paths) if p not in known.chips and p not in known.failures]
        if missing:
            report = BatchReport()
            jobs = [(p, masked, setting) for p in missing]
            for (path, _, _), (chip, detector) in run_face_batch(jobs, variant_chip, self.face, workers=self.workers,
                                                                 description=label, report=report,
                                                                 name_of=lambda j: j[0]):
                known.chips[path], known.detectors[path] = chip, detector
            known.failures.update(report.failures)
            if file:
                known.save(file)
        return known

    def get(self, paths: list[str], masked: bool, setting: MaskSetting, label: str) -> VariantEmbeddings:
        file = self._file(masked, setting)
        known = _load_variant(file) if file and file.is_file() else VariantEmbeddings({}, {}, {})
        missing = [p for p in dict.fromkeys(paths) if p not in known.vectors and p not in known.failures]
        if missing:
            chips = self.chips(missing, masked, setting, label)
            names = [p for p in missing if p in chips.chips]
            known.failures.update({p: chips.failures[p] for p in missing if p in chips.failures})
            known.detectors.update({p: chips.detectors[p] for p in names})
            if names:
                vectors = self.embedder.embed_chips(np.stack([chips.chips[p] for p in names]))
                known.vectors.update(zip(names, vectors))
            if file:
                _save_variant(file, known)
        return known


@dataclass
class VariantChips:
    """Chips of one image variant: ``path -> chip``, ``path -> detector``, ``path -> failure reason``."""

    chips: dict[str, np.ndarray]
    detectors: dict[str, str]
    failures: dict[str, str]

    def save(self, file: Path) -> None:
        names = sorted(self.chips)
        buffer = io.BytesIO()
        np.savez(buffer, paths=np.array(names, dtype=str),
                 chips=np.stack([self.chips[n] for n in names]) if names else np.zeros((0, 0, 0, 3), np.uint8),
                 detectors=np.array([self.detectors[n] for n in names], dtype=str),
                 failed=np.array(sorted(self.failures), dtype=str),
                 reasons=np.array([self.failures[n] for n in sorted(self.failures)], dtype=str))
        atomic_write_bytes(file, buffer.getvalue())

    @classmethod
    def load(cls, file: Path) -> VariantChips:
        data = np.load(file)
        names = [str(n) for n in data["paths"]]
        return cls(dict(zip(names, data["chips"])), dict(zip(names, map(str, data["detectors"]))),
                   dict(zip(map(str, data["failed"]), map(str, data["reasons"]))))


def _save_variant(file: Path, variant: VariantEmbeddings) -> None:
    names = sorted(variant.vectors)
    buffer = io.BytesIO()
    np.savez(buffer, paths=np.array(names, dtype=str),
             vectors=np.stack([variant.vectors[n] for n in names]) if names else np.zeros((0, 0), np.float32),
             detectors=np.array([variant.detectors.get(n, "") for n in names], dtype=str),
             failed=np.array(sorted(variant.failures), dtype=str),
             reasons=np.array([variant.failures[n] for n in sorted(variant.failures)], dtype=str))
    atomic_write_bytes(file, buffer.getvalue())


def _load_variant(file: Path) -> VariantEmbeddings:
    data = np.load(file)
    names = [str(n) for n in data["paths"]]
    return VariantEmbeddings(dict(zip(names, data["vectors"])), dict(zip(names, map(str, data["detectors"]))),
                             dict(zip(map(str, data["failed"]), map(str, data["reasons"]))))


@dataclass
class PairScores:
    """Similarity scores (higher = more alike) of a pair list, with what went wrong on the way."""

    scores: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    failed_pairs: int
    detectors: dict[str, dict[str, int]]


def score_pairs(pairs: list[Pair], scenario: str, cache: EmbeddingCache, setting: MaskSetting) -> PairScores:
    """Score every pair in a scenario. A pair with an image that failed gets the lowest score of the run."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    mask_a, mask_b = SCENARIOS[scenario]
    sides = []
    for side, masked in (("a", mask_a), ("b", mask_b)):
        paths = [str(getattr(p, side)) for p in pairs]
        label = f"{scenario} side {side}: {'masked' if masked else 'clean'}"
        sides.append((paths, cache.get(paths, masked, setting, label)))
    metric = cache.embedder.spec.metric
    scores = np.full(len(pairs), np.nan)
    ok = np.array([pa in sides[0][1].vectors and pb in sides[1][1].vectors
                   for pa, pb in zip(sides[0][0], sides[1][0])], dtype=bool)
    if ok.any():
        a = np.stack([sides[0][1].vectors[p] for p, good in zip(sides[0][0], ok) if good])
        b = np.stack([sides[1][1].vectors[p] for p, good in zip(sides[1][0], ok) if good])
        scores[ok] = to_similarity(compare(a, b, metric), metric)
    floor = np.nanmin(scores) - 1.0 if ok.any() else 0.0
    scores[~ok] = floor
    detectors = {side: dict(Counter(emb.detectors.get(p, "failed") for p in paths))
                 for side, (paths, emb) in zip("ab", sides)}
    labels = np.array([p.same for p in pairs], dtype=bool)
    folds = np.array([p.fold for p in pairs])
    return PairScores(scores, labels, folds, int((~ok).sum()), detectors)


def verification(pairs: list[Pair], scenario: str, cache: EmbeddingCache, setting: MaskSetting) -> tuple[dict,
                                                                                                     PairScores]:
    """The report dict of one scenario (keys of ``report.json``) and the scores behind it."""
    return crossfit_verification([(pairs, cache)], scenario, setting)


def crossfit_verification(halves: list[tuple[list[Pair], EmbeddingCache]], scenario: str,
                          setting: MaskSetting) -> tuple[dict, PairScores]:
    """Verification where each part of the pairs is scored by its own model (cross-fitting: a model never scores
    the people it trained on); the parts' scores are pooled into one report with the usual 10-fold accuracy."""
    parts = [score_pairs(pairs, scenario, cache, setting) for pairs, cache in halves]
    cache = halves[0][1]
    if len(halves) > 1:
        model = "; ".join(f"{c.model} on folds {fold_span({p.fold for p in ps})}" for ps, c in halves)
    else:
        model = cache.model
    return pooled_report(model, scenario, parts, asdict(setting), asdict(cache.face), PIPELINE_VERSION)


def pooled_report(model: str, scenario: str, parts: list[PairScores], masks: dict | None, face: dict,
                  pipeline: int) -> tuple[dict, PairScores]:
    """One verification report (keys of ``report.json``) over the pooled scores of several parts; ``pipeline`` is
    the face front end's :data:`~maskface.face.pipeline.PIPELINE_VERSION` that found and aligned the faces."""
    result = PairScores(np.concatenate([p.scores for p in parts]), np.concatenate([p.labels for p in parts]),
                        np.concatenate([p.folds for p in parts]), sum(p.failed_pairs for p in parts),
                        _merge_counts([p.detectors for p in parts]))
    single_fold = len(np.unique(result.folds)) <= 1
    folds = np.arange(len(result.scores)) % 10 + 1 if single_fold else result.folds
    report = {"model": model, "scenario": scenario, **verification_report(result.scores, result.labels, folds),
              "failures": result.failed_pairs, "detectors": result.detectors,
              "masks": masks if scenario != "U-U" else None, "face": face, "pipeline": pipeline}
    if single_fold:
        report["folds_note"] = "the pairs file has no folds: 10 folds were assigned round-robin"
    return report, result


def _merge_counts(parts: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    merged: dict[str, Counter] = {}
    for part in parts:
        for side, counts in part.items():
            merged.setdefault(side, Counter()).update(counts)
    return {side: dict(counts) for side, counts in merged.items()}


def fold_span(folds: set[int]) -> str:
    """Folds as text: ``6-10`` for a run of folds, else ``1,3,5``."""
    folds = sorted(folds)
    if len(folds) > 1 and folds == list(range(folds[0], folds[-1] + 1)):
        return f"{folds[0]}-{folds[-1]}"
    return ",".join(map(str, folds))


def identification(people: dict[str, list[Path]], cache: EmbeddingCache, setting: MaskSetting,
                   masked_probes: bool = True, max_rank: int = 20) -> dict:
    """Closed-set identification: each person's first image (unmasked) in the gallery, the rest as probes."""
    people = {name: paths for name, paths in people.items() if len(paths) >= 2}
    gallery = [str(paths[0]) for paths in people.values()]
    gallery_ids = list(people)
    probes = [(str(p), name) for name, paths in people.items() for p in paths[1:]]
    gal = cache.get(gallery, False, setting, "gallery (clean)")
    prb = cache.get([p for p, _ in probes], masked_probes, setting, "probes (masked)" if masked_probes else "probes")
    g_keep = [i for i, p in enumerate(gallery) if p in gal.vectors]
    p_keep = [(p, n) for p, n in probes if p in prb.vectors]
    g = np.stack([gal.vectors[gallery[i]] for i in g_keep]).astype(np.float64)
    q = np.stack([prb.vectors[p] for p, _ in p_keep]).astype(np.float64)
    metric = cache.embedder.spec.metric
    if metric == "cosine":
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        similarity = q @ g.T
    else:
        similarity = -euclidean_distances(q, g)
    gallery_labels = np.array([gallery_ids[i] for i in g_keep])
    probe_labels = np.array([n for _, n in p_keep])
    in_gallery = np.isin(probe_labels, gallery_labels)
    curve = cmc(similarity[in_gallery], probe_labels[in_gallery], gallery_labels, max_rank)
    # Probes whose face or gallery entry failed count as misses at every rank.
    curve = curve * in_gallery.sum() / len(probes)
    return {"model": cache.model, "gallery": len(gallery), "probes": len(probes), "masked_probes": masked_probes,
            "rank1": float(curve[0]), "rank5": float(curve[min(4, len(curve) - 1)]), "cmc": curve.tolist(),
            "failures": len(probes) - len(p_keep) + len(gallery) - len(g_keep)}
