"""The hostile-input corpus (tests/hostile/corpus.py) read through maskface.io.images: every input gets its
expected outcome and a true reason, in one safe line, without a traceback, a hang or a memory blow-up."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import resource
import subprocess
import sys
import threading
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

import maskface
from hostile.corpus import HOSTILE_NAMES, ORIENTATIONS, REASONS, build_corpus, reason_class
from maskface.errors import ImageError, safe_display
from maskface.io.images import iter_image_files, load_image

pytestmark = pytest.mark.slow  # writes about 245 files from LFW photos and reads them all (about 20 s)

CORPUS_SCRIPT = Path(__file__).parent / "hostile" / "corpus.py"
#: No single input may take longer than this to read (the largest allowed image takes about 4 s here).
ITEM_SECONDS = 60
#: Special files (FIFOs, devices, sockets, loops) must be refused at once: never opened for reading.
SPECIAL_SECONDS = 2.0
PEAK_BYTES = 2 * 2**30


@pytest.fixture(scope="module")
def corpus(lfw_root, tmp_path_factory) -> tuple[Path, list]:
    root = tmp_path_factory.mktemp("hostile")
    return root, build_corpus(root, lfw_root, seed=0)


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@pytest.fixture(scope="module")
def results(corpus) -> list[dict]:
    """Every item read in a child process (peak memory measured there, an address-space cap as a safety net),
    with a watchdog: a read that does not answer within ITEM_SECONDS fails the test naming its item."""
    root, items = corpus
    source = str(Path(maskface.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": source, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))

    process = subprocess.Popen([sys.executable, str(CORPUS_SCRIPT), "load", str(root)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, preexec_fn=cap_memory)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    answers, current = [], None
    try:
        while True:
            try:
                line = lines.get(timeout=ITEM_SECONDS)
            except queue.Empty:
                pytest.fail(f"reading hung for {ITEM_SECONDS} s on {items[current].path!r}")
            if line is None:
                break
            answer = json.loads(line)
            if answer.get("start"):
                current = answer["index"]
            else:
                answers.append(answer)
    finally:
        process.kill()
        stderr = process.communicate()[1]
    assert stderr == ""  # no traceback, and no warning or log line either: a user sees only the reasons
    assert len(answers) == len(items), f"the reader stopped after {len(answers)} items: {stderr[-2000:]}"
    return answers


def test_the_corpus_covers_every_kind_of_hostile_input(corpus):
    _, items = corpus
    assert len(items) >= 200
    groups = Counter(item.group for item in items)
    assert set(groups) == {"broken", "bomb", "format", "orientation", "special", "name", "collision", "face",
                           "size"}
    expected = {item.expect for item in items}
    assert set(REASONS) - expected <= {"permission"}  # unreadable files are readable as root
    assert {item.orientation for item in items} == set(ORIENTATIONS)
    kinds = " ".join(item.kind for item in items)
    for words in ("FIFO", "/dev/zero", "sparse 8 GiB", "symlink loop", "dangling", "16-bit", "CMYK", "palette",
                  "grey + alpha", "RGBA", "float32 RGB TIFF", "animated GIF", "9000 x 9000", "9400 x 9400",
                  "wrong extension", "postscript", "20000 x 5", "30 LFW faces", "blurred"):
        assert words in kinds, words
    names = {os.fsencode(item.path).rpartition(b"/")[2] for item in items if item.group == "name"}
    assert set(HOSTILE_NAMES) <= names
    collisions = {item.path for item in items if item.group == "collision"}
    assert {"collisions/a/x.jpg", "collisions/b/x.jpg", "collisions/y.jpg", "collisions/y.png", "collisions/z.jpg",
            "collisions/z.JPEG", "collisions/w.occlusion.jpg"} <= collisions


def test_every_input_gets_its_expected_outcome_and_a_true_reason(corpus, results):
    _, items = corpus
    wrong = []
    for answer in results:
        item = items[answer["index"]]
        if answer["outcome"] == "crash":
            wrong.append(f"{item.path!r}: raised {answer['reason']}")
            continue
        got = "ok" if answer["outcome"] == "ok" else reason_class(answer["reason"])
        if got != item.expect:
            wrong.append(f"{item.path!r} ({item.kind}): expected {item.expect}, got {got}: {answer.get('reason')}")
        elif item.detail and item.detail not in answer["reason"]:
            wrong.append(f"{item.path!r}: reason {answer['reason']!r} does not say {item.detail!r}")
        elif got == "ok":
            if answer["shape"][2:] != [3] or answer["dtype"] != "uint8":
                wrong.append(f"{item.path!r}: {answer['dtype']} {answer['shape']}, not HxWx3 uint8")
            if item.reference and (answer["difference"] is None or answer["difference"] > item.tolerance):
                wrong.append(f"{item.path!r}: pixels differ from the expected ones by {answer['difference']} "
                             f"(allowed {item.tolerance})")
    assert wrong == []
    ok = sum(answer["outcome"] == "ok" for answer in results)
    assert 100 <= ok < len(results) - 100  # both kinds well represented


def test_largest_allowed_image_is_read_and_orientations_are_applied(corpus, results):
    _, items = corpus
    by_path = {items[a["index"]].path: a for a in results}
    assert by_path["bombs/largest-allowed-8000x8000.jpg"]["shape"] == [8000, 8000, 3]
    for orientation in range(1, 9):  # stored 250 x 190: the transposing orientations (5-8) turn it
        shape = by_path[f"orientation/png-{orientation}.png"]["shape"]
        assert shape == ([190, 250, 3] if orientation >= 5 else [250, 190, 3])
        assert by_path[f"orientation/png-{orientation}.png"]["difference"] == 0.0


def _unsafe_characters(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") or 0x202A <= ord(c) <= 0x202E
            or 0x2066 <= ord(c) <= 0x2069]


def test_every_refusal_is_one_safe_line_naming_the_file(corpus, results):
    root, items = corpus
    for answer in results:
        if answer["outcome"] != "refused":
            continue
        message, path = answer["message"], str(root / items[answer["index"]].path)
        assert _unsafe_characters(message) == [], message
        message.encode("utf-8")  # no lone surrogates: printable on any UTF-8 terminal
        assert message.startswith(safe_display(path) + ": "), message
    bad = {items[a["index"]].path: a["message"] for a in results if items[a["index"]].group == "name"
           and a["outcome"] == "refused"}
    escape = bad[os.fsdecode(b"names/bad/\x1b[31mred\x1b[0m.jpg")]
    assert "\\x1b[31mred\\x1b[0m.jpg" in escape
    assert "\\xff\\xfe-undecodable.jpg" in bad[os.fsdecode(b"names/bad/\xff\xfe-undecodable.jpg")]
    assert "new\\nline.jpg" in bad["names/bad/new\nline.jpg"]
    assert "rtl-\\u202egpj.exe" in bad["names/bad/rtl-\u202egpj.exe"]


def test_memory_stays_bounded_and_nothing_hangs(corpus, results):
    _, items = corpus
    peak = max(answer["max_rss_kb"] for answer in results) * 1024
    assert peak < PEAK_BYTES, f"peak resident memory {peak / 2**30:.2f} GiB"
    slow = [(items[a["index"]].path, round(a["seconds"], 2)) for a in results if a["seconds"] > ITEM_SECONDS / 4]
    assert slow == []
    special = [(items[a["index"]].path, round(a["seconds"], 3)) for a in results
               if items[a["index"]].group == "special" and a["outcome"] == "refused" and a["seconds"] > SPECIAL_SECONDS]
    assert special == []


def test_a_fifo_is_refused_at_once_in_this_process(corpus):
    fifo = corpus[0] / "special" / "fifo.jpg"
    outcome: list = []

    def read() -> None:
        try:
            load_image(fifo)
        except ImageError as exc:
            outcome.append(exc.reason)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=5)
    if reader.is_alive():  # opened for reading, it blocks until a writer comes: be that writer, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert outcome == ["is a FIFO (named pipe), not a regular file"]


def test_a_renamed_postscript_file_never_reaches_its_interpreter(corpus, monkeypatch):
    from PIL import EpsImagePlugin

    opened = []
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: opened.append(self))
    root, _ = corpus
    with pytest.raises(ImageError, match="not an image of a supported format"):
        load_image(root / "broken" / "postscript.eps.jpg")
    assert opened == []


def test_folders_list_special_entries_so_they_are_reported(corpus):
    root, _ = corpus
    listed = {str(relative) for _, relative in iter_image_files([root / "special"])}
    for name in ("fifo.jpg", "dev-zero.jpg", "loop-a.jpg", "self.jpg", "dangling.jpg", "socket.jpg",
                 "sparse-8GiB.jpg", "real.jpg", "link.jpg"):
        assert name in listed, name
    assert "folder.jpg" not in listed  # a directory is walked, not read
    names = {os.fsencode(str(r)) for _, r in iter_image_files([root / "names" / "good"])}
    assert names == set(HOSTILE_NAMES)  # "-" and "rtl-...exe" by their JPEG signature, the rest by suffix


def test_the_same_seed_builds_the_same_corpus(corpus, lfw_root, tmp_path):
    root, items = corpus
    again = build_corpus(tmp_path, lfw_root, seed=0)
    assert [i.path for i in again] == [i.path for i in items]

    def digest(folder: Path, item) -> str | None:
        path = folder / item.path
        if item.group == "special" or not path.is_file():
            return None
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert [digest(tmp_path, i) for i in again] == [digest(root, i) for i in items]
