"""A per-user cache for converted weights (never inside the project): ``$MASKFACE_CACHE`` or the XDG cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("MASKFACE_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "maskface"
