"""``maskface enroll``: a folder of people (``PEOPLE_DIR/<person>/<images>``) into a gallery, in batches.

Faces are found in worker processes and embedded here; each batch of templates is one transaction, so an
interrupted run keeps every batch it committed, and a re-run skips the (person, source) pairs already enrolled,
where a source is the image's path inside its person's folder. Images without a usable face are reported, not
fatal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskface.apps.gallery import Gallery, embed_chips
from maskface.data.folders import read_identity_folders
from maskface.face.batch import run_face_batch, worker_pipeline
from maskface.io.images import load_image
from maskface.io.outputs import check_targets
from maskface.io.parallel import BatchReport

#: Templates per transaction: small enough that an interruption loses little work, large enough to batch the
#: embedder and keep the commits (each an fsync) cheap.
COMMIT_BATCH = 32


@dataclass
class FolderEnrollment:
    """What ``enroll_folder`` did: the batch report (tried and failed images), templates added, images that were
    already enrolled, and how many people the folder holds."""

    report: BatchReport
    added: int
    already: int
    people: int

    def summary(self) -> str:
        return (f"enrolled {self.added} of {self.report.total} new images of {self.people} people "
                f"({self.already} already in the gallery); {len(self.report.failures)} failed")


def _chip_one(item: tuple[str, str, Path]) -> tuple[np.ndarray, str, bool | None]:
    path = item[2]
    face = worker_pipeline().align(load_image(path), str(path))
    return face.chip, face.detector, face.masked


def enroll_folder(gallery: Gallery, root: str | Path, workers: int, errors: str | Path | None = None,
                  batch: int = COMMIT_BATCH) -> FolderEnrollment:
    """Enrol every image of every person folder under ``root`` that the gallery does not hold yet."""
    root = Path(root)
    check_targets([root], errors=errors)
    identities = read_identity_folders(root)
    done = gallery.store.enrolled()
    items, already = [], 0
    for person, paths in identities.by_identity().items():
        for path in paths:
            source = path.relative_to(root / person).as_posix()
            if (person, source) in done:
                already += 1
            else:
                items.append((person, source, path))
    recognizer = gallery.recognizer  # loaded (and checked against the gallery's model) before any work
    report = BatchReport()
    result = FolderEnrollment(report, 0, already, len(identities.names))
    pending: list[tuple[str, str, np.ndarray, str, bool | None]] = []

    def commit() -> None:
        if pending:
            vectors, completed = embed_chips(recognizer, np.stack([p[2] for p in pending]))
            result.added += gallery.add_embeddings([p[0] for p in pending], vectors, [p[1] for p in pending],
                                                   masked=[p[4] for p in pending], completed=completed,
                                                   detectors=[p[3] for p in pending])
            pending.clear()

    for (person, source, _), (chip, detector, masked) in run_face_batch(
            items, _chip_one, recognizer.face_config, workers=workers, description="enrolling", report=report,
            name_of=lambda item: str(item[2])):
        pending.append((person, source, chip, detector, masked))
        if len(pending) >= batch:
            commit()
    commit()
    report.write_errors(errors)
    return result
