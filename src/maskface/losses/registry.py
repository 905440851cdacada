"""A registry of loss classes: ``create_loss("masked_l1", hole_weight=6)`` builds any maskface loss by name."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

_LOSSES: dict[str, type[nn.Module]] = {}


def register_loss(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _LOSSES:
            raise ValueError(f"loss {name!r} is registered twice")
        _LOSSES[name] = cls
        return cls

    return wrap


def list_losses() -> list[str]:
    _load_builtin_losses()
    return sorted(_LOSSES)


def create_loss(name: str, **kwargs) -> nn.Module:
    _load_builtin_losses()
    if name not in _LOSSES:
        raise KeyError(f"unknown loss {name!r}; available: {', '.join(sorted(_LOSSES))}")
    return _LOSSES[name](**kwargs)


def _load_builtin_losses() -> None:
    from maskface.losses import (  # noqa: F401
        adversarial,
        distillation,
        elasticface,
        identity,
        reconstruction,
        segmentation,
    )
