"""The batch commands over the hostile-input corpus (tests/hostile/corpus.py), as a user runs them: for align, mask,
embed and deocclude, no traceback, exit status 3, every bad input named in ``--errors`` with a true reason, every
good input exactly one output that nothing overwrites, a bounded memory peak and no hang.

"Good" and "bad" are the corpus's own classes for reading a file. A batch command adds two reasons of its own,
both checked for truth here: ``no face found`` (the default face pipeline, run in this process, must find none in
that image; which photos those are depends on the detector, so no count is fixed), and ``output name too long``
(only where the input's name plus the command's longest suffix exceeds the file system's 255 bytes).
"""

from __future__ import annotations

import csv
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import maskface
from hostile.corpus import REASONS, build_corpus, reason_class
from maskface.io.escaping import unescape_field
from maskface.io.images import iter_image_files

pytestmark = pytest.mark.slow  # builds the corpus and runs four batch commands over it (about 2 minutes)

#: What each command writes per good input (None: one .npz for all, keyed by input path)
COMMANDS: dict[str, tuple[str, ...] | None] = {
    "align": (".png",),
    "mask": (".png", ".occlusion.png"),
    "embed": None,
    "deocclude": (".chip.png", ".completed.png", ".occlusion.png"),
}
#: The whole run of one command over the corpus may not take longer (it takes 10-40 s on 2 cores)
RUN_SECONDS = 600
#: No process of a run (the command, the fork server, a worker) may hold more resident memory
PEAK_BYTES = 2 * 2**30
NAME_MAX = 255
NO_FACE = "no face found"
TOO_LONG = "output name too long"


@pytest.fixture(scope="module")
def corpus(lfw_root, tmp_path_factory):
    """The corpus, and the inputs that reach every item once: its group folders (walked), plus the items a walk
    does not list (missing files, paths through a file, extensionless non-images), named directly. A directory
    item is a folder to walk, not a file to read (test_hostile_inputs checks its reason), so it is left out."""
    root = tmp_path_factory.mktemp("hostile-batch")
    items = [item for item in build_corpus(root, lfw_root, seed=0) if item.expect != "directory"]
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name != "_references")
    listed = {str(path) for path, _ in iter_image_files(folders)}
    direct = [str(root / item.path) for item in items if str(root / item.path) not in listed]
    by_path = {str(root / item.path): item for item in items}
    assert listed <= set(by_path), sorted(listed - set(by_path))  # the manifest names every input
    return root, by_path, [str(f) for f in folders] + direct


def _descendants(root: int) -> set[int]:
    table = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit():
            table[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in table.items() if parent in frontier} - found
        found |= frontier
    return found


def _peak_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) if found else 0


