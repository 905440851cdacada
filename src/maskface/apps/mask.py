"""``maskface mask``: put synthetic masks on every face of every image, writing the occlusion map beside it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maskface.errors import NoFaceError
from maskface.face.batch import run_face_batch, worker_pipeline
from maskface.face.pipeline import FaceConfig
from maskface.io.images import iter_image_files, load_image, output_stem, save_image
from maskface.io.parallel import BatchReport
from maskface.masks.synth import shared_synthesizer


def _mask_one(task: tuple[Path, Path, Path, int, str | None, bool]) -> int:
    path, relative, out_dir, seed, mask_type, aligned = task
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
    stem = output_stem(out_dir, relative)
    save_image(result, f"{stem}.png")
    save_image(occlusion.astype(np.uint8) * 255, f"{stem}.occlusion.png")
    return faces


def mask_images(inputs: list[str | Path], out_dir: str | Path, config: FaceConfig, seed: int,
                mask_type: str | None, workers: int, errors: str | Path | None = None) -> tuple[BatchReport, int]:
    """Mask every image; returns the report and the number of faces masked."""
    out_dir = Path(out_dir)
    tasks = [(p, r, out_dir, seed, mask_type, config.aligned) for p, r in iter_image_files(inputs)]
    report = BatchReport()
    faces = sum(n for _, n in run_face_batch(tasks, _mask_one, config, workers=workers, description="masking",
                                             report=report, name_of=lambda t: str(t[0])))
    report.write_errors(errors)
    return report, faces
