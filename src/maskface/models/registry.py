"""A timm-style model registry: ``create_model(name, pretrained=True)`` builds any maskface network by name.

Each entry also says what input it wants (chip geometry and size) and how its embeddings compare (metric and a
default verification threshold), so the rest of the toolkit can use any registered model without special cases.

The registry is a leaf: it imports no model. The package's ``__init__`` imports the built-in models, whose
``@register_model`` decorators fill it, so any import of :mod:`maskface.models` finds them all registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from torch import nn

#: Chip geometries the face front end can cut (face/align.py): dlib's 150 chip, ArcFace's 112 template, OMZ's 128 one.
ChipKind = Literal["dlib", "arcface", "omz"]
CHIP_KINDS: tuple[str, ...] = get_args(ChipKind)


@dataclass(frozen=True)
class EmbedderSpec:
    """What chips an embedder wants and how its embeddings compare."""

    name: str
    chip: ChipKind = "dlib"
    size: int = 150
    padding: float = 0.25
    metric: Literal["euclidean", "cosine"] = "euclidean"
    threshold: float = 0.6


@dataclass(frozen=True)
class ModelInfo:
    """What the toolkit needs to know about a registered model."""

    name: str
    factory: Callable[..., nn.Module]
    description: str
    spec: EmbedderSpec | None
    embedding_size: int = 128
    #: "embedder" (chips -> embeddings, usable by embed/verify/eval) or another job, e.g. "deocclusion"
    kind: str = "embedder"
    #: Whether a traced ONNX graph reproduces the model (``maskface export onnx``); False for a forward pass that
    #: takes a different path per input, which tracing would freeze to the path of its example input.
    onnx: bool = True
    #: the licence of the shipped weights (and of whatever they were made from)
    license: str = "MIT (maskface)"


_MODELS: dict[str, ModelInfo] = {}


def register_model(name: str, description: str, embedding_size: int = 128, kind: str = "embedder",
                   onnx: bool = True, license: str = "MIT (maskface)", **spec) -> Callable:
    """Decorator: register ``factory(pretrained: bool, **kwargs) -> nn.Module`` under ``name``; for embedders,
    ``spec`` holds the :class:`EmbedderSpec` fields (chip, size, padding, metric, threshold). ``onnx=False`` declares
    that ONNX export cannot reproduce the model (see :attr:`ModelInfo.onnx`); ``license`` is the licence of the
    pretrained weights."""

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        embedder_spec = EmbedderSpec(name, **spec) if kind == "embedder" else None
        _MODELS[name] = ModelInfo(name, factory, description, embedder_spec, embedding_size, kind, onnx, license)
        return factory

    return wrap


def model_info(name: str) -> ModelInfo:
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name]


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build the registered model ``name``; ``pretrained=True`` loads its shipped or converted weights."""
    return model_info(name).factory(pretrained=pretrained, **kwargs)


def create_from_spec(spec: str) -> nn.Module:
    """A model from a spec string: ``name`` (its pretrained weights) or ``name=checkpoint`` (weights from a file or
    folder, e.g. a training run's export)."""
    name, _, checkpoint = spec.partition("=")
    return create_model(name, checkpoint=checkpoint) if checkpoint else create_model(name, pretrained=True)

