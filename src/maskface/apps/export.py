"""``maskface export onnx``: a registered PyTorch model as an ONNX file that gives the same embeddings."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from maskface.errors import ModelFileError
from maskface.models.embedder import OnnxConfig, TorchEmbedder, load_embedder
from maskface.models.registry import list_models, model_info


def export_onnx(model: str, out: str | Path, opset: int = 17) -> Path:
    """Export a model spec (registered name or ``name=checkpoint``); see :func:`export_embedder`."""
    embedder = load_embedder(model, device="cpu")
    if not isinstance(embedder, TorchEmbedder):
        raise ValueError(f"{model} is not a PyTorch model")
    return export_embedder(embedder, out, opset)


def export_embedder(embedder: TorchEmbedder, out: str | Path, opset: int = 17) -> Path:
    """Export with a dynamic batch axis; write ``<out>.json`` so :class:`OnnxEmbedder` feeds it correctly.

    The exported graph takes ``N x 3 x H x W`` RGB floats in [0, 255] (normalisation is inside the graph). A model
    registered with ``onnx=False`` is refused: tracing would freeze it to the path its example input takes.
    """
    name = embedder.spec.name
    if name in list_models() and not model_info(name).onnx:
        raise ModelFileError(name, "cannot be exported to ONNX: it sends each chip down its own path (masked and "
                                   "unmasked chips differ), which a traced graph cannot hold")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    spec = embedder.spec
    dummy = torch.zeros(1, 3, spec.size, spec.size, device=embedder.device)
    with warnings.catch_warnings():  # shape checks become constants: right, since only the batch axis varies
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(embedder.module, (dummy,), str(out), input_names=["chips"], output_names=["embeddings"],
                          dynamic_axes={"chips": {0: "batch"}, "embeddings": {0: "batch"}}, opset_version=opset,
                          dynamo=False)
    OnnxConfig(chip=spec.chip, size=spec.size, padding=spec.padding, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
               metric=spec.metric, threshold=spec.threshold).save(out.with_suffix(".json"))
    return out
