"""maskface: recognise people whose faces are partly hidden by masks.

``maskface.load()`` gives a :class:`Recognizer`; ``maskface.Gallery(path_or_url)`` enrols people and identifies
faces. Importing maskface loads neither a model nor PyTorch: the API's classes (``Recognizer``, ``Verification``,
``Comparison``, ``Face``, ``FaceConfig``, ``Gallery``) are imported when first used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from maskface.defaults import DEFAULT_MODEL

if TYPE_CHECKING:
    from maskface.apps.gallery import Gallery
    from maskface.apps.recognizer import Comparison, Recognizer, Verification
    from maskface.face.pipeline import Face, FaceConfig

__version__ = "0.1.0"

__all__ = ["Comparison", "Face", "FaceConfig", "Gallery", "Recognizer", "Verification", "__version__", "load"]

#: the API's classes, imported from their modules on first use (module ``__getattr__``, PEP 562)
_LAZY = {"Recognizer": "maskface.apps.recognizer", "Verification": "maskface.apps.recognizer",
         "Comparison": "maskface.apps.recognizer", "Face": "maskface.face.pipeline",
         "FaceConfig": "maskface.face.pipeline", "Gallery": "maskface.apps.gallery"}


def load(model: str = DEFAULT_MODEL, device: str | None = None, face: FaceConfig | None = None,
         threshold: float | None = None, fmr: str | None = None) -> Recognizer:
    """A ready :class:`Recognizer`: ``maskface.load().verify("a.jpg", "b.jpg")``.

    - ``model``: a registered recogniser (``maskface models`` lists them; default ``omz_sface_ensemble``, the best
      measured), ``name=checkpoint`` for trained weights, or a path to an ``.onnx`` face embedder.
    - ``device``: ``"cpu"`` (PyTorch), ``"openvino"``, ``"cuda"``, ``"cuda:1"``..., with ``+bf16`` for bfloat16;
      by default CUDA when present, else OpenVINO on the CPU (mask-aware models: PyTorch).
    - ``face``: how faces are found and which one is used (:class:`FaceConfig`); its chip geometry is always set
      to what the model wants.
    - ``threshold``: a fixed decision threshold for every pair, instead of the model's calibrated ones (one per
      pair type, U-U, M-U and M-M, where the model ships them).
    - ``fmr``: the false-match rate those calibrated thresholds are taken at, ``"1e-2"``, ``"1e-3"`` or ``"1e-4"``
      (default: the model's, 1e-3 for the plain recognisers); a stricter one suits large galleries.
    """
    from maskface.apps.recognizer import load as load_recognizer

    return load_recognizer(model, device, face, threshold, fmr)


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'maskface' has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
