"""The ``maskface`` command line. Each command is a thin layer over the Python API; user mistakes get one line
on stderr and exit status 2 (usage, models) or 3 (some inputs failed), never a traceback."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape

from maskface.defaults import DEFAULT_MODEL, TEACHER_MODEL
from maskface.errors import ImageError, MaskfaceError, NoFaceError

app = typer.Typer(help="maskface: recognise people whose faces are partly hidden by masks.",
                  pretty_exceptions_enable=False, no_args_is_help=True, add_completion=False)
export_app = typer.Typer(help="Export models to other runtimes.", no_args_is_help=True)
app.add_typer(export_app, name="export")
train_app = typer.Typer(help="Train maskface's models on your data.", no_args_is_help=True)
app.add_typer(train_app, name="train")
eval_app = typer.Typer(help="Evaluate on standard protocols: tables, JSON and plots.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
out = Console(soft_wrap=True, markup=False, highlight=False)
err = Console(stderr=True, soft_wrap=True)


class Detector(StrEnum):
    hog = "hog"
    mmod = "mmod"


class Chip(StrEnum):
    dlib = "dlib"
    arcface = "arcface"


class Select(StrEnum):
    largest = "largest"
    center = "center"
    error = "error"


Inputs = Annotated[list[Path], typer.Argument(help="Image files and/or folders (searched recursively).")]
Workers = Annotated[int, typer.Option(help="Worker processes for detection and alignment.")]
Errors = Annotated[Path | None, typer.Option("--errors", help="Write failed items as CSV rows 'path,reason'.")]
Upsample = Annotated[int, typer.Option(help="Times the image is doubled before HOG detection.")]
AlignedFlag = Annotated[bool, typer.Option("--aligned", help="Inputs are already face chips: skip detection.")]
SelectOpt = Annotated[Select, typer.Option(help="Which face to keep when several are found.")]
RobustOpt = Annotated[bool, typer.Option("--mask-robust/--no-mask-robust",
                                         help="Use maskface's masked-face detector, landmarks and mask classifier "
                                              "in the cascade (--no-mask-robust: dlib's standard models only).")]


class MaskedScan(StrEnum):
    center = "center"
    always = "always"


MaskedScanOpt = Annotated[MaskedScan, typer.Option(
    help="When the masked-face detector scans: 'center' when no standard face covers the photo's centre (no cost "
         "for unmasked subjects), 'always' on every photo (also finds masked faces beside unmasked ones; for "
         "crowds).")]
DataOpt = Annotated[Path | None, typer.Option(help="Folder holding lfw/ (default: $MASKFACE_DATA).")]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registered name, NAME=CHECKPOINT, or an .onnx file "
                                     f"(default: {DEFAULT_MODEL}, the mask-aware recogniser).")]
DeviceOpt = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ... (default: CUDA when present).")]


def _face_config(**kwargs):
    from maskface.face.pipeline import FaceConfig

    return FaceConfig(**kwargs)


def _error(message: object, code: int) -> typer.Exit:
    """Print one 'error: ...' line on stderr and give the exit to raise."""
    err.print(f"[red]error:[/red] {escape(str(message))}", highlight=False)
    return typer.Exit(code)


def _fail(exc: MaskfaceError) -> typer.Exit:
    """Exit 3 when an input could not be used (bad image, no face), else 2 (models, data folders)."""
    return _error(exc, 3 if isinstance(exc, ImageError | NoFaceError) else 2)


@app.command()
def align(inputs: Inputs, out_dir: Annotated[Path, typer.Option("--out", help="Folder for the PNG chips.")],
          size: Annotated[int, typer.Option(help="Chip side in pixels.")] = 150,
          padding: Annotated[float, typer.Option(help="dlib chip padding.")] = 0.25,
          chip: Annotated[Chip, typer.Option(help="dlib chip or ArcFace 5-point template.")] = Chip.dlib,
          detector: Annotated[Detector, typer.Option(help="Face detector.")] = Detector.hog,
          upsample: Upsample = 1, select: SelectOpt = Select.largest,
          landmarks: Annotated[int, typer.Option(help="68 or 5 landmark points.")] = 68,
          aligned: AlignedFlag = False, mask_robust: RobustOpt = True,
          masked_scan: MaskedScanOpt = MaskedScan.center, errors: Errors = None,
          workers: Workers = 0) -> None:
    """Detect, landmark and align faces: one PNG chip per input under OUT, keeping relative paths."""
    from maskface.apps.align import align_images
    from maskface.apps.batch import default_workers

    try:
        config = _face_config(detector=detector.value, upsample=upsample, landmarks=landmarks, chip=chip.value,
                              size=size, padding=padding, select=select.value, aligned=aligned,
                              mask_robust=mask_robust, masked_scan=masked_scan.value)
        from maskface.face.pipeline import FacePipeline

        FacePipeline(config)  # fail fast on a bad configuration or missing model file
    except ValueError as exc:
        raise _error(exc, 2) from None
    except MaskfaceError as exc:
        raise _fail(exc) from None
    report, detectors = align_images(inputs, out_dir, config, workers or default_workers(), errors)
    by = ", ".join(f"{k}: {v}" for k, v in sorted(detectors.items()))
    out.print(report.summary("aligned") + (f" (faces by detector: {by})" if by else ""), highlight=False)
    raise typer.Exit(report.exit_code)


class MaskType(StrEnum):
    surgical = "surgical"
    n95 = "n95"
    kn95 = "kn95"
    cloth = "cloth"
    gas = "gas"
    random = "random"


@app.command()
def mask(inputs: Inputs, out_dir: Annotated[Path, typer.Option("--out", help="Folder for masked images.")],
         mask_type: Annotated[MaskType, typer.Option("--type", help="Mask type; random draws one per face.")]
         = MaskType.random,
         seed: Annotated[int, typer.Option(help="Seed: same seed, image and options give the same bytes.")] = 0,
         aligned: AlignedFlag = False, upsample: Upsample = 1, errors: Errors = None, workers: Workers = 0,
         mask_robust: RobustOpt = True, masked_scan: MaskedScanOpt = MaskedScan.center) -> None:
    """Put synthetic masks on every face: writes NAME.png and NAME.occlusion.png under OUT."""
    from maskface.apps.batch import default_workers
    from maskface.apps.mask import mask_images

    config = _face_config(upsample=upsample, aligned=aligned, mask_robust=mask_robust, masked_scan=masked_scan.value)
    kind = None if mask_type is MaskType.random else mask_type.value
    report, faces = mask_images(inputs, out_dir, config, seed, kind, workers or default_workers(), errors)
    out.print(report.summary("masked") + f" ({faces} faces)", highlight=False)
    raise typer.Exit(report.exit_code)


@app.command()
def deocclude(inputs: Inputs, out_dir: Annotated[Path, typer.Option("--out", help="Folder for the results.")],
              model: Annotated[str, typer.Option("--model", "-m", help="Registered de-occlusion model.")]
              = "deocclusion_v1",
              aligned: AlignedFlag = False, upsample: Upsample = 1, select: SelectOpt = Select.largest,
              mask_robust: RobustOpt = True, masked_scan: MaskedScanOpt = MaskedScan.center, errors: Errors = None,
              workers: Workers = 0,
              device: DeviceOpt = None) -> None:
    """Complete the masked part of faces: NAME.chip.png, NAME.completed.png and NAME.occlusion.png under OUT."""
    from maskface.apps.batch import default_workers
    from maskface.apps.deocclude import deocclude_images

    config = _face_config(upsample=upsample, aligned=aligned, select=select.value, mask_robust=mask_robust,
                          masked_scan=masked_scan.value)
    try:
        report, masked = deocclude_images(inputs, out_dir, config, workers or default_workers(), model, device,
                                          errors=errors)
    except MaskfaceError as exc:
        raise _fail(exc) from None
    except (KeyError, ValueError) as exc:
        raise _error(exc, 2) from None
    out.print(report.summary("completed") + f"; {masked} faces judged masked; table in {out_dir}/deocclusion.csv",
              highlight=False)
    raise typer.Exit(report.exit_code)


@app.command()
def embed(inputs: Inputs, out_file: Annotated[Path, typer.Option("--out", help="Output .npz file.")],
          model: ModelOpt = DEFAULT_MODEL, aligned: AlignedFlag = False, upsample: Upsample = 1,
          select: SelectOpt = Select.largest, errors: Errors = None, workers: Workers = 0,
          batch_size: Annotated[int, typer.Option(help="Chips per forward pass.")] = 64,
          device: DeviceOpt = None, mask_robust: RobustOpt = True,
          masked_scan: MaskedScanOpt = MaskedScan.center) -> None:
    """Embed the face of each image: writes paths (str) and embeddings (float32, N x D) to an .npz file."""
    from maskface.apps.batch import default_workers
    from maskface.apps.embed import embed_images, save_embeddings
    from maskface.models.embedder import load_embedder

    try:
        embedder = load_embedder(model, device=device, batch_size=batch_size)
    except MaskfaceError as exc:
        raise _fail(exc) from None
    spec = embedder.spec
    config = _face_config(upsample=upsample, chip=spec.chip, size=spec.size, padding=spec.padding,
                          select=select.value, aligned=aligned, mask_robust=mask_robust, masked_scan=masked_scan.value)
    names, embeddings, detectors, report = embed_images(inputs, embedder, config, workers or default_workers(),
                                                        errors)
    save_embeddings(out_file, names, embeddings, model, detectors)
    out.print(report.summary("embedded") + f"; wrote {out_file}", highlight=False)
    raise typer.Exit(report.exit_code)


@app.command()
def verify(a: Annotated[Path, typer.Argument(help="First image.")],
           b: Annotated[Path, typer.Argument(help="Second image.")],
           model: ModelOpt = DEFAULT_MODEL,
           threshold: Annotated[float | None, typer.Option(help="Decision threshold (default: the model's).")] = None,
           aligned: AlignedFlag = False, upsample: Upsample = 1,
           as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
           device: DeviceOpt = None, mask_robust: RobustOpt = True,
           masked_scan: MaskedScanOpt = MaskedScan.center) -> None:
    """Are A and B the same person? Prints the score, the threshold and the decision."""
    from maskface.apps.recognizer import load

    try:
        face = _face_config(upsample=upsample, aligned=aligned, mask_robust=mask_robust, masked_scan=masked_scan.value)
        recognizer = load(model, device=device, face=face,
                          threshold=threshold)
        result = recognizer.verify(a, b)
    except MaskfaceError as exc:
        raise _fail(exc) from None
    if as_json:
        out.print(json.dumps(result.to_dict()), highlight=False, soft_wrap=True)
        return
    kind = "distance" if result.metric == "euclidean" else "similarity"
    relation = "<" if result.metric == "euclidean" else ">="
    verdict = "same person" if result.same else "different people"
    held = relation if result.same else {"<": ">=", ">=": "<"}[relation]
    masks = ", ".join(f"{name} {'masked' if f.masked else 'unmasked' if f.masked is False else 'mask unknown'}"
                      + (" and completed" if result.completed and result.completed[i] else "")
                      for i, (name, f) in enumerate(zip(("A", "B"), result.faces)))
    out.print(f"{kind} {result.score:.4f} {held} threshold {result.threshold:.4f}: {verdict} ({masks})",
              highlight=False)


@export_app.command("onnx")
def export_onnx_cmd(out_file: Annotated[Path, typer.Option("--out", help="Output .onnx file.")],
                    model: Annotated[str, typer.Option("--model", "-m", help="Registered embedder or "
                                                       "NAME=CHECKPOINT.")] = TEACHER_MODEL,
                    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17) -> None:
    """Export a model to ONNX (dynamic batch); a .json beside it tells maskface how to feed it."""
    from maskface.apps.export import export_onnx

    try:
        path = export_onnx(model, out_file, opset)
    except MaskfaceError as exc:
        raise _fail(exc) from None
    out.print(f"wrote {path} and {path.with_suffix('.json')}", highlight=False)


class Scenario(StrEnum):
    uu = "U-U"
    mu = "M-U"
    mm = "M-M"


def _parse_folds(text: str) -> list[int]:
    folds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        try:
            folds += list(range(int(low), int(high or low) + 1))
        except ValueError:
            raise typer.BadParameter(f"folds must look like 1-10 or 1,3,5, not {text!r}") from None
    return folds


ScenarioOpt = Annotated[list[Scenario], typer.Option("--scenario", "-s", help="Repeat for several scenarios.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the test masks (drawn per image from seed and path).")]
MaskTypeOpt = Annotated[str | None, typer.Option(help="Mask type of the test masks (default: drawn per image).")]
OracleOpt = Annotated[bool, typer.Option("--oracle-alignment", help="Align masked faces with the landmarks of "
                                                                    "the unmasked original.")]
CacheOpt = Annotated[Path | None, typer.Option(help="Embedding cache folder (default: the user cache).")]


def _eval_setup(model: str, device: str | None, face, workers: int, cache: Path | None):
    from maskface.apps.batch import default_workers
    from maskface.eval.protocol import EmbeddingCache
    from maskface.models.cache import cache_dir
    from maskface.models.embedder import load_embedder

    embedder = load_embedder(model, device=device)
    spec = embedder.spec
    from dataclasses import replace

    face = replace(face, chip=spec.chip, size=spec.size, padding=spec.padding)
    return EmbeddingCache(embedder, model, face, cache or cache_dir() / "eval", workers or default_workers())


@eval_app.command("lfw")
def eval_lfw(out_dir: Annotated[Path, typer.Option("--out", help="Folder for the reports (one per scenario).")],
             data: Annotated[Path | None, typer.Option(help="LFW folder, or a folder holding lfw/ "
                                                            "(default: $MASKFACE_DATA).")] = None,
             model: ModelOpt = DEFAULT_MODEL, scenario: ScenarioOpt = [Scenario.uu],  # noqa: B006
             folds: Annotated[str, typer.Option(help="View 2 folds to test, e.g. 1-10 or 6-10.")] = "1-10",
             seed: SeedOpt = 0, mask_type: MaskTypeOpt = None, oracle_alignment: OracleOpt = False,
             identify: Annotated[bool, typer.Option("--identification", help="Also rank-1/5 and CMC: unmasked "
                                                    "gallery, masked probes.")] = False,
             workers: Workers = 0, cache: CacheOpt = None, device: DeviceOpt = None,
             mask_robust: RobustOpt = True, masked_scan: MaskedScanOpt = MaskedScan.center) -> None:
    """LFW View 2 (identity-disjoint 10 folds) in the U-U, M-U and M-M scenarios."""
    _lfw_runs(out_dir, data, [(model, folds)], scenario, _mask_setting(seed, mask_type, oracle_alignment), identify,
              workers, cache, device, mask_robust, masked_scan.value)


@eval_app.command("crossfit")
def eval_crossfit(out_dir: Annotated[Path, typer.Option("--out", help="Folder for the reports (one per scenario).")],
                  half: Annotated[list[str], typer.Option(
                      help="MODEL@FOLDS: the model that scores these folds' pairs, e.g. "
                           "'maskface_v1=runs/A/student.safetensors@6-10'. Give one per half.")],
                  data: Annotated[Path | None, typer.Option(help="LFW folder, or a folder holding lfw/ "
                                                                 "(default: $MASKFACE_DATA).")] = None,
                  scenario: ScenarioOpt = [Scenario.uu],  # noqa: B006
                  seed: SeedOpt = 0, mask_type: MaskTypeOpt = None, oracle_alignment: OracleOpt = False,
                  workers: Workers = 0, cache: CacheOpt = None, device: DeviceOpt = None,
                  mask_robust: RobustOpt = True, masked_scan: MaskedScanOpt = MaskedScan.center) -> None:
    """Cross-fitted LFW View 2: each half of the folds scored by a model trained on the other half's people, then
    one 10-fold report (the honest protocol for trained models)."""
    halves = []
    for item in half:
        model, at, folds = item.rpartition("@")
        if not at or not model:
            raise _error(ValueError(f"--half {item!r}: expected MODEL@FOLDS, e.g. maskface_v1@6-10"), 2)
        halves.append((model, folds))
    _lfw_runs(out_dir, data, halves, scenario, _mask_setting(seed, mask_type, oracle_alignment), False, workers,
              cache, device, mask_robust, masked_scan.value)


def _mask_setting(seed: int, mask_type: str | None, oracle: bool):
    from maskface.eval.protocol import MaskSetting

    return MaskSetting(seed, mask_type, oracle)


def _lfw_runs(out_dir: Path, data: Path | None, halves: list[tuple[str, str]], scenario: list, setting,
              identify: bool, workers: int, cache: Path | None, device: str | None, mask_robust: bool,
              masked_scan: str) -> None:
    """Verification runs on LFW View 2 pairs, each (model, folds) part scored by its model."""
    from maskface.data.lfw import LFW
    from maskface.eval.protocol import crossfit_verification, identification
    from maskface.eval.report import markdown_table, write_run
    from maskface.io.files import atomic_write_text

    try:
        lfw = LFW.find(data)
        face = _face_config(select="center", fallback=("upsample", "center"), mask_robust=mask_robust,
                            masked_scan=masked_scan)
        parts, seen = [], set()
        for model, folds in halves:
            wanted = set(_parse_folds(folds))
            if wanted & seen:
                raise ValueError(f"fold(s) {sorted(wanted & seen)} are given to more than one model")
            seen |= wanted
            pairs = [p for p in lfw.view2_pairs() if p.fold in wanted]
            parts.append((pairs, _eval_setup(model, device, face, workers, cache)))
        all_pairs = [pair for pairs, _ in parts for pair in pairs]
        reports = []
        for sc in dict.fromkeys(scenario):
            report, result = crossfit_verification(parts, sc.value, setting)
            name = sc.value + ("-oracle" if setting.oracle_alignment and sc is not Scenario.uu else "")
            write_run(out_dir / name, report, result, all_pairs)
            reports.append(report)
        out.print(markdown_table(reports), highlight=False)
        if identify:
            result = identification(lfw.identities(), parts[0][1], setting)
            atomic_write_text(out_dir / "identification.json", json.dumps(result, indent=2) + "\n")
            out.print(f"identification: rank-1 {result['rank1']:.2%}, rank-5 {result['rank5']:.2%} "
                      f"({result['probes']} masked probes, {result['gallery']} gallery)", highlight=False)
    except MaskfaceError as exc:
        raise _fail(exc) from None
    except ValueError as exc:
        raise _error(exc, 2) from None


@eval_app.command("deocclusion")
def eval_deocclusion(data: DataOpt = None,
                     out_file: Annotated[Path, typer.Option("--out", help="JSON report.")] = Path("deocclusion.json"),
                     picture: Annotated[Path | None, typer.Option(help="Grid of completed faces (PNG).")] = None,
                     real: Annotated[Path | None, typer.Option(help="Folder of real masked photos for the grid.")]
                     = None,
                     model: Annotated[str, typer.Option("--model", "-m", help="Registered de-occlusion model.")]
                     = "deocclusion_v1",
                     folds: Annotated[str, typer.Option(help="Held-out LFW View 2 folds.")] = "6-10",
                     limit: Annotated[int, typer.Option(help="Masked faces measured (evenly spaced).")] = 2000,
                     seed: SeedOpt = 0, workers: Workers = 0, device: DeviceOpt = None) -> None:
    """Completion quality on held-out LFW people: PSNR/SSIM in the mask, teacher similarity, estimator IoU."""
    from maskface.apps.batch import default_workers
    from maskface.apps.deocclude import real_examples
    from maskface.data.chips import lfw_chips
    from maskface.data.lfw import LFW
    from maskface.eval.deocclusion import completion_report, mask_held_out
    from maskface.eval.plots import plot_deocclusion
    from maskface.io.files import atomic_write_text
    from maskface.models import create_model
    from maskface.models.embedder import load_embedder, select_device

    try:
        lfw = LFW.find(data)
        wanted = _parse_folds(folds)
        chips = lfw_chips(lfw.root, workers=workers or default_workers()).subset(lfw.people_of_folds(wanted))
        faces = mask_held_out(chips, seed, limit)
        clean = np.stack([chips.chip(int(i)) for i in np.linspace(1, len(chips) - 2, limit // 2).round()])
        deoccluder = create_model(model, pretrained=True).eval().to(select_device(device))
        teacher = load_embedder(TEACHER_MODEL, device=device)
        report, images = completion_report(faces, deoccluder, teacher, clean)
        report.update({"model": model, "folds": wanted, "mask_seed": seed})
        atomic_write_text(out_file, json.dumps(report, indent=2) + "\n")
        if picture:
            pick = np.linspace(0, len(faces.keys) - 1, 6).round().astype(int)
            shown = {k: (v[pick] / 255.0 if v.dtype == np.uint8 else v[pick].astype(float)) for k, v in images.items()}
            found = real_examples(real, deoccluder, count=6, workers=workers or default_workers()) \
                if real else {}
            plot_deocclusion(shown, found, picture)
    except MaskfaceError as exc:
        raise _fail(exc) from None
    for name in ("masked_input", "completed_true_map", "completed_estimated_map"):
        m = report[name]
        out.print(f"{name:24s} PSNR in mask {m['psnr_in_mask_db']:5.2f} dB  SSIM in mask {m['ssim_in_mask']:.3f}")
    for name, value in report["teacher_cosine_to_original"].items():
        out.print(f"teacher cosine to original, {name:24s} {value:.4f}")
    e = report["estimator"]
    out.print(f"estimator: mean IoU {e['mean_iou']:.4f}, pooled {e['pooled_iou']:.4f}; masked judged masked "
              f"{e['masked_faces_judged_masked']:.2%}, clean judged masked {e['clean_faces_judged_masked']:.2%}")
    out.print(f"wrote {out_file}" + (f" and {picture}" if picture else ""))


@eval_app.command("pairs")
def eval_pairs(pairs_file: Annotated[Path, typer.Option("--pairs", help="LFW- or MFR2-format pairs file.")],
               root: Annotated[Path, typer.Option(help="Folder with <Name>/<Name>_NNNN.<ext> images.")],
               out_dir: Annotated[Path, typer.Option("--out", help="Folder for the report.")],
               labels: Annotated[Path | None, typer.Option(help="MFR2 labels file (Name, n, masktype): "
                                                                "adds results split by mask status.")] = None,
               model: ModelOpt = DEFAULT_MODEL, scenario: Annotated[Scenario, typer.Option(
                   help="Synthetic masks to add (U-U: use the images as they are).")] = Scenario.uu,
               seed: SeedOpt = 0, mask_type: MaskTypeOpt = None, oracle_alignment: OracleOpt = False,
               workers: Workers = 0, cache: CacheOpt = None, device: DeviceOpt = None,
               mask_robust: RobustOpt = True, masked_scan: MaskedScanOpt = MaskedScan.center) -> None:
    """Any pairs file (LFW or MFR2 format); with MFR2 labels, also per mask status (U-U, M-U, M-M)."""
    from maskface.data.mfr2 import read_mfr2_pairs
    from maskface.eval.protocol import MaskSetting, verification
    from maskface.eval.report import markdown_table, write_run

    try:
        pairs = read_mfr2_pairs(pairs_file, root, labels)
        face = _face_config(fallback=("upsample",), mask_robust=mask_robust, masked_scan=masked_scan.value)
        store = _eval_setup(model, device, face, workers,
                            cache)
        setting = MaskSetting(seed, mask_type, oracle_alignment)
        report, result = verification(pairs, scenario.value, store, setting)
        write_run(out_dir, report, result, pairs)
        reports = [report]
        if labels is not None:
            reports += _split_by_mask_status(pairs, store, setting, scenario.value, out_dir)
        out.print(markdown_table(reports), highlight=False)
    except MaskfaceError as exc:
        raise _fail(exc) from None
    except ValueError as exc:
        raise _error(exc, 2) from None


def _split_by_mask_status(pairs, store, setting, scenario, out_dir) -> list[dict]:
    from maskface.eval.protocol import verification
    from maskface.eval.report import write_run

    groups = {"unmasked-unmasked": 0, "masked-unmasked": 1, "masked-masked": 2}
    reports = []
    for name, masked_count in groups.items():
        subset = [p for p in pairs if None not in p.masked and sum(bool(m) for m in p.masked) == masked_count]
        if not subset or all(p.same for p in subset) or not any(p.same for p in subset):
            err.print(f"{name}: skipped (needs genuine and impostor pairs; has {len(subset)} pairs)", markup=False)
            continue
        report, result = verification(subset, scenario, store, setting)
        report["scenario"] = f"{scenario} {name}"
        write_run(out_dir / name, report, result, subset)
        reports.append(report)
    return reports


@eval_app.command("frontend")
def eval_frontend(out_file: Annotated[Path, typer.Option("--out", help="JSON file for the measurements.")],
                  data: DataOpt = None,
                  folds: Annotated[str, typer.Option(help="Held-out LFW View 2 folds.")] = "9-10",
                  max_images: Annotated[int, typer.Option(help="Photos of held-out people to mask.")] = 600,
                  real: Annotated[Path | None, typer.Option(help="Folder of real masked photos (e.g. rwmfd).")]
                  = None,
                  sheet: Annotated[Path | None, typer.Option(help="Contact sheet PNG of the real photos.")] = None,
                  seed: SeedOpt = 1, workers: Workers = 0) -> None:
    """Detection rate and landmark error on masked faces: synthetic masked LFW, and real masked photos."""
    from maskface.apps.batch import default_workers
    from maskface.eval.frontend import real_photos, synthetic_lfw
    from maskface.io.files import atomic_write_text

    try:
        result = {"synthetic_lfw": synthetic_lfw(data, _parse_folds(folds), max_images, seed,
                                                 workers or default_workers())}
        if real is not None:
            result["real"] = real_photos(real, workers or default_workers(), sheet)
    except MaskfaceError as exc:
        raise _fail(exc) from None
    atomic_write_text(out_file, json.dumps(result, indent=2) + "\n")
    out.print(json.dumps(result, indent=2), highlight=False)


@eval_app.command("pool")
def eval_pool(halves: Annotated[list[Path], typer.Argument(
                  help="Folders of `maskface eval lfw --folds` runs on disjoint folds (e.g. a model trained on folds "
                       "1-5 tested on 6-10, and one trained on 6-10 tested on 1-5), each holding scenario folders.")],
              out_dir: Annotated[Path, typer.Option("--out", help="Folder for the pooled reports.")]) -> None:
    """Cross-fitting from finished runs: pool each scenario's scores into one 10-fold report, as `eval crossfit`
    would have computed them in one go."""
    from maskface.eval.report import markdown_table, pool_runs, write_run

    for folder in halves:
        if not folder.is_dir():
            raise _error(f"{folder}: no such run folder", 2)
    common = set.intersection(*({p.parent.name for p in h.glob("*/report.json")} for h in halves))
    order = {s.value: i for i, s in enumerate(Scenario)}  # U-U, M-U, M-M, then the oracle runs
    names = sorted(common, key=lambda name: (name.endswith("-oracle"), order.get(name[:3], len(order)), name))
    if not names:
        raise _error(f"no scenario folder (holding report.json) is in all of: {', '.join(map(str, halves))}", 2)
    reports = []
    try:
        for name in names:
            report, result, pairs = pool_runs([h / name for h in halves])
            write_run(out_dir / name, report, result, pairs)
            reports.append(report)
    except ValueError as exc:
        raise _error(exc, 2) from None
    out.print(markdown_table(reports), highlight=False)


@eval_app.command("compare")
def eval_compare(runs: Annotated[list[Path], typer.Argument(help="Run folders written by maskface eval.")],
                 out_dir: Annotated[Path, typer.Option("--out", help="Folder for compare.md and plots.")]) -> None:
    """Several runs in one Markdown table and one ROC/DET plot."""
    from maskface.eval.report import compare_runs

    missing = [r for r in runs if not (r / "report.json").is_file()]
    if missing:
        raise _error(f"{missing[0]}: not a run folder (no report.json)", 2)
    out.print(compare_runs(runs, out_dir), highlight=False)


@train_app.command("frontend")
def train_frontend_cmd(out_dir: Annotated[Path, typer.Option("--out", help="Folder for the model files.")],
                       data: DataOpt = None,
                       folds: Annotated[str, typer.Option(help="LFW View 2 folds whose people train.")] = "1-8",
                       max_images: Annotated[int, typer.Option(help="Training photos (drawn at random).")] = 2000,
                       seed: Annotated[int, typer.Option(help="Seed of the photo draw and the masks.")] = 0,
                       only: Annotated[list[str] | None, typer.Option(
                           help="Train only these models (repeatable): detector, landmarks, classifier.")] = None,
                       workers: Workers = 0) -> None:
    """Train the mask-robust detector, 5-point landmark model and mask classifier (teacher-student on masks)."""
    from maskface.apps.batch import default_workers
    from maskface.face.frontend_training import FrontendTrainConfig, train_frontend

    models = FrontendTrainConfig.models
    unknown = sorted(set(only or []) - set(models))
    if unknown:
        raise _error(f"--only: unknown model(s) {unknown}; choose from {list(models)}", 2)
    config = FrontendTrainConfig(folds=tuple(_parse_folds(folds)), max_images=max_images, seed=seed,
                                 workers=workers or default_workers(),
                                 models=tuple(m for m in models if m in (only or models)))
    try:
        record = train_frontend(data, out_dir, config)
    except MaskfaceError as exc:
        raise _fail(exc) from None
    times = ", ".join(f"{k} {v:.0f} s" for k, v in record["timings_s"].items())
    out.print(f"trained on {record['photos']} photos ({times}); wrote {out_dir}", highlight=False)


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Recipe YAML (see configs/).")]
TrainOutOpt = Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, logs, TensorBoard, weights.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")]
Overrides = Annotated[list[str] | None, typer.Argument(help="Config overrides key=value, e.g. train.steps=500.")]


def _train_recipe(method: str, config_file: Path | None, data: Path | None, out_dir: Path, resume: bool,
                  overrides: list[str] | None) -> None:
    from maskface.train.config import load_config
    from maskface.train.engine import Engine
    from maskface.train.recipes import recipes

    recipe_class = recipes()[method]
    try:
        config = load_config(recipe_class.config_class, config_file, overrides or [])
        last = Engine(recipe_class(config, data), out_dir, resume=resume).run()
    except MaskfaceError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if not k.startswith("lr/"))
    out.print(f"{method}: {config.train.steps} steps done ({summary}); run in {out_dir}", highlight=False)


@app.command()
def chips(root: Annotated[Path, typer.Argument(help="Identity folders: ROOT/<person>/<image>.")],
          out_dir: Annotated[Path, typer.Option("--out", help="Chip-set folder for training (data.chips=...).")],
          errors: Errors = None, workers: Workers = 0, select: SelectOpt = Select.largest) -> None:
    """Cache the chips and chip-space landmarks of an identity-labelled image set, for training recipes."""
    from maskface.apps.batch import BatchReport, default_workers
    from maskface.data.chips import build_chip_set
    from maskface.data.folders import read_identity_folders

    try:
        identities = read_identity_folders(root)
    except MaskfaceError as exc:
        raise _fail(exc) from None
    report = BatchReport()
    face = _face_config(select=select.value)
    chip_set = build_chip_set([p for p, _ in identities.samples], face, workers or default_workers(), report)
    chip_set.save(out_dir)
    report.write_errors(errors)
    out.print(report.summary("cached") + f" of {len(identities.names)} people in {out_dir}", highlight=False)
    raise typer.Exit(report.exit_code)


@train_app.command("deocclusion")
def train_deocclusion_cmd(out_dir: TrainOutOpt, overrides: Overrides = None, config_file: ConfigOpt = None,
                          data: DataOpt = None, resume: ResumeOpt = False) -> None:
    """Train the de-occlusion generator (masked L1 + hinge GAN + teacher identity) on LFW training folds."""
    _train_recipe("deocclusion", config_file, data, out_dir, resume, overrides)


@train_app.command("occlusion")
def train_occlusion_cmd(out_dir: TrainOutOpt, overrides: Overrides = None, config_file: ConfigOpt = None,
                        data: DataOpt = None, resume: ResumeOpt = False) -> None:
    """Train the occlusion estimator (segmentation of synthetic masks) on LFW training folds."""
    _train_recipe("occlusion", config_file, data, out_dir, resume, overrides)


@train_app.command("distill")
def train_distill_cmd(out_dir: TrainOutOpt, overrides: Overrides = None, config_file: ConfigOpt = None,
                      data: DataOpt = None, resume: ResumeOpt = False) -> None:
    """Distil a masked-face student from the teacher, on faces completed by the de-occlusion model."""
    _train_recipe("distill", config_file, data, out_dir, resume, overrides)


@train_app.command("maskinv")
def train_maskinv_cmd(out_dir: TrainOutOpt, overrides: Overrides = None, config_file: ConfigOpt = None,
                      data: DataOpt = None, resume: ResumeOpt = False) -> None:
    """MaskInv: a student of the teacher's architecture learns the teacher's unmasked templates from masked faces."""
    _train_recipe("maskinv", config_file, data, out_dir, resume, overrides)


@app.command()
def demo(data: DataOpt = None,
         out_dir: Annotated[Path, typer.Option("--out", help="Folder for the report and pictures.")]
         = Path("maskface-demo"),
         pairs: Annotated[int, typer.Option(help="Same-person pairs (and as many different-person pairs).")] = 60,
         model: ModelOpt = DEFAULT_MODEL, workers: Workers = 0) -> None:
    """Masked LFW pairs scored by the dlib teacher and by the maskface recogniser: table, grid and ROC report."""
    from maskface.apps.batch import default_workers
    from maskface.apps.demo import run_demo

    try:
        result = run_demo(data, out_dir, pairs, workers or default_workers(), model=model)
    except MaskfaceError as exc:
        raise _fail(exc) from None
    out.print(f"maskface demo: {result.pairs} LFW pairs (View 2 fold 10)", highlight=False)
    out.print(f"  {'scenario':8s} {'model':16s} {'accuracy':>9s} {'ROC AUC':>8s}", highlight=False)
    for row in result.rows:
        out.print(f"  {row.scenario:8s} {row.model:16s} {row.accuracy:9.1%} {row.auc:8.3f}", highlight=False)
    out.print(f"wrote {result.report} (with pairs.png and roc.png)" + (f"; {result.failures} images failed"
                                                                      if result.failures else ""), highlight=False)


@app.command()
def models() -> None:
    """List the registered models."""
    from maskface.models.registry import list_models, model_info

    for name in list_models():
        info = model_info(name)
        what = f"{info.spec.chip}:{info.spec.size} {info.spec.metric}" if info.spec else info.kind
        out.print(f"{name:16s} {what:20s} {info.description}")


def main() -> None:
    try:
        app()
    except MaskfaceError as exc:  # a last guard: user mistakes never end in a traceback
        _error(exc, 2)
        raise SystemExit(2) from None
