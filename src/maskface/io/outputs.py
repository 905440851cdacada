"""Where batch commands write, decided and checked before any work, so no input and no earlier output is lost.

Targets (:func:`check_targets`): an ``--out`` or ``--errors`` that is an input, lies inside an input folder, names
a device, FIFO or socket, is a folder where a file is wanted or a file where a folder is, or whose folder cannot
be created or written, is refused with an :class:`~maskface.errors.OutputError` before a single image is read.

Names (:func:`plan_outputs`): the output folder mirrors each input folder's tree, and every output keeps its
input's whole file name, extension included, before its own suffix: ``a/x.jpg`` gives ``OUT/a/x.jpg.png`` (and
``OUT/a/x.jpg.occlusion.png``), so ``x.jpg`` and ``x.png``, ``x.jpg`` and ``x.JPEG``, ``x.jpg`` and
``x.occlusion.jpg`` never meet. Files named directly go to ``OUT/NAME...``. Inputs that would still share a name
(the same relative path under two input folders, two files of one name given directly, or names that differ only
in case, which collide on case-insensitive file systems) are told apart in input order: the second becomes
``x.jpg~2.png``, the third ``x.jpg~3.png``. An input whose output name would be longer than the file system
allows, or whose output's place holds a folder, device or FIFO, fails alone, with that reason; an output that
would replace an input stops the run.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from maskface.errors import OutputError
from maskface.io.files import check_replaceable
from maskface.io.input_files import file_kind

#: Longest file name and path when the file system does not say (Linux's NAME_MAX and PATH_MAX).
NAME_MAX, PATH_MAX = 255, 4096


def _real(path: str | os.PathLike) -> Path:
    """Absolute, with every symlink resolved (also for a path that does not exist yet)."""
    return Path(os.path.realpath(path))


def _entry(path: str | os.PathLike) -> Path:
    """The directory entry ``path`` names: its folder resolved, its last component kept (a rename over a symlink
    replaces the link, not its target)."""
    path = Path(os.path.abspath(path))
    return _real(path.parent) / path.name


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _limit(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(_existing_ancestor(path), name)
    except (OSError, ValueError):
        return default


def _refuse(path: str | os.PathLike, option: str, reason: str) -> OutputError:
    return OutputError(path, f"refused as {option}: {reason}")


def _check_creatable(path: Path, option: str) -> None:
    """``path`` does not exist: its nearest existing ancestor must be a folder this process can write in."""
    ancestor = _existing_ancestor(path)
    try:
        mode = ancestor.stat().st_mode
    except OSError as exc:  # a dangling link or a loop on the way
        raise _refuse(path, option, f"{ancestor} cannot be used as a folder: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(mode):
        raise _refuse(path, option, f"a part of the path is not a folder: {ancestor} is {file_kind(mode)}")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise _refuse(path, option, f"permission denied: cannot create files in {ancestor}")
    name_max = _limit(ancestor, "PC_NAME_MAX", NAME_MAX)
    long = next((part for part in path.parts if len(os.fsencode(part)) > name_max), None)
    if long is not None:
        raise _refuse(path, option, f"a name in the path has {len(os.fsencode(long))} bytes; the file system "
                                    f"allows {name_max}")


def _check_target(path: Path, option: str, want_folder: bool) -> None:
    """The target's own kind: an existing folder (for a folder) or regular file (for a file), writable, or a
    path whose folder can be created."""
    if str(path) == "":
        raise _refuse("''", option, "an empty string is not a path")
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG):  # a loop, a lost permission
            raise _refuse(path, option, exc.strerror or str(exc)) from None
        if os.path.lexists(path):
            raise _refuse(path, option, f"a dangling symlink (to {os.readlink(path)})") from None
        _check_creatable(path, option)
        return
    if want_folder:
        if not stat.S_ISDIR(mode):
            raise _refuse(path, option, f"it is {file_kind(mode)}, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise _refuse(path, option, "permission denied: cannot write in this folder")
        return
    if stat.S_ISDIR(mode):
        raise _refuse(path, option, "it is a directory; give a file name")
    if not stat.S_ISREG(mode):
        raise _refuse(path, option, f"it is {file_kind(mode)}, not a regular file; maskface writes only regular "
                                    "files")
    if not os.access(_real(path).parent, os.W_OK | os.X_OK):
        raise _refuse(path, option, "permission denied: cannot replace files in its folder")


def _check_apart_from_inputs(path: Path, option: str, inputs: Sequence[str | os.PathLike]) -> None:
    """``path`` must not be an input, nor lie inside an input folder."""
    target = {_entry(path), _real(path)}
    for item in inputs:
        if target & {_entry(item), _real(item)}:
            raise _refuse(path, option, f"it is the input {os.fspath(item)}")
    for item in inputs:
        real = _real(item)
        if os.path.isdir(real) and any(real in t.parents for t in target):
            raise _refuse(path, option, f"it lies inside the input folder {os.fspath(item)}")


def check_targets(inputs: Sequence[str | os.PathLike], *, folder: str | os.PathLike | None = None,
                  file: str | os.PathLike | None = None, errors: str | os.PathLike | None = None,
                  folder_option: str = "--out", file_option: str = "--out") -> None:
    """Refuse, before any work, an output ``folder`` (a tree of outputs), output ``file`` or ``errors`` report
    that cannot be written or would overwrite an input (:class:`~maskface.errors.OutputError`)."""
    targets = [(folder, folder_option, True), (file, file_option, False), (errors, "--errors", False)]
    for path, option, want_folder in targets:
        if path is None:
            continue
        path = Path(path)
        _check_target(path, option, want_folder)
        _check_apart_from_inputs(path, option, inputs)
    if errors is not None:
        for other, option in ((folder, folder_option), (file, file_option)):
            if other is not None and _entry(errors) == _entry(other):
                raise _refuse(errors, "--errors", f"it is also {option}")


@dataclass
class OutputPlan:
    """Each input's output base (an output is ``base`` + its suffix), and the inputs refused a name."""

    items: list[tuple[Path, Path]] = field(default_factory=list)  # (input path, output base)
    refused: list[tuple[Path, str]] = field(default_factory=list)  # (input path, reason)


