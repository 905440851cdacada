"""The errors maskface raises for user mistakes: each names the file (or thing) and the reason."""

from __future__ import annotations


class MaskfaceError(Exception):
    """Base class: a problem with user input that the CLI reports in one line, without a traceback."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class ImageError(MaskfaceError):
    """An image file that cannot be read: missing, empty, corrupt, truncated, not an image or too large."""


class NoFaceError(MaskfaceError):
    """No face was found in an image (or none that the chosen policy accepts)."""


class ModelFileError(MaskfaceError):
    """A model file that is missing, of the wrong kind, or malformed."""


class DatasetError(MaskfaceError):
    """A dataset folder or protocol file that does not have the expected layout."""


class RunFolderError(MaskfaceError):
    """A run folder (written by ``maskface eval``) that lacks a file it needs."""
