"""Train the mask-robust front end by teacher-student on synthetic masks (``maskface train frontend``).

The teachers are dlib's standard HOG detector and 5-point landmark model, run on the *unmasked* originals of LFW
people from the training folds: their boxes and points become the labels (:mod:`maskface.data.frontend_labels`).
Each image then gets a synthetic mask (placed from those 5 points, so no non-commercial model is involved) and the
students learn to recover the labels from the masked image:

* a dlib fHOG detector (``train_simple_object_detector``) on masked and unmasked photos,
* a dlib 5-point shape predictor (``train_shape_predictor``) on masked photos,
* a logistic-regression mask classifier on dlib chips, as the standard landmarks would cut them.

dlib's trainers were chosen over a small CNN because their models run at HOG speed on a CPU, train in minutes
on two cores, and keep the standard detector's box and point conventions, so the cascade can switch between
teacher and student without moving the chip.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import dlib
import numpy as np
from sklearn.linear_model import LogisticRegression

from maskface.data.frontend_labels import Labelled, fold_photos, label_photo, masked_version, teachers
from maskface.data.lfw import LFW
from maskface.face.robust import CLASSIFIER_FILE, DETECTOR_FILE, LANDMARKS_FILE, MaskClassifier, mask_features
from maskface.io.files import atomic_save, atomic_write_text
from maskface.io.parallel import BatchReport, console, run_batch


@dataclass(frozen=True)
class FrontendTrainConfig:
    """The recipe; every number that shapes the shipped models is here."""

    folds: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    max_images: int = 2000
    masked_fraction: float = 0.75
    seed: int = 0
    detector_c: float = 40.0
    detector_epsilon: float = 0.01
    #: Side of the detector's square window in pixels. dlib's trainer adds a ring of one 8-pixel cell, so 64 gives
    #: a 10 x 10-cell filter, the size of dlib's face detector's: scanned together, both share one HOG pyramid
    #: padded for that size (an 80-pixel window, 12 x 12 cells, made the face detector's own scan dearer too).
    detector_window: int = 64
    #: Nuclear-norm regularisation of the filter: it favours low-rank filters, which dlib scans as a few
    #: separable ones.
    detector_nuclear_norm: float = 1.0
    #: After training, each filter plane's singular values below this fraction of its largest are dropped
    #: (``dlib.threshold_filter_singular_values``): fewer separable filters, a cheaper scan.
    detector_singular_threshold: float = 0.1
    landmark_trees: int = 300
    landmark_depth: int = 4
    landmark_cascades: int = 10
    landmark_oversampling: int = 10
    classifier_c: float = 0.1
    workers: int = 2
    #: Which models to train (all three by default; a subset retrains one without touching the others).
    models: tuple[str, ...] = ("detector", "landmarks", "classifier")


def chip_pair(task: tuple[Labelled, int]) -> tuple[np.ndarray, np.ndarray]:
    """Dlib chips of the clean and the masked photo, cut with the *standard* 5-point model as at inference."""
    sample, seed = task
    _, predictor = teachers()
    image, masked = masked_version(sample, seed)
    chips = []
    for picture in (image, masked):
        points = predictor(picture, sample.detection)
        chips.append(MaskClassifier.cut_chip(picture, points))
    return chips[0], chips[1]


def _rects(boxes) -> list[dlib.rectangle]:
    return [dlib.rectangle(*b) for b in boxes]


def _save_detector(detector: dlib.simple_object_detector, path: Path, config: FrontendTrainConfig) -> int:
    """Save the trained detector with its small singular values dropped; returns its number of separable filters."""
    if config.detector_singular_threshold > 0:
        detector = dlib.threshold_filter_singular_values(detector, config.detector_singular_threshold)
    atomic_save(path, detector.save)
    return dlib.num_separable_filters(detector)


def training_photos(lfw: LFW, config: FrontendTrainConfig, rng: np.random.Generator | None = None) -> list[str]:
    """The photos the recipe trains on: ``max_images`` drawn from the training folds with the recipe's seed."""
    rng = np.random.default_rng(config.seed) if rng is None else rng
    paths = fold_photos(lfw, list(config.folds))
    return sorted(rng.choice(paths, size=min(config.max_images, len(paths)), replace=False).tolist())


