"""The gallery API (``maskface.Gallery``): enrol people's faces, then answer "who is this?" against them.

A gallery lives in an SQLite file (with a FAISS index beside it) or, given a ``postgresql://`` URL, in PostgreSQL
with pgvector (:mod:`maskface.store`). Every template remembers the model and weights fingerprint that made it,
the mask status the front end saw and whether a mask-aware model completed the face; a probe from another model is
refused, and each probe-template pair is held to the threshold calibrated for its pair type
(``Recognizer.pair_threshold``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from maskface.defaults import DEFAULT_MODEL
from maskface.errors import GalleryError, MaskfaceError
from maskface.io.inputs import ImageInput, input_name
from maskface.io.outputs import check_targets
from maskface.models.embedder import is_same, score_matrix
from maskface.store import GalleryInfo, TemplateRecord, open_store

if TYPE_CHECKING:
    from maskface.apps.recognizer import Recognizer
    from maskface.face.pipeline import Face, FaceConfig

Combine = Literal["best", "mean"]
OnError = Literal["skip", "raise"]
#: Templates fetched from the index per candidate asked for (a person may hold several of the nearest).
OVERFETCH = 10
#: People re-scored exactly against all their templates, at least.
MIN_CANDIDATES = 10


@dataclass
class EnrollResult:
    """What an enrolment did: templates added, sources that were already enrolled, images skipped and why."""

    person: str
    added: int
    already: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"person": self.person, "added": self.added, "already": self.already,
                "skipped": [{"source": s, "reason": r} for s, r in self.skipped]}


@dataclass
class Candidate:
    """One enrolled person as an answer: the score of the probe against them (the best template's, or the mean over
    their templates), the threshold of that pair type, and whether the score passes it."""

    person: str
    score: float
    threshold: float
    accepted: bool
    templates: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Identification:
    """The answer to "who is this?": the top candidates, best first, and ``unknown`` when none passes its threshold.
    ``masked`` is what the front end saw on the probe, ``completed`` whether a mask-aware model completed it."""

    candidates: list[Candidate]
    unknown: bool
    face: Face | None = None
    metric: str = "cosine"
    masked: bool | None = None
    completed: bool | None = None
    source: str | None = None

    @property
    def person(self) -> str | None:
        """The identified person: the best candidate that passes its threshold, else None."""
        return next((c.person for c in self.candidates if c.accepted), None)

    def to_dict(self) -> dict:
        answer = {"source": self.source, "person": self.person, "unknown": self.unknown, "metric": self.metric,
                  "masked": self.masked, "completed": self.completed,
                  "candidates": [c.to_dict() for c in self.candidates]}
        if self.face is not None:
            answer["box"] = [float(x) for x in self.face.box]
            answer["detector"] = self.face.detector
        return answer


@dataclass
class Person:
    name: str
    templates: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class GalleryStats:
    location: str
    model: str | None
    fingerprint: str | None
    metric: str | None
    dim: int | None
    people: int
    templates: int
    masked: int
    completed: int
    index: dict

    def to_dict(self) -> dict:
        return asdict(self)


def default_source(image: ImageInput) -> str:
    """A source name for an image given without one: its path, else a hash of its content (two different arrays
    are two sources; the same array twice is one)."""
    if isinstance(image, str | os.PathLike):
        return os.fsdecode(image)
    data = image.tobytes() if hasattr(image, "tobytes") else bytes(image)
    return f"{input_name(image)}:sha256:{hashlib.sha256(data).hexdigest()[:16]}"


class Gallery:
    """Enrolled people and their face templates; see the module docstring.

    - ``location``: a path to the gallery's SQLite file, or a ``postgresql://`` URL.
    - ``model``: a model spec (as ``maskface.load`` takes) or a loaded :class:`Recognizer`; None means the
      gallery's own model, or ``DEFAULT_MODEL`` for a new gallery. Another model than the gallery's is refused.
    - ``create``: make the gallery when it does not exist (else :class:`GalleryError`).
    - ``device``, ``face``, ``fmr``: passed to ``maskface.load`` when the model is loaded (on first need); ``fmr``
      picks the false-match rate of the per-pair-type thresholds, e.g. ``"1e-4"`` for a large gallery.
    """

    def __init__(self, location: str | os.PathLike, model: str | Recognizer | None = None, create: bool = True, *,
                 device: str | None = None, face: FaceConfig | None = None, fmr: str | None = None):
        self.store = open_store(location if isinstance(location, str) else Path(location), create=create)
        self.location = self.store.location
        self._lock = threading.RLock()
        self._device, self._face, self._fmr = device, face, fmr
        self._recognizer: Recognizer | None = None
        info = self.store.info()
        if model is None or isinstance(model, str):
            self.model = model or (info.model if info else DEFAULT_MODEL)
        elif fmr is not None:
            self.store.close()
            raise ValueError("fmr applies when the gallery loads its model; give it to maskface.load for a ready "
                             "Recognizer")
        else:
            self._recognizer, self.model = model, model.embedder.spec.name
        if info is not None and self.model != info.model:
            self.store.close()
            raise GalleryError(self.location, f"holds templates of model {info.model!r}, not {self.model!r}: open "
                                              "it without a model, or enrol into another gallery")
        if self._recognizer is not None:
            self._check_fingerprint(self._recognizer)

    # -- the model -----------------------------------------------------------------------------------------------
    @property
    def info(self) -> GalleryInfo | None:
        with self._lock:
            return self.store.info()

    @property
    def recognizer(self) -> Recognizer:
        """The gallery's recogniser, loaded on first use and checked against the templates' fingerprint."""
        with self._lock:
            if self._recognizer is None:
                from maskface.apps.recognizer import load

                recognizer = load(self.model, device=self._device, face=self._face, fmr=self._fmr)
                self._check_fingerprint(recognizer)
                self._recognizer = recognizer
            return self._recognizer

    def _check_fingerprint(self, recognizer: Recognizer) -> None:
        info = self.store.info()
        fingerprint = recognizer.embedder.fingerprint
        if info is not None and fingerprint != info.fingerprint:
            raise GalleryError(self.location, f"its templates come from {info.model!r} with weights {info.fingerprint}"
                                              f", but the model loaded has weights {fingerprint}: their embeddings "
                                              "cannot be compared; re-enrol into a new gallery")

    def _ensure_info(self, recognizer: Recognizer, dim: int) -> GalleryInfo:
        info = self.store.info()
        if info is None:
            info = GalleryInfo(self.model, recognizer.embedder.fingerprint, recognizer.metric, dim)
            self.store.set_info(info)
        return info

    def check_probe_model(self, model: str, fingerprint: str) -> None:
        """Refuse embeddings made by another model than the gallery's (name and weights fingerprint)."""
        info = self.info
        if info is not None and (model, fingerprint) != (info.model, info.fingerprint):
            raise GalleryError(self.location, f"holds templates of {info.model!r} (weights {info.fingerprint}), "
                                              f"the probe comes from {model!r} (weights {fingerprint})")

    # -- enrolment -----------------------------------------------------------------------------------------------
    def enroll(self, person: str, images: ImageInput | Sequence[ImageInput], on_error: OnError = "skip", *,
               sources: Sequence[str] | None = None) -> EnrollResult:
        """Add the face of each image as a template of ``person`` (one transaction). Sources already enrolled for
        this person are counted as ``already``, not added twice. An image without a usable face is skipped with
        its reason (``on_error="skip"``) or raises its :class:`MaskfaceError` (``"raise"``, nothing is added)."""
        from maskface.apps.recognizer import is_several

        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', not {on_error!r}")
        person = check_person(person)
        images = list(images) if is_several(images) else [images]
        sources = [default_source(i) for i in images] if sources is None else [str(s) for s in sources]
        if len(sources) != len(images):
            raise ValueError(f"{len(images)} images but {len(sources)} sources")
        with self._lock:
            done = {s for _, s in self.store.enrolled(person)}
        result = EnrollResult(person, 0)
        faces, kept = [], []
        recognizer = self.recognizer
        for image, source in zip(images, sources):
            if source in done:
                result.already += 1
                continue
            try:
                faces.append(recognizer.face(image))
                kept.append(source)
            except MaskfaceError as exc:
                if on_error == "raise":
                    raise
                result.skipped.append((source, exc.reason))
        if faces:
            vectors, completed = embed_faces(recognizer, faces)
            result.added = self.add_embeddings(person, vectors, kept, masked=[f.masked for f in faces],
                                               completed=completed, detectors=[f.detector for f in faces])
            result.already += len(faces) - result.added
        return result

    def add_embeddings(self, person: str | Sequence[str], vectors: np.ndarray, sources: Sequence[str], *,
                       masked: Sequence[bool | None] | None = None, completed: Sequence[bool | None] | None = None,
                       detectors: Sequence[str | None] | None = None) -> int:
        """Add precomputed templates of this gallery's model in one transaction (``person`` is one name or one per
        row). Returns how many were new; a (person, source) already enrolled is left as it is."""
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        n = len(vectors)
        people = [check_person(person)] * n if isinstance(person, str) else [check_person(p) for p in person]
        if not np.all(np.isfinite(vectors)):
            raise ValueError("templates must be finite (a NaN row is a face that was not found)")
        recognizer = self.recognizer
        with self._lock:
            info = self._ensure_info(recognizer, vectors.shape[1])
            if vectors.shape[1] != info.dim:
                raise ValueError(f"templates of {info.dim} values expected, got {vectors.shape[1]}")
            records = [TemplateRecord(p, s, info.model, info.fingerprint, _opt(masked, i), _opt(completed, i),
                                      _opt(detectors, i)) for i, (p, s) in enumerate(zip(people, sources))]
            return self.store.add(records, vectors)

    # -- identification ------------------------------------------------------------------------------------------
    def identify(self, image: ImageInput, top: int = 5, combine: Combine = "best") -> Identification:
        """The ``top`` enrolled people nearest the face of ``image``, best first; ``unknown`` when none passes the
        threshold of its pair type. ``combine``: a person's score is their best template's (``"best"``) or the mean
        over their templates (``"mean"``). Raises the image's :class:`MaskfaceError` when it has no usable face."""
        recognizer = self.recognizer
        face = recognizer.face(image)
        vectors, completed = embed_faces(recognizer, [face])
        answer = self.identify_embeddings(vectors, masked=[face.masked], completed=completed, top=top,
                                          combine=combine)[0]
        answer.face, answer.source = face, input_name(image)
        return answer

    def identify_embeddings(self, vectors: np.ndarray, *, masked: Sequence[bool | None] | None = None,
                            completed: Sequence[bool | None] | None = None, top: int = 5,
                            combine: Combine = "best") -> list[Identification]:
        """:meth:`identify` for precomputed embeddings of this gallery's model (one per row; ``masked`` and
        ``completed`` per row as :meth:`add_embeddings` takes them), searched in one call."""
        if combine not in ("best", "mean"):
            raise ValueError(f"combine must be 'best' or 'mean', not {combine!r}")
        if top < 1:
            raise ValueError(f"top must be at least 1, not {top}")
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        recognizer = self.recognizer
        info = self.info
        metric = info.metric if info else recognizer.metric
        if info is not None and vectors.shape[1] != info.dim:
            raise ValueError(f"probes of {info.dim} values expected, got {vectors.shape[1]}")
        with self._lock:
            hits = self.store.search(vectors, max(top, MIN_CANDIDATES) * OVERFETCH) if info else [[]] * len(vectors)
            answers = []
            for row, found in enumerate(hits):
                flag = pair_flag(_opt(masked, row), _opt(completed, row))
                owners = self.store.people_of([i for i, _ in found])
                people = list(dict.fromkeys(owners[i] for i, _ in found if i in owners))[: max(top, MIN_CANDIDATES)]
                records, templates = self.store.templates_of(people)
                candidates = score_people(vectors[row], flag, records, templates, recognizer, metric, combine)[:top]
                answers.append(Identification(candidates, not any(c.accepted for c in candidates), None, metric,
                                              _opt(masked, row), _opt(completed, row)))
        return answers

    # -- management ----------------------------------------------------------------------------------------------
    def remove(self, person: str) -> int:
        """Remove a person and all their templates (one transaction); returns how many templates went."""
        with self._lock:
            return self.store.remove(person)

    def people(self) -> list[Person]:
        with self._lock:
            return [Person(name, count) for name, count in self.store.people()]

    def templates(self, person: str) -> list[TemplateRecord]:
        """The templates of one person (records only)."""
        with self._lock:
            records, _ = self.store.templates_of([person])
        if not records:
            raise GalleryError(self.location, f"no person {person!r} in this gallery")
        return records

    def stats(self) -> GalleryStats:
        with self._lock:
            info = self.store.info()
            people, templates = self.store.counts()
            masked = completed = 0
            for records, _ in self.store.iter_templates():
                masked += sum(bool(r.masked) for r in records)
                completed += sum(bool(r.completed) for r in records)
            return GalleryStats(self.location, info and info.model, info and info.fingerprint, info and info.metric,
                                info and info.dim, people, templates, masked, completed,
                                self.store.index_stats() if info else {})

    def export(self, path: str | os.PathLike) -> int:
        """Write every template to an ``.npz`` file (atomically): ``vectors`` (N x D float32), ``people``,
        ``sources``, ``masked`` and ``completed`` (1, 0, or -1 for unknown), ``detectors``, and the gallery's
        ``model``, ``fingerprint`` and ``metric``. Returns how many templates it holds."""
        import io

        from maskface.io.files import atomic_write_bytes
        from maskface.store import is_postgres_url

        check_targets([] if is_postgres_url(self.location) else [self.location], file=Path(path))
        with self._lock:
            info = self.store.info()
            chunks = list(self.store.iter_templates())
        records = [r for chunk, _ in chunks for r in chunk]
        dim = info.dim if info else 0
        vectors = np.concatenate([v for _, v in chunks]) if chunks else np.zeros((0, dim), np.float32)

        def tri(values: list[bool | None]) -> np.ndarray:
            return np.array([-1 if v is None else int(v) for v in values], np.int8)

        buffer = io.BytesIO()
        np.savez(buffer, vectors=vectors, people=np.array([r.person for r in records], str),
                 sources=np.array([r.source for r in records], str), masked=tri([r.masked for r in records]),
                 completed=tri([r.completed for r in records]),
                 detectors=np.array([r.detector or "" for r in records], str),
                 model=np.array(info.model if info else ""), fingerprint=np.array(info.fingerprint if info else ""),
                 metric=np.array(info.metric if info else ""))
        atomic_write_bytes(path, buffer.getvalue())
        return len(records)

    def close(self) -> None:
        """Save the search index (SQLite) and release the connection."""
        with self._lock:
            self.store.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Gallery({self.location!r}, model={self.model!r})"


