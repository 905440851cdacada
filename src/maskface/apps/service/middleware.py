"""Pure ASGI wrappers around every request: the deadline (408 when a request, slow upload included, takes longer
than the limit), security headers, and the request metrics."""

from __future__ import annotations

import asyncio
import time

from maskface.apps.service.metrics import ServiceMetrics
from maskface.apps.service.problems import error_response

#: Headers on every answer: nothing is sniffed, framed or cached, and the page runs only its own script.
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
                                  b"style-src 'self'; frame-ancestors 'none'"),
]
#: request headers a request may carry in all (h11 caps one incomplete read at 16 KiB, not a whole header block)
MAX_HEADER_BYTES = 16 * 1024
#: the OpenAPI page loads its viewer from a CDN, so it gets no CSP of ours
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")


class ServiceMiddleware:
    def __init__(self, app, timeout: float, metrics: ServiceMetrics):
        self.app, self.timeout, self.metrics = app, timeout, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = {"code": 500, "sent": False}
        docs = scope.get("path") in DOCS_PATHS

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS
                            if k not in present and not (docs and k == b"content-security-policy")]
                message = {**message, "headers": headers}
            await send(message)

        size = sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))
        if size > MAX_HEADER_BYTES:
            self.metrics.refusals.labels("headers_too_large").inc()
            response = error_response(431, "headers_too_large", f"the request's headers ({size} bytes) exceed the "
                                                                f"limit of {MAX_HEADER_BYTES} bytes")
            await response(scope, receive, send_with_headers)
            self.metrics.requests.labels("unmatched", "431").inc()
            return
        try:
            async with asyncio.timeout(self.timeout):
                await self.app(scope, receive, send_with_headers)
        except TimeoutError:
            if status["sent"]:
                raise
            self.metrics.refusals.labels("timeout").inc()
            response = error_response(408, "timeout", f"the request took longer than the limit of {self.timeout:g} s")
            await response(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(name, str(status["code"])).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)
