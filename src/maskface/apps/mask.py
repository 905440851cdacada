"""``maskface mask``: put synthetic masks on every face of every image, writing the occlusion map beside it:
``OUT/<relative path>.png`` and ``OUT/<relative path>.occlusion.png`` (``a/x.jpg`` gives ``OUT/a/x.jpg.png``; the
naming rule is :mod:`maskface.io.outputs`')."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maskface.errors import NoFaceError
from maskface.face.batch import run_face_batch, worker_pipeline
from maskface.face.pipeline import FaceConfig
from maskface.io.images import iter_image_files, load_image, save_image
from maskface.io.outputs import check_targets, plan_outputs
from maskface.io.parallel import BatchReport
from maskface.masks.synth import shared_synthesizer

#: What mask writes per input: the masked image and its occlusion map
SUFFIXES = (".png", ".occlusion.png")


def _mask_one(task: tuple[Path, Path, Path, int, str | None, bool]) -> int:
    path, relative, base, seed, mask_type, aligned = task
    image = load_image(path)
    synthesizer = shared_synthesizer(seed, mask_type)
    key = relative.as_posix()
    if aligned:
        masked = synthesizer(image, None, key=key)
        result, occlusion, faces = masked.image, masked.occlusion, 1
    else:
        found = worker_pipeline().align_all(image)
        if not found:
            raise NoFaceError(str(path), "no face found")
        result, occlusion = image, np.zeros(image.shape[:2], bool)
        for index, face in enumerate(found):
            masked = synthesizer(result, face.landmarks, key=f"{key}#{index}")
            result, occlusion = masked.image, occlusion | masked.occlusion
        faces = len(found)
    save_image(result, f"{base}.png")
    save_image(occlusion.astype(np.uint8) * 255, f"{base}.occlusion.png")
    return faces


def mask_images(inputs: list[str | Path], out_dir: str | Path, config: FaceConfig, seed: int,
                mask_type: str | None, workers: int, errors: str | Path | None = None) -> tuple[BatchReport, int]:
    """Mask every image; returns the report and the number of faces masked."""
    check_targets(inputs, folder=out_dir, errors=errors)
    found = iter_image_files(inputs)
    plan = plan_outputs(found, out_dir, SUFFIXES, errors=errors)
    report = BatchReport()
    for path, reason in plan.refused:
        report.fail(path, reason)
    relative = dict(found)
    tasks = [(p, relative[p], base, seed, mask_type, config.aligned) for p, base in plan.items]
    faces = sum(n for _, n in run_face_batch(tasks, _mask_one, config, workers=workers, description="masking",
                                             report=report, name_of=lambda t: str(t[0])))
    report.write_errors(errors)
    return report, faces
