"""Gallery commands: ``enroll`` a folder of people, ``identify`` photos, and ``gallery list|show|remove|export|stats``
to look after a gallery (an SQLite file, or a ``postgresql://`` URL)."""

from __future__ import annotations

import datetime
import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from maskface.apps.cli.options import DeviceOpt, Errors, FmrOpt, Workers, face_options
from maskface.apps.cli.output import out, shown
from maskface.defaults import DEFAULT_MODEL

if TYPE_CHECKING:
    from maskface.apps.gallery import Gallery, Identification
    from maskface.face.pipeline import FaceConfig

app = typer.Typer()
manage = typer.Typer(help="Look after a gallery: list people, show one, remove, export, statistics.",
                     no_args_is_help=True)

GalleryOpt = Annotated[str, typer.Option("--gallery", "-g", help="The gallery: an SQLite file (created by enroll) "
                                                                "or a postgresql:// URL.")]
GalleryModelOpt = Annotated[str | None, typer.Option(
    "--model", "-m", help=f"Model of a new gallery (default: {DEFAULT_MODEL}); an existing gallery keeps its own.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


class CombineChoice(StrEnum):
    best = "best"
    mean = "mean"


def open_gallery(location: str, create: bool = False, **options: object) -> Gallery:
    from maskface.apps.gallery import Gallery

    return Gallery(location, create=create, **options)


@app.command()
@face_options("aligned", "detector", "upsample", "select", "mask_robust", "masked_scan")
def enroll(people_dir: Annotated[Path, typer.Argument(help="One folder per person: PEOPLE_DIR/<person>/<images>.")],
           gallery: GalleryOpt, model: GalleryModelOpt = None, *, face: FaceConfig, errors: Errors = None,
           workers: Workers = 0, device: DeviceOpt = None) -> None:
    """Enrol every person folder of PEOPLE_DIR into the gallery (created if new). Resumable: images already
    enrolled (same person, same file) are skipped, so a re-run after an interruption finishes the job."""
    from maskface.apps.enroll import enroll_folder

    with open_gallery(gallery, create=True, model=model, device=device, face=face) as opened:
        result = enroll_folder(opened, people_dir, workers, errors)
        people, templates = opened.store.counts()
    out.print(result.summary() + f"; the gallery holds {templates} templates of {people} people")
    raise typer.Exit(result.report.exit_code)


@app.command()
@face_options("aligned", "detector", "upsample", "select", "mask_robust", "masked_scan")
def identify(photos: Annotated[list[Path], typer.Argument(help="Photos to identify (the face the front end "
                                                                "selects in each).")],
             gallery: GalleryOpt,
             top: Annotated[int, typer.Option(help="Candidates to list.", min=1, max=1000)] = 5,
             combine: Annotated[CombineChoice, typer.Option(help="A person's score: their best template's, or the "
                                                                 "mean over their templates.")] = CombineChoice.best,
             fmr: FmrOpt = None,
             *, face: FaceConfig, as_json: JsonOpt = False, device: DeviceOpt = None) -> None:
    """Who is in each photo? The top enrolled people with scores, or 'unknown' when none passes its threshold."""
    from maskface.errors import ImageError, NoFaceError

    answers: list[dict] = []
    failed = 0
    with open_gallery(gallery, device=device, face=face, fmr=fmr and fmr.value) as opened:
        opened.recognizer  # noqa: B018 -- load the model (and check it) before the first photo
        for photo in photos:
            try:
                answer = opened.identify(photo, top=top, combine=combine.value)
            except (ImageError, NoFaceError) as exc:
                failed += 1
                answers.append({"source": str(photo), "error": exc.reason})
                if not as_json:
                    out.print(f"{shown(photo)}: error: {shown(exc.reason)}")
                continue
            answers.append(answer.to_dict())
            if not as_json:
                out.print(describe(photo, answer))
    if as_json:
        out.print(json.dumps(answers))
    raise typer.Exit(3 if failed else 0)


def describe(photo: Path, answer: Identification) -> str:
    """A photo's answer in text: the verdict, then one line per candidate."""
    kind = "distance" if answer.metric == "euclidean" else "similarity"
    face = "masked" if answer.masked else "unmasked" if answer.masked is False else "mask unknown"
    face += ", completed" if answer.completed else ""
    verdict = answer.person or "unknown"
    lines = [f"{shown(photo)}: {shown(verdict)} (face {face})"]
    for rank, c in enumerate(answer.candidates, 1):
        lines.append(f"  {rank}. {shown(c.person)}  {kind} {c.score:.4f}  threshold {c.threshold:.4f}  "
                     f"{'accepted' if c.accepted else 'rejected'}  ({c.templates} templates)")
    return "\n".join(lines)


@manage.command("list")
def list_people(gallery: GalleryOpt, as_json: JsonOpt = False) -> None:
    """The enrolled people and how many templates each has."""
    with open_gallery(gallery) as opened:
        people = opened.people()
    if as_json:
        out.print(json.dumps([p.to_dict() for p in people]))
        return
    for person in people:
        out.print(f"{shown(person.name)}\t{person.templates}")


@manage.command()
def show(person: Annotated[str, typer.Argument(help="The person's name.")], gallery: GalleryOpt,
         as_json: JsonOpt = False) -> None:
    """One person's templates: source, mask status, completion, detector, model, when enrolled."""
    with open_gallery(gallery) as opened:
        records = opened.templates(person)
    if as_json:
        out.print(json.dumps([r.to_dict() for r in records]))
        return
    for r in records:
        when = datetime.datetime.fromtimestamp(r.created, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        out.print(f"{r.id}\t{shown(r.source)}\tmasked={r.masked}\tcompleted={r.completed}\t"
                  f"detector={r.detector}\t{r.model}@{r.fingerprint}\t{when} UTC")


@manage.command()
def remove(people: Annotated[list[str], typer.Argument(help="Names of the people to remove.")],
           gallery: GalleryOpt) -> None:
    """Remove people and all their templates."""
    with open_gallery(gallery) as opened:
        for person in people:
            out.print(f"removed {shown(person)} ({opened.remove(person)} templates)")


@manage.command()
def export(gallery: GalleryOpt,
           out_file: Annotated[Path, typer.Option("--out", help="The .npz file to write.")]) -> None:
    """Every template (vectors, people, sources, mask status, completion) to an .npz file."""
    with open_gallery(gallery) as opened:
        count = opened.export(out_file)
    out.print(f"wrote {count} templates to {shown(out_file)}")


@manage.command()
def stats(gallery: GalleryOpt, as_json: JsonOpt = False) -> None:
    """The gallery's model, people, templates (masked, completed) and search index."""
    with open_gallery(gallery) as opened:
        summary = opened.stats().to_dict()
    if as_json:
        out.print(json.dumps(summary))
        return
    index = summary.pop("index")
    for key, value in [*summary.items(), *index.items()]:
        out.print(f"{key}: {shown(str(value))}")
