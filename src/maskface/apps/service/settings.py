"""What a service runs with: the model, the gallery, the keys file, and the limits every request is held to."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from maskface.defaults import DEFAULT_MODEL


@dataclass(frozen=True)
class Limits:
    """The bounds of one request; each one exceeded is answered with its own 4xx JSON error.

    ``max_upload_bytes``: the whole request body (413). ``max_pixels``: an image's decoded size, read from its
    header before any pixel is decoded, which stops decompression bombs (413). ``max_images``: image parts of
    one request (413). ``timeout``: seconds from the request's first byte to its answer, slow uploads included
    (408). ``rate`` and ``burst``: requests per second per API key, and how many may come at once (429)."""

    max_upload_bytes: int = 10 * 2**20
    max_pixels: int = 25_000_000
    max_images: int = 10
    timeout: float = 30.0
    rate: float = 20.0
    burst: int = 40


@dataclass(frozen=True)
class Batching:
    """The micro-batching queue: at most ``max_batch`` chips per forward pass, a request waits at most
    ``max_wait`` seconds for others to join its batch, and at most ``max_queue`` chips wait (503 beyond)."""

    max_batch: int = 16
    max_wait: float = 0.01
    max_queue: int = 512


@dataclass(frozen=True)
class ServiceSettings:
    """Everything ``maskface serve`` needs; serialisable, so that each of several worker processes gets it."""

    gallery: str | None = None
    keys: str | None = None
    model: str = DEFAULT_MODEL
    device: str | None = None
    #: false-match rate of the calibrated thresholds (None: the model's)
    fmr: str | None = None
    insecure_no_auth: bool = False
    limits: Limits = field(default_factory=Limits)
    batching: Batching = field(default_factory=Batching)
    #: threads that decode and align images (each with its own face pipeline)
    align_threads: int = 2

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServiceSettings:
        data = json.loads(text)
        return cls(**{**data, "limits": Limits(**data["limits"]), "batching": Batching(**data["batching"])})


def default_keys_path(gallery: str | None) -> Path | None:
    """Where the keys of a gallery file live when no ``--keys`` is given: beside it, ``GALLERY.keys.json``. A
    PostgreSQL gallery (or none) has no default: its keys file must be named."""
    if gallery is None or gallery.startswith(("postgresql://", "postgres://")):
        return None
    return Path(f"{gallery}.keys.json")
