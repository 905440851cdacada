"""Batch jobs over photos with a face pipeline in every worker process (dlib's models cannot be pickled, so each
worker builds its own, once)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from maskface.face.pipeline import FaceConfig, FacePipeline
from maskface.io.parallel import BatchReport, run_batch

_pipeline: FacePipeline | None = None


def _build_pipeline(config: FaceConfig) -> None:
    global _pipeline
    _pipeline = FacePipeline(config)


def worker_pipeline() -> FacePipeline:
    """The face pipeline of the current worker (only inside a job run by :func:`run_face_batch`)."""
    assert _pipeline is not None, "worker used outside run_face_batch"
    return _pipeline


def run_face_batch(items: list[Any], job: Callable[[Any], Any], config: FaceConfig, *, workers: int,
                   description: str, report: BatchReport,
                   name_of: Callable[[Any], str] = str) -> Iterator[tuple[Any, Any]]:
    """:func:`~maskface.io.parallel.run_batch` whose ``job`` may call :func:`worker_pipeline` for a
    :class:`FacePipeline` built from ``config``."""
    return run_batch(items, job, workers=workers, description=description, report=report, name_of=name_of,
                     setup=_build_pipeline, setup_args=(config,))
