"""Defaults shared by the CLI and the Python API (kept free of heavy imports so the CLI starts fast)."""

#: what embed, verify, eval and ``maskface.load()`` use unless told otherwise: the mask-aware recogniser
DEFAULT_MODEL = "maskface_v1"
#: the pretrained recogniser maskface starts from (and distils)
TEACHER_MODEL = "dlib_resnet_v1"
