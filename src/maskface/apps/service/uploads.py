"""Request bodies read within limits and multipart forms parsed in memory: an upload is never spooled to disk
(Starlette's own form parser writes files above 1 MB to a temporary file), and every malformed or oversized body
is a 4xx :class:`~maskface.apps.service.problems.ApiError`, decided as early as the bytes allow."""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from maskface.apps.service.problems import ApiError
from maskface.io.input_files import format_bytes

#: text fields a form may carry besides its images (``person``), their size, and the headers of one part
MAX_FIELDS = 8
MAX_FIELD_BYTES = 1024
MAX_PART_HEADER_BYTES = 8192


@dataclass
class Part:
    """One part of a multipart form: its field name, file name (None for a text field), type and bytes."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)


@dataclass
class Form:
    files: list[Part]
    fields: dict[str, str]


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit`` bytes: from Content-Length
    before reading, else while it streams in (chunked uploads)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(400, "bad_request", f"Content-Length {declared[:40]!r} is not a number")
        if int(declared) > limit:
            raise ApiError(413, "upload_too_large", f"the request body ({format_bytes(int(declared))}) exceeds the "
                                                    f"limit of {format_bytes(limit)}")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise ApiError(413, "upload_too_large", f"the request body exceeds the limit of {format_bytes(limit)}")
    except ClientDisconnect:
        raise ApiError(400, "client_disconnected", "the client went away before sending the whole body") from None
    return bytes(body)


def form_boundary(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` body; 415 for any other type, 400 without a usable boundary."""
    if not content_type:
        raise ApiError(415, "unsupported_media_type", "send the images as multipart/form-data (no Content-Type given)")
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data":
        shown = kind.decode("latin-1")[:60]
        raise ApiError(415, "unsupported_media_type", f"send the images as multipart/form-data, not {shown!r}")
    boundary = options.get(b"boundary")
    if not boundary or len(boundary) > 70:
        raise ApiError(400, "malformed_multipart", "multipart/form-data without a valid boundary (1-70 characters)")
    return boundary


def parse_form(body: bytes, content_type: str | None, max_files: int) -> Form:
    """Parse a multipart form held in memory into its files and text fields, within the limits above."""
    boundary = form_boundary(content_type)
    files: list[Part] = []
    fields: dict[str, str] = {}
    state: dict = {"headers": {}, "field": b"", "value": b"", "header_bytes": 0, "data": bytearray(), "ended": False}

    def on_part_begin() -> None:
        state.update(headers={}, field=b"", value=b"", header_bytes=0, data=bytearray(), part=None)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]
        _count_header(end - start)

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]
        _count_header(end - start)

    def _count_header(n: int) -> None:
        state["header_bytes"] += n
        if state["header_bytes"] > MAX_PART_HEADER_BYTES:
            raise ApiError(431, "part_headers_too_large", f"a part's headers exceed {MAX_PART_HEADER_BYTES} bytes")

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        disposition = state["headers"].get(b"content-disposition")
        if disposition is None:
            raise ApiError(400, "malformed_multipart", "a part has no Content-Disposition header")
        kind, options = parse_options_header(disposition)
        if kind != b"form-data" or b"name" not in options:
            raise ApiError(400, "malformed_multipart", "a part's Content-Disposition is not form-data with a name")
        name = options[b"name"].decode("utf-8", "replace")
        filename = options.get(b"filename")
        part_type = state["headers"].get(b"content-type")
        part = Part(name, None if filename is None else filename.decode("utf-8", "replace"),
                    None if part_type is None else part_type.decode("latin-1"), b"")
        if part.filename is not None:
            if len(files) >= max_files:
                raise ApiError(413, "too_many_images", f"more than {max_files} images in one request")
        elif len(fields) >= MAX_FIELDS:
            raise ApiError(413, "too_many_fields", f"more than {MAX_FIELDS} text fields in one request")
        state["part"] = part

    def on_part_data(data: bytes, start: int, end: int) -> None:
        state["data"] += data[start:end]
        part = state.get("part")
        if part is not None and part.filename is None and len(state["data"]) > MAX_FIELD_BYTES:
            raise ApiError(413, "field_too_large", f"text field {part.name!r} exceeds {MAX_FIELD_BYTES} bytes")

    def on_part_end() -> None:
        part = state.get("part")
        if part is None:
            raise ApiError(400, "malformed_multipart", "a part ended before its headers did")
        part.data = bytes(state["data"])
        if part.filename is None:
            try:
                fields[part.name] = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "malformed_multipart", f"text field {part.name!r} is not UTF-8") from None
        else:
            files.append(part)

    def on_end() -> None:
        state["ended"] = True

    callbacks = {"on_part_begin": on_part_begin, "on_part_data": on_part_data, "on_part_end": on_part_end,
                 "on_header_field": on_header_field, "on_header_value": on_header_value,
                 "on_header_end": on_header_end, "on_headers_finished": on_headers_finished, "on_end": on_end}
    parser = MultipartParser(boundary, callbacks, max_size=len(body) + 1)
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise ApiError(400, "malformed_multipart", f"malformed multipart body: {str(exc)[:120]}") from None
    if not state["ended"]:
        raise ApiError(400, "malformed_multipart", "the multipart body is truncated (no closing boundary)")
    return Form(files, fields)
