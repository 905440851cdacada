"""Typed training configs: nested dataclasses filled from a YAML file, then from ``key=value`` overrides.

``load_config(DeocclusionConfig, "configs/deocclusion.yaml", ["train.steps=200", "loss.identity=0"])`` checks
every key and value against the dataclass fields, so a typo fails at once with the key's name, not hours later.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from maskface.errors import MaskfaceError


class ConfigError(MaskfaceError):
    """A config file or override that does not fit the recipe's config."""


@dataclass
class TrainConfig:
    """What every recipe shares: steps, batch, optimiser schedule, precision, logging and checkpoints."""

    seed: int = 0
    steps: int = 1000
    #: global batch: split evenly across torchrun processes, so 1 or N processes see the same samples per step
    batch_size: int = 16
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.0
    #: AdamW's betas; SGD uses ``momentum`` (Nesterov)
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    schedule: Literal["constant", "cosine", "step"] = "cosine"
    warmup_steps: int = 0
    #: for ``schedule: step``: multiply the rate by ``step_gamma`` at each of these fractions of ``steps``
    step_milestones: tuple[float, ...] = (0.6, 0.85)
    step_gamma: float = 0.1
    grad_clip: float | None = 1.0
    #: mixed precision (float16 autocast + gradient scaling); used on CUDA only
    amp: bool = True
    device: str | None = None
    workers: int = 2
    deterministic: bool = False
    log_every: int = 10
    checkpoint_every: int = 100
    image_every: int = 250


def to_dict(config: Any) -> dict:
    """A config as plain YAML-able data (tuples become lists)."""
    def plain(value):
        if isinstance(value, tuple | list):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return plain(dataclasses.asdict(config))


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """``value`` checked (and converted where lossless) against the type annotation ``kind``."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(exc.reason)
        raise ConfigError(where, "; ".join(errors))
    if origin is Literal:
        if value not in typing.get_args(kind):
            raise ConfigError(where, f"must be one of {list(typing.get_args(kind))}, got {value!r}")
        return value
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, list | tuple):
            raise ConfigError(where, f"must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(where, f"must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(v, a, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if is_dataclass(kind):
        return _build(kind, value, where)
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is Any or (isinstance(kind, type) and isinstance(value, kind) and not (kind is int and
                                                                                isinstance(value, bool))):
        return value
    raise ConfigError(where, f"must be {getattr(kind, '__name__', kind)}, got {value!r}")


def _build(cls: type, data: Any, where: str) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(where or "config", f"must be a mapping of {cls.__name__} fields, got {data!r}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(where or "config", f"unknown key(s) {sorted(unknown)}; {cls.__name__} has {sorted(known)}")
    values = {name: _coerce(value, hints[name], f"{where}.{name}" if where else name) for name, value in data.items()}
    return cls(**values)


def _set(data: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(dotted, f"{part} is not a section")
    node[last] = value


def load_config(cls: type, path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """Build ``cls`` from a YAML file (optional) and ``key.sub=value`` overrides (values parsed as YAML)."""
    data: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(str(path), "config file not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(str(path), f"not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(str(path), "must hold a mapping of sections")
    data = dict(data)
    data.pop("method", None)
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise ConfigError(override, "overrides are key=value, e.g. train.steps=500")
        _set(data, key.strip(), yaml.safe_load(text))
    return _build(cls, data, "")


def field_default(factory: Any) -> Any:
    """A dataclass field whose default is a fresh ``factory()`` (for nested config sections)."""
    return field(default_factory=factory)
