"""Running the app under uvicorn: one process, or several (``--workers``), each loading the model and holding
its own batching queue and rate limits. Connection limits that no route sees are set here: an incomplete header
block may grow to 16 KiB (h11 answers 400 beyond; the app answers 431 to a complete one above 16 KiB), idle
connections close after 5 s, and the ``Server`` header is off."""

from __future__ import annotations

import ctypes
import logging
import os
import sys

from maskface.apps.service.settings import ServiceSettings

#: how several worker processes get the settings (uvicorn starts them from an import string)
SETTINGS_ENV = "MASKFACE_SERVICE_SETTINGS"
MAX_HEADER_BYTES = 16 * 1024

log = logging.getLogger("maskface.service")

INSECURE_BANNER = """
************************************************************************************************
*  WARNING: --insecure-no-auth: ANYONE who can reach {where} may verify, identify,
*  ENROL AND DELETE PEOPLE without a key. Use it only on a machine nobody else can reach.
************************************************************************************************
"""


def release_freed_memory() -> bool:
    """Make glibc hand large freed blocks back to the system (``mallopt``), before the model loads. By default it
    keeps them for reuse per size, and every new batch size the model meets leaves some behind: measured, every
    batch size from 1 to 20 once took the process from 338 to 629 MB, and to 386 MB with these settings (blocks of
    1 MiB and more, a chip's activations, are mapped and unmapped; at most 2 arenas; 64 KiB gave 381 MB). False
    where there is no glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    return all(libc.mallopt(option, value) == 1 for option, value in
               ((m_mmap_threshold, 2**20), (m_trim_threshold, 2**20), (m_arena_max, 2)))


def app_from_environment():
    """The app factory of each worker process (``--workers`` > 1)."""
    from maskface.apps.service.app import create_app

    release_freed_memory()
    return create_app(ServiceSettings.from_json(os.environ[SETTINGS_ENV]))


def warn_insecure(host: str, port: int) -> None:
    banner = INSECURE_BANNER.format(where=f"http://{host}:{port}")
    print(banner, file=sys.stderr, flush=True)
    log.warning("authentication is OFF (--insecure-no-auth): every caller may read, enrol and delete")


def serve(settings: ServiceSettings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          log_level: str = "info") -> None:
    import uvicorn

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format="%(levelname)s: %(message)s")
    release_freed_memory()
    if settings.insecure_no_auth:
        warn_insecure(host, port)
    common = {"host": host, "port": port, "log_level": log_level, "server_header": False,
              "h11_max_incomplete_event_size": MAX_HEADER_BYTES, "timeout_keep_alive": 5,
              "timeout_graceful_shutdown": 10}
    if workers > 1:
        os.environ[SETTINGS_ENV] = settings.to_json()
        uvicorn.run("maskface.apps.service.server:app_from_environment", factory=True, workers=workers, **common)
    else:
        from maskface.apps.service.app import create_app

        uvicorn.run(create_app(settings), **common)
