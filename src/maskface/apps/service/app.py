"""The FastAPI application: routes, their scopes and limits, and the start-up that loads the model.

The model loads on a thread after the server starts listening, so ``/healthz`` answers at once and ``/readyz``
says 503 until the model (and gallery) are ready; the API answers 503 ``not_ready`` meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from maskface.apps.service import problems
from maskface.apps.service.auth import Authenticator, Caller
from maskface.apps.service.batcher import Overloaded
from maskface.apps.service.keys import KeysFile
from maskface.apps.service.metrics import ServiceMetrics
from maskface.apps.service.middleware import ServiceMiddleware
from maskface.apps.service.problems import ApiError
from maskface.apps.service.ratelimit import RateLimiter
from maskface.apps.service.settings import ServiceSettings, default_keys_path
from maskface.apps.service.uploads import Form, parse_form, read_body
from maskface.errors import MaskfaceError

if TYPE_CHECKING:  # the engine imports torch: loaded on the start-up thread, so /healthz answers at once
    from maskface.apps.service.engine import Engine

log = logging.getLogger("maskface.service")

#: the request body every image route takes, for the OpenAPI page (the body is parsed by maskface, in memory)
def _multipart_body(fields: dict[str, dict], required: list[str]) -> dict:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "properties": fields, "required": required}}}}}


_FILE = {"type": "string", "format": "binary"}
_FILES = {"type": "array", "items": _FILE}
Combine = Literal["best", "mean"]
CHIPS = Query(False, description="Also return each aligned face chip as a PNG data URL.")


class State:
    """What the routes share: settings, the engine once loaded, the gallery, metrics, auth."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.metrics = ServiceMetrics()
        keys_path = settings.keys or default_keys_path(settings.gallery)
        keys = None if settings.insecure_no_auth else KeysFile(keys_path) if keys_path else None
        if keys is None and not settings.insecure_no_auth:
            raise ValueError("name a keys file (--keys) for a gallery that is not a file")
        self.auth = Authenticator(keys, settings.insecure_no_auth,
                                  RateLimiter(settings.limits.rate, settings.limits.burst))
        self.engine: Engine | None = None
        self.failure: str | None = None

    def engine_or_503(self) -> Engine:
        if self.engine is None:
            reason = self.failure or "the model is still loading"
            raise ApiError(503, "not_ready", reason, {"Retry-After": "5"})
        return self.engine


def load_engine(settings: ServiceSettings, metrics: ServiceMetrics) -> Engine:
    """The recogniser loaded and warmed up (on a thread: it takes seconds)."""
    from maskface.apps.recognizer import load
    from maskface.apps.service.engine import Engine
    from maskface.apps.service.gallery import GalleryService

    recognizer = load(settings.model, device=settings.device, fmr=settings.fmr)
    gallery = None if settings.gallery is None else GalleryService(settings.gallery, recognizer)
    engine = Engine(settings, recognizer, metrics.on_batch, gallery)
    engine.warm_up()
    return engine


