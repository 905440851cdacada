"""Who may call what: an API key (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``) with the route's scope,
then the key's rate limit. Without ``--insecure-no-auth`` there is no anonymous access at all; with it, every
caller gets every scope and is rate-limited by address."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from maskface.apps.service.keys import SCOPES, KeysFile
from maskface.apps.service.problems import ApiError
from maskface.apps.service.ratelimit import RateLimiter

#: longest Authorization value looked at (a real key is about 60 characters)
MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class Caller:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    rate: float | None = None


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        kind, _, token = header.partition(" ")
        if kind.lower() == "bearer" and token.strip():
            return token.strip()[:MAX_KEY_LENGTH]
        return None
    key = request.headers.get("x-api-key")
    return key.strip()[:MAX_KEY_LENGTH] if key else None


class Authenticator:
    def __init__(self, keys: KeysFile | None, insecure: bool, limiter: RateLimiter):
        if keys is None and not insecure:
            raise ValueError("a keys file is needed unless authentication is switched off")
        self.keys, self.insecure, self.limiter = keys, insecure, limiter

    def identify(self, request: Request) -> Caller:
        if self.insecure:
            host = request.client.host if request.client else "unknown"
            return Caller(f"anonymous@{host}", "anonymous", SCOPES)
        key = presented_key(request)
        challenge = {"WWW-Authenticate": 'Bearer realm="maskface"'}
        if key is None:
            raise ApiError(401, "unauthorized", "an API key is required (Authorization: Bearer KEY or X-API-Key: KEY;"
                                                " create one with: maskface keys create)", challenge)
        stored = self.keys.check(key)
        if stored is None:
            raise ApiError(401, "unauthorized", "unknown or revoked API key", challenge)
        return Caller(stored.id, stored.name, stored.scopes, stored.rate)

    def require(self, request: Request, scope: str) -> Caller:
        """The caller, if its key has ``scope`` and is within its rate; else 401, 403 or 429."""
        caller = self.identify(request)
        if scope not in caller.scopes:
            raise ApiError(403, "forbidden", f"this key lacks the {scope!r} scope (it has: {', '.join(caller.scopes)})")
        wait = self.limiter.take(caller.key_id, caller.rate)
        if wait > 0:
            rate = self.limiter.rate if caller.rate is None else caller.rate
            raise ApiError(429, "rate_limited", f"rate limit of {rate:g} requests/s for this key; retry "
                                                f"in {wait:.2f} s", {"Retry-After": str(max(1, round(wait + 0.5)))})
        request.state.caller = caller
        return caller
