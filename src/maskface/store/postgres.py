"""The shared backend: PostgreSQL with pgvector, selected by a ``postgresql://`` URL, for several clients at once.

Tables ``maskface_meta``, ``maskface_people`` and ``maskface_templates`` (``embedding vector(D)`` with pgvector's HNSW
index: cosine ops for cosine models, L2 ops for Euclidean ones). Each batch of templates is one transaction, and
``UNIQUE(person_id, source)`` with ``ON CONFLICT DO NOTHING`` makes re-enrolment a no-op, as in SQLite.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from maskface.errors import GalleryError
from maskface.store.base import SCHEMA_VERSION, GalleryInfo, Store, TemplateRecord

#: pgvector's HNSW search breadth (its default, 40, loses recall on large galleries: docs/benchmarks.md).
EF_SEARCH = 100

_RECORD_COLUMNS = "t.id, p.name, t.source, t.model, t.fingerprint, t.masked, t.completed, t.detector, t.created"


def redacted(url: str) -> str:
    """The URL without its password, fit for messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _record(row: tuple) -> TemplateRecord:
    tid, person, source, model, fingerprint, masked, completed, detector, created = row
    return TemplateRecord(person, source, model, fingerprint, masked, completed, detector, created, tid)


def _vector_text(vector: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, np.float32)) + "]"


def _parse_vectors(texts: list[str], dim: int) -> np.ndarray:
    """pgvector's text form (``[0.1,0.2,...]``) as an ``N x D`` array."""
    if not texts:
        return np.zeros((0, dim), np.float32)
    return np.array([t[1:-1].split(",") for t in texts], np.float32).reshape(len(texts), dim)