def create_app(settings: ServiceSettings, loader: Callable[[ServiceSettings, ServiceMetrics], Engine] = load_engine
               ) -> FastAPI:
    state = State(settings)

    async def update_gallery_metrics() -> None:
        engine = state.engine
        if engine is not None and engine.gallery is not None:
            people, templates = await engine.gallery.call(engine.gallery.gallery.store.counts)
            state.metrics.gallery_people.set(people)
            state.metrics.gallery_templates.set(templates)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        async def start() -> None:
            try:
                engine = await asyncio.to_thread(loader, settings, state.metrics)
                engine.batcher.start()
                state.metrics.waiting.set_function(lambda: engine.batcher.waiting)
                state.engine = engine
                await update_gallery_metrics()
                state.metrics.ready.set(1)
                log.info("maskface service ready: model %s", engine.model)
            except Exception as exc:  # the server stays up and says why it is not ready
                state.failure = f"the model could not be loaded: {exc}"
                log.error(state.failure)

        task = asyncio.create_task(start())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if state.engine is not None:
            await state.engine.close()

    app = FastAPI(title="maskface", version="1", lifespan=lifespan,
                  description="Masked-face verification, embedding, identification and enrolment. Every /v1 route "
                              "needs an API key (Authorization: Bearer KEY) with its scope: read or write.")
    app.state.maskface = state
    problems.install(app)
    app.add_middleware(ServiceMiddleware, timeout=settings.limits.timeout, metrics=state.metrics)

    def scope(name: str) -> Callable[[Request], Caller]:
        def check(request: Request) -> Caller:
            try:
                return state.auth.require(request, name)
            except ApiError as exc:
                state.metrics.refusals.labels(exc.code).inc()
                raise

        return check

    read, write = Depends(scope("read")), Depends(scope("write"))

    async def form_of(request: Request) -> Form:
        problems_counter = state.metrics.refusals
        try:
            body = await read_body(request, settings.limits.max_upload_bytes)
            return parse_form(body, request.headers.get("content-type"), settings.limits.max_images)
        except ApiError as exc:
            problems_counter.labels(exc.code).inc()
            raise

    async def guarded(work):
        """The work's result; the model queue's overload, the gallery's refusals and every ApiError as JSON."""
        try:
            return await work
        except Overloaded as exc:
            state.metrics.refusals.labels("overloaded").inc()
            raise ApiError(503, "overloaded", f"the server is busy: {exc}", {"Retry-After": "1"}) from None
        except ApiError as exc:
            state.metrics.refusals.labels(exc.code).inc()
            raise
        except MaskfaceError as exc:  # the gallery's: its reason, never the server's file paths
            state.metrics.refusals.labels("gallery").inc()
            raise ApiError(409, "gallery", exc.reason) from None

    async def answer(work) -> JSONResponse:
        return JSONResponse(await guarded(work))

    def images(form: Form, exactly: int | None = None) -> tuple[list, list[str]]:
        count = len(form.files)
        if exactly is not None and count != exactly:
            raise ApiError(422, "wrong_image_count", f"send exactly {exactly} image file(s), not {count}")
        if count == 0:
            raise ApiError(422, "wrong_image_count", "send at least one image file")
        labels = [part.name if [p.name for p in form.files].count(part.name) == 1 else f"{part.name}[{i}]"
                  for i, part in enumerate(form.files)]
        return form.files, labels

    # -- the API -----------------------------------------------------------------------------------------------
    @app.post("/v1/verify", tags=["faces"], openapi_extra=_multipart_body({"a": _FILE, "b": _FILE}, ["a", "b"]))
    async def verify(request: Request, caller: Caller = read, chips: bool = CHIPS) -> JSONResponse:
        """Whether two photos show the same person: score against the threshold of the pair's type, and each
        face's mask status, detector and completion. Send two image files (e.g. fields ``a`` and ``b``)."""
        engine = state.engine_or_503()
        parts, labels = images(await form_of(request), exactly=2)
        return await answer(engine.verify(parts, labels, chips))

    @app.post("/v1/embed", tags=["faces"], openapi_extra=_multipart_body({"image": _FILES}, ["image"]))
    async def embed(request: Request, caller: Caller = read, chips: bool = CHIPS) -> JSONResponse:
        """The embedding of the face in each image (up to the server's images-per-request limit)."""
        engine = state.engine_or_503()
        parts, labels = images(await form_of(request))
        return await answer(engine.embed(parts, labels, chips))

    @app.post("/v1/identify", tags=["gallery"], openapi_extra=_multipart_body({"image": _FILE}, ["image"]))
    async def identify(request: Request, caller: Caller = read, chips: bool = CHIPS,
                       top: int = Query(5, ge=1, le=100, description="Candidates to return, best first."),
                       combine: Combine = Query("best", description="A person's score: their best template's, or "
                                                                    "the mean over their templates.")
                       ) -> JSONResponse:
        """Who is this? The ``top`` enrolled people nearest the face in one image, each with score, the threshold
        of the pair's type and whether it passes; ``unknown`` when nobody does."""
        engine = state.engine_or_503()
        parts, labels = images(await form_of(request), exactly=1)
        return await answer(engine.identify(parts, labels, top, combine, chips))

    @app.post("/v1/enroll", tags=["gallery"], status_code=201,
              openapi_extra=_multipart_body({"person": {"type": "string"}, "image": _FILES}, ["person", "image"]))
    async def enroll(request: Request, caller: Caller = write) -> JSONResponse:
        """Enrol the face of each image as a template of ``person`` (form field). 201 when templates were added,
        200 when every image was enrolled before; images without a usable face are listed in ``skipped``. Only
        templates are stored, never the images."""
        engine = state.engine_or_503()
        form = await form_of(request)
        parts, labels = images(form)
        status, body = await guarded(engine.enroll(form.fields.get("person"), parts, labels))
        await update_gallery_metrics()
        return JSONResponse(body, status_code=status)

    @app.delete("/v1/people/{person}", tags=["gallery"])
    async def remove(person: str, caller: Caller = write) -> JSONResponse:
        """Remove a person and all their templates (404 when there is no such person)."""
        engine = state.engine_or_503()
        result = await answer(engine.remove(person))
        await update_gallery_metrics()
        return result

    @app.get("/v1/people", tags=["gallery"])
    async def people(caller: Caller = read, offset: int = Query(0, ge=0),
                     limit: int = Query(1000, ge=1, le=10_000)) -> JSONResponse:
        """Enrolled people and their template counts, by name (``count``: all of them; a page of ``limit``)."""
        engine = state.engine_or_503()
        return await answer(engine.people(offset, limit))

    # -- operations --------------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict:
        """The process answers (no key needed)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """200 once the model is loaded and warmed up (and the gallery open), else 503 with the reason."""
        if state.engine is None:
            reason = state.failure or "the model is still loading"
            return JSONResponse({"ready": False, "reason": reason}, status_code=503)
        engine = state.engine
        return JSONResponse({"ready": True, "model": engine.model, "metric": engine.metric,
                             "gallery": engine.gallery is not None})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics(caller: Caller = read) -> Response:
        """Prometheus metrics (text format); needs a key with the read scope."""
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    # -- the page ----------------------------------------------------------------------------------------------
    page = resources.files("maskface.apps.service") / "page"

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse((page / "index.html").read_text("utf-8"))

    static_types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

    @app.get("/page/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        suffix = Path(name).suffix
        if name not in ("app.js", "style.css"):
            raise ApiError(404, "not_found", "no such file")
        return Response((page / name).read_bytes(), media_type=static_types[suffix])

    return app
