"""Options that several commands share, declared once: the face options (:func:`face_options` gives a command
the ones it needs and hands it a ``FaceConfig``), inputs, workers, models, devices, data folders, and the folds
and test masks of evaluations.

Every value is checked here, as it is parsed, so a bad one ends in one line and exit status 2 before any work:
numbers have ranges (``min``/``max``), floats must be finite (:func:`finite`), devices must exist on this machine
(:func:`check_device`). Ranges that several commands share are named once below. An empty string is refused for
every argument and option by the root command (:class:`~maskface.apps.cli.errors.ExitCodeGroup`).
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from maskface.defaults import DEFAULT_MODEL


class Detector(StrEnum):
    yunet = "yunet"
    retinaface = "retinaface"
    hog = "hog"
    mmod = "mmod"


class Chip(StrEnum):
    dlib = "dlib"
    arcface = "arcface"


class Select(StrEnum):
    largest = "largest"
    center = "center"
    error = "error"


class Fmr(StrEnum):
    """The false-match rates calibrated thresholds exist at (maskface.models.pair_thresholds.FMR_LEVELS)."""

    e2 = "1e-2"
    e3 = "1e-3"
    e4 = "1e-4"


class MaskedScan(StrEnum):
    center = "center"
    always = "always"


#: Chip sides in pixels: the models take 112 (ArcFace) or 150 (dlib); above 1024 a chip is only memory.
SIZE_RANGE = {"min": 32, "max": 1024}
#: dlib chip padding, as a fraction of the face's size on each side.
PADDING_RANGE = {"min": 0.0, "max": 2.0}
#: Doublings before HOG detection. The no-face fallback doubles once more, so 2 means a 12800-pixel side for a
#: photo (detection starts at 1600): about 0.5 GB per worker. A third doubling would need 2 GB for the image alone.
UPSAMPLE_RANGE = {"min": 0, "max": 2}
#: Worker processes (0: the default, one per core up to 8).
WORKERS_RANGE = {"min": 0, "max": 256}
#: Counts of things to process or draw: at least one.
COUNT_RANGE = {"min": 1}
#: Seeds: numpy's generators take no negative seed.
SEED_RANGE = {"min": 0}
LANDMARK_COUNTS = (68, 5)


def finite(value: float | None) -> float | None:
    """Callback: refuse NaN and infinities (a NaN threshold or padding passes every range check)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def check_landmarks(value: int) -> int:
    if value not in LANDMARK_COUNTS:
        raise typer.BadParameter(f"{value} landmarks; choose 68 or 5")
    return value


def check_device(value: str | None) -> str | None:
    """Callback: the device must exist on this machine (``cuda`` without CUDA is refused before any work)."""
    if value is None:
        return value
    from maskface.models.runtime import parse_runtime

    try:
        parse_runtime(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


#: The face options, one per :class:`~maskface.face.pipeline.FaceConfig` field a user may set: name ->
#: (annotated type, default). The defaults are FaceConfig's (a test holds them equal).
FACE_OPTIONS: dict[str, tuple[Any, Any]] = {
    "detector": (Annotated[Detector, typer.Option(
        help="Face detector: yunet (default, five points), retinaface (slower, higher recall), hog (dlib, with the "
             "masked-HOG cascade) or mmod.")], Detector.yunet),
    "upsample": (Annotated[int, typer.Option(help="Times the image is doubled before HOG detection (0-2).",
                                             **UPSAMPLE_RANGE)], 1),
    "landmarks": (Annotated[int, typer.Option(help="68 or 5 landmark points.", callback=check_landmarks)], 68),
    "chip": (Annotated[Chip, typer.Option(help="dlib chip or ArcFace 5-point template.")], Chip.dlib),
    "size": (Annotated[int, typer.Option(help="Chip side in pixels (32-1024).", **SIZE_RANGE)], 150),
    "padding": (Annotated[float, typer.Option(help="dlib chip padding (0-2).", callback=finite, **PADDING_RANGE)],
                0.25),
    "select": (Annotated[Select, typer.Option(help="Which face to keep when several are found.")], Select.largest),
    "aligned": (Annotated[bool, typer.Option("--aligned", help="Inputs are already face chips: skip detection.")],
                False),
    "mask_robust": (Annotated[bool, typer.Option(
        "--mask-robust/--no-mask-robust", help="Use maskface's masked-face detector, landmarks and mask classifier "
                                               "in the cascade (--no-mask-robust: dlib's standard models only).")],
        True),
    "masked_scan": (Annotated[MaskedScan, typer.Option(
        help="When the masked-face detector scans: 'center' when no standard face covers the photo's centre (no "
             "cost for unmasked subjects), 'always' on every photo (also finds masked faces beside unmasked ones; "
             "for crowds).")], MaskedScan.center),
}


def face_options(*names: str) -> Callable[[Callable], Callable]:
    """Decorator: the command gets the face options ``names`` (from :data:`FACE_OPTIONS`, in that order, where
    its ``face`` parameter stands) and is called with ``face``, the ``FaceConfig`` they describe."""
    unknown = sorted(set(names) - set(FACE_OPTIONS))
    if unknown:
        raise ValueError(f"no face option(s) {unknown}; choose from {list(FACE_OPTIONS)}")

    def decorate(command: Callable) -> Callable:
        parameters = []
        for parameter in _evaluated_parameters(command, skip="face"):
            if parameter.name == "face":
                parameters += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=FACE_OPTIONS[name][0],
                                                 default=FACE_OPTIONS[name][1]) for name in names]
            else:
                parameters.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))

        @functools.wraps(command)
        def run(**options: Any) -> Any:
            from maskface.face.pipeline import FaceConfig

            face = FaceConfig(**{name: _plain(options.pop(name)) for name in names})
            return command(face=face, **options)

        run.__signature__ = inspect.Signature(parameters)  # what typer reads
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return decorate


