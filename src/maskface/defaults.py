"""Defaults shared by the CLI and the Python API (kept free of heavy imports so the CLI starts fast)."""

#: what embed, verify, eval and ``maskface.load()`` use unless told otherwise: the best recogniser measured on masked
#: and unmasked LFW (docs/results.md), with per-pair-type thresholds calibrated on AT&T/ORL and Yale
DEFAULT_MODEL = "omz_sface_ensemble"
#: dlib's pretrained recogniser (face_recognition's): the teacher of maskface_v1 and the demo's baseline
TEACHER_MODEL = "dlib_resnet_v1"