def check_person(person: object) -> str:
    if not isinstance(person, str) or not person.strip():
        raise ValueError(f"a person's name must be a non-empty string, not {person!r}")
    return person


def pair_flag(masked: bool | None, completed: bool | None) -> bool:
    """A face's side of the pair type: for a mask-aware model whether it completed the face, else whether the
    front end saw a mask."""
    return bool(completed) if completed is not None else bool(masked)


def embed_faces(recognizer: Recognizer, faces: list[Face]) -> tuple[np.ndarray, list[bool | None]]:
    """Embeddings of aligned faces and, per face, whether a mask-aware model completed it (None for others)."""
    return embed_chips(recognizer, np.stack([face.chip for face in faces]))


def embed_chips(recognizer: Recognizer, chips: np.ndarray) -> tuple[np.ndarray, list[bool | None]]:
    """Embeddings of chips cut as the recogniser wants them, and which ones a mask-aware model completed."""
    vectors, completed = recognizer.embed_chips_with_completion(chips)
    flags = [None] * len(chips) if completed is None else [bool(c) for c in completed]
    return vectors, flags


def score_people(probe: np.ndarray, flag: bool, records: list[TemplateRecord], templates: np.ndarray,
                 recognizer: Recognizer, metric: str, combine: Combine) -> list[Candidate]:
    """Every person among ``records`` scored against the probe, best first."""
    if not records:
        return []
    scores = score_matrix(probe[None], templates, metric)[0]
    thresholds = np.array([recognizer.pair_threshold(flag, pair_flag(r.masked, r.completed)) for r in records])
    by_person: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        by_person.setdefault(record.person, []).append(i)
    candidates = []
    for person, rows in by_person.items():
        if combine == "best":
            pick = rows[int(np.argmin(scores[rows]) if metric == "euclidean" else np.argmax(scores[rows]))]
            score, threshold = float(scores[pick]), float(thresholds[pick])
        else:
            score, threshold = float(np.mean(scores[rows])), float(np.mean(thresholds[rows]))
        candidates.append(Candidate(person, score, threshold, is_same(score, threshold, metric), len(rows)))
    return sorted(candidates, key=lambda c: c.score, reverse=metric != "euclidean")


def _opt(values: Sequence | None, index: int):
    return None if values is None else values[index]
