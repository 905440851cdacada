"""Helpers shared by the benchmarks: where the data is, the machine description, and timing."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MASKFACE_DATA", REPO.parent / "shared" / "data"))


def machine() -> str:
    import torch

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def best_rate(work: Callable[[], int], repeats: int = 3) -> float:
    """Items per second of the fastest of ``repeats`` runs of ``work`` (which returns the item count)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        items = work()
        best = max(best, items / (time.perf_counter() - start))
    return best


def fastest_interleaved(works: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Seconds of the fastest of ``repeats`` runs of each work; every round runs the works in turn, so a change in
    the machine's speed during the benchmark hits them all alike."""
    best = dict.fromkeys(works, float("inf"))
    for _ in range(repeats):
        for name, work in works.items():
            start = time.perf_counter()
            work()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def lfw_chips(count: int, face=None):
    """``count`` real chips spread over LFW, as a uint8 N x size x size x 3 array: cut as ``face`` (a FaceConfig)
    says, by default 150x150 dlib chips from HOG + 68 landmarks."""
    import numpy as np

    from maskface.face.pipeline import FaceConfig, FacePipeline
    from maskface.io.images import load_image

    face = face or FaceConfig(detector="hog", select="center", fallback=("upsample", "center"))
    pipeline = FacePipeline(face)
    paths = sorted((DATA / "lfw").glob("*/*.jpg"))[:: max(1, 13233 // count)][:count]
    return np.stack([pipeline.align(load_image(p), str(p)).chip for p in paths]), paths
