"""Embedding speed of every recogniser at batch 1 and 64, in PyTorch and through maskface's OpenVINO backend (the
default on CPUs), beside the reference runtimes of the rebuilt networks (OpenVINO on OMZ-0095's own IR, onnxruntime
on SFace's repaired graph, dlib for its ResNet), on the same real LFW chips cut by the default front end in each
model's geometry. Run: ``python benchmarks/model_speed.py [--chips 64]``."""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from common import best_rate, lfw_chips, machine
from maskface.face.pipeline import FaceConfig
from maskface.io.locations import RESNET, dlib_model_path, shipped_weights
from maskface.models.embedder import load_embedder

MODELS = ("dlib_resnet_v1", "omz_reid_0095", "sface", "omz_sface_ensemble", "maskface_v1")
#: the plain recognisers, which also run through OpenVINO (the mask-aware maskface_v1 runs in PyTorch only)
PLAIN = MODELS[:4]


def chips_for(embedder, count: int) -> np.ndarray:
    """``count`` LFW chips spread over the data set, cut by the default front end as ``embedder`` wants them."""
    return lfw_chips(count, embedder.face_config(FaceConfig(select="center", fallback=("upsample", "center"))))[0]


def rate_of(embed, chips: np.ndarray, batch: int) -> float:
    """Chips per second of ``embed`` (a function of an ``N x H x W x 3`` batch) over ``chips`` in batches."""
    def work() -> int:
        for start in range(0, len(chips), batch):
            embed(chips[start : start + batch])
        return len(chips)

    embed(chips[:batch])  # warm-up
    return best_rate(work)


def reference_runtimes(chips: dict[str, np.ndarray]) -> dict[str, tuple[str, object]]:
    """The runtimes the rebuilt networks are checked against, each with the model it stands beside."""
    import dlib

    refs = {}
    model = dlib.face_recognition_model_v1(str(dlib_model_path(RESNET)))
    refs["dlib compute_face_descriptor (reference of dlib_resnet_v1)"] = (
        "dlib_resnet_v1", lambda batch: [model.compute_face_descriptor(c) for c in batch])
    try:
        import openvino as ov

        compiled = ov.Core().compile_model(str(shipped_weights("omz_face_reid_0095/face-reidentification-retail-0095"
                                                               ".xml")), "CPU")

        def openvino(batch: np.ndarray):  # the IR takes one BGR 128x128 chip
            return [compiled(np.ascontiguousarray(c[None, ..., ::-1].transpose(0, 3, 1, 2)).astype(np.float32))
                    for c in batch]

        refs["OpenVINO runtime (reference of omz_reid_0095)"] = ("omz_reid_0095", openvino)
    except ImportError:
        warnings.warn("openvino is not installed: OMZ's reference runtime is left out", stacklevel=1)
    import onnxruntime as ort

    from maskface.models.onnx_graph import repair_graph_inputs

    ort.set_default_logger_severity(3)
    session = ort.InferenceSession(repair_graph_inputs(shipped_weights(
        "sface/face_recognition_sface_2021dec_int8bq.onnx")).SerializeToString(), providers=["CPUExecutionProvider"])

    def onnxruntime(batch: np.ndarray):  # the graph's batch is fixed at 1
        return [session.run(None, {"data": c[None].transpose(0, 3, 1, 2).astype(np.float32)}) for c in batch]

    refs["onnxruntime, repaired SFace graph (reference of sface)"] = ("sface", onnxruntime)
    return refs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chips", type=int, default=64)
    args = parser.parse_args()
    embedders = {name: load_embedder(name, device="cpu") for name in MODELS}
    chips = {name: chips_for(embedder, args.chips) for name, embedder in embedders.items()}
    rows = []
    runs = [(name, "PyTorch", embedder) for name, embedder in embedders.items()]
    runs += [(name, "OpenVINO backend", load_embedder(name, device="openvino")) for name in PLAIN]
    for name, backend, embedder in sorted(runs, key=lambda run: MODELS.index(run[0])):
        params = sum(p.numel() for p in embedders[name].module.parameters()) / 1e6
        embedder.batch_size = 64
        row = [f"{name}, {backend}", f"{embedder.spec.size}", f"{params:.2f} M"]
        row += [f"{rate_of(embedder.embed_chips, chips[name], batch):.1f}" for batch in (1, 64)]
        rows.append(row)
    for label, (model, embed) in reference_runtimes(chips).items():
        rows.append([label, f"{embedders[model].spec.size}", "",
                     f"{rate_of(embed, chips[model], 1):.1f}", f"{rate_of(embed, chips[model], 64):.1f}"])
    print(f"machine: {machine()}; {args.chips} LFW chips per model, cut by the default front end\n")
    print("| embedder | chip | parameters | chips/s, batch 1 | chips/s, batch 64 |\n|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
