"""Face chips for training, made once by the foundation pipeline and cached on disk.

A :class:`ChipSet` holds every chip of a face collection (``N x 150 x 150 x 3`` uint8), its 68 landmarks in chip
coordinates (so masks can be drawn on the chip itself), the image key (``person/file``) and the person. It is
stored as a folder of ``.npy`` files that training memory-maps, so DataLoader workers share one copy.

``lfw_chips(data)`` builds it for LFW with the evaluation's front end on the *unmasked* originals; the cache key
holds the face configuration and the pipeline version, so a change to either rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from maskface.data.lfw import LFW
from maskface.face.align import invert_affine, transform_points
from maskface.face.batch import run_face_batch, worker_pipeline
from maskface.face.geometry import landmarks_from_5
from maskface.face.pipeline import PIPELINE_VERSION, FaceConfig
from maskface.io.files import atomic_write_bytes, atomic_write_text
from maskface.io.images import load_image
from maskface.io.locations import cache_dir
from maskface.io.parallel import BatchReport
from maskface.masks.synth import mask_key

#: LFW chips are cut as in the evaluation: the centred face, with a central box when no detector finds one.
LFW_FACE = FaceConfig(select="center", fallback=("upsample", "center"))


@dataclass
class ChipSet:
    """Aligned chips with chip-space landmarks, image keys and people.

    ``chips[i]`` and ``landmarks[i]`` are rows ``rows[i]`` of the arrays; a set loaded from disk pickles as its
    folder and rows (not 900 MB of pixels), so DataLoader worker processes memory-map the same file.
    """

    chips: np.ndarray
    landmarks: np.ndarray
    keys: list[str]
    people: list[str]
    folder: Path | None = None

    def __len__(self) -> int:
        return len(self.keys)

    def chip(self, i: int) -> np.ndarray:
        return np.asarray(self.chips[i])

    def subset(self, people: set[str]) -> ChipSet:
        """Only the chips of these people (for identity-disjoint splits), still memory-mapped."""
        index = np.flatnonzero(np.array([p in people for p in self.people], dtype=bool))
        return ChipSet(_Rows(self.chips, index), _Rows(self.landmarks, index), [self.keys[i] for i in index],
                       [self.people[i] for i in index], self.folder)

    def labels(self) -> tuple[np.ndarray, list[str]]:
        """Integer identity labels ``0..K-1`` and the names they stand for."""
        names = sorted(set(self.people))
        lookup = {n: i for i, n in enumerate(names)}
        return np.array([lookup[p] for p in self.people], np.int64), names

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, array in (("chips", self.chips), ("landmarks", self.landmarks)):
            with open(folder / f".{name}.npy.tmp", "wb") as handle:
                np.save(handle, array)
            (folder / f".{name}.npy.tmp").replace(folder / f"{name}.npy")
        # meta.json last: its presence marks a complete cache.
        atomic_write_text(folder / "meta.json", json.dumps({"keys": self.keys, "people": self.people}))

    @classmethod
    def load(cls, folder: Path) -> ChipSet:
        meta = json.loads((folder / "meta.json").read_text())
        return cls(np.load(folder / "chips.npy", mmap_mode="r"), np.load(folder / "landmarks.npy", mmap_mode="r"),
                   meta["keys"], meta["people"], folder)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self.folder is not None:
            state["chips"] = getattr(self.chips, "index", None)
            state["landmarks"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.folder is not None:
            index = state["chips"]
            chips = np.load(self.folder / "chips.npy", mmap_mode="r")
            landmarks = np.load(self.folder / "landmarks.npy", mmap_mode="r")
            self.chips = chips if index is None else _Rows(chips, index)
            self.landmarks = landmarks if index is None else _Rows(landmarks, index)


class _Rows:
    """Rows ``index`` of an array, read lazily (a subset of a memory-mapped cache without copying it)."""

    def __init__(self, array: np.ndarray, index: np.ndarray):
        base = array.array if isinstance(array, _Rows) else array
        self.index = array.index[index] if isinstance(array, _Rows) else np.asarray(index)
        self.array = base

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):
        return self.array[self.index[i]]


def chip_with_landmarks(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The chip of one image and its 68 landmarks in chip coordinates (runs in a batch worker)."""
    pipeline = worker_pipeline()
    face = pipeline.align(load_image(path), path)
    points = face.landmarks if len(face.landmarks) == 68 else landmarks_from_5(face.landmarks)
    return face.chip, transform_points(points, invert_affine(face.chip_to_image)).astype(np.float32)


def build_chip_set(paths: list[Path], face: FaceConfig, workers: int, report: BatchReport) -> ChipSet:
    """Align every image (skipping and reporting failures) into a :class:`ChipSet`."""
    chips, landmarks, keys = [], [], []
    for path, (chip, points) in run_face_batch([str(p) for p in paths], chip_with_landmarks, face, workers=workers,
                                               description="caching face chips", report=report):
        chips.append(chip)
        landmarks.append(points)
        keys.append(mask_key(path))
    size = face.size
    return ChipSet(np.stack(chips) if chips else np.zeros((0, size, size, 3), np.uint8),
                   np.stack(landmarks) if landmarks else np.zeros((0, 68, 2), np.float32),
                   keys, [k.split("/")[0] for k in keys])


def lfw_chips(data: str | Path | None = None, workers: int = 2, cache: Path | None = None,
              face: FaceConfig = LFW_FACE) -> ChipSet:
    """All LFW chips, built on first use (about 7 minutes on 2 cores) and memory-mapped from the cache after."""
    lfw = LFW.find(data)
    paths = [p for images in lfw.identities().values() for p in images]
    key = json.dumps([asdict(face), PIPELINE_VERSION, len(paths)])
    folder = (cache or cache_dir() / "chips") / f"lfw-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    if not (folder / "meta.json").is_file():
        report = BatchReport()
        chip_set = build_chip_set(paths, face, workers, report)
        chip_set.save(folder)
        report.write_errors(folder / "failures.csv")
        atomic_write_bytes(folder / "source.txt", f"{lfw.root}\n{key}\n".encode())
    return ChipSet.load(folder)
