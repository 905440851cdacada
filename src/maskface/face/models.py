"""Where dlib's pretrained files live: the ``face_recognition_models`` package, found without importing it.

Importing that package needs ``pkg_resources``, which current setuptools no longer has, so we locate it with
``importlib.util.find_spec`` instead. ``MASKFACE_DLIB_MODELS`` may point at another folder holding the same files.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from maskface.errors import ModelFileError

RESNET = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_68 = "shape_predictor_68_face_landmarks.dat"
SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
MMOD = "mmod_human_face_detector.dat"


def dlib_model_path(filename: str) -> Path:
    """Full path of one of dlib's model files, or :class:`ModelFileError` saying how to install it."""
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
