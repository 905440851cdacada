"""The embedded backend: one SQLite file (WAL journal, ``synchronous=FULL``) holds people, templates and the
gallery's model; a FAISS index beside it (``GALLERY.faiss``) answers searches and is rebuilt from SQLite at will.

Every batch of templates goes in one ``BEGIN IMMEDIATE`` transaction, so a crash (even SIGKILL) leaves each batch
either complete or absent. ``UNIQUE(person, source)`` makes re-enrolling a source a no-op, which makes a re-run of
an interrupted enrolment finish it without duplicates.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from maskface.errors import GalleryError
from maskface.io.files import atomic_write_bytes
from maskface.store.base import (
    SCHEMA_VERSION,
    GalleryInfo,
    Store,
    TemplateRecord,
    vector_bytes,
    vectors_from_bytes,
)
from maskface.store.faiss_index import VectorIndex, kind_for

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    model TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    masked INTEGER,
    completed INTEGER,
    detector TEXT,
    created REAL NOT NULL,
    vector BLOB NOT NULL,
    UNIQUE (person_id, source)
);
"""

_RECORD_COLUMNS = "t.id, p.name, t.source, t.model, t.fingerprint, t.masked, t.completed, t.detector, t.created"


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _record(row: tuple) -> TemplateRecord:
    tid, person, source, model, fingerprint, masked, completed, detector, created = row
    return TemplateRecord(person, source, model, fingerprint, _flag(masked), _flag(completed), detector, created, tid)


