"""The mask-aware recogniser ``maskface_v1``: one embedder for masked and unmasked faces alike.

Each chip's occlusion map is estimated; a masked chip is completed by the de-occlusion generator and embedded by
the distilled student (by default averaged with the teacher's embedding of the same completed chip: the student
alone pulls some look-alike impostors too close), an unmasked one goes to the teacher untouched (so U-U accuracy
is the teacher's). The student was trained to land where the teacher puts the clean face, so both kinds of
embedding share one scale.
Thresholds are calibrated at target false-match rates on the training identities for each pair type
(U-U, M-U, M-M, by the recogniser's own masked calls; :func:`calibrate_thresholds`) and shipped in the student's
weights file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from maskface.errors import ModelFileError
from maskface.models.deocclusion import Deoccluder
from maskface.models.pair_thresholds import impostor_thresholds as impostor_similarity_thresholds
from maskface.models.pair_thresholds import pair_type

STUDENT_FILE = "maskface_student_v1.safetensors"
#: how a completed masked chip is embedded: by the student alone, or by the mean of student and teacher
MASKED_EMBEDDINGS = ("student", "ensemble")
#: the false-match rate the default verification thresholds are set for (about where dlib's 0.6 sits on LFW)
DEFAULT_FMR = "1e-2"


class MaskAwareRecognizer(nn.Module):
    """``chips (N x 3 x H x W, float in [0, 255]) -> embeddings``: teacher for unmasked, completion + student for
    masked chips (``masked_embedding="ensemble"``: the mean of student and teacher on the completed chip).
    ``thresholds`` maps a pair type ("U-U", "M-U", "M-M") and a target FMR ("1e-2", ...) to a Euclidean distance
    threshold."""

    def __init__(self, teacher: nn.Module, student: nn.Module, deoccluder: Deoccluder,
                 thresholds: dict[str, dict[str, float]] | None = None, masked_embedding: str = "ensemble"):
        super().__init__()
        if masked_embedding not in MASKED_EMBEDDINGS:
            raise ValueError(f"masked_embedding must be one of {MASKED_EMBEDDINGS}, not {masked_embedding!r}")
        self.teacher, self.student, self.deoccluder = teacher, student, deoccluder
        self.thresholds = dict(thresholds or {})
        self.masked_embedding = masked_embedding

    def threshold(self, masked_a: bool, masked_b: bool, fmr: str = DEFAULT_FMR) -> float | None:
        """The calibrated threshold for a pair whose faces were (or were not) judged masked; None if uncalibrated."""
        return self.thresholds.get(pair_type(masked_a, masked_b), {}).get(fmr)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        embeddings, _ = self.embed_with_masks(chips)
        return embeddings

    def embed_with_masks(self, chips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings and, per chip, whether it was judged masked (and so completed and sent to the student)."""
        completed, occlusion = self.deoccluder(chips / 255)
        masked = occlusion.flatten(1).amax(dim=1) > 0
        embeddings = chips.new_zeros(len(chips), self.teacher.fc.out_features)
        if (~masked).any():
            embeddings[~masked] = self.teacher(chips[~masked]).to(embeddings.dtype)
        if masked.any():
            inputs = completed[masked] * 255
            vectors = self.student(inputs)
            if self.masked_embedding == "ensemble":
                vectors = (vectors + self.teacher(inputs)) / 2
            embeddings[masked] = vectors.to(embeddings.dtype)
        return embeddings, masked


def load_mask_aware(student_file: Path) -> MaskAwareRecognizer:
    """The recogniser from a student weights file: teacher, de-occluder, thresholds and how masked faces are
    embedded are named in its metadata (files written before the ensemble existed embed with the student alone).
    Malformed metadata (bad JSON, unknown model names, wrong types) is a :class:`ModelFileError`."""
    from maskface.models.weights import parse_json_object, read_weights

    state, metadata = read_weights(student_file)
    config = parse_json_object(metadata.get("config", "{}"), student_file, "the config metadata")
    if "architecture" not in config:
        raise ModelFileError(str(student_file), "not a maskface student (no architecture in its metadata)")
    teacher = _component(config, "teacher", "dlib_resnet_v1", student_file)
    student = _student(_text(config, "architecture", student_file), state, student_file)
    deoccluder = _component(config, "deocclusion", "deocclusion_v1", student_file)
    thresholds = config.get("thresholds")
    if thresholds is not None and not (isinstance(thresholds, dict) and all(
            isinstance(v, dict) and all(isinstance(t, int | float) for t in v.values()) for v in thresholds.values())):
        raise ModelFileError(str(student_file), "thresholds in the metadata are not {pair type: {FMR: number}}")
    masked_embedding = config.get("masked_embedding", "student")
    if masked_embedding not in MASKED_EMBEDDINGS:
        raise ModelFileError(str(student_file), f"masked_embedding {masked_embedding!r} in the metadata is not one "
                                                f"of {MASKED_EMBEDDINGS}")
    return MaskAwareRecognizer(teacher.eval(), student.eval(), deoccluder.eval(), thresholds, masked_embedding)


