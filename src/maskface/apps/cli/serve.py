"""``maskface serve`` (the HTTP service) and ``maskface keys create|revoke|list`` (its API keys)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from maskface.apps.cli.errors import fail
from maskface.apps.cli.options import DeviceOpt, FmrOpt, ModelOpt, finite
from maskface.apps.cli.output import out, shown
from maskface.defaults import DEFAULT_MODEL

app = typer.Typer()
keys_app = typer.Typer(help="API keys of the service: create, revoke, list (stored hashed).", no_args_is_help=True)

GalleryOpt = Annotated[str | None, typer.Option(help="Gallery: a file path (SQLite + FAISS) or a postgresql:// URL.")]
KeysOpt = Annotated[Path | None, typer.Option("--keys", help="Keys file (default: GALLERY.keys.json beside a "
                                                             "gallery file).")]


class Scope(StrEnum):
    read = "read"
    write = "write"


def keys_file(keys: Path | None, gallery: str | None):
    from maskface.apps.service.keys import KeysFile
    from maskface.apps.service.settings import default_keys_path

    path = keys or default_keys_path(gallery)
    if path is None:
        raise fail("name the keys file with --keys (or a gallery file with --gallery, whose keys lie beside it)")
    return KeysFile(path)


@app.command()
def serve(gallery: GalleryOpt = None, keys: KeysOpt = None,
          host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")]
          = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
          workers: Annotated[int, typer.Option(help="Server processes, each with the model loaded.", min=1, max=64)]
          = 1,
          model: ModelOpt = DEFAULT_MODEL, device: DeviceOpt = None, fmr: FmrOpt = None,
          insecure_no_auth: Annotated[bool, typer.Option("--insecure-no-auth", help="Let anyone call every route "
                                                         "without a key (testing on a closed machine only).")]
          = False,
          max_upload_mb: Annotated[float, typer.Option(help="Largest request body, MiB.", min=0.01, max=1024,
                                                       callback=finite)] = 10.0,
          max_megapixels: Annotated[float, typer.Option(help="Largest decoded image, Mpx (stops decompression "
                                                        "bombs).", min=0.01, max=64, callback=finite)] = 25.0,
          max_images: Annotated[int, typer.Option(help="Images per request.", min=1, max=256)] = 10,
          timeout: Annotated[float, typer.Option(help="Seconds per request, upload included.", min=0.1, max=3600,
                                                 callback=finite)] = 30.0,
          rate: Annotated[float, typer.Option(help="Requests per second per key (0: no limit).", min=0,
                                              callback=finite)] = 20.0,
          burst: Annotated[int, typer.Option(help="Requests a key may send at once.", min=1)] = 40,
          max_batch: Annotated[int, typer.Option(help="Chips per forward pass (1: no batching).", min=1, max=256)]
          = 16,
          max_wait_ms: Annotated[float, typer.Option(help="How long a request waits for others to join its "
                                                     "batch, ms.", min=0, max=1000, callback=finite)] = 10.0) -> None:
    """Serve verification, embedding, identification and enrolment over HTTP (API keys required; page at /)."""
    from maskface.apps.service.server import serve as run
    from maskface.apps.service.settings import Batching, Limits, ServiceSettings

    if not insecure_no_auth:
        store = keys_file(keys, gallery)
        if not store.list_keys():
            out.print(f"note: {shown(str(store.path))} holds no key yet; every call will be refused until you run: "
                      f"maskface keys create NAME --scope read --keys {shown(str(store.path))}")
    limits = Limits(max_upload_bytes=int(max_upload_mb * 2**20), max_pixels=int(max_megapixels * 1e6),
                    max_images=max_images, timeout=timeout, rate=rate, burst=burst)
    settings = ServiceSettings(gallery=gallery, keys=None if keys is None else str(keys), model=model,
                               device=device, fmr=fmr and fmr.value, insecure_no_auth=insecure_no_auth, limits=limits,
                               batching=Batching(max_batch=max_batch, max_wait=max_wait_ms / 1000))
    run(settings, host, port, workers)


@keys_app.command("create")
def keys_create(name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
                scope: Annotated[list[Scope], typer.Option("--scope", "-s", help="read (verify, embed, identify) "
                                                           "and/or write (enrol, delete); repeat for both.")],
                keys: KeysOpt = None, gallery: GalleryOpt = None,
                rate: Annotated[float | None, typer.Option(help="This key's own requests per second (0: no limit; "
                                                           "default: the server's --rate).", min=0, callback=finite)]
                = None) -> None:
    """Create a key and print it once (only its hash is stored)."""
    token, record = keys_file(keys, gallery).create(name, [s.value for s in scope], rate)
    out.print(token)
    typer.echo(f"key {record.id} ({', '.join(record.scopes)}) for {shown(record.name)}: shown once, keep it",
               err=True)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see keys list) or the key itself.")],
                keys: KeysOpt = None, gallery: GalleryOpt = None) -> None:
    """Revoke a key: a running server refuses it within a second."""
    record = keys_file(keys, gallery).revoke(key_id)
    out.print(f"revoked {record.id} ({shown(record.name)})")


@keys_app.command("list")
def keys_list(keys: KeysOpt = None, gallery: GalleryOpt = None,
              as_json: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False) -> None:
    """List keys: id, scopes, name, created (never the keys themselves)."""
    import datetime

    for record in keys_file(keys, gallery).list_keys():
        if as_json:
            out.print(json.dumps(record.public()))
        else:
            when = datetime.datetime.fromtimestamp(record.created, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
            out.print(f"{record.id}  {','.join(record.scopes):10s}  {when}  {shown(record.name)}")
