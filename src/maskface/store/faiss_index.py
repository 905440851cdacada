"""The SQLite backend's search index: FAISS, exact (flat) up to :data:`EXACT_LIMIT` templates, HNSW above.

The index is a cache of SQLite's vectors, saved beside the gallery with a stamp of the state it holds (the highest
template id, the removal generation), so an index older than the gallery is caught up or rebuilt, never trusted.
Template ids are the index's ids. Cosine galleries hold unit vectors searched by inner product; Euclidean ones
search by L2 distance.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import faiss
import numpy as np

#: Exact (flat) search up to this many templates: top-5 at batch 1 stays under ~10 ms on this 2-core machine
#: (docs/benchmarks.md, gallery section); above it HNSW answers in about a millisecond.
EXACT_LIMIT = 50_000
#: HNSW graph degree, build and search breadth (docs/benchmarks.md measures recall@5 against exact search).
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
#: Searches of fewer queries than this run single-threaded (see VectorIndex.search).
FEW_QUERIES = 16


def kind_for(count: int) -> str:
    return "flat" if count <= EXACT_LIMIT else "hnsw"


def prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    """Vectors as the index holds them: float32, and unit length for cosine."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
    return vectors


@dataclass
class Stamp:
    """What an index holds: templates up to ``max_id`` of removal generation ``generation``."""

    max_id: int
    generation: int


class VectorIndex:
    """A FAISS index over template ids with its stamp."""

    def __init__(self, dim: int, metric: str, kind: str, stamp: Stamp | None = None, index: faiss.Index | None = None):
        self.dim, self.metric, self.kind = dim, metric, kind
        self.stamp = stamp or Stamp(0, 0)
        self.index = index if index is not None else self._new()
        self.dirty = index is None

    def _new(self) -> faiss.Index:
        faiss_metric = faiss.METRIC_INNER_PRODUCT if self.metric == "cosine" else faiss.METRIC_L2
        if self.kind == "flat":
            inner = faiss.IndexFlat(self.dim, faiss_metric)
        elif self.kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, HNSW_M, faiss_metric)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            raise ValueError(f"unknown index kind {self.kind!r}")
        return faiss.IndexIDMap2(inner) if self.kind == "flat" else faiss.IndexIDMap(inner)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        self.index.add_with_ids(prepare(vectors, self.metric), np.asarray(ids, dtype=np.int64))
        self.stamp.max_id = max(self.stamp.max_id, int(np.max(ids)))
        self.dirty = True

    def remove(self, ids: list[int], generation: int) -> bool:
        """Drop ids (flat only; HNSW keeps them, and the store ignores ids it no longer has). Returns whether the
        index stays usable as it is."""
        self.stamp.generation = generation
        self.dirty = True
        if self.kind == "flat":
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))
        return True

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores (similarity for cosine, distance for euclidean) and ids (-1: none), ``len(queries) x k``.

        A few queries run on one thread: OpenMP's start-up and, on a busy machine, its spinning threads cost more
        than they save (flat search of 100k templates at batch 1: 53 ms p50 on two threads, 9 ms on one)."""
        k = max(1, min(k, self.size))
        threads = faiss.omp_get_max_threads()
        if len(queries) < FEW_QUERIES:
            faiss.omp_set_num_threads(1)
        try:
            scores, ids = self.index.search(prepare(queries, self.metric), k)
        finally:
            faiss.omp_set_num_threads(threads)
        if self.metric == "euclidean":
            scores = np.sqrt(np.maximum(scores, 0))
        return scores, ids

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, index=faiss.serialize_index(self.index), kind=self.kind, metric=self.metric,
                 dim=self.dim, max_id=self.stamp.max_id, generation=self.stamp.generation)
        return buffer.getvalue()

    @classmethod
    def from_file(cls, path: str) -> VectorIndex:
        with np.load(path) as saved:
            index = faiss.deserialize_index(saved["index"])
            if str(saved["kind"]) == "hnsw":
                faiss.downcast_index(index.index).hnsw.efSearch = HNSW_EF_SEARCH
            return cls(int(saved["dim"]), str(saved["metric"]), str(saved["kind"]),
                       Stamp(int(saved["max_id"]), int(saved["generation"])), index)
