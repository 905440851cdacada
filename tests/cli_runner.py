"""Run the ``maskface`` command line as a user would, in a fresh process, for the CLI tests."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess:
    """``python -m maskface ARGS``; no run may end in a traceback, whatever its exit status."""
    result = subprocess.run([sys.executable, "-m", "maskface", *args], capture_output=True, text=True)
    assert "Traceback" not in result.stderr + result.stdout
    return result
