"""``maskface align``: one aligned PNG chip per input image, ``OUT/<relative path>.png`` (the input's whole name
kept: ``a/x.jpg`` gives ``OUT/a/x.jpg.png``; the naming rule is :mod:`maskface.io.outputs`')."""

from __future__ import annotations

from pathlib import Path

from maskface.face.batch import run_face_batch, worker_pipeline
from maskface.face.pipeline import FaceConfig
from maskface.io.images import iter_image_files, load_image, save_image
from maskface.io.outputs import check_targets, plan_outputs
from maskface.io.parallel import BatchReport

#: What align writes per input: ``<base>.png``
SUFFIXES = (".png",)


def _align_one(task: tuple[Path, Path]) -> str:
    path, base = task
    face = worker_pipeline().align(load_image(path), str(path))
    save_image(face.chip, f"{base}.png")
    return face.detector


def align_images(inputs: list[str | Path], out_dir: str | Path, config: FaceConfig, workers: int,
                 errors: str | Path | None = None) -> tuple[BatchReport, dict[str, int]]:
    """Align every image; returns the report and how many faces each detector (or fallback) produced."""
    check_targets(inputs, folder=out_dir, errors=errors)
    plan = plan_outputs(iter_image_files(inputs), out_dir, SUFFIXES, errors=errors)
    report = BatchReport()
    for path, reason in plan.refused:
        report.fail(path, reason)
    detectors: dict[str, int] = {}
    for _task, detector in run_face_batch(plan.items, _align_one, config, workers=workers, description="aligning",
                                          report=report, name_of=lambda t: str(t[0])):
        detectors[detector] = detectors.get(detector, 0) + 1
    report.write_errors(errors)
    return report, detectors
