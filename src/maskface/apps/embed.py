"""``maskface embed``: embeddings of many images into one ``.npz`` (``paths``, ``embeddings``). The paths are the
inputs' own (undecodable bytes kept as Python keeps them: ``os.fsencode`` gives the bytes back), one per row."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from maskface.face.batch import run_face_batch, worker_pipeline
from maskface.face.pipeline import FaceConfig
from maskface.io.files import atomic_write_bytes
from maskface.io.images import iter_image_files, load_image
from maskface.io.outputs import check_targets
from maskface.io.parallel import BatchReport
from maskface.models.embedder import Embedder


def _chip_one(path: Path) -> tuple[np.ndarray, str]:
    face = worker_pipeline().align(load_image(path), str(path))
    return face.chip, face.detector


def embed_images(inputs: list[str | Path], embedder: Embedder, config: FaceConfig, workers: int,
                 errors: str | Path | None = None) -> tuple[list[str], np.ndarray, list[str], BatchReport]:
    """Align (in worker processes) and embed (in batches, here) every image; bad images are reported, not fatal.
    The ``.npz`` file is checked by the caller (:func:`~maskface.io.outputs.check_targets` with ``file=``)."""
    check_targets(inputs, errors=errors)
    paths = [path for path, _ in iter_image_files(inputs)]
    report = BatchReport()
    names: list[str] = []
    detectors: list[str] = []
    batches: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    for path, (chip, detector) in run_face_batch(paths, _chip_one, config, workers=workers, description="embedding",
                                                 report=report):
        names.append(str(path))
        detectors.append(detector)
        pending.append(chip)
        if len(pending) == embedder.batch_size:
            batches.append(embedder.embed_chips(np.stack(pending)))
            pending = []
    if pending:
        batches.append(embedder.embed_chips(np.stack(pending)))
    report.write_errors(errors)
    dim = batches[0].shape[1] if batches else 0
    embeddings = np.concatenate(batches) if batches else np.zeros((0, dim), np.float32)
    return names, embeddings, detectors, report


def save_embeddings(path: str | Path, names: list[str], embeddings: np.ndarray, model: str,
                    detectors: list[str]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, paths=np.array(names, dtype=str), embeddings=embeddings.astype(np.float32),
             detectors=np.array(detectors, dtype=str), model=np.array(model))
    atomic_write_bytes(path, buffer.getvalue())