class SQLiteStore(Store):
    """A gallery in one SQLite file plus its FAISS index (``PATH.faiss``)."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        self.location = str(self.path)
        self.index_path = self.path.with_name(self.path.name + ".faiss")
        if self.path.is_dir():
            raise GalleryError(self.path, "is a folder, not a gallery file")
        if not self.path.exists():
            if not create:
                raise GalleryError(self.path, "no gallery here (enrol someone first to create it)")
            if not self.path.parent.is_dir():
                raise GalleryError(self.path, "its folder does not exist")
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            existing = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if existing and "meta" not in existing:
                raise GalleryError(self.path, "is an SQLite file but not a maskface gallery")
            with self._write():
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
        except sqlite3.DatabaseError as exc:
            raise GalleryError(self.path, f"not a maskface gallery ({exc})") from None
        schema = self._meta().get("schema")
        if schema != str(SCHEMA_VERSION):
            raise GalleryError(self.path, f"gallery schema {schema}, this maskface reads {SCHEMA_VERSION}")
        self._index: VectorIndex | None = None
        self._seen_version: int | None = None

    # -- transactions and meta -----------------------------------------------------------------------------------
    def _write(self) -> _Transaction:
        return _Transaction(self.db)

    def _meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def info(self) -> GalleryInfo | None:
        meta = self._meta()
        if "model" not in meta:
            return None
        return GalleryInfo(meta["model"], meta["fingerprint"], meta["metric"], int(meta["dim"]))

    def set_info(self, info: GalleryInfo) -> None:
        with self._write():
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                [("model", info.model), ("fingerprint", info.fingerprint), ("metric", info.metric),
                                 ("dim", str(info.dim))])

    # -- writes --------------------------------------------------------------------------------------------------
    def add(self, records: list[TemplateRecord], vectors: np.ndarray) -> int:
        if len(records) != len(vectors):
            raise ValueError(f"{len(records)} records but {len(vectors)} vectors")
        if not records:
            return 0
        now = time.time()
        with self._write():
            before = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM templates").fetchone()[0]
            people = sorted({r.person for r in records})
            self.db.executemany("INSERT OR IGNORE INTO people (name, created) VALUES (?, ?)",
                                [(p, now) for p in people])
            ids = dict(self.db.execute(f"SELECT name, id FROM people WHERE name IN ({','.join('?' * len(people))})",
                                       people))
            self.db.executemany(
                "INSERT OR IGNORE INTO templates (person_id, source, model, fingerprint, masked, completed, detector,"
                " created, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(ids[r.person], r.source, r.model, r.fingerprint, r.masked, r.completed, r.detector,
                  r.created or now, vector_bytes(v)) for r, v in zip(records, vectors)])
            added = self.db.execute("SELECT COUNT(*) FROM templates WHERE id > ?", (before,)).fetchone()[0]
        if self._index is not None:
            self._catch_up()
        return added

    def remove(self, person: str) -> int:
        with self._write():
            row = self.db.execute("SELECT id FROM people WHERE name = ?", (person,)).fetchone()
            if row is None:
                raise GalleryError(self.location, f"no person {person!r} in this gallery")
            ids = [r[0] for r in self.db.execute("SELECT id FROM templates WHERE person_id = ?", row)]
            self.db.execute("DELETE FROM templates WHERE person_id = ?", row)
            self.db.execute("DELETE FROM people WHERE id = ?", row)
            self.db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
            generation = int(self._meta()["generation"])
        if self._index is not None:
            self._index.remove(ids, generation)
            self._seen_version = self._data_version()
        return len(ids)

    # -- reads ---------------------------------------------------------------------------------------------------
    def enrolled(self, person: str | None = None) -> set[tuple[str, str]]:
        query = "SELECT p.name, t.source FROM templates t JOIN people p ON p.id = t.person_id"
        rows = self.db.execute(query + " WHERE p.name = ?", (person,)) if person else self.db.execute(query)
        return set(rows)

    def templates_of(self, people: list[str]) -> tuple[list[TemplateRecord], np.ndarray]:
        dim = self._dim()
        if not people:
            return [], np.zeros((0, dim), np.float32)
        rows = self.db.execute(
            f"SELECT {_RECORD_COLUMNS}, t.vector FROM templates t JOIN people p ON p.id = t.person_id "
            f"WHERE p.name IN ({','.join('?' * len(people))}) ORDER BY t.id", list(people)).fetchall()
        return [_record(r[:-1]) for r in rows], vectors_from_bytes([r[-1] for r in rows], dim)

    def people_of(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        return dict(self.db.execute(
            f"SELECT t.id, p.name FROM templates t JOIN people p ON p.id = t.person_id "
            f"WHERE t.id IN ({','.join('?' * len(ids))})", [int(i) for i in ids]))

    def people(self) -> list[tuple[str, int]]:
        return list(self.db.execute("SELECT p.name, COUNT(t.id) FROM people p LEFT JOIN templates t "
                                    "ON t.person_id = p.id GROUP BY p.id ORDER BY p.name"))

    def counts(self) -> tuple[int, int]:
        people = self.db.execute("SELECT COUNT(*) FROM people").fetchone()[0]
        return people, self.db.execute("SELECT COUNT(*) FROM templates").fetchone()[0]

    def iter_templates(self, chunk: int = 10_000) -> Iterator[tuple[list[TemplateRecord], np.ndarray]]:
        dim, last = self._dim(), 0
        while True:
            rows = self.db.execute(f"SELECT {_RECORD_COLUMNS}, t.vector FROM templates t JOIN people p "
                                   "ON p.id = t.person_id WHERE t.id > ? ORDER BY t.id LIMIT ?",
                                   (last, chunk)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [_record(r[:-1]) for r in rows], vectors_from_bytes([r[-1] for r in rows], dim)

    def _dim(self) -> int:
        info = self.info()
        return info.dim if info else 0

    # -- search --------------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        index = self._current_index()
        if index.size == 0:
            return [[] for _ in queries]
        scores, ids = index.search(queries, k)
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_scores) if i >= 0]
                for row_ids, row_scores in zip(ids, scores)]

    def _data_version(self) -> int:
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def _current_index(self) -> VectorIndex:
        """The index, loaded or rebuilt on first use and caught up whenever another connection has written."""
        version = self._data_version()
        if self._index is None:
            self._index = self._load_index()
            self._catch_up()
        elif version != self._seen_version:
            self._catch_up()
        self._seen_version = version
        return self._index

    def _load_index(self) -> VectorIndex:
        info = self.info()
        if info is None:
            return VectorIndex(1, "cosine", "flat")
        try:
            index = VectorIndex.from_file(str(self.index_path))
        except (OSError, ValueError, KeyError, RuntimeError):  # absent or unreadable: a cache, rebuilt
            index = None
        if index is not None and (index.dim, index.metric) == (info.dim, info.metric):
            return index
        return VectorIndex(info.dim, info.metric, "flat")

    def _catch_up(self) -> None:
        """Bring the index up to SQLite: add the templates it lacks, or rebuild when a removal by another
        connection, a lost file or the gallery's growth past the exact-search limit makes that necessary."""
        index, info = self._index, self.info()
        if info is None:
            return
        generation = int(self._meta()["generation"])
        count = self.counts()[1]
        stale = index.stamp.generation != generation or (index.dim, index.metric) != (info.dim, info.metric)
        if stale or index.kind != kind_for(count) or index.size > 1.2 * count + 100:
            index = self._index = VectorIndex(info.dim, info.metric, kind_for(count))
            index.stamp.generation = generation
        while True:
            rows = self.db.execute("SELECT id, vector FROM templates WHERE id > ? ORDER BY id LIMIT 50000",
                                   (index.stamp.max_id,)).fetchall()
            if not rows:
                break
            index.add(np.array([r[0] for r in rows]), vectors_from_bytes([r[1] for r in rows], info.dim))

    def index_stats(self) -> dict:
        index = self._current_index()
        return {"index": index.kind, "indexed": index.size, "index_file": str(self.index_path)}

    def flush(self) -> None:
        if self._index is not None and self._index.dirty and self.info() is not None:
            atomic_write_bytes(self.index_path, self._index.to_bytes())
            self._index.dirty = False

    def close(self) -> None:
        if getattr(self, "db", None) is None:
            return
        self.flush()
        self.db.close()
        self.db = None


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on an exception (the connection is in autocommit mode,
    so nothing is ever left open)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type | None, *exc: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")

