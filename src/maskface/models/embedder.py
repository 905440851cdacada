"""One interface for every face embedder: aligned uint8 RGB chips in, float32 embeddings out.

Backends: any registered PyTorch model (:class:`TorchEmbedder`), the same converted for OpenVINO
(:class:`~maskface.models.openvino_embedder.OpenVinoEmbedder`, the default on CPUs) and any ONNX face embedder run by
onnxruntime (:class:`OnnxEmbedder`, configured by a small JSON file beside the model). :func:`load_embedder` picks
one from a model spec: a registered name (``dlib_resnet_v1``), ``name=checkpoint.pth`` (e.g.
``iresnet50=backbone.pth``), or a path to an ``.onnx`` file; and the runtime from a device string
(:mod:`maskface.models.runtime`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from maskface.errors import ModelFileError
from maskface.models.mask_aware import DEFAULT_FMR
from maskface.models.registry import CHIP_KINDS, ChipKind, EmbedderSpec, create_from_spec, model_info
from maskface.models.runtime import parse_runtime

if TYPE_CHECKING:
    from maskface.face.pipeline import FaceConfig


def module_fingerprint(*modules: torch.nn.Module) -> str:
    """A short SHA-256 of modules' weights and buffers: caches of their outputs are keyed by it."""
    digest = hashlib.sha256()
    for module in modules:
        hash_tensors(digest, module.state_dict().items())
    return digest.hexdigest()[:16]


def hash_tensors(digest: hashlib._Hash, named: Iterable[tuple[str, torch.Tensor]]) -> None:
    """Feed each tensor's name and bytes to ``digest``: the one way maskface hashes weights and buffers."""
    for name, tensor in named:
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())


