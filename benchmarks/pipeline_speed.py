"""The whole pipeline (read, detect, landmarks, align, embed) on real LFW photos: maskface vs face_recognition's
``face_encodings(load_image_file(p))`` (dlib HOG with one upsampling, the 5-point predictor,
``compute_face_descriptor``; the package itself when installed, ``pip install --no-deps face_recognition
"setuptools<81"``, else the same dlib calls made here), side by side in one run; then the front end alone (detect,
landmarks, align) on the same photos in memory: the default (YuNet), and front end v5's HOG, standard vs the
mask-robust cascade in both ``masked_scan`` modes, the fastest of ``--repeats`` interleaved runs each, on the photos
as they are and with synthetic masks.
Run: ``python benchmarks/pipeline_speed.py [--images 200] [--repeats 5]``."""

from __future__ import annotations

import argparse
import contextlib
import time
from functools import partial

import dlib
import numpy as np

from common import DATA, fastest_interleaved, machine
from maskface.apps.embed import embed_images
from maskface.defaults import DEFAULT_MODEL
from maskface.errors import NoFaceError
from maskface.face.pipeline import FaceConfig, FacePipeline
from maskface.io.images import load_image
from maskface.io.locations import RESNET, SHAPE_5, dlib_model_path
from maskface.io.parallel import default_workers
from maskface.masks.synth import MaskSynthesizer
from maskface.models.embedder import load_embedder

#: (model, detector, device) of each maskface pipeline timed
PIPELINES = ((DEFAULT_MODEL, "yunet", "openvino"), (DEFAULT_MODEL, "yunet", "cpu"),
             ("omz_reid_0095", "yunet", "openvino"), ("sface", "yunet", "openvino"),
             ("dlib_resnet_v1", "yunet", "openvino"), ("dlib_resnet_v1", "yunet", "cpu"),
             ("dlib_resnet_v1", "hog", "cpu"))


def face_recognition_pipeline(paths) -> int:
    """``face_recognition.face_encodings(load_image_file(p))`` over the photos; without the package, what it does,
    call for call."""
    try:
        import face_recognition
    except ImportError:
        face_recognition = None
    if face_recognition is not None:
        return sum(len(face_recognition.face_encodings(face_recognition.load_image_file(p))) for p in paths)
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dlib_model_path(SHAPE_5)))
    encoder = dlib.face_recognition_model_v1(str(dlib_model_path(RESNET)))
    faces = 0
    for path in paths:
        image = load_image(path)
        for rect in detector(image, 1):
            np.array(encoder.compute_face_descriptor(image, predictor(image, rect), 1))
            faces += 1
    return faces


def align_all(pipeline: FacePipeline, images) -> None:
    for image in images:
        with contextlib.suppress(NoFaceError):
            pipeline.align(image)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5, help="runs of the front-end comparison (fastest kept)")
    parser.add_argument("--models", nargs="*", default=None, help="time only these models' pipelines")
    parser.add_argument("--no-front-end", action="store_true", help="skip the front-end comparison")
    args = parser.parse_args()
    paths = sorted((DATA / "lfw").glob("*/*.jpg"))[:: 13233 // args.images][: args.images]
    rows = []
    start = time.perf_counter()
    faces = face_recognition_pipeline(paths)
    rows.append(("face_recognition.face_encodings, 1 process", time.perf_counter() - start, faces))
    runs = [(model, detector, device) for model, detector, device in PIPELINES
            if not args.models or model in args.models]
    for model, detector, device in runs:
        embedder = load_embedder(model, device=device)
        for workers in (1, default_workers()):
            config = embedder.face_config(FaceConfig(detector=detector, landmarks=5))
            start = time.perf_counter()
            names, _, _, _ = embed_images(paths, embedder, config, workers)
            front = {"yunet": "default front end (YuNet)", "hog": "HOG mask-robust cascade (v5)"}[detector]
            backend = {"openvino": "OpenVINO (default)", "cpu": "PyTorch"}[device]
            rows.append((f"maskface embed, `{model}`, {backend}, {front}, {workers} worker(s)",
                         time.perf_counter() - start, len(names)))
    print(f"machine: {machine()}; {len(paths)} LFW photos (250x250)\n")
    print("| pipeline | seconds | images/s | speed-up |\n|---|---:|---:|---:|")
    base = len(paths) / rows[0][1]
    for name, seconds, _ in rows:
        print(f"| {name} | {seconds:.1f} | {len(paths) / seconds:.1f} | {len(paths) / seconds / base:.1f}x |")
    if args.no_front_end:
        return

    images = [load_image(p) for p in paths]
    masked = masked_versions(images, paths)
    configs = {"standard": FaceConfig(detector="hog", landmarks=5, mask_robust=False),
               "default: YuNet, mask classifier": FaceConfig(),
               "HOG mask-robust cascade (v5, masked_scan=center)": FaceConfig(detector="hog", landmarks=5),
               "HOG mask-robust cascade, masked_scan=always": FaceConfig(detector="hog", landmarks=5,
                                                                         masked_scan="always")}
    pipelines = {name: FacePipeline(config) for name, config in configs.items()}
    for pipeline in pipelines.values():
        pipeline.align(images[0])  # load the models before the clock starts
    for photos, label in ((images, f"{len(images)} unmasked photos"),
                          (masked, f"the same {len(masked)} photos with synthetic masks")):
        seconds = fastest_interleaved({name: partial(align_all, p, photos) for name, p in pipelines.items()},
                                      args.repeats)
        ms = {name: 1000 * value / len(photos) for name, value in seconds.items()}
        print(f"\nfront end alone (detect, landmarks, align), 1 process, fastest of {args.repeats}, {label}:\n")
        print("| front end | ms per photo | vs HOG standard |\n|---|---:|---:|")
        for name, value in ms.items():
            print(f"| {name} | {value:.1f} | {value / ms['standard']:.3f}x |")


def masked_versions(images, paths) -> list:
    """Each photo with a synthetic mask placed on the landmarks of its face (photos without one are left out)."""
    pipeline = FacePipeline(FaceConfig(mask_robust=False))
    synthesizer = MaskSynthesizer(seed=0)
    out = []
    for image, path in zip(images, paths):
        with contextlib.suppress(NoFaceError):
            out.append(synthesizer(image, pipeline.align(image).landmarks, key=str(path)).image)
    return out


if __name__ == "__main__":
    main()
