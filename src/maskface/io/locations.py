"""Where maskface's files live: weights shipped in the package, dlib's pretrained files, and the per-user cache.

Kept in the lowest layer, beside the file helpers, so the face front end and the networks find their files
without importing each other.
"""

from __future__ import annotations

import importlib.util
import os
from importlib import resources
from pathlib import Path

from maskface.errors import ModelFileError

#: dlib's pretrained files, as the ``face_recognition_models`` package ships them.
RESNET = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_68 = "shape_predictor_68_face_landmarks.dat"
SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
MMOD = "mmod_human_face_detector.dat"


def shipped_weights(name: str, remedy: str = "reinstall maskface") -> Path:
    """A weights file that ships inside the package (``maskface/weights``); ``remedy`` says how to get it back."""
    path = Path(str(resources.files("maskface") / "weights" / name))
    if not path.is_file():
        raise ModelFileError(str(path), f"shipped model file missing; {remedy}")
    return path


def dlib_model_path(filename: str) -> Path:
    """Full path of one of dlib's model files, or :class:`ModelFileError` saying how to install it.

    They come from the ``face_recognition_models`` package, found without importing it: importing it needs
    ``pkg_resources``, which current setuptools no longer has. ``MASKFACE_DLIB_MODELS`` may point at another
    folder holding the same files.
    """
    folder = os.environ.get("MASKFACE_DLIB_MODELS")
    if folder is None:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or spec.origin is None:
            raise ModelFileError(filename, "dlib's model files are missing: pip install face_recognition_models")
        folder = str(Path(spec.origin).parent / "models")
    path = Path(folder) / filename
    if not path.is_file():
        raise ModelFileError(str(path), "model file not found")
    return path


def cache_dir() -> Path:
    """A per-user cache for converted weights, chips and embeddings (never inside the project):
    ``$MASKFACE_CACHE``, else ``maskface`` in the XDG cache."""
    root = os.environ.get("MASKFACE_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "maskface"
