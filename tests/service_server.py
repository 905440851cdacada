"""Start the real ``maskface serve`` on loopback in a subprocess, for the service tests, the page test and the load
benchmark: a free port, its own keys file, its own empty TMPDIR (to prove no upload reaches the disk), the log in
a file, and readiness awaited on ``/readyz``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

#: the limits the tests run the server with: small, so each is quick to reach; the model is the mask-aware
#: maskface_v1, so answers also carry which faces the model completed
SERVICE_ARGS = ["--model", "maskface_v1", "--max-upload-mb", "2", "--max-megapixels", "4", "--max-images", "4",
                "--timeout", "6", "--rate", "20", "--burst", "40"]
#: name -> (scopes, the key's own rate or None)
SERVICE_KEYS = {"reader": (["read"], None), "writer": (["write"], None), "admin": (["read", "write"], None),
                "corpus": (["read", "write"], 0.0), "slow": (["read"], 1.0), "batch": (["read"], 0.0),
                "revoked": (["read"], None), "page": (["read"], 0.0)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    port: int
    process: subprocess.Popen
    log: Path
    tmpdir: Path
    keys: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def log_text(self) -> str:
        return self.log.read_text("utf-8", "replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_server(root: Path, args: list[str], keys: dict[str, tuple[list[str], float | None]] | None = None,
                 wait_ready: float = 240.0, env: dict[str, str] | None = None, gallery: str | None = None) -> Server:
    """``maskface serve ARGS --port P --keys ROOT/keys.json [--gallery GALLERY]`` with the keys named in ``keys``
    (name -> (scopes, own rate)) created first; returns once ``/readyz`` says ready (``wait_ready=0``: once it
    listens)."""
    from maskface.apps.service.keys import KeysFile

    root.mkdir(parents=True, exist_ok=True)
    keys_path = root / "keys.json"
    store = KeysFile(keys_path)
    tokens = {name: store.create(name, scopes, rate)[0] for name, (scopes, rate) in (keys or {}).items()}
    tmpdir = root / "tmp"
    tmpdir.mkdir(exist_ok=True)
    port = free_port()
    log = root / "server.log"
    import maskface

    # the server runs the very code the tests import (a relative PYTHONPATH would not survive its own cwd)
    source = str(Path(maskface.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p)
    environment = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": path, **(env or {})}
    command = [sys.executable, "-m", "maskface", "serve", "--port", str(port), "--keys", str(keys_path), *args]
    if gallery is not None:
        command += ["--gallery", gallery]
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=environment, cwd=root)
    server = Server(f"http://127.0.0.1:{port}", port, process, log, tmpdir, keys_path, tokens)
    deadline = time.monotonic() + max(wait_ready, 60.0)
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"maskface serve exited with {process.returncode}:\n{server.log_text()[-3000:]}")
        try:
            answer = httpx.get(f"{server.url}/readyz" if wait_ready else f"{server.url}/healthz", timeout=2)
            if answer.status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"maskface serve not ready after {wait_ready} s:\n{server.log_text()[-3000:]}")