def _text(config: dict, key: str, file: Path) -> str:
    value = config[key]
    if not isinstance(value, str):
        raise ModelFileError(str(file), f"{key} in the metadata is {type(value).__name__}, not a model name")
    return value


def _component(config: dict, key: str, default: str, file: Path) -> nn.Module:
    """The model a student file names for ``key`` (a registered name or ``name=checkpoint``)."""
    from maskface.models.registry import create_from_spec

    spec = _text({key: config.get(key, default)}, key, file)
    try:
        return create_from_spec(spec)
    except KeyError as exc:
        raise ModelFileError(str(file), f"{key} in the metadata: {exc.args[0]}") from None


def _register() -> None:
    from maskface.models.registry import register_model

    @register_model("maskface_v1", "mask-aware recogniser: occlusion estimate; masked faces completed by "
                    "deocclusion_v1 and embedded by a student distilled from dlib_resnet_v1, unmasked faces by "
                    "the teacher (the default)", chip="dlib", size=150, padding=0.25, metric="euclidean",
                    threshold=0.6, embedding_size=128, onnx=False,  # each chip's path depends on its mask
                    license="MIT (maskface); its teacher dlib_resnet_v1: CC0-1.0")
    def maskface_v1(pretrained: bool = False, checkpoint: str | Path | None = None) -> MaskAwareRecognizer:
        """``checkpoint``: a ``student.safetensors`` exported by ``maskface train distill``."""
        from maskface.io.locations import shipped_weights

        if checkpoint is None and not pretrained:
            raise ModelFileError("maskface_v1", "is a composite of trained models: use pretrained=True or a "
                                                "student checkpoint")
        file = Path(checkpoint) if checkpoint else shipped_weights(STUDENT_FILE, "reinstall maskface")
        return load_mask_aware(file)


_register()


def _student(architecture: str, state: dict[str, torch.Tensor], file: Path) -> nn.Module:
    from maskface.models.registry import create_model
    from maskface.models.weights import load_state_into

    try:
        student = create_model(architecture)
    except KeyError as exc:
        raise ModelFileError(str(file), f"architecture in the metadata: {exc.args[0]}") from None
    load_state_into(student, state, file)
    return student


@torch.no_grad()
def calibrate_thresholds(recognizer: MaskAwareRecognizer, clean: np.ndarray, masked: np.ndarray,
                         labels: np.ndarray, fmrs: tuple[float, ...] = (1e-2, 1e-3, 1e-4),
                         batch_size: int = 32) -> dict[str, dict[str, float]]:
    """Distance thresholds at target false-match rates for each pair type, from every different-identity pair
    among the clean and masked versions of training faces. Types follow the recogniser's own masked calls, as at
    inference. One threshold cannot serve all three: completed masked faces sit closer together than clean ones."""
    device = next(recognizer.parameters()).device
    chips = np.concatenate([clean, masked])
    people = np.concatenate([labels, labels])
    embeddings, flags = [], []
    for i in range(0, len(chips), batch_size):
        x = torch.from_numpy(chips[i:i + batch_size]).permute(0, 3, 1, 2).float().to(device)
        vectors, was_masked = recognizer.embed_with_masks(x)
        embeddings.append(vectors.cpu().numpy())
        flags.append(was_masked.cpu().numpy())
    return impostor_thresholds(np.concatenate(embeddings), people, np.concatenate(flags), fmrs)


def impostor_thresholds(embeddings: np.ndarray, people: np.ndarray, masked: np.ndarray,
                        fmrs: tuple[float, ...]) -> dict[str, dict[str, float]]:
    """``{"M-U": {"1e-3": d, ...}, ...}``: per pair type, the Euclidean distance below which a fraction ``fmr`` of
    its different-identity pairs fall."""
    from sklearn.metrics.pairwise import euclidean_distances

    similar = impostor_similarity_thresholds(-euclidean_distances(embeddings), people, masked, fmrs)
    return {kind: {fmr: -value for fmr, value in row.items()} for kind, row in similar.items()}