def inference_module(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` with its frozen normalisation folded into the convolutions, when it offers that (``fused``): the
    network every backend runs, and whose weights name its embeddings (the fingerprint)."""
    fused = getattr(module, "fused", None)
    return fused() if callable(fused) else module


def precision_fingerprint(weights: str, precision: str) -> str:
    """The fingerprint of embeddings made from ``weights`` in ``precision``: bf16 ones differ from float32's (cosine
    0.99+, not 1e-5), so they get caches of their own."""
    return weights if precision == "fp32" else f"{weights}+{precision}"


class Embedder(ABC):
    spec: EmbedderSpec
    batch_size: int = 64

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Changes whenever the embeddings would (weights, model file): part of every embedding-cache key."""

    def face_config(self, face: FaceConfig) -> FaceConfig:
        """``face`` cutting the chips this embedder was trained on (its chip geometry, size and padding)."""
        return replace(face, chip=self.spec.chip, size=self.spec.size, padding=self.spec.padding)

    @abstractmethod
    def _embed_batch(self, chips: np.ndarray) -> np.ndarray:
        """Embed one batch of ``N x size x size x 3`` uint8 chips."""

    def embed_chips(self, chips: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """Embed chips in batches; returns ``N x D`` float32."""
        chips = np.asarray(chips)
        if chips.ndim != 4 or chips.shape[1:] != (self.spec.size, self.spec.size, 3):
            raise ValueError(f"{self.spec.name} wants N x {self.spec.size} x {self.spec.size} x 3 chips, "
                             f"got shape {chips.shape}")
        if len(chips) == 0:
            return np.zeros((0, 0), np.float32)
        parts = [self._embed_batch(chips[i : i + self.batch_size]) for i in range(0, len(chips), self.batch_size)]
        return np.concatenate(parts).astype(np.float32)


class TorchEmbedder(Embedder):
    """A PyTorch module that maps ``N x 3 x H x W`` float RGB in [0, 255] to embeddings."""

    def __init__(self, module: torch.nn.Module, spec: EmbedderSpec, device: str | None = None, batch_size: int = 64):
        runtime = parse_runtime(device)
        self.device, self.precision = runtime.device, runtime.precision
        module = inference_module(module)
        # Chips arrive as N x H x W x 3, i.e. already channels-last; convolutions run fastest with weights to match.
        self.module = module.eval().to(self.device, memory_format=torch.channels_last)
        self.spec = spec
        self.batch_size = batch_size

    @cached_property
    def fingerprint(self) -> str:
        return precision_fingerprint(module_fingerprint(self.module), self.precision)

    def as_tensor(self, chips: np.ndarray) -> torch.Tensor:
        """``N x H x W x 3`` uint8 chips as the module's input: ``N x 3 x H x W`` float on its device."""
        return torch.from_numpy(np.ascontiguousarray(chips)).to(self.device).permute(0, 3, 1, 2).float()

    def autocast(self) -> contextlib.AbstractContextManager:
        """The arithmetic of every forward pass: bfloat16 autocast for ``+bf16`` devices, else float32 (no autocast
        at all: older torch builds have none for some devices, e.g. MPS)."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def _embed_batch(self, chips: np.ndarray) -> np.ndarray:
        with self.autocast():
            return self.module(self.as_tensor(chips)).float().cpu().numpy()


@dataclass(frozen=True)
class OnnxConfig:
    """How to feed an ONNX embedder: chip geometry, ``(pixel - mean) / std`` per RGB channel, channel order."""

    chip: ChipKind = "arcface"
    size: int = 112
    padding: float = 0.0
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    bgr: bool = False
    metric: Literal["euclidean", "cosine"] = "cosine"
    threshold: float = 0.3

    @classmethod
    def for_model(cls, model_path: Path) -> OnnxConfig:
        """Read ``<model>.json`` beside the model when present (any subset of the fields), else ArcFace defaults."""
        from maskface.models.weights import model_file, parse_json_object

        sidecar = model_path.with_suffix(".json")
        if not sidecar.exists() and not sidecar.is_symlink():
            return cls()
        fields = parse_json_object(model_file(sidecar).read_bytes(), sidecar, "the ONNX embedder config")
        try:
            config = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        except TypeError as exc:
            raise ModelFileError(str(sidecar), f"bad ONNX embedder config: {exc}") from None
        problem = config.problem()
        if problem:
            raise ModelFileError(str(sidecar), f"bad ONNX embedder config: {problem}")
        return config

    def problem(self) -> str | None:
        """What is wrong with the fields' values, if anything (a sidecar is user input)."""
        numbers = (int, float)
        if self.chip not in CHIP_KINDS or self.metric not in ("euclidean", "cosine"):
            return (f"chip must be one of {', '.join(CHIP_KINDS)} and metric euclidean or cosine, not {self.chip!r}, "
                    f"{self.metric!r}")
        if not isinstance(self.size, int) or not 16 <= self.size <= 1024:
            return f"size must be a whole number of pixels from 16 to 1024, not {self.size!r}"
        for name in ("mean", "std"):
            value = getattr(self, name)
            if not (isinstance(value, tuple) and len(value) == 3 and all(isinstance(v, numbers) for v in value)):
                return f"{name} must be three numbers, not {value!r}"
        if not all(v != 0 for v in self.std):
            return "std must not be 0"
        if not all(isinstance(v, numbers) and not isinstance(v, bool) for v in (self.padding, self.threshold)):
            return "padding and threshold must be numbers"
        return None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")


class OnnxEmbedder(Embedder):
    """Any ONNX face embedder (insightface ArcFace models, maskface exports) run through onnxruntime."""

    def __init__(self, path: str | Path, config: OnnxConfig | None = None, batch_size: int = 64):
        import onnxruntime as ort

        from maskface.models.weights import model_file

        path = model_file(path)
        self.config = config or OnnxConfig.for_model(path)
        try:
            self.session = ort.InferenceSession(str(path), providers=ort.get_available_providers())
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelFileError(str(path), f"not a loadable ONNX model: {exc}") from None
        self.input_name = self.session.get_inputs()[0].name
        c = self.config
        self.spec = EmbedderSpec(path.stem, c.chip, c.size, c.padding, c.metric, c.threshold)
        self.batch_size = batch_size
        self._file = path

    @cached_property
    def fingerprint(self) -> str:
        return hashlib.sha256(self._file.read_bytes() + repr(self.config).encode()).hexdigest()[:16]

    def _embed_batch(self, chips: np.ndarray) -> np.ndarray:
        x = chips[..., ::-1] if self.config.bgr else chips
        x = (x.astype(np.float32) - np.float32(self.config.mean)) / np.float32(self.config.std)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return self.session.run(None, {self.input_name: x})[0]


class DeoccludingEmbedder(Embedder):
    """Complete masked chips with a de-occlusion model (estimated map), then embed them with ``base``."""

    def __init__(self, base: Embedder, deoccluder: torch.nn.Module, name: str, device: str | None = None):
        self.base, self.batch_size = base, base.batch_size
        self.device = parse_runtime(device).device
        self.deoccluder = deoccluder.eval().to(self.device)
        self.spec = replace(base.spec, name=name)

    @cached_property
    def fingerprint(self) -> str:
        return f"{self.base.fingerprint}+{module_fingerprint(self.deoccluder)}"

    def _embed_batch(self, chips: np.ndarray) -> np.ndarray:
        from maskface.models.deocclusion import complete_chips

        return self.base.embed_chips(complete_chips(self.deoccluder, chips)[0])


def load_embedder(spec: str, device: str | None = None, batch_size: int = 64) -> Embedder:
    """An embedder from a model spec: registered name, ``name=checkpoint``, or a path to an ``.onnx`` file;
    ``EMBEDDER+deocclusion_v1`` completes masked chips with a registered de-occlusion model before embedding
    (``EMBEDDER+deocclusion_v1=FOLDER`` with a trained one). ``device`` is a device string
    (:func:`~maskface.models.runtime.parse_runtime`): a plain PyTorch embedder runs through OpenVINO when it names
    or defaults to it; mask-aware models, whose router is Python, always run in PyTorch."""
    runtime = parse_runtime(device)
    if "+" in spec:
        base, _, completer = spec.rpartition("+")
        try:
            info = model_info(completer.partition("=")[0])
        except KeyError as exc:
            raise ModelFileError(spec, str(exc.args[0])) from None
        if info.kind != "deocclusion":
            raise ModelFileError(spec, f"{completer} is a {info.kind} model, not a de-occlusion model")
        return DeoccludingEmbedder(load_embedder(base, device, batch_size), create_from_spec(completer), spec, device)
    if spec.endswith(".onnx"):
        return OnnxEmbedder(spec, batch_size=batch_size)
    name = spec.partition("=")[0]
    try:
        info = model_info(name)
    except KeyError as exc:
        raise ModelFileError(spec, str(exc.args[0])) from None
    if info.spec is None:
        raise ModelFileError(spec, f"is a {info.kind} model, not a face embedder")
    module = create_from_spec(spec)
    embedder_spec = info.spec
    threshold = getattr(module, "threshold", None)  # a calibrated one shipped with the weights wins
    if callable(threshold) and threshold(False, False, DEFAULT_FMR) is not None:
        embedder_spec = replace(embedder_spec, threshold=threshold(False, False, DEFAULT_FMR))
    if runtime.backend == "openvino":
        if not hasattr(module, "embed_with_masks"):
            from maskface.models.openvino_embedder import OpenVinoEmbedder

            return OpenVinoEmbedder(module, embedder_spec, runtime.precision, batch_size)
        if runtime.chosen:
            raise ModelFileError(spec, "is a mask-aware model, which runs in PyTorch only: use --device cpu")
    return TorchEmbedder(module, embedder_spec, device=device, batch_size=batch_size)


def compare(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Row-wise comparison score: Euclidean *distance* (lower = same) or cosine *similarity* (higher = same)."""
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    if metric == "euclidean":
        return np.linalg.norm(a - b, axis=1)
    if metric == "cosine":
        return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    raise ValueError(f"unknown metric {metric!r}")


def score_matrix(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Every row of ``a`` against every row of ``b`` (``len(a) x len(b)``), in the scores of :func:`compare`: a NaN
    row stays NaN."""
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    if metric == "euclidean":
        from scipy.spatial.distance import cdist

        return cdist(a, b)
    if metric == "cosine":
        return (a @ b.T) / (np.linalg.norm(a, axis=1)[:, None] * np.linalg.norm(b, axis=1)[None, :] + 1e-12)
    raise ValueError(f"unknown metric {metric!r}")


def same_decisions(scores: np.ndarray, thresholds: np.ndarray | float, metric: str) -> np.ndarray:
    """:func:`is_same` for arrays of scores (a NaN score is never the same person)."""
    scores = np.asarray(scores)
    return scores < thresholds if metric == "euclidean" else scores >= thresholds


def to_similarity(scores: np.ndarray, metric: str) -> np.ndarray:
    """Scores on a 'higher = more alike' scale, the convention of :mod:`maskface.eval`: distances are negated."""
    return -np.asarray(scores) if metric == "euclidean" else np.asarray(scores)


def is_same(score: float, threshold: float, metric: str) -> bool:
    return bool(score < threshold) if metric == "euclidean" else bool(score >= threshold)
