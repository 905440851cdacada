"""maskface: recognise people whose faces are partly hidden by masks."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load"]


def load(*args, **kwargs):
    """A ready :class:`~maskface.apps.recognizer.Recognizer`; see :func:`maskface.apps.recognizer.load`."""
    from maskface.apps.recognizer import load as _load

    return _load(*args, **kwargs)
