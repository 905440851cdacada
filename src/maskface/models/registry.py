"""A timm-style model registry: ``create_model(name, pretrained=True)`` builds any maskface network by name.

Each entry also says what input it wants (chip geometry and size) and how its embeddings compare (metric and a
default verification threshold), so the rest of the toolkit can use any registered model without special cases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import nn


@dataclass(frozen=True)
class EmbedderSpec:
    """What chips an embedder wants and how its embeddings compare."""

    name: str
    chip: Literal["dlib", "arcface"] = "dlib"
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


_MODELS: dict[str, ModelInfo] = {}


def register_model(name: str, description: str, embedding_size: int = 128, kind: str = "embedder",
                   **spec) -> Callable:
    """Decorator: register ``factory(pretrained: bool, **kwargs) -> nn.Module`` under ``name``; for embedders,
    ``spec`` holds the :class:`EmbedderSpec` fields (chip, size, padding, metric, threshold)."""

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        embedder_spec = EmbedderSpec(name, **spec) if kind == "embedder" else None
        _MODELS[name] = ModelInfo(name, factory, description, embedder_spec, embedding_size, kind)
        return factory

    return wrap


def model_info(name: str) -> ModelInfo:
    _load_builtin_models()
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name]


def list_models() -> list[str]:
    _load_builtin_models()
    return sorted(_MODELS)


def create_model(name: str, pretrained: bool = False, **kwargs) -> nn.Module:
    """Build the registered model ``name``; ``pretrained=True`` loads its shipped or converted weights."""
    return model_info(name).factory(pretrained=pretrained, **kwargs)


def create_from_spec(spec: str) -> nn.Module:
    """A model from a spec string: ``name`` (its pretrained weights) or ``name=checkpoint`` (weights from a file or
    folder, e.g. a training run's export)."""
    name, _, checkpoint = spec.partition("=")
    return create_model(name, checkpoint=checkpoint) if checkpoint else create_model(name, pretrained=True)


def _load_builtin_models() -> None:
    # Importing the modules runs their @register_model decorators (maskinv's look their teachers up, which imports
    # the rest first, so the order does not matter).
    from maskface.models import deocclusion, dlib_resnet, iresnet, mask_aware, maskinv  # noqa: F401
