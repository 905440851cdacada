"""API keys, stored hashed: a key is ``mfk_<id>_<secret>`` (a 256-bit random secret); the keys file keeps its id,
name, scopes and the SHA-256 of the whole key, never the key itself. Scopes: ``read`` (verify, embed, identify,
people, metrics) and ``write`` (enrol, delete).

A 256-bit random secret needs no slow password hash: SHA-256 of it cannot be searched. The file is written
atomically under a lock (``keys create`` from two shells never loses one) and the server rereads it when it
changes, so a revoked key stops working within a second, without a restart."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from maskface.errors import MaskfaceError
from maskface.io.files import atomic_write_text

SCOPES = ("read", "write")
PREFIX = "mfk"
#: how often (seconds) a server looks whether the keys file changed
RELOAD_INTERVAL = 1.0


class KeysFileError(MaskfaceError):
    """A keys file that cannot be read or written, or a key operation that cannot be done (unknown key, scope)."""


@dataclass(frozen=True)
class ApiKey:
    """One key as stored: never the secret, only its hash."""

    id: str
    name: str
    scopes: tuple[str, ...]
    sha256: str
    created: float
    #: this key's own rate limit (requests per second; 0: none), None: the server's
    rate: float | None = None

    def public(self) -> dict:
        """What ``keys list`` shows: everything but the hash."""
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes), "created": self.created,
                "rate": self.rate}


def _rate(value: object) -> float | None:
    if value is None:
        return None
    rate = float(value)
    if not rate >= 0:
        raise ValueError(f"rate {value!r}")
    return rate


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(key: str) -> str | None:
    """The id part of a well-formed key, else None."""
    parts = key.split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX and parts[1] and parts[2] else None


class KeysFile:
    """The keys file: create, revoke, list (CLI), and check a presented key against it (server)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------------------------------
    def _read(self) -> dict[str, ApiKey]:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise KeysFileError(self.path, f"cannot read the keys file: {exc.strerror or exc}") from None
        try:
            rows = json.loads(text)["keys"]
            return {row["id"]: ApiKey(row["id"], row["name"], tuple(row["scopes"]), row["sha256"],
                                      float(row["created"]), _rate(row.get("rate"))) for row in rows}
        except (ValueError, KeyError, TypeError) as exc:
            raise KeysFileError(self.path, f"not a maskface keys file ({type(exc).__name__}: {exc})") from None

    def list_keys(self) -> list[ApiKey]:
        return sorted(self._read().values(), key=lambda k: k.created)

    def _fresh(self) -> dict[str, ApiKey]:
        """The keys, reread when the file changed (looked at most once per :data:`RELOAD_INTERVAL`)."""
        now = time.monotonic()
        with self._lock:
            if now - self._checked >= RELOAD_INTERVAL or self._stamp is None:
                self._checked = now
                try:
                    st = self.path.stat()
                    stamp = (st.st_mtime_ns, st.st_ino)
                except FileNotFoundError:
                    stamp = (0, 0)
                if stamp != self._stamp:
                    self._keys, self._stamp = self._read(), stamp
            return self._keys

    def check(self, presented: str) -> ApiKey | None:
        """The stored key that ``presented`` is, or None (unknown, revoked or malformed). Constant-time compare."""
        ident = key_id(presented)
        stored = self._fresh().get(ident) if ident else None
        if stored is None or not hmac.compare_digest(stored.sha256, hash_key(presented)):
            return None
        return stored

    # -- writing ---------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, ApiKey]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            keys = self._read()
            yield keys
            rows = [asdict(k) | {"scopes": list(k.scopes)} for k in sorted(keys.values(), key=lambda k: k.created)]
            atomic_write_text(self.path, json.dumps({"keys": rows}, indent=1) + "\n")
            os.chmod(self.path, 0o600)

    def create(self, name: str, scopes: list[str] | tuple[str, ...], rate: float | None = None
               ) -> tuple[str, ApiKey]:
        """A new key: returns the key (shown once, never stored) and its stored record. ``rate``: its own
        requests per second (0: unlimited), instead of the server's."""
        if rate is not None and not (rate >= 0 and rate < float("inf")):
            raise KeysFileError(self.path, f"a key's rate must be a finite number >= 0, not {rate}")
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise KeysFileError(self.path, f"scopes must be among {', '.join(SCOPES)}, not {unknown or 'none'}")
        if not name or len(name) > 200 or any(not c.isprintable() for c in name):
            raise KeysFileError(self.path, "a key's name must be 1-200 printable characters")
        with self._locked() as keys:
            ident = secrets.token_hex(6)
            while ident in keys:
                ident = secrets.token_hex(6)
            token = f"{PREFIX}_{ident}_{secrets.token_urlsafe(32)}"
            record = ApiKey(ident, name, tuple(s for s in SCOPES if s in scopes), hash_key(token), time.time(), rate)
            keys[ident] = record
        return token, record

    def revoke(self, ident: str) -> ApiKey:
        """Remove a key by its id (or by the whole key); it stops working at once."""
        ident = key_id(ident) or ident
        with self._locked() as keys:
            if ident not in keys:
                raise KeysFileError(self.path, f"no key with id {ident!r} (see: maskface keys list)")
            return keys.pop(ident)
