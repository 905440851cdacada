"""Every refusal as one JSON shape, ``{"error": {"status", "code", "message"}}``, and the handlers that make sure
nothing else reaches a client: no traceback, no HTML, no 500 for a user's mistake."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from maskface.errors import ImageError, MaskfaceError, NoFaceError, safe_display

log = logging.getLogger("maskface.service")


class ApiError(Exception):
    """A refusal with its HTTP status, a stable machine-readable code and a one-line message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def error_body(status: int, code: str, message: str) -> dict:
    return {"error": {"status": status, "code": code, "message": safe_display(message)}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, code, message), status_code=status, headers=headers)


def from_maskface_error(exc: MaskfaceError, label: str) -> ApiError:
    """A library error about one uploaded image as a 422 naming the image's part (``a``, ``image[2]``)."""
    code = "no_face" if isinstance(exc, NoFaceError) else "bad_image" if isinstance(exc, ImageError) else "invalid"
    return ApiError(422, code, f"{label}: {exc.reason}")


_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 406: "not_acceptable", 413: "too_large", 415: "unsupported_media_type",
                 422: "invalid", 429: "rate_limited"}


def install(app: FastAPI) -> None:
    """Handlers: ApiError as itself; FastAPI's own 404/405/422 in the same shape; anything unexpected as a 500
    whose body says only that (the traceback goes to the server's log, never to the client)."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for problem in exc.errors()[:5]:
            where = ".".join(str(p) for p in problem.get("loc", ()) if p not in ("query", "path", "body"))
            parts.append(f"{where}: {problem.get('msg', 'invalid')}" if where else problem.get("msg", "invalid"))
        return error_response(422, "invalid", "; ".join(parts) or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s: %s", request.method, request.url.path, type(exc).__name__,
                  exc_info=exc)
        return error_response(500, "internal", "internal error; the server's log has the details")
