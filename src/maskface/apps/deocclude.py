"""``maskface deocclude``: detect -> chip -> estimate the occlusion map -> complete the hidden part, per image.

For each input ``NAME`` (its relative path, whole name kept: ``a/x.jpg``) it writes ``NAME.chip.png`` (the face
as found), ``NAME.completed.png`` and ``NAME.occlusion.png`` (the estimated map) under the output folder (the naming
rule is :mod:`maskface.io.outputs`'), and a ``deocclusion.csv`` with the input's path (escaped as in the error
report, :mod:`maskface.io.escaping`), the detector, the share of the chip judged hidden and whether the face counts
as masked.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from maskface.face.batch import run_face_batch, worker_pipeline
from maskface.face.pipeline import FaceConfig
from maskface.io.escaping import escape_field
from maskface.io.files import atomic_write_text
from maskface.io.images import iter_image_files, load_image, save_image
from maskface.io.outputs import check_targets, plan_outputs
from maskface.io.parallel import BatchReport, failure_reason
from maskface.models.deocclusion import complete_chips
from maskface.models.runtime import select_device

#: What deocclude writes per input
SUFFIXES = (".chip.png", ".completed.png", ".occlusion.png")
#: The table deocclude writes in the output folder
TABLE = "deocclusion.csv"


def _chip_one(path: Path) -> tuple[np.ndarray, str]:
    face = worker_pipeline().align(load_image(path), str(path))
    return face.chip, face.detector


def _save_results(base: Path, chip: np.ndarray, completed: np.ndarray, hidden: np.ndarray) -> None:
    save_image(chip, f"{base}.chip.png")
    save_image(completed, f"{base}.completed.png")
    save_image(hidden.astype(np.uint8) * 255, f"{base}.occlusion.png")


def deocclude_images(inputs: list[str | Path], out_dir: str | Path, config: FaceConfig, workers: int,
                     model: str = "deocclusion_v1", device: str | None = None, batch_size: int = 32,
                     errors: str | Path | None = None) -> tuple[BatchReport, int]:
    """Complete every face; returns the report and how many faces were judged masked (and completed)."""
    from maskface.models import create_model

    if config.size != 150 or config.chip != "dlib":
        raise ValueError("de-occlusion works on 150x150 dlib chips")
    out_dir = Path(out_dir)
    check_targets(inputs, folder=out_dir, file=out_dir / TABLE, errors=errors, file_option=f"--out's {TABLE}")
    deoccluder = create_model(model, pretrained=True).to(select_device(device))
    plan = plan_outputs(iter_image_files(inputs), out_dir, SUFFIXES, errors=errors)
    report = BatchReport()
    for path, reason in plan.refused:
        report.fail(path, reason)
    bases = dict(plan.items)
    results = list(run_face_batch(list(bases), _chip_one, config, workers=workers, description="finding faces",
                                  report=report))
    rows = [("path", "detector", "hidden_fraction", "masked")]
    masked_count = 0
    for start in range(0, len(results), batch_size):
        part = results[start : start + batch_size]
        completed, occlusion = complete_chips(deoccluder, np.stack([chip for _, (chip, _) in part]))
        for (path, (chip, detector)), done, hidden in zip(part, completed, occlusion):
            try:
                _save_results(bases[path], chip, done, hidden)
            except Exception as exc:  # one output that cannot be written fails its input, not the batch
                report.failures.append((str(path), failure_reason(exc)))
                continue
            masked_count += bool(hidden.any())
            rows.append((escape_field(path), detector, f"{hidden.mean():.4f}", str(bool(hidden.any())).lower()))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    atomic_write_text(out_dir / TABLE, buffer.getvalue())
    report.write_errors(errors)
    return report, masked_count


def real_examples(folder: Path, deoccluder, count: int = 6, workers: int = 2) -> dict[str, np.ndarray]:
    """The first ``count`` photos (sorted) of ``folder`` in which a face is found: chip, completed chip and map,
    as float images in [0, 1] for pictures. No hand-picking: the order of the files decides."""
    paths = [p for p, _ in iter_image_files([folder])][: count * 4]
    chips = [chip for _, (chip, _) in run_face_batch(paths, _chip_one, FaceConfig(), workers=workers,
                                                     description="real photos", report=BatchReport())][:count]
    if not chips:
        return {}
    completed, occlusion = complete_chips(deoccluder, np.stack(chips))
    return {"chip": np.stack(chips) / 255.0, "completed": completed / 255.0, "estimated_map": occlusion.astype(float)}