def _sample_peaks(pid: int, peaks: dict[int, int], done: threading.Event) -> None:
    """Each process of the run: its high-water mark of resident memory, read until the run ends."""
    while not done.is_set():
        for process in {pid} | _descendants(pid):
            peaks[process] = max(peaks.get(process, 0), _peak_kb(process))
        time.sleep(0.1)


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory) -> dict[str, dict]:
    """Each command over the whole corpus with --errors and 2 workers: its status, output, errors and peaks."""
    _, _, inputs = corpus
    source = str(Path(maskface.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": source, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    results = {}
    for command, suffixes in COMMANDS.items():
        folder = tmp_path_factory.mktemp(command)
        out, errors = folder / ("embeddings.npz" if suffixes is None else "out"), folder / "errors.csv"
        args = [sys.executable, "-m", "maskface", command, *map(os.fsencode, inputs), "--out", str(out),
                "--errors", str(errors), "--workers", "2"]
        began = time.monotonic()
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        peaks: dict[int, int] = {}
        done = threading.Event()
        sampler = threading.Thread(target=_sample_peaks, args=(process.pid, peaks, done), daemon=True)
        sampler.start()
        try:
            stdout, stderr = process.communicate(timeout=RUN_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"maskface {command} did not finish within {RUN_SECONDS} s over the corpus")
        finally:
            done.set()
            sampler.join()
        results[command] = {
            "status": process.returncode, "stdout": stdout.decode(errors="replace"),
            "stderr": stderr.decode(errors="replace"), "out": out, "errors": errors,
            "seconds": time.monotonic() - began, "peak_kb": max(peaks.values(), default=0),
            "children_peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}
    return results


@pytest.fixture(scope="module")
def faceless():
    """Whether the default face pipeline, run in this process, finds no face in an image (cached per path)."""
    from maskface.face.pipeline import FaceConfig, FacePipeline
    from maskface.io.images import load_image

    pipeline, answers = FacePipeline(FaceConfig()), {}

    def has_no_face(path: str) -> bool:
        if path not in answers:
            answers[path] = pipeline.detect(load_image(path)) == []
        return answers[path]

    return has_no_face


def _name_too_long(path: str, suffixes: tuple[str, ...] | None) -> bool:
    return suffixes is not None and len(os.fsencode(Path(path).name)) + max(map(len, suffixes)) > NAME_MAX


def _failures(run: dict) -> dict[str, str]:
    """The --errors report read back: every row one line, path unescaped to the name on disk."""
    text = run["errors"].read_bytes().decode("utf-8")
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == ["path", "reason"] and all(len(row) == 2 for row in rows)
    failures = {unescape_field(path): unescape_field(reason) for path, reason in rows[1:]}
    assert len(failures) == len(rows) - 1  # each input reported once
    return failures


@pytest.mark.parametrize("command", COMMANDS)
def test_no_traceback_and_status_3(command, runs):
    run = runs[command]
    assert "Traceback" not in run["stderr"] + run["stdout"], run["stderr"][-3000:]
    assert run["status"] == 3, run["stderr"][-3000:]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_bad_input_is_reported_with_a_true_reason(command, corpus, runs, faceless):
    _, by_path, _ = corpus
    suffixes = COMMANDS[command]
    failures = _failures(runs[command])
    assert set(failures) <= set(by_path), sorted(set(failures) - set(by_path))[:5]
    wrong = []
    for path, item in by_path.items():
        reason = failures.get(path)
        if _name_too_long(path, suffixes):  # refused a name before it is read, whatever it holds
            expected = TOO_LONG
        elif item.expect != "ok":
            expected = item.expect
        elif reason == NO_FACE and faceless(path):
            expected = NO_FACE
        else:
            expected = None  # a good input: it must succeed
        if expected is None:
            if reason is not None:
                wrong.append(f"{item.path!r} ({item.kind}): good, but failed: {reason}")
        elif reason is None:
            wrong.append(f"{item.path!r} ({item.kind}): expected {expected}, not reported")
        elif expected in REASONS and (reason_class(reason) != expected or item.detail not in reason):
            wrong.append(f"{item.path!r} ({item.kind}): expected {expected} {item.detail}, got {reason}")
        elif expected not in REASONS and not reason.startswith(expected):
            wrong.append(f"{item.path!r}: expected {expected}, got {reason}")
    assert wrong == []
    summary = re.search(r"(\d+) of (\d+) images; (\d+) failed", runs[command]["stdout"])
    assert summary and [int(g) for g in summary.groups()] == [len(by_path) - len(failures), len(by_path),
                                                              len(failures)]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_good_input_has_exactly_its_own_outputs(command, corpus, runs):
    """Outputs counted on disk: as many as the good inputs times the files each writes, all distinct, each named
    after its input's whole file name; nothing else (no temporary file) is left."""
    _, by_path, _ = corpus
    run, suffixes = runs[command], COMMANDS[command]
    failures = _failures(run)
    good = sorted(path for path in by_path if path not in failures)
    assert len(good) >= 60  # LFW photos under hostile names, in every format and orientation
    if suffixes is None:
        saved = np.load(run["out"])
        paths = [str(p) for p in saved["paths"]]
        assert sorted(paths) == good and len(set(paths)) == len(paths)
        assert saved["embeddings"].shape[0] == len(paths) and np.isfinite(saved["embeddings"]).all()
        return
    out = run["out"]
    files = [p for p in out.rglob("*") if not p.is_dir() and p.name != "deocclusion.csv"]
    assert len(files) == len(good) * len(suffixes)
    bases: dict[str, list[str]] = {}
    for file in files:
        suffix = next((s for s in sorted(suffixes, key=len, reverse=True) if file.name.endswith(s)), None)
        assert suffix is not None, file
        bases.setdefault(suffix, []).append(re.sub(r"~\d+$", "", file.name[: -len(suffix)]))
    for suffix, names in bases.items():  # per suffix, one file per good input, named after it
        assert sorted(names) == sorted(Path(p).name for p in good), suffix
    if command == "deocclude":
        rows = list(csv.reader((out / "deocclusion.csv").read_text("utf-8").splitlines()))
        assert sorted(unescape_field(row[0]) for row in rows[1:]) == good


@pytest.mark.parametrize("command", COMMANDS)
def test_memory_stays_bounded_and_nothing_hangs(command, runs):
    run = runs[command]
    assert run["peak_kb"] > 0  # the sampler saw the run
    peak = max(run["peak_kb"], run["children_peak_kb"]) * 1024
    print(f"{command}: {run['seconds']:.1f} s, peak {peak / 2**30:.2f} GiB; {run['stdout'].strip()}")  # for CI logs
    assert peak < PEAK_BYTES, f"{command}: a process of the run peaked at {peak / 2**30:.2f} GiB"
    assert run["seconds"] < RUN_SECONDS


def test_commands_agree_on_which_photos_hold_no_face(runs):
    """The four commands run one face pipeline: the same inputs fail with no face for each."""
    no_face = {command: {p for p, r in _failures(runs[command]).items() if r == NO_FACE} for command in COMMANDS}
    assert no_face["align"] == no_face["mask"] == no_face["embed"] == no_face["deocclude"]
    assert any(path.endswith("faces/grey-wall.png") for path in no_face["align"])  # no face in a plain wall
