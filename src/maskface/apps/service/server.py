"""Running the app under uvicorn: one process, or several (``--workers``), each loading the model and holding
its own batching queue and rate limits. Connection limits that no route sees are set here: an incomplete header
block may grow to 16 KiB (h11 answers 400 beyond; the app answers 431 to a complete one above 16 KiB), idle
connections close after 5 s, and the ``Server`` header is off."""

from __future__ import annotations

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


def app_from_environment():
    """The app factory of each worker process (``--workers`` > 1)."""
    from maskface.apps.service.app import create_app

    return create_app(ServiceSettings.from_json(os.environ[SETTINGS_ENV]))


def warn_insecure(host: str, port: int) -> None:
    banner = INSECURE_BANNER.format(where=f"http://{host}:{port}")
    print(banner, file=sys.stderr, flush=True)
    log.warning("authentication is OFF (--insecure-no-auth): every caller may read, enrol and delete")


def serve(settings: ServiceSettings, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          log_level: str = "info") -> None:
    import uvicorn

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO), format="%(levelname)s: %(message)s")
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
