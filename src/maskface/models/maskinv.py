"""MaskInv students: embedders of their teacher's architecture, trained by ``maskface train maskinv``.

A student file is the run's ``student.safetensors``: float16 weights with, in its metadata, the method
(``maskinv``) and the registered architecture to rebuild. A shipped student is a registry entry that takes its
chip geometry, metric and embedding size from its teacher; shipping one is one line in :data:`SHIPPED_STUDENTS`
plus its file in ``maskface/weights`` (with a NOTICE entry).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from maskface.errors import ModelFileError
from maskface.io.locations import shipped_weights
from maskface.models.registry import create_model, model_info, register_model
from maskface.models.weights import read_weights


@dataclass(frozen=True)
class ShippedStudent:
    """A trained MaskInv student that ships with maskface."""

    #: registry name, e.g. ``maskinv_v1``
    name: str
    #: the weights file in ``maskface/weights``
    file: str
    #: the registered embedder it was distilled from: its architecture, chips, metric and embedding size
    teacher: str
    #: the verification threshold, when calibrated for the student (else the teacher's)
    threshold: float | None = None


#: Students shipped in maskface/weights; e.g.
#: ``ShippedStudent("maskinv_v1", "maskinv_student_v1.safetensors", teacher="omz_reid_0095"),``
SHIPPED_STUDENTS: tuple[ShippedStudent, ...] = ()


def load_student(file: str | Path) -> nn.Module:
    """The student in a ``student.safetensors`` written by ``maskface train maskinv``, in eval mode."""
    state, metadata = read_weights(file)
    config = json.loads(metadata.get("config", "{}"))
    if config.get("method") != "maskinv" or "architecture" not in config:
        raise ModelFileError(str(file), "not a MaskInv student (its metadata names no maskinv architecture)")
    student = create_model(config["architecture"])
    try:
        student.load_state_dict(state)
    except RuntimeError as exc:
        raise ModelFileError(str(file), f"weights do not fit {config['architecture']}: {exc}") from None
    return student.eval()


def register_student(entry: ShippedStudent) -> None:
    """Register ``entry.name``: ``pretrained=True`` loads the shipped file, ``checkpoint=`` any run's export, and
    neither gives the untrained architecture."""
    teacher = model_info(entry.teacher)
    spec = {k: v for k, v in dataclasses.asdict(teacher.spec).items() if k != "name"}
    if entry.threshold is not None:
        spec["threshold"] = entry.threshold

    @register_model(entry.name, f"MaskInv student of {entry.teacher}: its templates of masked faces are trained "
                                "towards the teacher's of the unmasked ones", embedding_size=teacher.embedding_size,
                    **spec)
    def factory(pretrained: bool = False, checkpoint: str | Path | None = None) -> nn.Module:
        """``checkpoint``: a ``student.safetensors`` exported by ``maskface train maskinv``."""
        if checkpoint is not None:
            return load_student(checkpoint)
        if pretrained:
            return load_student(shipped_weights(entry.file, "reinstall maskface"))
        return create_model(entry.teacher)


for _entry in SHIPPED_STUDENTS:
    register_student(_entry)