def held_out_photos(lfw: LFW, config: FrontendTrainConfig) -> list[str]:
    """The training folds' photos that the recipe did not train on: where the front end's thresholds are chosen (the
    test folds stay untouched)."""
    trained = set(training_photos(lfw, config))
    return [p for p in fold_photos(lfw, list(config.folds)) if p not in trained]


def train_frontend(data: str | Path, out_dir: str | Path, config: FrontendTrainConfig) -> dict:
    """Label, render, train the three models into ``out_dir`` and return the training record."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(config.seed)
    paths = training_photos(LFW.find(data), config, rng)
    record: dict = {"config": asdict(config), "timings_s": {}}
    start = time.perf_counter()
    report = BatchReport()
    samples = [s for _, s in run_batch(paths, label_photo, workers=config.workers,
                                       description="labels from unmasked photos", report=report)]
    record["photos"], record["unlabelled"] = len(samples), len(report.failures)
    record["timings_s"]["labels"] = time.perf_counter() - start

    start = time.perf_counter()
    masked_flags = rng.random(len(samples)) < config.masked_fraction
    images, masked_images = [], []
    for sample, masked in zip(samples, masked_flags):
        original, with_mask = masked_version(sample, config.seed)
        images.append(with_mask if masked else original)
        masked_images.append(with_mask)
    record["timings_s"]["render"] = time.perf_counter() - start

    if "detector" in config.models:
        console.print(f"training the masked-face detector on {len(images)} photos ...")
        start = time.perf_counter()
        options = dlib.simple_object_detector_training_options()
        options.C, options.epsilon, options.num_threads = config.detector_c, config.detector_epsilon, config.workers
        options.add_left_right_image_flips = True
        options.nuclear_norm_regularization_strength = config.detector_nuclear_norm
        options.detection_window_size = config.detector_window**2
        detector = dlib.train_simple_object_detector(images, [_rects(s.boxes) for s in samples], options)
        record["detector_separable_filters"] = _save_detector(detector, out_dir / DETECTOR_FILE, config)
        record["timings_s"]["detector"] = time.perf_counter() - start

    if "landmarks" in config.models:
        console.print(f"training the 5-point landmark model on {len(masked_images)} masked photos ...")
        start = time.perf_counter()
        sp_options = dlib.shape_predictor_training_options()
        sp_options.num_trees_per_cascade_level = config.landmark_trees
        sp_options.tree_depth = config.landmark_depth
        sp_options.cascade_depth = config.landmark_cascades
        sp_options.oversampling_amount = config.landmark_oversampling
        sp_options.num_threads, sp_options.random_seed = config.workers, str(config.seed)
        detections = [[dlib.full_object_detection(dlib.rectangle(*s.box), [dlib.point(round(x), round(y))
                                                                            for x, y in s.points])] for s in samples]
        predictor = dlib.train_shape_predictor(masked_images, detections, sp_options)
        atomic_save(out_dir / LANDMARKS_FILE, predictor.save)
        record["timings_s"]["landmarks"] = time.perf_counter() - start

    if "classifier" in config.models:
        start = time.perf_counter()
        pairs = [p for _, p in run_batch([(s, config.seed) for s in samples], chip_pair, workers=config.workers,
                                         description="chips for the mask classifier",
                                         report=BatchReport())]
        features = np.stack([mask_features(c) for pair in pairs for c in pair])
        labels = np.tile([0, 1], len(pairs))
        mean, scale = features.mean(0), features.std(0) + 1e-6
        model = LogisticRegression(C=config.classifier_c, max_iter=2000).fit((features - mean) / scale, labels)
        classifier = MaskClassifier(mean, scale, model.coef_[0].astype(np.float32), float(model.intercept_[0]))
        classifier.save(out_dir / CLASSIFIER_FILE, trained_on=f"LFW View 2 folds {list(config.folds)}, "
                                                              f"{len(pairs)} clean + {len(pairs)} masked chips")
        record["classifier_train_accuracy"] = float(model.score((features - mean) / scale, labels))
        record["timings_s"]["classifier"] = time.perf_counter() - start
    atomic_write_text(out_dir / "frontend_training.json", json.dumps(record, indent=2) + "\n")
    return record
