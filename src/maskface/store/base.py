"""The records a gallery keeps and the interface every storage backend offers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

#: Bump when the tables change; a gallery of another version is refused with a clear error.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class GalleryInfo:
    """What every template of a gallery shares: the model that made it (name and weights fingerprint), how its
    scores read (``cosine``: higher = more alike; ``euclidean``: lower) and the embedding's length."""

    model: str
    fingerprint: str
    metric: str
    dim: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TemplateRecord:
    """One enrolled face: whose, from which source (an image's name; unique per person), the mask status the front
    end saw (None: not measured), whether the model completed the face (None: not a mask-aware model), the
    detector that found it, the model and weights fingerprint that embedded it, and when (Unix time)."""

    person: str
    source: str
    model: str
    fingerprint: str
    masked: bool | None = None
    completed: bool | None = None
    detector: str | None = None
    created: float = 0.0
    id: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class Store(ABC):
    """A gallery's storage: people, their templates (record + vector) and a nearest-neighbour search.

    Every write is one transaction: after a crash a batch is either all there or not there at all."""

    location: str

    @abstractmethod
    def info(self) -> GalleryInfo | None:
        """The gallery's model and metric; None for a new, empty gallery."""

    @abstractmethod
    def set_info(self, info: GalleryInfo) -> None:
        """Record the model of a new gallery (before its first template)."""

    @abstractmethod
    def add(self, records: list[TemplateRecord], vectors: np.ndarray) -> int:
        """Add templates in one transaction; a (person, source) already enrolled is skipped. Returns how many
        were added."""

    @abstractmethod
    def enrolled(self, person: str | None = None) -> set[tuple[str, str]]:
        """The (person, source) pairs enrolled (of one person, or all)."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """For each query row, up to ``k`` nearest templates as (template id, index score), nearest first."""

    @abstractmethod
    def templates_of(self, people: list[str]) -> tuple[list[TemplateRecord], np.ndarray]:
        """Every template of these people (records and ``N x D`` vectors, in step)."""

    @abstractmethod
    def people_of(self, ids: list[int]) -> dict[int, str]:
        """Template id -> person."""

    @abstractmethod
    def remove(self, person: str) -> int:
        """Remove a person and their templates in one transaction; returns how many templates went."""

    @abstractmethod
    def people(self) -> list[tuple[str, int]]:
        """(person, number of templates), by name."""

    @abstractmethod
    def counts(self) -> tuple[int, int]:
        """(people, templates)."""

    @abstractmethod
    def iter_templates(self, chunk: int = 10_000) -> Iterator[tuple[list[TemplateRecord], np.ndarray]]:
        """Every template, in chunks of records and vectors (for export)."""

    def index_stats(self) -> dict:
        """What the search index is (kind, size), for ``gallery stats``."""
        return {}

    def flush(self) -> None:
        """Save what is only in memory (the SQLite backend's FAISS index); the records are already durable."""
        return None

    @abstractmethod
    def close(self) -> None:
        """Flush and release the connection."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def vector_bytes(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def vectors_from_bytes(blobs: list[bytes], dim: int) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim).astype(np.float32)
