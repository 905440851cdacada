"""Embedding throughput: maskface's PyTorch dlib ResNet (and its ONNX export) vs dlib's compute_face_descriptor,
on the same real LFW chips, side by side in one run. Run: ``python benchmarks/embed_speed.py [--chips 128]``."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import dlib
import numpy as np

from common import best_rate, lfw_chips, machine
from maskface.apps.export import export_onnx
from maskface.io.locations import RESNET, dlib_model_path
from maskface.models.embedder import OnnxEmbedder, load_embedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chips", type=int, default=128)
    args = parser.parse_args()
    chips, _ = lfw_chips(args.chips)
    dlib_model = dlib.face_recognition_model_v1(str(dlib_model_path(RESNET)))
    ours = load_embedder("dlib_resnet_v1", device="cpu")
    onnx = OnnxEmbedder(export_onnx("dlib_resnet_v1", Path(tempfile.mkdtemp()) / "t.onnx"))
    subset = chips[:32]  # dlib is slow: time it on fewer chips

    def dlib_one_by_one() -> int:
        for chip in subset:
            dlib_model.compute_face_descriptor(chip)
        return len(subset)

    def dlib_batch() -> int:
        dlib_model.compute_face_descriptor(list(subset))
        return len(subset)

    def run(embedder, batch: int):
        def work() -> int:
            embedder.batch_size = batch
            if batch == 1:
                for chip in chips[:32]:
                    embedder.embed_chips(chip[None])
                return 32
            embedder.embed_chips(chips)
            return len(chips)
        return work

    rates = {
        "dlib compute_face_descriptor, one chip per call": best_rate(dlib_one_by_one, 2),
        "dlib compute_face_descriptor, list of 32 chips": best_rate(dlib_batch, 2),
        "maskface PyTorch, batch 1": best_rate(run(ours, 1)),
        "maskface PyTorch, batch 64": best_rate(run(ours, 64)),
        "maskface ONNX Runtime, batch 1": best_rate(run(onnx, 1)),
        "maskface ONNX Runtime, batch 64": best_rate(run(onnx, 64)),
    }
    base = rates["dlib compute_face_descriptor, one chip per call"]
    print(f"machine: {machine()}; {len(chips)} LFW chips (150x150)\n")
    print("| embedder | chips/s | vs dlib one by one |\n|---|---:|---:|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} | {rate / base:.1f}x |")
    np.testing.assert_allclose(ours.embed_chips(subset), np.array(
        [np.array(dlib_model.compute_face_descriptor(c)) for c in subset]), atol=1e-4)


if __name__ == "__main__":
    main()
