"""The gallery commands as a user meets them: enroll (resumable, bad images reported, exit 3), identify (text and
JSON), gallery list/show/remove/export/stats, and one-line errors with exit status 2."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from cli_runner import run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def people(lfw_root, tmp_path_factory):
    """Three people with two photos each (symbolic links), plus a text file posing as a photo."""
    root = tmp_path_factory.mktemp("people")
    chosen = sorted(d for d in lfw_root.iterdir() if d.is_dir() and len(list(d.glob("*.jpg"))) >= 3)[:3]
    for person in chosen:
        (root / person.name).mkdir()
        for photo in sorted(person.glob("*.jpg"))[:2]:
            (root / person.name / photo.name).symlink_to(photo)
    (root / chosen[0].name / "notes.jpg").write_text("not a photo")
    probes = [sorted(person.glob("*.jpg"))[2] for person in chosen]
    return root, [p.name for p in chosen], probes


def test_enroll_identify_and_manage(people, tmp_path):
    root, names, probes = people
    gallery, errors = str(tmp_path / "people.db"), tmp_path / "errors.csv"
    first = run("enroll", str(root), "--gallery", gallery, "--errors", str(errors), "--workers", "1",
                "-m", "maskface_v1")
    assert first.returncode == 3, first.stderr
    assert "enrolled 6 of 7 new images of 3 people (0 already in the gallery); 1 failed" in first.stdout
    with open(errors, newline="") as handle:
        assert [row["path"] for row in csv.DictReader(handle)] == [str(root / names[0] / "notes.jpg")]
    again = run("enroll", str(root), "--gallery", gallery, "--workers", "1")  # resumes: only the bad file is left
    assert "enrolled 0 of 1 new images of 3 people (6 already in the gallery); 1 failed" in again.stdout

    answer = run("identify", *map(str, probes), "--gallery", gallery, "--top", "2", "--json")
    assert answer.returncode == 0, answer.stderr
    found = json.loads(answer.stdout)
    assert [a["candidates"][0]["person"] for a in found] == names
    assert all(len(a["candidates"]) == 2 and a["metric"] == "euclidean" for a in found)
    assert all(a["person"] in (None, a["candidates"][0]["person"]) for a in found)
    text = run("identify", str(probes[0]), str(root / names[0] / "notes.jpg"), "--gallery", gallery, "--top", "1")
    assert text.returncode == 3  # one photo failed, the other was answered
    assert text.stdout.splitlines()[1].startswith(f"  1. {names[0]}  distance ")

    listed = run("gallery", "list", "--gallery", gallery, "--json")
    assert json.loads(listed.stdout) == [{"name": n, "templates": 2} for n in names]
    shown = run("gallery", "show", names[1], "--gallery", gallery, "--json")
    assert [r["source"] for r in json.loads(shown.stdout)] == sorted(p.name for p in (root / names[1]).iterdir())
    stats = json.loads(run("gallery", "stats", "--gallery", gallery, "--json").stdout)
    assert (stats["people"], stats["templates"], stats["model"], stats["dim"]) == (3, 6, "maskface_v1", 128)
    exported = run("gallery", "export", "--gallery", gallery, "--out", str(tmp_path / "all.npz"))
    assert exported.returncode == 0 and "wrote 6 templates" in exported.stdout
    with np.load(tmp_path / "all.npz") as saved:
        assert saved["vectors"].shape == (6, 128)
    removed = run("gallery", "remove", names[2], "--gallery", gallery)
    assert removed.stdout.strip() == f"removed {names[2]} (2 templates)"
    assert [p["name"] for p in json.loads(run("gallery", "list", "-g", gallery, "--json").stdout)] == names[:2]


def test_gallery_mistakes_are_one_line_errors(people, tmp_path):
    root, names, _ = people
    missing = run("gallery", "stats", "--gallery", str(tmp_path / "none.db"))
    assert missing.returncode == 2 and missing.stderr.strip() == (
        f"error: {tmp_path / 'none.db'}: no gallery here (enrol someone first to create it)")
    assert not (tmp_path / "none.db").exists()
    (tmp_path / "text.db").write_text("not a database" * 100)
    wrong = run("identify", str(root / names[0] / "notes.jpg"), "--gallery", str(tmp_path / "text.db"))
    assert wrong.returncode == 2 and "not a maskface gallery" in wrong.stderr
    nobody = run("gallery", "remove", "Nobody", "--gallery", str(tmp_path / "text.db"))
    assert nobody.returncode == 2 and len(nobody.stderr.strip().splitlines()) == 1
