"""Open an input file (an image, a model) only when it is safe to read: a regular file no larger than a cap.

A FIFO would block a reader forever, ``/dev/zero`` or a sparse 8 GiB file would fill memory, and a directory,
socket, symlink loop or dangling link deserves its own reason rather than "file not found". The file is checked
with ``stat`` before it is opened, opened without blocking, and checked again on the open descriptor, so a file
swapped between the two checks is caught too.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

from maskface.errors import ImageError, MaskfaceError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """What a ``st_mode`` describes, in words: "a regular file", "a FIFO (named pipe)", ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def format_bytes(size: int) -> str:
    """A byte count for messages: ``256 MiB``, ``8.0 GiB``, ``612 bytes``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size // scale} {unit}" if size % scale == 0 else f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _link_note(path: Path) -> str:
    """`` (a symlink to TARGET)`` when ``path`` itself is a link, so a reason about the target reads true."""
    try:
        return f" (a symlink to {os.readlink(path)})" if path.is_symlink() else ""
    except OSError:
        return ""


def _stat_failure(path: Path, exc: OSError, error: type[MaskfaceError]) -> MaskfaceError:
    if exc.errno == errno.ELOOP:
        return error(path, "symlink loop: too many levels of symbolic links")
    if exc.errno == errno.ENOENT:
        try:
            if path.is_symlink():
                return error(path, f"dangling symlink: its target {os.readlink(path)} does not exist")
        except OSError:
            pass
        return error(path, "file not found")
    reasons = {errno.ENOTDIR: "a part of the path is not a folder", errno.EACCES: "permission denied",
               errno.EPERM: "permission denied", errno.ENAMETOOLONG: "file name too long"}
    return error(path, reasons.get(exc.errno, f"cannot read: {exc.strerror or exc}"))


def check_regular_file(path: Path, status: os.stat_result, max_bytes: int,
                       error: type[MaskfaceError] = ImageError) -> None:
    """Raise ``error`` unless ``status`` (of ``path``) is a non-empty regular file of at most ``max_bytes``."""
    if stat.S_ISDIR(status.st_mode):
        raise error(path, f"is a directory{_link_note(path)}, not a file")
    if not stat.S_ISREG(status.st_mode):
        raise error(path, f"is {file_kind(status.st_mode)}{_link_note(path)}, not a regular file")
    if status.st_size == 0:
        raise error(path, "empty file")
    if status.st_size > max_bytes:
        raise error(path, f"file too large: {format_bytes(status.st_size)} exceeds the limit of "
                          f"{format_bytes(max_bytes)}")


def _as_path(path: str | os.PathLike, error: type[MaskfaceError]) -> Path:
    if isinstance(path, str) and not path:
        raise error("''", "an empty string is not a path")
    return Path(path)


def check_input_file(path: str | os.PathLike, max_bytes: int, error: type[MaskfaceError] = ImageError) -> Path:
    """``path`` if it is a regular file (links followed) of at most ``max_bytes``, else ``error`` with the reason.
    For readers that take a path (model files); :func:`open_input_file` also guards the open itself."""
    path = _as_path(path, error)
    try:
        check_regular_file(path, path.stat(), max_bytes, error)
    except OSError as exc:
        raise _stat_failure(path, exc, error) from None
    return path


def open_input_file(path: str | os.PathLike, max_bytes: int, error: type[MaskfaceError] = ImageError) -> BinaryIO:
    """Open ``path`` for reading if it is a regular file of at most ``max_bytes``; else ``error``.

    Never blocks (FIFOs and devices are refused before they are read) and never follows a loop."""
    path = check_input_file(path, max_bytes, error)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise _stat_failure(path, exc, error) from None
    try:
        check_regular_file(path, os.fstat(fd), max_bytes, error)  # the same file, or one swapped in meanwhile
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def is_regular_file(path: Path) -> bool:
    """Whether ``path`` (links followed) is a regular file; False for anything that cannot be stat'ed."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (OSError, ValueError):
        return False
