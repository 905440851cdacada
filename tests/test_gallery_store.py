"""The gallery storage backends (maskface.store), SQLite + FAISS and PostgreSQL + pgvector, on synthetic vectors:
what is added is found, nothing twice, removals stick, and SQLite's FAISS index is a cache rebuilt from the file."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from maskface.errors import GalleryError
from maskface.store import GalleryInfo, TemplateRecord, faiss_index, open_store

DIM = 32


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def records(n: int, per_person: int = 4, start: int = 0) -> list[TemplateRecord]:
    return [TemplateRecord(f"p{i // per_person:04d}", f"img{i:05d}.jpg", "m", "fp", masked=bool(i % 3 == 0),
                           completed=None if i % 2 else False, detector="yunet") for i in range(start, start + n)]


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path) -> str:
    return str(tmp_path / "g.db") if request.param == "sqlite" else request.getfixturevalue("fresh_pg")


def new_store(location: str, metric: str = "cosine"):
    store = open_store(location)
    store.set_info(GalleryInfo("m", "fp", metric, DIM))
    return store


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_search_finds_what_exact_search_finds(location, metric):
    rng = np.random.default_rng(0)
    vectors = unit(rng.standard_normal((400, DIM)))
    queries = unit(vectors[:50] + 0.3 * rng.standard_normal((50, DIM)))
    with new_store(location, metric) as store:
        assert store.add(records(400), vectors) == 400
        found = store.search(queries, 5)
    if metric == "cosine":
        exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :5] + 1
    else:
        exact = np.argsort(((queries[:, None] - vectors[None]) ** 2).sum(-1), axis=1)[:, :5] + 1
    hits = np.mean([len({i for i, _ in f} & set(e)) / 5 for f, e in zip(found, exact)])
    assert hits >= 0.98  # pgvector's HNSW is approximate; FAISS flat is exact
    first = found[0][0]
    expected = float(queries[0] @ vectors[first[0] - 1]) if metric == "cosine" else float(
        np.linalg.norm(queries[0] - vectors[first[0] - 1]))
    assert first[1] == pytest.approx(expected, abs=1e-4)


def test_add_is_idempotent_and_keeps_records(location):
    rng = np.random.default_rng(1)
    vectors = unit(rng.standard_normal((40, DIM)))
    with new_store(location) as store:
        assert store.add(records(40), vectors) == 40
        assert store.add(records(40), vectors) == 0  # a re-run adds nothing
        assert store.add(records(10, start=35), unit(rng.standard_normal((10, DIM)))) == 5
        assert store.counts() == (12, 45)
        got, stored = store.templates_of(["p0001"])
    assert [r.source for r in got] == [f"img{i:05d}.jpg" for i in range(4, 8)]
    assert [(r.masked, r.completed, r.detector, r.model, r.fingerprint) for r in got] == [
        (i % 3 == 0, None if i % 2 else False, "yunet", "m", "fp") for i in range(4, 8)]
    np.testing.assert_allclose(stored, vectors[4:8], atol=1e-6)
    with open_store(location, create=False) as again:
        assert again.counts() == (12, 45)
        assert len(again.enrolled()) == 45
        assert again.info() == GalleryInfo("m", "fp", "cosine", DIM)


def test_remove_takes_a_person_out_of_search(location):
    rng = np.random.default_rng(2)
    vectors = unit(rng.standard_normal((40, DIM)))
    with new_store(location) as store:
        store.add(records(40), vectors)
        store.search(vectors[:1], 3)  # build the index first: removal must reach it
        assert store.remove("p0000") == 4
        assert store.counts() == (9, 36)
        owners = store.people_of([i for i, _ in store.search(vectors[:1], 10)[0]])
        assert "p0000" not in owners.values()
        with pytest.raises(GalleryError, match="no person 'p0000'"):
            store.remove("p0000")
    with open_store(location) as again:  # a fresh process sees the removal too
        ids = [i for i, _ in again.search(vectors[:1], 10)[0]]
        assert "p0000" not in again.people_of(ids).values()


def test_faiss_index_is_a_cache_rebuilt_from_sqlite(tmp_path):
    path = tmp_path / "g.db"
    rng = np.random.default_rng(3)
    vectors = unit(rng.standard_normal((60, DIM)))
    with new_store(str(path)) as store:
        store.add(records(30), vectors[:30])
        assert store.search(vectors[:1], 1)[0][0][0] == 1
    index_file = path.with_name("g.db.faiss")
    assert index_file.stat().st_size > 0
    # another writer adds templates without touching the index file: the index catches up from SQLite
    with sqlite3.connect(path) as db:
        before = db.execute("SELECT COUNT(*) FROM templates").fetchone()[0]
    with new_store(str(path)) as writer:
        writer.add(records(30, start=30), vectors[30:])
    index_file.write_bytes(b"not an index")  # and a corrupt cache is rebuilt, not trusted
    with open_store(str(path)) as store:
        assert store.search(vectors[45:46], 1)[0][0][0] == 46
        assert store.index_stats()["indexed"] == before + 30 == 60


def test_two_connections_see_each_others_writes(tmp_path):
    rng = np.random.default_rng(4)
    vectors = unit(rng.standard_normal((20, DIM)))
    with new_store(str(tmp_path / "g.db")) as reader, open_store(str(tmp_path / "g.db")) as writer:
        writer.add(records(10), vectors[:10])
        assert reader.search(vectors[:1], 1)[0][0][0] == 1
        writer.add(records(10, start=10), vectors[10:])
        assert reader.search(vectors[15:16], 1)[0][0][0] == 16
        writer.remove("p0003")
        assert "p0003" not in reader.people_of([i for i, _ in reader.search(vectors[13:14], 5)[0]]).values()


def test_large_galleries_switch_to_hnsw_with_high_recall(tmp_path, monkeypatch):
    monkeypatch.setattr(faiss_index, "EXACT_LIMIT", 1000)
    rng = np.random.default_rng(5)
    centres = unit(rng.standard_normal((600, DIM)))
    vectors = unit(np.repeat(centres, 5, axis=0) + 0.15 * rng.standard_normal((3000, DIM)))
    queries = unit(centres[:200] + 0.15 * rng.standard_normal((200, DIM)))
    with new_store(str(tmp_path / "g.db")) as store:
        store.add(records(3000, per_person=5), vectors)
        found = store.search(queries, 5)
        assert store.index_stats()["index"] == "hnsw"
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :5] + 1
    recall = np.mean([len({i for i, _ in f} & set(e)) / 5 for f, e in zip(found, exact)])
    assert recall >= 0.95


def test_bad_locations_are_clear_errors(tmp_path):
    with pytest.raises(GalleryError, match="no gallery here"):
        open_store(str(tmp_path / "none.db"), create=False)
    (tmp_path / "text.db").write_text("hello, I am not a database" * 100)
    with pytest.raises(GalleryError, match="not a maskface gallery"):
        open_store(str(tmp_path / "text.db"))
    with sqlite3.connect(tmp_path / "other.db") as db:
        db.execute("CREATE TABLE x (y)")
    with pytest.raises(GalleryError, match="not a maskface gallery"):
        open_store(str(tmp_path / "other.db"))
    with pytest.raises(GalleryError, match="is a folder"):
        open_store(str(tmp_path))
    with pytest.raises(GalleryError, match="cannot connect"):
        open_store("postgresql://nobody:secret@127.0.0.1:9/none")


def test_postgres_url_password_is_not_shown():
    from maskface.store.postgres import redacted

    assert redacted("postgresql://me:s3cret@db.example:5432/faces") == "postgresql://me:***@db.example:5432/faces"
