"""The Python API: a recogniser that finds, aligns and embeds faces and verifies pairs (``maskface.load()``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from maskface.defaults import DEFAULT_MODEL
from maskface.face.pipeline import Face, FaceConfig, FacePipeline
from maskface.io.inputs import ImageInput, as_rgb, input_name
from maskface.models.embedder import Embedder, compare, is_same, load_embedder

ImageLike = ImageInput


@dataclass
class Verification:
    """The answer to 'same person?': the score, the threshold it was held to, and the decision. ``completed``
    says, for a mask-aware model, which faces it judged masked and completed before embedding."""

    score: float
    threshold: float
    same: bool
    metric: str
    faces: tuple[Face, Face]
    completed: tuple[bool, bool] | None = None

    def to_dict(self) -> dict:
        answer = {"score": self.score, "threshold": self.threshold, "same": self.same, "metric": self.metric,
                  "masked": [f.masked for f in self.faces], "detectors": [f.detector for f in self.faces]}
        if self.completed is not None:
            answer["completed"] = list(self.completed)
        return answer


class Recognizer:
    """Face front end plus embedder; the chip geometry always follows what the embedder was trained on."""

    def __init__(self, embedder: Embedder, face: FaceConfig | None = None, threshold: float | None = None):
        self.embedder = embedder
        spec = embedder.spec
        face = face or FaceConfig()
        self.face_config = replace(face, chip=spec.chip, size=spec.size, padding=spec.padding)
        self.pipeline = FacePipeline(self.face_config)
        self.threshold = spec.threshold if threshold is None else threshold
        self.fixed_threshold = threshold is not None

    @property
    def metric(self) -> str:
        return self.embedder.spec.metric

    def face(self, image: ImageLike) -> Face:
        """The aligned face of an image (a path, image bytes, a Pillow image or an HxWx3 uint8 RGB array, checked
        by :func:`maskface.io.inputs.as_rgb`), per the pipeline's selection policy."""
        return self.pipeline.align(as_rgb(image), input_name(image))

    def embed(self, image: ImageLike) -> np.ndarray:
        """The embedding of the face in one image."""
        return self.embedder.embed_chips(self.face(image).chip[None])[0]

    def verify(self, a: ImageLike, b: ImageLike) -> Verification:
        faces = (self.face(a), self.face(b))
        emb, completed = self._embed_reporting_completion(np.stack([f.chip for f in faces]))
        score = float(compare(emb[0], emb[1], self.metric)[0])
        threshold = self.threshold
        if completed is not None and not self.fixed_threshold:  # the calibrated threshold of this pair type
            threshold = self.embedder.module.threshold(*completed) or threshold
        return Verification(score, threshold, is_same(score, threshold, self.metric), self.metric, faces, completed)

    def _embed_reporting_completion(self, chips: np.ndarray) -> tuple[np.ndarray, tuple[bool, ...] | None]:
        """Embeddings, plus which chips a mask-aware model completed (None for other models)."""
        from maskface.models.mask_aware import MaskAwareRecognizer

        module = getattr(self.embedder, "module", None)
        if not isinstance(module, MaskAwareRecognizer):
            return self.embedder.embed_chips(chips), None
        with torch.inference_mode():
            embeddings, masked = module.embed_with_masks(self.embedder.as_tensor(chips))
        return embeddings.float().cpu().numpy(), tuple(bool(m) for m in masked)


def load(model: str = DEFAULT_MODEL, device: str | None = None, face: FaceConfig | None = None,
         threshold: float | None = None) -> Recognizer:
    """A ready recogniser: ``maskface.load().verify("a.jpg", "b.jpg")``."""
    return Recognizer(load_embedder(model, device=device), face, threshold)
