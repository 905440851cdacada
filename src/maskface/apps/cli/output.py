"""Where the command line prints: results on stdout as plain text, one-line errors and notes on stderr. Text that
holds names a user chose (paths, model specs) goes through :func:`shown`, so a control character in a name cannot
break a line or drive the terminal."""

from __future__ import annotations

import os

from rich.console import Console

from maskface.errors import safe_display

out = Console(soft_wrap=True, markup=False, highlight=False)
err = Console(stderr=True, soft_wrap=True)


def shown(text: str | os.PathLike) -> str:
    """``text`` with control characters, bidirectional marks and undecodable bytes escaped in each of its lines
    (:func:`~maskface.errors.safe_display`); its own line breaks are kept (tables)."""
    return "\n".join(safe_display(line) for line in os.fsdecode(text).split("\n"))
