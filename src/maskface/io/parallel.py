"""Run one job over many items on all cores: a progress bar, and bad items skipped and reported, never fatal.

Results come back in input order. A job that needs per-process state (dlib's models cannot be pickled) builds it
in ``setup``, which runs once in every worker; :mod:`maskface.face.batch` uses it to give each worker a face
pipeline. Workers die with the process that started them (:func:`die_with_parent`): killing a batch, even with
SIGKILL, leaves no worker running or writing.
"""

from __future__ import annotations

import csv
import ctypes
import io
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from maskface.errors import MaskfaceError
from maskface.io.escaping import escape_field
from maskface.io.files import atomic_write_text

console = Console(stderr=True)

#: prctl(2) option: the signal this process gets when its parent dies (linux/prctl.h)
PR_SET_PDEATHSIG = 1
#: How often the fallback watchdog looks for the parent where pidfd_open is missing (seconds)
WATCH_SECONDS = 0.5


def _exit_now() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # like the death signal: no cleanup that could block or write


def _watch(parent_pid: int) -> None:
    """Return when process ``parent_pid`` has ended: a pidfd (Linux 5.3+) becomes readable, else poll."""
    try:
        pidfd = os.pidfd_open(parent_pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # another system, or a kernel without pidfd_open
        while True:
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                return
            except PermissionError:
                pass
            if os.getppid() == 1:  # orphaned and adopted by init
                return
            time.sleep(WATCH_SECONDS)
    try:
        select.select([pidfd], [], [])  # a pidfd turns readable when its process ends
    finally:
        os.close(pidfd)


def die_with_parent(parent_pid: int) -> None:
    """Make this worker process end when ``parent_pid`` (the process running the batch) ends, however it ends.

    A daemon thread watches ``parent_pid`` (a pidfd, or polling where there is none) and kills the worker when it
    is gone. This is what ends workers when the batch is killed: their own parent is the fork server, which exits
    only once no process holds its liveness pipe, and the workers hold it. On Linux the kernel also sends SIGKILL
    when that fork server dies (``PR_SET_PDEATHSIG``), for a fork server killed on its own.
    (Measured: with the death signal alone, SIGKILL of ``align --workers 2`` left all four processes running.)"""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    threading.Thread(target=lambda: (_watch(parent_pid), _exit_now()), name="maskface-parent-watch",
                     daemon=True).start()


def _init_worker(setup: Callable[..., None] | None, setup_args: tuple, single_threaded: bool = True,
                 parent_pid: int | None = None) -> None:
    if parent_pid is not None:
        die_with_parent(parent_pid)
    if single_threaded:  # one worker process per core: keep each to one thread
        import cv2
        import torch

        cv2.setNumThreads(1)
        torch.set_num_threads(1)
    if setup is not None:
        setup(*setup_args)


@dataclass
class BatchReport:
    """Counts and the failed items (path, reason) of a batch job.

    ``--errors`` reports are CSV with the header ``path,reason``, one line per failed item: both fields are
    escaped by :func:`~maskface.io.escaping.escape_field` (a backslash as ``\\\\``, a newline as ``\\n``, an
    undecodable byte as ``\\xff``), so any file name fits one line of UTF-8, and
    :func:`~maskface.io.escaping.unescape_field` gives the name back.
    """

    total: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def succeeded(self) -> int:
        return self.total - len(self.failures)

    @property
    def exit_code(self) -> int:
        return 3 if self.failures else 0

    def summary(self, verb: str) -> str:
        return f"{verb} {self.succeeded} of {self.total} images; {len(self.failures)} failed"

    def fail(self, name: str | os.PathLike, reason: str) -> None:
        """Count an item that failed before it reached a job (for example, refused an output name)."""
        self.total += 1
        self.failures.append((os.fspath(name), reason))

    def write_errors(self, path: str | Path | None) -> None:
        """Write the failures as the escaped ``path,reason`` CSV described above (atomically)."""
        if path is None:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["path", "reason"])
        writer.writerows((escape_field(name), escape_field(reason)) for name, reason in self.failures)
        atomic_write_text(path, buffer.getvalue())


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def run_batch(items: list[Any], job: Callable[[Any], Any], *, workers: int, description: str, report: BatchReport,
              name_of: Callable[[Any], str] = str, setup: Callable[..., None] | None = None,
              setup_args: tuple = ()) -> Iterator[tuple[Any, Any]]:
    """Yield ``(item, result)`` for each item whose ``job`` succeeded; failures go to ``report``.

    ``job`` and ``setup`` must be module-level functions (they run in worker processes); ``job`` raises
    :class:`~maskface.errors.MaskfaceError` for a bad item. ``setup(*setup_args)`` runs once per worker (once in
    this process when ``workers <= 1``).
    """
    report.total += len(items)
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=len(items) < 2)
    with progress:
        task = progress.add_task(description, total=len(items))
        if workers <= 1:
            _init_worker(setup, setup_args, single_threaded=False)
            outcomes: Iterator = map(_guarded, [job] * len(items), items)
            yield from _collect(items, outcomes, report, progress, task, name_of)
            return
        # forkserver, not fork: forking a process whose PyTorch/OpenMP threads have run can deadlock the child.
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(setup, setup_args, True, os.getpid())) as pool:
            chunk = max(1, min(16, len(items) // (workers * 8) or 1))
            outcomes = pool.map(_guarded, [job] * len(items), items, chunksize=chunk)
            yield from _collect(items, outcomes, report, progress, task, name_of)


def failure_reason(exc: Exception) -> str:
    """What the report says of an item whose job raised ``exc``."""
    if isinstance(exc, MaskfaceError):
        return exc.reason
    if isinstance(exc, OSError):  # writing an output: a full disk, a lost permission
        return f"cannot write {exc.filename or 'an output'}: {exc.strerror or exc}"
    return f"unexpected error: {type(exc).__name__}: {exc}"


def _guarded(job: Callable[[Any], Any], item: Any) -> tuple[bool, Any]:
    try:
        return True, job(item)
    except Exception as exc:  # a bad item, or an unexpected failure on one: neither may end the batch
        return False, failure_reason(exc)


def _collect(items, outcomes, report, progress, task, name_of):
    for item, (ok, value) in zip(items, outcomes):
        progress.advance(task)
        if ok:
            yield item, value
        else:
            report.failures.append((name_of(item), value))
