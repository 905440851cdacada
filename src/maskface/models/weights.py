"""Shipped network weights: float16 safetensors with the architecture config in the file's metadata."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as save_bytes
from torch import nn

from maskface.errors import ModelFileError
from maskface.io.files import atomic_write_bytes


def save_weights(path: Path, module: nn.Module, config: Any) -> None:
    """Write ``module``'s float tensors as float16 (others as they are) plus ``config`` (a dataclass or a dict) as
    JSON metadata."""
    state = {k: (v.half() if v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in module.state_dict().items()}
    fields = config if isinstance(config, dict) else dataclasses.asdict(config)
    metadata = {"config": json.dumps(fields), "class": type(module).__name__}
    atomic_write_bytes(path, save_bytes(state, metadata=metadata))


def read_weights(path: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors (float16 ones as float32) and metadata of a safetensors file, or a clear ModelFileError."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(str(path), "weights file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 - safe_open has no iterator
    except Exception as exc:
        raise ModelFileError(str(path), f"not a safetensors file: {exc}") from None
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, metadata


def load_state(path: Path | str) -> dict[str, torch.Tensor]:
    """Just the tensors of a weights file written by :func:`save_weights`."""
    return read_weights(path)[0]


def load_weights(path: Path, build: Any, config_class: type) -> nn.Module:
    """Build ``build(config)`` from the file's metadata and load its weights (as float32)."""
    path = Path(path)
    state, metadata = read_weights(path)
    if "config" not in metadata:
        raise ModelFileError(str(path), "no architecture config in the file's metadata")
    fields = json.loads(metadata["config"])
    hints = {f.name: f.type for f in dataclasses.fields(config_class)}
    config = config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in hints})
    module = build(config)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(str(path), f"weights do not fit {type(module).__name__}: {exc}") from None
    return module.eval()