def _evaluated_parameters(command: Callable, skip: str) -> list[inspect.Parameter]:
    """The command's parameters with their annotations evaluated (typer needs the objects), except ``skip``'s: the
    ``FaceConfig`` annotation is imported for type checkers only, to keep the command line quick to start."""
    parameters = []
    for parameter in inspect.signature(command).parameters.values():
        if parameter.name != skip and isinstance(parameter.annotation, str):
            parameter = parameter.replace(annotation=eval(parameter.annotation, command.__globals__))
        parameters.append(parameter)
    return parameters


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def resolve_workers(value: int) -> int:
    """0 means the default number of worker processes (ranges are checked before callbacks run)."""
    from maskface.io.parallel import default_workers

    return value or default_workers()


def parse_folds(text: str) -> list[int]:
    """LFW View 2 folds from ``1-10``, ``6-10`` or ``1,3,5``."""
    folds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise typer.BadParameter(f"folds must look like 1-10 or 1,3,5, not {text!r}") from None
        if not 1 <= first <= last <= 10:
            raise typer.BadParameter(f"folds {text!r}: LFW View 2 has folds 1 to 10, each range low-high")
        folds += list(range(first, last + 1))
    return folds


Inputs = Annotated[list[Path], typer.Argument(help="Image files and/or folders (searched recursively).")]
Workers = Annotated[int, typer.Option(help="Worker processes for detection and alignment (0: one per core, up to "
                                           "8).", callback=resolve_workers, **WORKERS_RANGE)]
Errors = Annotated[Path | None, typer.Option("--errors", help="Write failed items as CSV rows 'path,reason' (escaped: "
                                                              "one line per item, whatever its name).")]
DataOpt = Annotated[Path | None, typer.Option(help="Folder holding lfw/ (default: $MASKFACE_DATA).")]
LfwDataOpt = Annotated[Path | None, typer.Option(help="LFW folder, or a folder holding lfw/ "
                                                      "(default: $MASKFACE_DATA).")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registered name, NAME=CHECKPOINT, or an .onnx file "
                                       f"(default: {DEFAULT_MODEL}).")]
DeoccluderOpt = Annotated[str, typer.Option("--model", "-m", help="Registered de-occlusion model.")]
DeviceOpt = Annotated[str | None, typer.Option(
    help="cpu, openvino, cuda, cuda:1 ...; add +bf16 for bfloat16 arithmetic in the recognisers (default: CUDA "
         "when present, else OpenVINO on the CPU).", callback=check_device)]
FmrOpt = Annotated[Fmr | None, typer.Option(
    help="False-match rate of the calibrated per-pair-type thresholds (default: the model's, 1e-3 for plain "
         "recognisers); stricter for large galleries, where every probe meets every enrolled person.")]
BatchSizeOpt = Annotated[int, typer.Option(help="Chips per forward pass.", min=1, max=4096)]


class Scenario(StrEnum):
    uu = "U-U"
    mu = "M-U"
    mm = "M-M"


ScenarioOpt = Annotated[list[Scenario], typer.Option("--scenario", "-s", help="Repeat for several scenarios.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the test masks (drawn per image from seed and path).",
                                      **SEED_RANGE)]
MaskTypeOpt = Annotated[str | None, typer.Option(help="Mask type of the test masks (default: drawn per image).")]
OracleOpt = Annotated[bool, typer.Option("--oracle-alignment", help="Align masked faces with the landmarks of "
                                                                    "the unmasked original.")]
CacheOpt = Annotated[Path | None, typer.Option(help="Embedding cache folder (default: the user cache).")]
