"""Where and how a model runs: the device string of every ``--device`` option, parsed once.

``cpu``, ``cuda``, ``cuda:N`` and ``mps`` run PyTorch there; ``openvino`` runs a plain face embedder through the
OpenVINO runtime on the CPU (its depthwise convolutions are 2-3x faster than PyTorch's); a ``+bf16`` suffix asks
for bfloat16 arithmetic (fast only on CPUs with AVX-512 bf16 or AMX, and on GPUs). No device means CUDA when
present, else OpenVINO when it is installed, else PyTorch on the CPU.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

Backend = Literal["torch", "openvino"]
Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")


@dataclass(frozen=True)
class Runtime:
    """A parsed device string: the torch device (OpenVINO runs on the CPU), the backend and the arithmetic."""

    device: torch.device
    backend: Backend = "torch"
    precision: Precision = "fp32"
    chosen: bool = True  # False when the backend was picked automatically: a model it cannot run falls back

    def __str__(self) -> str:
        name = "openvino" if self.backend == "openvino" else str(self.device)
        return name if self.precision == "fp32" else f"{name}+{self.precision}"


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 bf16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def parse_runtime(device: str | None = None) -> Runtime:
    """The runtime a device string names (module docstring); an unknown or absent device is a ``ValueError``."""
    name, _, precision = (device or "").partition("+")
    if precision and precision not in PRECISIONS:
        raise ValueError(f"device {device!r}: unknown precision {precision!r}; give +bf16 or nothing")
    precision = precision or "fp32"
    if name == "openvino":
        if not openvino_available():
            raise ValueError(f"device {device!r}: the openvino package is not installed (pip install openvino)")
        return Runtime(torch.device("cpu"), "openvino", precision)
    if not name:
        if torch.cuda.is_available():
            return Runtime(torch.device("cuda"), "torch", precision, chosen=False)
        return Runtime(torch.device("cpu"), "openvino" if openvino_available() else "torch", precision, chosen=False)
    return Runtime(_torch_device(name, device), "torch", precision)


def select_device(device: str | None = None) -> torch.device:
    """The torch device of a device string (``openvino`` is the CPU): for models that always run in PyTorch, in
    float32 (training, de-occlusion); a ``+bf16`` suffix applies to the recognisers only."""
    return parse_runtime(device).device


def _torch_device(name: str, device: str | None) -> torch.device:
    try:
        chosen = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {device!r}; give cpu, openvino, cuda or cuda:N") from None
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r}: CUDA is not available on this machine; use cpu")
        if chosen.index is not None and chosen.index >= count:
            raise ValueError(f"device {device!r}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif chosen.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device {device!r}: Apple's MPS is not available on this machine; use cpu")
    elif chosen.type != "cpu":
        raise ValueError(f"device {device!r}: maskface runs on cpu, openvino, cuda or mps")
    return chosen
