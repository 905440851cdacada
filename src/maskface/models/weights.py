"""Shipped network weights: float16 safetensors with the architecture config in the file's metadata."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as save_bytes
from torch import nn

from maskface.errors import ModelFileError
from maskface.io.files import atomic_write_bytes
from maskface.io.input_files import check_input_file

#: Largest model file maskface reads: the biggest insightface backbones (IResNet-200) and their ONNX exports are
#: under 300 MB; the cap keeps ``NAME=/dev/zero`` or a sparse file from being read.
MAX_MODEL_BYTES = 2 * 2**30


def model_file(path: str | Path) -> Path:
    """``path`` if it is a regular file of at most :data:`MAX_MODEL_BYTES` (links followed), else a
    :class:`ModelFileError` with the reason (not found, a directory, a FIFO or device, a symlink loop, ...)."""
    return check_input_file(path, MAX_MODEL_BYTES, ModelFileError)


def torch_load_safely(path: str | Path) -> Any:
    """``torch.load(weights_only=True)`` of a model file: tensors and plain data only, so a crafted pickle is
    refused (:class:`ModelFileError` naming what it tried to load) and never runs."""
    path = model_file(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused the pickle: crafted, or not plain data
        found = re.search(r"GLOBAL [\w.]+", str(exc))
        if found:
            raise ModelFileError(str(path), f"refusing to load: the file holds more than tensors and plain data "
                                            f"({found.group(0)}); maskface never runs code from a model file") from None
        raise ModelFileError(str(path), f"not a PyTorch checkpoint: {_torch_refusal(exc)}") from None
    except Exception as exc:  # torch raises many kinds for a file that is not a checkpoint
        raise ModelFileError(str(path), f"not a PyTorch checkpoint: {_first_line(exc)}") from None


def _torch_refusal(exc: Exception) -> str:
    """The informative line of torch's weights_only message (not its preamble or the pointer to the docs)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    preamble = ("Weights only load failed", "Please file an issue", "Check the documentation")
    useful = [line for line in lines if not line.startswith(preamble)]
    return (useful or lines or [type(exc).__name__])[0].removeprefix("WeightsUnpickler error: ")


def parse_json_object(text: str | bytes, source: str | Path, what: str) -> dict[str, Any]:
    """A JSON object from a model file's metadata or sidecar, or :class:`ModelFileError` naming ``what`` was
    malformed."""
    try:
        fields = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(str(source), f"{what} is not valid JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise ModelFileError(str(source), f"{what} is JSON {type(fields).__name__}, not an object of fields")
    return fields


def config_from_fields(config_class: type, fields: dict[str, Any], source: str | Path) -> Any:
    """``config_class`` built from the fields it knows (JSON lists as tuples), or :class:`ModelFileError`."""
    known = {f.name for f in dataclasses.fields(config_class)}
    try:
        return config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in known})
    except (TypeError, ValueError) as exc:
        raise ModelFileError(str(source), f"bad {config_class.__name__} in the file: {exc}") from None


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
    path = model_file(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 - safe_open has no iterator
    except Exception as exc:
        raise ModelFileError(str(path), f"not a safetensors file: {_first_line(exc)}") from None
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
    config = config_from_fields(config_class, parse_json_object(metadata["config"], path, "the config metadata"),
                                path)
    module = build(config)
    load_state_into(module, state, path)
    return module.eval()


def load_state_into(module: nn.Module, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """``module.load_state_dict(state)`` (strict), or :class:`ModelFileError` saying in one line what does not
    fit: missing or unexpected names, or the first tensor of another shape."""
    expected = module.state_dict()
    missing, unexpected = sorted(expected.keys() - state.keys()), sorted(state.keys() - expected.keys())
    name = type(module).__name__
    if missing or unexpected:
        raise ModelFileError(str(source), f"weights do not fit {name}: {_names('missing', missing)}"
                                          f"{', ' if missing and unexpected else ''}"
                                          f"{_names('unexpected', unexpected)}")
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected[key].shape:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ModelFileError(str(source), f"weights do not fit {name}: {key} is {shape} in the file, "
                                              f"{tuple(expected[key].shape)} in the model")
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(str(source), f"weights do not fit {name}: {_first_line(exc)}") from None


def _names(kind: str, keys: list[str]) -> str:
    if not keys:
        return ""
    shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    return f"{len(keys)} {kind} ({shown})"


def _first_line(exc: Exception) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)



