"""Durability of ``maskface enroll``: SIGKILL at random points of a 1,000-image enrolment of real LFW photos, for the
SQLite and the PostgreSQL backend. After each kill the gallery opens, holds every template another connection saw
committed, holds no half-written record, and the next run carries on; the last run finishes without duplicates."""

from __future__ import annotations

import csv
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskface.store import open_store

pytestmark = pytest.mark.slow

IMAGES = 1000
KILLS = 2


@pytest.fixture(scope="module")
def people_dir(lfw_root, tmp_path_factory) -> Path:
    """1,000 LFW photos as PEOPLE_DIR/<person>/<photo> (symbolic links), whole people in sorted order."""
    root = tmp_path_factory.mktemp("people")
    count = 0
    for person in sorted(d for d in lfw_root.iterdir() if d.is_dir()):
        photos = sorted(person.glob("*.jpg"))[: IMAGES - count]
        (root / person.name).mkdir()
        for photo in photos:
            (root / person.name / photo.name).symlink_to(photo)
        count += len(photos)
        if count == IMAGES:
            return root
    raise AssertionError("LFW has fewer than 1,000 photos")


def sqlite_pairs(path: Path) -> set[tuple[str, str]]:
    """What a separate reader sees committed (read-only: never creates the file)."""
    if not path.exists():
        return set()
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
        try:
            return set(db.execute("SELECT p.name, t.source FROM templates t JOIN people p ON p.id = t.person_id"))
        except sqlite3.OperationalError:  # the tables are being created
            return set()


def pg_pairs(url: str) -> set[tuple[str, str]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        if db.execute("SELECT to_regclass('maskface_templates')").fetchone()[0] is None:
            return set()
        return set(db.execute("SELECT p.name, t.source FROM maskface_templates t JOIN maskface_people p "
                              "ON p.id = t.person_id").fetchall())


def check_whole(location: str) -> set[tuple[str, str]]:
    """Open the gallery as a user would and check every record is whole: one template per (person, source), every
    vector of the gallery's length and finite, no person without templates, and the search index covering them."""
    import numpy as np

    with open_store(location, create=False) as store:
        people, count = store.counts()
        pairs = store.enrolled()
        assert len(pairs) == count  # no duplicates
        seen_people, vectors = set(), 0
        for records, block in store.iter_templates():
            assert block.shape[1] == store.info().dim and np.all(np.isfinite(block))
            assert all(r.model == "maskface_v1" and r.fingerprint == store.info().fingerprint for r in records)
            seen_people |= {r.person for r in records}
            vectors += len(block)
        assert vectors == count and len(seen_people) == people  # no person left without templates
        if count:
            found = store.search(block[-1:], 1)[0]
            assert found and store.people_of([found[0][0]])[found[0][0]] == records[-1].person
            if "indexed" in store.index_stats():
                assert store.index_stats()["indexed"] == count
        if hasattr(store, "db") and isinstance(store.db, sqlite3.Connection):
            assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return pairs


def enroll_command(people_dir: Path, location: str, errors: Path) -> list[str]:
    return [sys.executable, "-m", "maskface", "enroll", str(people_dir), "--gallery", location, "--workers", "1",
            "--errors", str(errors), "-m", "maskface_v1"]


def kill_at_random(command: list[str], committed, rng: random.Random) -> set[tuple[str, str]]:
    """Run the enrolment, wait for its first new commit, then SIGKILL it at a random moment up to 3 s later,
    right after looking at what was committed; returns what was seen committed."""
    before = len(committed())
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while len(committed()) == before:
            assert process.poll() is None, "the enrolment ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        kill_at = time.monotonic() + rng.uniform(0, 3)
        seen = committed()
        while time.monotonic() < kill_at and process.poll() is None:
            time.sleep(rng.uniform(0, 0.2))
            seen = committed()
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    return seen


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_sigkill_loses_no_commit_and_rerun_finishes_without_duplicates(backend, people_dir, tmp_path, request):
    if backend == "sqlite":
        location = str(tmp_path / "people.db")
        committed = lambda: sqlite_pairs(Path(location))  # noqa: E731
    else:
        location = request.getfixturevalue("fresh_pg")
        committed = lambda: pg_pairs(location)  # noqa: E731
    rng = random.Random(23)
    errors = tmp_path / "errors.csv"
    command = enroll_command(people_dir, location, errors)
    after: set[tuple[str, str]] = set()
    for _ in range(KILLS):
        seen = kill_at_random(command, committed, rng)
        assert after <= seen  # nothing committed by an earlier run went missing
        after = check_whole(location)
        assert seen <= after, f"{len(seen - after)} committed templates lost"
        assert len(after) < IMAGES
    final = subprocess.run(command, capture_output=True, text=True)
    assert final.returncode in (0, 3), final.stderr
    assert "Traceback" not in final.stderr
    with open(errors, newline="") as handle:
        failed = {row["path"] for row in csv.DictReader(handle)}
    done = check_whole(location)
    assert after <= done
    assert len(done) + len(failed) == IMAGES  # every photo enrolled once, or reported
    assert {(p.parent.name, p.name) for p in people_dir.glob("*/*.jpg")} == done | {
        (Path(f).parent.name, Path(f).name) for f in failed}
    assert f"({len(after)} already in the gallery)" in final.stdout
