"""Atomic training checkpoints holding everything ``--resume`` needs to continue exactly.

A checkpoint has the step, every module, optimiser, scheduler and gradient-scaler state, and the random states of
Python, NumPy and PyTorch (CPU and CUDA). The data position is the step itself (see the sampler). It is written to
a temporary file and renamed, so a kill at any moment leaves the previous checkpoint intact.

Everything in it is a tensor or plain data (the NumPy state is stored as a tensor), so it is read with
``torch.load(weights_only=True)``: a crafted file in a run folder cannot run code on ``--resume``.
"""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskface.errors import ModelFileError
from maskface.io.files import atomic_write_bytes
from maskface.models.weights import model_file, torch_load_safely


def rng_state() -> dict[str, Any]:
    """The random states, as tensors and plain data only (what ``weights_only`` loading accepts)."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    numpy_state = {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "position": int(position),
                   "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint`, read with ``weights_only=True``: a crafted file is refused
    with a :class:`ModelFileError`, and nothing in it runs."""
    if not path.exists() and not path.is_symlink():  # nothing there (a loop or dangling link is named below)
        raise ModelFileError(str(path), "no checkpoint to resume from (train without --resume first)")
    path = model_file(path)
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is not ours
        raise ModelFileError(str(path), "not a checkpoint written by maskface train (not a PyTorch zip archive)")
    try:
        state = torch_load_safely(path)
    except ModelFileError as exc:
        if "multiarray._reconstruct" in exc.reason:  # a NumPy array: what checkpoints held before
            raise ModelFileError(str(path), "written by an older maskface that pickled NumPy state, which cannot "
                                            "be loaded without running code; start the run again") from None
        raise
    if not isinstance(state, dict) or not {"step", "recipe", "modules", "rng"} <= state.keys():
        raise ModelFileError(str(path), "not a maskface training checkpoint (no step, recipe, modules and rng)")
    return state
