"""Commands on face photos: align, mask, deocclude, embed, verify, and chips (training sets)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from maskface.apps.cli.options import (
    SEED_RANGE,
    BatchSizeOpt,
    DeoccluderOpt,
    DeviceOpt,
    Errors,
    FmrOpt,
    Inputs,
    ModelOpt,
    Workers,
    face_options,
    finite,
)
from maskface.apps.cli.output import out, shown
from maskface.defaults import DEFAULT_MODEL

if TYPE_CHECKING:
    from maskface.face.pipeline import FaceConfig

app = typer.Typer()


@app.command()
@face_options("size", "padding", "chip", "detector", "upsample", "select", "landmarks", "aligned", "mask_robust",
              "masked_scan")
def align(inputs: Inputs, out_dir: Annotated[Path, typer.Option("--out", help="Folder for the PNG chips.")],
          face: FaceConfig, errors: Errors = None, workers: Workers = 0) -> None:
    """Detect, landmark and align faces: one PNG chip per input under OUT, keeping relative paths and whole names
    (a/x.jpg -> OUT/a/x.jpg.png)."""
    from maskface.apps.align import align_images
    from maskface.face.pipeline import FacePipeline

    FacePipeline(face)  # fail fast on a bad configuration or a missing model file
    report, detectors = align_images(inputs, out_dir, face, workers, errors)
    by = ", ".join(f"{k}: {v}" for k, v in sorted(detectors.items()))
    out.print(report.summary("aligned") + (f" (faces by detector: {by})" if by else ""))
    raise typer.Exit(report.exit_code)


class MaskType(StrEnum):
    surgical = "surgical"
    n95 = "n95"
    kn95 = "kn95"
    cloth = "cloth"
    gas = "gas"
    random = "random"


@app.command()
@face_options("aligned", "detector", "upsample", "mask_robust", "masked_scan")
def mask(inputs: Inputs, out_dir: Annotated[Path, typer.Option("--out", help="Folder for masked images.")],
         mask_type: Annotated[MaskType, typer.Option("--type", help="Mask type; random draws one per face.")]
         = MaskType.random,
         seed: Annotated[int, typer.Option(help="Seed: same seed, image and options give the same bytes.",
                                           **SEED_RANGE)] = 0,
         *, face: FaceConfig, errors: Errors = None, workers: Workers = 0) -> None:
    """Put synthetic masks on every face: writes NAME.png and NAME.occlusion.png under OUT (NAME: the input's
    relative path, whole name kept: a/x.jpg -> OUT/a/x.jpg.png)."""
    from maskface.apps.mask import mask_images

    kind = None if mask_type is MaskType.random else mask_type.value
    report, faces = mask_images(inputs, out_dir, face, seed, kind, workers, errors)
    out.print(report.summary("masked") + f" ({faces} faces)")
    raise typer.Exit(report.exit_code)


@app.command()
@face_options("aligned", "detector", "upsample", "select", "mask_robust", "masked_scan")
def deocclude(inputs: Inputs, out_dir: Annotated[Path, typer.Option("--out", help="Folder for the results.")],
              model: DeoccluderOpt = "deocclusion_v1", *, face: FaceConfig, errors: Errors = None,
              workers: Workers = 0, device: DeviceOpt = None) -> None:
    """Complete the masked part of faces: NAME.chip.png, NAME.completed.png and NAME.occlusion.png under OUT
    (NAME: the input's relative path, whole name kept: a/x.jpg -> OUT/a/x.jpg.chip.png)."""
    from maskface.apps.deocclude import deocclude_images

    report, masked = deocclude_images(inputs, out_dir, face, workers, model, device, errors=errors)
    out.print(report.summary("completed") + f"; {masked} faces judged masked; table in "
              f"{shown(out_dir / 'deocclusion.csv')}")
    raise typer.Exit(report.exit_code)


@app.command()
@face_options("aligned", "detector", "upsample", "select", "mask_robust", "masked_scan")
def embed(inputs: Inputs, out_file: Annotated[Path, typer.Option("--out", help="Output .npz file.")],
          model: ModelOpt = DEFAULT_MODEL, *, face: FaceConfig, errors: Errors = None, workers: Workers = 0,
          batch_size: BatchSizeOpt = 64,
          device: DeviceOpt = None) -> None:
    """Embed the face of each image: writes paths (str) and embeddings (float32, N x D) to an .npz file."""
    from maskface.apps.embed import embed_images, save_embeddings
    from maskface.io.outputs import check_targets
    from maskface.models.embedder import load_embedder

    check_targets(inputs, file=out_file, errors=errors)  # before the model loads: nothing is done in vain
    embedder = load_embedder(model, device=device, batch_size=batch_size)
    names, embeddings, detectors, report = embed_images(inputs, embedder, embedder.face_config(face), workers, errors)
    save_embeddings(out_file, names, embeddings, model, detectors)
    out.print(report.summary("embedded") + f"; wrote {shown(out_file)}")
    raise typer.Exit(report.exit_code)


@app.command()
@face_options("aligned", "detector", "upsample", "mask_robust", "masked_scan")
def verify(a: Annotated[Path, typer.Argument(help="First image.")],
           b: Annotated[Path, typer.Argument(help="Second image.")],
           model: ModelOpt = DEFAULT_MODEL,
           threshold: Annotated[float | None, typer.Option(help="Decision threshold (default: the model's).",
                                                            callback=finite)] = None,
           fmr: FmrOpt = None,
           *, face: FaceConfig,
           as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
           device: DeviceOpt = None) -> None:
    """Are A and B the same person? Prints the score, the threshold and the decision."""
    from maskface.apps.recognizer import load

    result = load(model, device=device, face=face, threshold=threshold, fmr=fmr and fmr.value).verify(a, b)
    if as_json:
        out.print(json.dumps(result.to_dict()))
        return
    kind = "distance" if result.metric == "euclidean" else "similarity"
    relation = "<" if result.metric == "euclidean" else ">="
    verdict = "same person" if result.same else "different people"
    held = relation if result.same else {"<": ">=", ">=": "<"}[relation]
    masks = ", ".join(f"{name} {'masked' if f.masked else 'unmasked' if f.masked is False else 'mask unknown'}"
                      + (" and completed" if result.completed and result.completed[i] else "")
                      for i, (name, f) in enumerate(zip(("A", "B"), result.faces)))
    out.print(f"{kind} {result.score:.4f} {held} {result.pair_type} threshold {result.threshold:.4f}: {verdict} "
              f"({masks})")


@app.command()
@face_options("select")
def chips(root: Annotated[Path, typer.Argument(help="Identity folders: ROOT/<person>/<image>.")],
          out_dir: Annotated[Path, typer.Option("--out", help="Chip-set folder for training (data.chips=...).")],
          errors: Errors = None, workers: Workers = 0, *, face: FaceConfig) -> None:
    """Cache the chips and chip-space landmarks of an identity-labelled image set, for training recipes."""
    from maskface.data.chips import build_chip_set
    from maskface.data.folders import read_identity_folders
    from maskface.io.outputs import check_targets
    from maskface.io.parallel import BatchReport

    check_targets([root], folder=out_dir, errors=errors)
    identities = read_identity_folders(root)
    report = BatchReport()
    build_chip_set([p for p, _ in identities.samples], face, workers, report).save(out_dir)
    report.write_errors(errors)
    out.print(report.summary("cached") + f" of {len(identities.names)} people in {shown(out_dir)}")
    raise typer.Exit(report.exit_code)