class PostgresStore(Store):
    """A gallery in a PostgreSQL database with the pgvector extension."""

    def __init__(self, url: str, create: bool = True):
        self.location = redacted(url)
        try:
            import psycopg
        except ImportError:
            raise GalleryError(self.location, "PostgreSQL galleries need psycopg: pip install 'maskface[postgres]'") \
                from None
        try:
            self.db = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise GalleryError(self.location, f"cannot connect: {str(exc).strip().splitlines()[0]}") from None
        try:
            exists = self.db.execute("SELECT to_regclass('maskface_meta')").fetchone()[0] is not None
            if not exists and not create:
                raise GalleryError(self.location, "no maskface gallery in this database")
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(7354021)")  # one creator at a time
                self.db.execute("CREATE EXTENSION IF NOT EXISTS vector")
                self.db.execute("CREATE TABLE IF NOT EXISTS maskface_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
                self.db.execute("CREATE TABLE IF NOT EXISTS maskface_people (id BIGSERIAL PRIMARY KEY, "
                                "name TEXT NOT NULL UNIQUE, created DOUBLE PRECISION NOT NULL)")
                self.db.execute("INSERT INTO maskface_meta VALUES ('schema', %s), ('generation', '0') "
                                "ON CONFLICT DO NOTHING", (str(SCHEMA_VERSION),))
        except psycopg.Error as exc:
            raise GalleryError(self.location, f"cannot use this database: {str(exc).strip().splitlines()[0]}") from None
        schema = self._meta().get("schema")
        if schema != str(SCHEMA_VERSION):
            raise GalleryError(self.location, f"gallery schema {schema}, this maskface reads {SCHEMA_VERSION}")
        self.db.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
        self._info = self.info()

    def _meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM maskface_meta").fetchall())

    def info(self) -> GalleryInfo | None:
        meta = self._meta()
        if "model" not in meta:
            return None
        return GalleryInfo(meta["model"], meta["fingerprint"], meta["metric"], int(meta["dim"]))

    def set_info(self, info: GalleryInfo) -> None:
        ops = "vector_cosine_ops" if info.metric == "cosine" else "vector_l2_ops"
        with self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(7354021)")
            self.db.execute(
                f"CREATE TABLE IF NOT EXISTS maskface_templates (id BIGSERIAL PRIMARY KEY, "
                f"person_id BIGINT NOT NULL REFERENCES maskface_people(id) ON DELETE CASCADE, source TEXT NOT NULL, "
                f"model TEXT NOT NULL, fingerprint TEXT NOT NULL, masked BOOLEAN, completed BOOLEAN, detector TEXT, "
                f"created DOUBLE PRECISION NOT NULL, embedding vector({int(info.dim)}) NOT NULL, "
                f"UNIQUE (person_id, source))")
            self.db.execute(f"CREATE INDEX IF NOT EXISTS maskface_templates_hnsw ON maskface_templates "
                            f"USING hnsw (embedding {ops})")
            self.db.execute("INSERT INTO maskface_meta VALUES ('model', %s), ('fingerprint', %s), ('metric', %s), "
                            "('dim', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                            (info.model, info.fingerprint, info.metric, str(info.dim)))
        self._info = info

    def _dim(self) -> int:
        self._info = self._info or self.info()
        return self._info.dim if self._info else 0

    def _has_templates_table(self) -> bool:
        return self._dim() > 0

    # -- writes --------------------------------------------------------------------------------------------------
    def add(self, records: list[TemplateRecord], vectors: np.ndarray) -> int:
        if len(records) != len(vectors):
            raise ValueError(f"{len(records)} records but {len(vectors)} vectors")
        if not records:
            return 0
        now = time.time()
        people = sorted({r.person for r in records})
        with self.db.transaction():
            self.db.execute("INSERT INTO maskface_people (name, created) SELECT unnest(%s::text[]), %s "
                            "ON CONFLICT (name) DO NOTHING", (people, now))
            ids = dict(self.db.execute("SELECT name, id FROM maskface_people WHERE name = ANY(%s)",
                                       (people,)).fetchall())
            added = self.db.execute(
                "INSERT INTO maskface_templates (person_id, source, model, fingerprint, masked, completed, detector, "
                "created, embedding) SELECT p, s, m, f, k, c, d, t, e::vector FROM unnest(%s::bigint[], %s::text[], "
                "%s::text[], %s::text[], %s::boolean[], %s::boolean[], %s::text[], %s::float8[], %s::text[]) "
                "AS x(p, s, m, f, k, c, d, t, e) ON CONFLICT (person_id, source) DO NOTHING RETURNING id",
                ([ids[r.person] for r in records], [r.source for r in records], [r.model for r in records],
                 [r.fingerprint for r in records], [r.masked for r in records], [r.completed for r in records],
                 [r.detector for r in records], [r.created or now for r in records],
                 [_vector_text(v) for v in vectors])).fetchall()
        return len(added)

    def remove(self, person: str) -> int:
        with self.db.transaction():
            row = self.db.execute("SELECT id FROM maskface_people WHERE name = %s FOR UPDATE", (person,)).fetchone()
            if row is None:
                raise GalleryError(self.location, f"no person {person!r} in this gallery")
            count = 0
            if self._has_templates_table():
                count = self.db.execute("DELETE FROM maskface_templates WHERE person_id = %s RETURNING id",
                                        row).rowcount
            self.db.execute("DELETE FROM maskface_people WHERE id = %s", row)
            self.db.execute("UPDATE maskface_meta SET value = (value::int + 1)::text WHERE key = 'generation'")
        return count

    # -- reads ---------------------------------------------------------------------------------------------------
    def enrolled(self, person: str | None = None) -> set[tuple[str, str]]:
        if not self._has_templates_table():
            return set()
        query = "SELECT p.name, t.source FROM maskface_templates t JOIN maskface_people p ON p.id = t.person_id"
        rows = self.db.execute(query + " WHERE p.name = %s", (person,)) if person else self.db.execute(query)
        return set(rows.fetchall())

    def templates_of(self, people: list[str]) -> tuple[list[TemplateRecord], np.ndarray]:
        dim = self._dim()
        if not people or not dim:
            return [], np.zeros((0, dim), np.float32)
        rows = self.db.execute(
            f"SELECT {_RECORD_COLUMNS}, t.embedding::text FROM maskface_templates t JOIN maskface_people p "
            f"ON p.id = t.person_id WHERE p.name = ANY(%s) ORDER BY t.id", (list(people),)).fetchall()
        return [_record(r[:-1]) for r in rows], _parse_vectors([r[-1] for r in rows], dim)

    def people_of(self, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        return dict(self.db.execute("SELECT t.id, p.name FROM maskface_templates t JOIN maskface_people p "
                                    "ON p.id = t.person_id WHERE t.id = ANY(%s)", ([int(i) for i in ids],)).fetchall())

    def people(self) -> list[tuple[str, int]]:
        if not self._has_templates_table():
            return [(name, 0) for (name,) in self.db.execute("SELECT name FROM maskface_people ORDER BY name")]
        return self.db.execute("SELECT p.name, COUNT(t.id) FROM maskface_people p LEFT JOIN maskface_templates t "
                               "ON t.person_id = p.id GROUP BY p.id ORDER BY p.name").fetchall()

    def counts(self) -> tuple[int, int]:
        people = self.db.execute("SELECT COUNT(*) FROM maskface_people").fetchone()[0]
        if not self._has_templates_table():
            return people, 0
        return people, self.db.execute("SELECT COUNT(*) FROM maskface_templates").fetchone()[0]

    def iter_templates(self, chunk: int = 10_000) -> Iterator[tuple[list[TemplateRecord], np.ndarray]]:
        dim, last = self._dim(), 0
        while dim:
            rows = self.db.execute(f"SELECT {_RECORD_COLUMNS}, t.embedding::text FROM maskface_templates t JOIN "
                                   "maskface_people p ON p.id = t.person_id WHERE t.id > %s ORDER BY t.id LIMIT %s",
                                   (last, chunk)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [_record(r[:-1]) for r in rows], _parse_vectors([r[-1] for r in rows], dim)

    # -- search --------------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        info = self._info or self.info()
        if info is None:
            return [[] for _ in queries]
        operator = "<=>" if info.metric == "cosine" else "<->"
        results = []
        for query in np.atleast_2d(queries):
            text = _vector_text(query)
            rows = self.db.execute(f"SELECT id, embedding {operator} %s::vector AS d FROM maskface_templates "
                                   f"ORDER BY embedding {operator} %s::vector LIMIT %s", (text, text, k)).fetchall()
            results.append([(int(i), 1.0 - d if info.metric == "cosine" else d) for i, d in rows])
        return results

    def index_stats(self) -> dict:
        return {"index": "pgvector hnsw", "ef_search": EF_SEARCH}

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            self.db.close()
            self.db = None
