"""Training data shared by recipes: cached LFW chips of chosen View 2 folds, masked online."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

from maskface.data.chips import LFW_FACE, ChipSet, lfw_chips
from maskface.data.lfw import LFW
from maskface.data.masked_chips import MaskedChips, OnlineMaskConfig
from maskface.errors import DatasetError
from maskface.face.pipeline import FaceConfig
from maskface.models.registry import EmbedderSpec
from maskface.train.config import ConfigError


@dataclass
class ChipDataConfig:
    """Which faces train: LFW people of ``folds`` only (identity-disjoint from the other folds' test pairs), or
    every face of a chip set a user made from their own identity folders (``maskface chips``)."""

    #: a chip-set folder made by ``maskface chips``; when set, LFW and ``folds`` are not used
    chips: str | None = None
    #: the data folder (holding ``lfw/``) or the LFW folder; ``--data`` and ``$MASKFACE_DATA`` set it too
    lfw: str | None = None
    folds: tuple[int, ...] = (1, 2, 3, 4, 5)
    #: where the chip cache lives (default: the user cache)
    cache: str | None = None
    masks: OnlineMaskConfig = field(default_factory=OnlineMaskConfig)


def chip_face(spec: EmbedderSpec) -> FaceConfig:
    """The LFW front end cutting chips in an embedder's geometry (``spec.chip``, ``size``, ``padding``)."""
    known = typing.get_args(typing.get_type_hints(FaceConfig)["chip"])
    if spec.chip not in known:
        raise ConfigError(spec.name, f"wants '{spec.chip}' chips, which the front end cannot cut yet "
                                     f"(it cuts {list(known)})")
    return dataclasses.replace(LFW_FACE, chip=spec.chip, size=spec.size, padding=spec.padding)


def training_chips(config: ChipDataConfig, data: Path | None, workers: int = 2, face: FaceConfig = LFW_FACE) -> ChipSet:
    """The cached chips of the people of ``config.folds`` (or the user's chip set), cut as ``face`` says (by
    default dlib's 150x150 chips; each geometry has its own cache)."""
    if config.chips:
        folder = Path(config.chips)
        if not (folder / "meta.json").is_file():
            raise DatasetError(str(folder), "not a chip set (no meta.json); make one with 'maskface chips'")
        chips = ChipSet.load(folder)
        if len(chips) and chips.chip(0).shape[0] != face.size:
            raise DatasetError(str(folder), f"holds {chips.chip(0).shape[0]}-pixel chips; this model wants "
                                            f"{face.size}-pixel '{face.chip}' chips")
        return chips
    root = data or config.lfw
    lfw = LFW.find(root)
    bad = [f for f in config.folds if not 1 <= f <= 10]
    if bad or not config.folds:
        raise DatasetError("data.folds", f"LFW View 2 has folds 1-10, got {list(config.folds)}")
    chips = lfw_chips(lfw.root, workers=workers, cache=Path(config.cache) if config.cache else None, face=face)
    return chips.subset(lfw.people_of_folds(list(config.folds)))


def masked_training_set(config: ChipDataConfig, data: Path | None, seed: int,
                        face: FaceConfig = LFW_FACE) -> MaskedChips:
    return MaskedChips(training_chips(config, data, face=face), seed=seed, config=config.masks)
