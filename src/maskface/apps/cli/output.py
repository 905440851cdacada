"""Where the command line prints: results on stdout as plain text, one-line errors and notes on stderr."""

from __future__ import annotations

from rich.console import Console

out = Console(soft_wrap=True, markup=False, highlight=False)
err = Console(stderr=True, soft_wrap=True)
