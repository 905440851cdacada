"""``maskface serve``: verification, embedding, identification and enrolment over HTTP, safe to expose.

One module per job: :mod:`.settings` (limits and options), :mod:`.keys` (hashed API keys and their scopes),
:mod:`.ratelimit` (per-key token buckets), :mod:`.uploads` (bounded, in-memory multipart parsing),
:mod:`.problems` (every refusal as a JSON error), :mod:`.batcher` (micro-batching of model inference),
:mod:`.engine` (images -> faces -> embeddings -> answers), :mod:`.metrics` (Prometheus), :mod:`.app` (the routes),
:mod:`.server` (uvicorn), and ``page/`` (the web page at ``/``, plain HTML and JavaScript).
"""

from __future__ import annotations

from maskface.apps.service.settings import Limits, ServiceSettings

__all__ = ["Limits", "ServiceSettings"]
