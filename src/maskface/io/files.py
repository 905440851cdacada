"""Atomic file writes: a reader never sees a half-written file, and a crash never destroys the previous one."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from maskface.errors import OutputError
from maskface.io.input_files import file_kind

#: The shortest budget for a temporary name (in bytes): short real names still get a recognisable temp name.
_TEMP_NAME_FLOOR = 40
#: What ``mkstemp`` adds around the prefix: the leading dot, a dot, 8 random characters and ``.tmp``.
_TEMP_NAME_EXTRA = len(".") + len(".") + 8 + len(".tmp")


def _default_mode() -> int:
    """The permissions a plain ``open(path, "w")`` would give (temp files are created private, 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temp_prefix(name: str) -> str:
    """The start of a temporary file name for ``name``: ``.`` and as much of ``name`` as keeps the whole temporary
    name (``.PREFIX.XXXXXXXX.tmp``) no longer than ``name`` itself (at least 40 bytes), so a name that fits the
    file system always has a temporary name that fits too."""
    budget = max(len(os.fsencode(name)), _TEMP_NAME_FLOOR) - _TEMP_NAME_EXTRA
    while len(os.fsencode(name)) > budget:
        name = name[:-1]
    return f".{name}."


def check_replaceable(path: Path) -> None:
    """Raise :class:`OutputError` unless ``path`` is absent, a regular file or a symlink: a rename would replace
    a device or FIFO node with a regular file (run as root, ``/dev/null`` would become one)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(path, f"cannot write: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise OutputError(path, "is a directory, not a file")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise OutputError(path, f"is {file_kind(mode)}, not a regular file; maskface writes only regular files")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, then rename it over ``path``."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    atomic_save(path, write)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save(path: str | Path, save: Callable[[str], None]) -> None:
    """Atomic write for libraries that only save to a path (dlib's ``.save``): ``save`` writes a temp file beside
    ``path``, which then replaces it. A device, FIFO or folder at ``path`` is refused, never replaced."""
    path = Path(path)
    check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp")
    os.close(fd)
    try:
        save(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
