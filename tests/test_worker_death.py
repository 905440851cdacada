"""Worker processes die with the batch that started them: SIGKILL of ``maskface align --workers 2`` mid-run leaves no
process of the run behind (no worker keeps writing chips or holding memory)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a real batch of LFW photos, started and killed (about 20 s)

#: How long the run's processes may outlive their parent (the watchdog reacts at once; this allows a loaded CI box)
GRACE_SECONDS = 5.0


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every process, from /proc (psutil is not a dependency)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def _descendants(root: int) -> set[int]:
    table = _process_table()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, (parent, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pids: set[int]) -> set[int]:
    table = _process_table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}  # a zombie runs nothing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")
def test_sigkill_of_the_parent_leaves_no_worker(lfw_root, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for source in sorted(lfw_root.glob("*/*.jpg"))[:400:2]:  # 200 real photos: a run of about a minute
        (photos / source.name).symlink_to(source)
    out = tmp_path / "chips"
    source = str(Path(__file__).resolve().parents[1] / "src")
    parent = subprocess.Popen([sys.executable, "-m", "maskface", "align", str(photos), "--out", str(out),
                               "--workers", "2"], env={**os.environ, "PYTHONPATH": source},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        while not (out.is_dir() and len(list(out.glob("*.png"))) >= 4):  # workers are up and writing chips
            assert parent.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no chip written within 180 s"
            time.sleep(0.2)
        run = _descendants(parent.pid)  # the fork server, the workers, the resource tracker
        assert len(run) >= 2, run
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        written = len(list(out.glob("*.png")))
        deadline = time.monotonic() + GRACE_SECONDS
        while _running(run) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _running(run)
        assert not left, f"{len(left)} of the run's {len(run)} processes outlived their parent"
        time.sleep(1.0)
        assert len(list(out.glob("*.png"))) <= written + 2  # nothing goes on writing (a chip in flight may land)
    finally:  # leave nothing behind, whatever failed
        parent.kill()
        for pid in _running(run):
            os.kill(pid, signal.SIGKILL)
