"""``maskface export onnx``: a registered PyTorch model as an ONNX file that gives the same embeddings."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from maskface.models.embedder import OnnxConfig, TorchEmbedder, load_embedder


def export_onnx(model: str, out: str | Path, opset: int = 17) -> Path:
    """Export with a dynamic batch axis; write ``<out>.json`` so :class:`OnnxEmbedder` feeds it correctly.

    The exported graph takes ``N x 3 x H x W`` RGB floats in [0, 255] (normalisation is inside the graph).
    """
    embedder = load_embedder(model, device="cpu")
    if not isinstance(embedder, TorchEmbedder):
        raise ValueError(f"{model} is not a PyTorch model")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    spec = embedder.spec
    dummy = torch.zeros(1, 3, spec.size, spec.size)
    with warnings.catch_warnings():  # shape checks become constants: right, since only the batch axis varies
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(embedder.module, (dummy,), str(out), input_names=["chips"], output_names=["embeddings"],
                          dynamic_axes={"chips": {0: "batch"}, "embeddings": {0: "batch"}}, opset_version=opset,
                          dynamo=False)
    OnnxConfig(chip=spec.chip, size=spec.size, padding=spec.padding, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
               metric=spec.metric, threshold=spec.threshold).save(out.with_suffix(".json"))
    return out
