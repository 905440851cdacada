"""The Python API (``maskface.load()``): a recogniser that finds, aligns and embeds faces, verifies pairs and scores
photos against each other.

Every image may be a path, encoded bytes, a Pillow image or a numpy array, checked by
:func:`maskface.io.inputs.as_rgb`. An array is ``HxWx3`` uint8 in **RGB** order unless ``bgr=True`` says it is in
OpenCV's order (``HxWx3`` BGR or ``HxWx4`` BGRA, as ``cv2.imread`` gives); a float array needs its scale,
``float_range=(0, 1)`` or ``(0, 255)``. Greyscale ``HxW`` is taken as it is; any other array raises
:class:`~maskface.errors.ImageError` saying what to give instead. ``bgr`` and ``float_range`` apply to arrays only:
files, bytes and Pillow images are always read as RGB.

Where a call takes several images (``embed``, ``compare``), they come as a list, a tuple or an ``NxHxWx3`` array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from maskface.defaults import DEFAULT_MODEL
from maskface.errors import MaskfaceError
from maskface.face.pipeline import Face, FaceConfig, FacePipeline
from maskface.io.inputs import ImageInput, as_rgb, input_name
from maskface.models.embedder import Embedder, compare, is_same, load_embedder, same_decisions, score_matrix
from maskface.models.mask_aware import DEFAULT_FMR
from maskface.models.pair_thresholds import check_fmr, pair_type, shipped_pair_thresholds

if TYPE_CHECKING:
    from maskface.models.mask_aware import MaskAwareRecognizer

ImageLike = ImageInput
#: Several images: a list or tuple of images, or an ``NxHxWx3`` (``NxHxWx4`` with ``bgr=True``) array.
Images = Sequence[ImageInput] | np.ndarray
#: What ``embed`` and ``compare`` do with an image of a list that has no usable face: raise, or leave a NaN row.
OnError = Literal["raise", "skip"]


@dataclass
class Verification:
    """The answer to 'same person?': the score, the threshold it was held to, and the decision. ``pair_type``
    ("U-U", "M-U" or "M-M") chose the threshold; ``completed`` says, for a mask-aware model, which faces it judged
    masked and completed before embedding."""

    score: float
    threshold: float
    same: bool
    metric: str
    faces: tuple[Face, Face]
    completed: tuple[bool, bool] | None = None
    pair_type: str = "U-U"

    def to_dict(self) -> dict:
        answer = {"score": self.score, "threshold": self.threshold, "same": self.same, "metric": self.metric,
                  "pair_type": self.pair_type, "masked": [f.masked for f in self.faces],
                  "detectors": [f.detector for f in self.faces]}
        if self.completed is not None:
            answer["completed"] = list(self.completed)
        return answer


@dataclass
class Comparison:
    """Every image of ``a`` against every image of ``b``: ``scores[i, j]`` compares ``a[i]`` with ``b[j]``, held to
    ``thresholds[i, j]`` to give ``same[i, j]``, as :meth:`Recognizer.verify` would for that pair.

    Scores follow ``metric``: Euclidean distance (lower = same) or cosine similarity (higher = same). An image
    skipped with ``on_error="skip"`` has NaN scores and ``same`` False. ``completed``: for a mask-aware model,
    which images of ``a`` and of ``b`` it judged masked and completed (False for a skipped image)."""

    scores: np.ndarray
    thresholds: np.ndarray
    same: np.ndarray
    metric: str
    completed: tuple[np.ndarray, np.ndarray] | None = None


def is_several(images: object) -> bool:
    """Whether ``images`` holds several images (a list, a tuple or an ``NxHxWxC`` array) rather than one."""
    return isinstance(images, list | tuple) or (isinstance(images, np.ndarray) and images.ndim == 4)


class Recognizer:
    """Face front end plus embedder; the chip geometry always follows what the embedder was trained on."""

    def __init__(self, embedder: Embedder, face: FaceConfig | None = None, threshold: float | None = None,
                 pair_thresholds: dict[str, float] | None = None, fmr: str | None = None):
        self.embedder = embedder
        #: calibrated U-U / M-U / M-M thresholds of a plain model (a mask-aware model carries its own)
        self.pair_thresholds = pair_thresholds
        #: the false-match rate a mask-aware model's own thresholds are taken at (None: the model's default)
        self.fmr = check_fmr(fmr)
        self.face_config = embedder.face_config(face or FaceConfig())
        self.pipeline = FacePipeline(self.face_config)
        self.threshold = embedder.spec.threshold if threshold is None else threshold
        self.fixed_threshold = threshold is not None

    @property
    def metric(self) -> str:
        return self.embedder.spec.metric

    # -- faces -------------------------------------------------------------------------------------------------
    def face(self, image: ImageLike, *, bgr: bool = False, float_range: tuple[float, float] | None = None) -> Face:
        """The one face of an image, aligned, chosen by the front end's policy (``FaceConfig.select``: the largest
        by default); :class:`~maskface.errors.NoFaceError` when there is none. Channel order: module docstring."""
        return self.pipeline.align(as_rgb(image, bgr=bgr, float_range=float_range), input_name(image))

    def faces(self, image: ImageLike, *, bgr: bool = False,
              float_range: tuple[float, float] | None = None) -> list[Face]:
        """Every face in a photo, largest first, each with its ``box``, ``five_points``, ``mask_probability`` and
        ``masked``, ``detector`` and ``chip`` (cut as the embedder wants it); an empty list when there is none."""
        found = self.pipeline.align_all(as_rgb(image, bgr=bgr, float_range=float_range))
        return sorted(found, key=lambda face: face.detection.area, reverse=True)

    # -- embeddings ----------------------------------------------------------------------------------------------
    def embed(self, images: ImageLike | Images, *, bgr: bool = False, float_range: tuple[float, float] | None = None,
              on_error: OnError = "raise") -> np.ndarray:
        """The embedding of the face in one image (a ``D`` vector), or of each of several images (``N x D``, row
        ``i`` for image ``i``, embedded in one batched call).

        An image without a usable face raises its :class:`~maskface.errors.MaskfaceError`, which for several images
        names the index (``... (images[3])``). With ``on_error="skip"`` its row is NaN instead, so rows stay in step
        with the images: ``np.isnan(vectors[:, 0])`` marks the skipped ones."""
        several = is_several(images)
        faces = self._faces_of(images, "images", bgr, float_range, on_error)
        vectors, _ = self._embed_faces(faces)
        return vectors if several else vectors[0]

    # -- comparison ----------------------------------------------------------------------------------------------
    def verify(self, a: ImageLike, b: ImageLike, *, bgr: bool = False,
               float_range: tuple[float, float] | None = None) -> Verification:
        """Whether the faces of two images are the same person, held to the threshold calibrated for the pair's type
        (:meth:`pair_threshold`) unless ``load(threshold=...)`` fixed one."""
        faces = (self.face(a, bgr=bgr, float_range=float_range), self.face(b, bgr=bgr, float_range=float_range))
        emb, completed = self.embed_chips_with_completion(np.stack([f.chip for f in faces]))
        score = float(compare(emb[0], emb[1], self.metric)[0])
        flags = self.pair_flags(list(faces), completed)
        threshold = self.pair_threshold(*flags)
        return Verification(score, threshold, is_same(score, threshold, self.metric), self.metric, faces, completed,
                            pair_type(*flags))

    def compare(self, a: ImageLike | Images, b: ImageLike | Images, *, bgr: bool = False,
                float_range: tuple[float, float] | None = None, on_error: OnError = "raise") -> Comparison:
        """Every image of ``a`` against every image of ``b``: one against many, or many against many. A single image
        counts as a list of one, so the matrices are always ``len(a) x len(b)``. All faces go through the embedder
        in one batched call; each pair is held to the threshold :meth:`verify` would use. ``on_error`` as in
        :meth:`embed` (a skipped image's row or column is NaN)."""
        side_a = self._faces_of(a, "a", bgr, float_range, on_error)
        side_b = self._faces_of(b, "b", bgr, float_range, on_error)
        vectors, completed = self._embed_faces(side_a + side_b)
        split = len(side_a)
        scores = score_matrix(vectors[:split], vectors[split:], self.metric)
        flags = self.pair_flags(side_a + side_b, completed)
        # the four pair types' thresholds, indexed by (a counts as masked, b counts as masked)
        table = np.array([[self.pair_threshold(x, y) for y in (False, True)] for x in (False, True)])
        thresholds = table[np.ix_(flags[:split].astype(int), flags[split:].astype(int))]
        if completed is not None:
            completed = (completed[:split], completed[split:])
        return Comparison(scores, thresholds, same_decisions(scores, thresholds, self.metric), self.metric,
                          completed)

    def pair_flags(self, faces: Sequence[Face | None], completed: Sequence[bool] | None = None) -> np.ndarray:
        """Whether each face counts as masked when choosing a pair's threshold: for a mask-aware model, whether it
        completed the face (``completed``); for any other model, the front end's mask call. False for None."""
        if completed is not None:
            return np.asarray(completed, bool)
        return np.array([face is not None and bool(face.masked) for face in faces], bool)

    def pair_threshold(self, masked_a: bool, masked_b: bool) -> float:
        """The threshold for a pair whose faces do or do not count as masked (:meth:`pair_flags`): the one
        calibrated for that pair type (a mask-aware model's own, or a plain model's shipped table), else the
        model's single threshold; a threshold given to ``load`` always wins."""
        if self.fixed_threshold:
            return self.threshold
        module = self._mask_aware
        if module is not None:
            calibrated = module.threshold(masked_a, masked_b, *([self.fmr] if self.fmr else []))
        elif self.pair_thresholds is not None:
            calibrated = self.pair_thresholds[pair_type(masked_a, masked_b)]
        else:
            calibrated = None
        return self.threshold if calibrated is None else calibrated

    # -- internals -----------------------------------------------------------------------------------------------
    def _faces_of(self, images: ImageLike | Images, label: str, bgr: bool, float_range: tuple[float, float] | None,
                  on_error: OnError) -> list[Face | None]:
        """The aligned face of each image (one image counts as a list of one); None for a skipped image."""
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        several = is_several(images)
        faces: list[Face | None] = []
        for index, image in enumerate(images if several else [images]):
            try:
                faces.append(self.face(image, bgr=bgr, float_range=float_range))
            except MaskfaceError as exc:
                if on_error == "skip":
                    faces.append(None)
                elif several:  # the same error, saying which image of the list it is
                    raise type(exc)(exc.path, f"{exc.reason} ({label}[{index}])") from None
                else:
                    raise
        return faces

    def _embed_faces(self, faces: list[Face | None]) -> tuple[np.ndarray, np.ndarray | None]:
        """``N x D`` embeddings of the faces (NaN rows for None), and which ones a mask-aware model completed."""
        found = [i for i, face in enumerate(faces) if face is not None]
        completed = None if self._mask_aware is None else np.zeros(len(faces), bool)
        if not found:
            return np.full((len(faces), self._dimension), np.nan, np.float32), completed
        emb, was_completed = self.embed_chips_with_completion(np.stack([faces[i].chip for i in found]))
        vectors = np.full((len(faces), emb.shape[1]), np.nan, np.float32)
        vectors[found] = emb
        if completed is not None:
            completed[found] = was_completed
        return vectors, completed

    @cached_property
    def _dimension(self) -> int:
        """The embedding's length, measured once on a blank chip."""
        size = self.embedder.spec.size
        return self.embedder.embed_chips(np.zeros((1, size, size, 3), np.uint8)).shape[1]

    @property
    def _mask_aware(self) -> MaskAwareRecognizer | None:
        from maskface.models.mask_aware import MaskAwareRecognizer

        module = getattr(self.embedder, "module", None)
        return module if isinstance(module, MaskAwareRecognizer) else None

    def embed_chips_with_completion(self, chips: np.ndarray) -> tuple[np.ndarray, tuple[bool, ...] | None]:
        """Embeddings of aligned chips, plus which of them a mask-aware model completed (None for other models): what
        galleries and the service store beside each template."""
        module = self._mask_aware
        if module is None:
            return self.embedder.embed_chips(chips), None
        embeddings, completed = [], []
        with torch.inference_mode(), self.embedder.autocast():
            for start in range(0, len(chips), self.embedder.batch_size):
                batch = self.embedder.as_tensor(chips[start : start + self.embedder.batch_size])
                vectors, masked = module.embed_with_masks(batch)
                embeddings.append(vectors.float().cpu().numpy())
                completed.extend(bool(m) for m in masked)
        return np.concatenate(embeddings), tuple(completed)


def load(model: str = DEFAULT_MODEL, device: str | None = None, face: FaceConfig | None = None,
         threshold: float | None = None, fmr: str | None = None) -> Recognizer:
    """A ready recogniser; the parameters are documented at :func:`maskface.load`, which hands over to this."""
    check_fmr(fmr)
    # shipped thresholds belong to the shipped weights: not to ``name=checkpoint`` or an ONNX file
    pair_thresholds = None if "=" in model else shipped_pair_thresholds(model, fmr)
    recognizer = Recognizer(load_embedder(model, device=device), face, threshold, pair_thresholds, fmr)
    module = recognizer._mask_aware
    calibrated = pair_thresholds is not None or (module is not None and module.threshold(False, False, fmr or
                                                                                         DEFAULT_FMR) is not None)
    if fmr is not None and not calibrated:
        raise ValueError(f"{model} has no thresholds calibrated at false-match rates; give a threshold instead of "
                         f"fmr {fmr}")
    return recognizer
