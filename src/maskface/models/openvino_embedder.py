"""A plain PyTorch face embedder run by OpenVINO on the CPU: the same network, 2-3x faster than PyTorch's CPU kernels
on the MobileNets' depthwise convolutions (docs/benchmarks.md).

The module is converted once to OpenVINO IR and kept in the cache under its weights' fingerprint, so later loads
take half a second instead of a conversion. Embeddings equal PyTorch's within 1e-4 (``tests/test_runtime.py``),
which is why the fingerprint, and so every embedding cache and gallery, is shared with the PyTorch backend (bf16
embeddings have their own).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from maskface.io.locations import cache_dir
from maskface.models.embedder import (
    Embedder,
    hash_tensors,
    inference_module,
    module_fingerprint,
    precision_fingerprint,
)
from maskface.models.registry import EmbedderSpec
from maskface.models.runtime import Precision, cpu_has_bf16

#: OpenVINO's names for maskface's precisions.
_PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16"}
#: Bump when the conversion changes (its options, or how modules are prepared): cached IR of older ones is ignored.
CONVERSION_VERSION = 1


class OpenVinoEmbedder(Embedder):
    """``module`` (``N x 3 x H x W`` float RGB in [0, 255] to embeddings) compiled by OpenVINO for this CPU."""

    def __init__(self, module: torch.nn.Module, spec: EmbedderSpec, precision: Precision = "fp32",
                 batch_size: int = 64):
        import openvino as ov

        self.spec, self.batch_size = spec, batch_size
        module = inference_module(module)
        self._fingerprint = module_fingerprint(module)
        core = ov.Core()
        xml = converted_model(module, spec, self._fingerprint)
        self.compiled = core.compile_model(core.read_model(xml), "CPU", {
            "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": _PRECISION_HINTS[precision]})
        granted = self.compiled.get_property("INFERENCE_PRECISION_HINT")  # an ov.Type
        self.precision: Precision = "bf16" if granted == ov.Type.bf16 else "fp32"
        if precision == "bf16" and self.precision != "bf16":
            warnings.warn(f"this CPU has no bf16 units ({'' if cpu_has_bf16() else 'no avx512_bf16 or AMX; '}"
                          "OpenVINO declined): running float32", stacklevel=2)

    @cached_property
    def fingerprint(self) -> str:
        return precision_fingerprint(self._fingerprint, self.precision)

    def _embed_batch(self, chips: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(chips.transpose(0, 3, 1, 2), dtype=np.float32)
        request = self.compiled.create_infer_request()  # one per call: requests are not shared between threads
        request.infer({0: x})
        return request.get_output_tensor(0).data.copy()


def _conversion_key(module: torch.nn.Module) -> str:
    """What else the IR depends on besides the weights: every buffer (non-persistent ones, such as the ensemble's
    sampling grid, are not in the fingerprint), the module's class, OpenVINO's version and the conversion's."""
    import hashlib

    import openvino as ov

    digest = hashlib.sha256(f"{type(module).__qualname__}|{ov.__version__}|{CONVERSION_VERSION}".encode())
    hash_tensors(digest, module.named_buffers())
    return digest.hexdigest()[:8]


def converted_model(module: torch.nn.Module, spec: EmbedderSpec, fingerprint: str) -> Path:
    """The IR file of ``module``, converted on first use and cached under its fingerprint. The folder is written
    beside its final place and renamed into it, so a killed conversion never leaves a half-written model."""
    import openvino as ov

    folder = cache_dir() / "openvino" / f"{spec.name}-{fingerprint}-{_conversion_key(module)}"
    xml = folder / "model.xml"
    if xml.is_file():
        return xml
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        example = torch.zeros(1, 3, spec.size, spec.size)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracing warnings about Python control flow on shapes
            model = ov.convert_model(module.eval(), example_input=example, input=[-1, 3, spec.size, spec.size])
        ov.save_model(model, str(staging / "model.xml"), compress_to_fp16=False)
        try:
            os.rename(staging, folder)
        except OSError:  # another process converted it first
            if not xml.is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return xml
