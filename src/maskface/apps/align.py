"""``maskface align``: one aligned PNG chip per input image, keeping relative paths."""

from __future__ import annotations

from pathlib import Path

from maskface.face.batch import run_face_batch, worker_pipeline
from maskface.face.pipeline import FaceConfig
from maskface.io.images import iter_image_files, load_image, output_stem, save_image
from maskface.io.parallel import BatchReport


def _align_one(task: tuple[Path, Path, Path]) -> str:
    path, relative, out_dir = task
    face = worker_pipeline().align(load_image(path), str(path))
    save_image(face.chip, f"{output_stem(out_dir, relative)}.png")
    return face.detector


def align_images(inputs: list[str | Path], out_dir: str | Path, config: FaceConfig, workers: int,
                 errors: str | Path | None = None) -> tuple[BatchReport, dict[str, int]]:
    """Align every image; returns the report and how many faces each detector (or fallback) produced."""
    out_dir = Path(out_dir)
    tasks = [(path, relative, out_dir) for path, relative in iter_image_files(inputs)]
    report = BatchReport()
    detectors: dict[str, int] = {}
    for _task, detector in run_face_batch(tasks, _align_one, config, workers=workers, description="aligning",
                                          report=report, name_of=lambda t: str(t[0])):
        detectors[detector] = detectors.get(detector, 0) + 1
    report.write_errors(errors)
    return report, detectors
