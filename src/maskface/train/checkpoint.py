"""Atomic training checkpoints holding everything ``--resume`` needs to continue exactly.

A checkpoint has the step, every module, optimiser, scheduler and gradient-scaler state, and the random states of
Python, NumPy and PyTorch (CPU and CUDA). The data position is the step itself (see the sampler). It is written to
a temporary file and renamed, so a kill at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from maskface.errors import ModelFileError
from maskface.io.files import atomic_write_bytes


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ModelFileError(str(path), "no checkpoint to resume from (train without --resume first)")
    try:
        # Our own checkpoints hold NumPy RNG state, so the full unpickler is needed; never load untrusted files.
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelFileError(str(path), f"not a readable checkpoint: {exc}") from None