def plan_outputs(found: Iterable[tuple[Path, Path]], out_dir: str | os.PathLike, suffixes: Sequence[str], *,
                 errors: str | os.PathLike | None = None) -> OutputPlan:
    """Name the outputs of ``found`` (``(path, relative path)`` pairs, as :func:`~maskface.io.images.
    iter_image_files` gives them) by the rule in this module's docstring.

    Raises :class:`~maskface.errors.OutputError` when an output would replace an input or the ``errors`` report.
    """
    found = list(found)
    out_dir = Path(out_dir)
    name_max = _limit(out_dir, "PC_NAME_MAX", NAME_MAX)
    path_max = _limit(out_dir, "PC_PATH_MAX", PATH_MAX)
    inputs = {entry: path for path, _ in found for entry in (_entry(path), _real(path))}
    reserved = {_entry(errors): "the --errors report"} if errors is not None else {}
    folders: dict[Path, Path] = {}  # output folder -> its real path (cached: one realpath per folder)
    taken: set[str] = set()
    plan = OutputPlan()
    for path, relative in found:
        base = out_dir / relative
        for number in range(1, len(found) + 2):
            candidate = base if number == 1 else base.with_name(f"{base.name}~{number}")
            names = [candidate.with_name(candidate.name + suffix) for suffix in suffixes]
            if not any(str(name).casefold() in taken for name in names):
                break
        too_long = next((n for n in names if len(os.fsencode(n.name)) > name_max), None)
        if too_long is not None:
            plan.refused.append((path, f"output name too long: {len(os.fsencode(too_long.name))} bytes with its "
                                       f"suffix; the file system allows {name_max}"))
            continue
        if len(os.fsencode(os.path.abspath(names[0]))) >= path_max:
            plan.refused.append((path, f"output path too long: the file system allows {path_max} bytes"))
            continue
        try:
            for name in names:  # a folder, device or FIFO where an output goes: refused, never replaced
                check_replaceable(name)
        except OutputError as exc:
            plan.refused.append((path, f"output {exc.path}: {exc.reason}"))
            continue
        for name in names:
            parent = folders.setdefault(name.parent, _real(name.parent))
            if (parent / name.name) in inputs:
                raise _refuse(out_dir, "--out", f"the output {name} would replace the input "
                                                f"{os.fspath(inputs[parent / name.name])}")
            if (parent / name.name) in reserved:
                raise _refuse(out_dir, "--out", f"the output {name} would replace {reserved[parent / name.name]}")
            taken.add(str(name).casefold())
        plan.items.append((path, candidate))
    return plan
