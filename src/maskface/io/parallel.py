"""Run one job over many items on all cores: a progress bar, and bad items skipped and reported, never fatal.

Results come back in input order. A job that needs per-process state (dlib's models cannot be pickled) builds it
in ``setup``, which runs once in every worker; :mod:`maskface.face.batch` uses it to give each worker a face
pipeline.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from maskface.errors import MaskfaceError
from maskface.io.files import atomic_write_text

console = Console(stderr=True)


def _init_worker(setup: Callable[..., None] | None, setup_args: tuple, single_threaded: bool = True) -> None:
    if single_threaded:  # one worker process per core: keep each to one thread
        import cv2
        import torch

        cv2.setNumThreads(1)
        torch.set_num_threads(1)
    if setup is not None:
        setup(*setup_args)


@dataclass
class BatchReport:
    """Counts and the failed items (path, reason) of a batch job."""

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

    def write_errors(self, path: str | Path | None) -> None:
        if path is None:
            return
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["path", "reason"])
        writer.writerows(self.failures)
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
    report.total = len(items)
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
                                 initargs=(setup, setup_args)) as pool:
            chunk = max(1, min(16, len(items) // (workers * 8) or 1))
            outcomes = pool.map(_guarded, [job] * len(items), items, chunksize=chunk)
            yield from _collect(items, outcomes, report, progress, task, name_of)


def _guarded(job: Callable[[Any], Any], item: Any) -> tuple[bool, Any]:
    try:
        return True, job(item)
    except MaskfaceError as exc:
        return False, exc.reason
    except Exception as exc:  # an unexpected failure on one item must not end the batch
        return False, f"unexpected error: {type(exc).__name__}: {exc}"


def _collect(items, outcomes, report, progress, task, name_of):
    for item, (ok, value) in zip(items, outcomes):
        progress.advance(task)
        if ok:
            yield item, value
        else:
            report.failures.append((name_of(item), value))
