"""The command line's contract: every command keeps its options (names, defaults, types, choices), its ``--help``
lists them, and each kind of error ends in its exit status (2: usage, models, data; 3: an input could not be used).

``tests/cli_options.json`` is the snapshot of every command's parameters. Rewrite it only when an option is meant
to change (and say so in the README): ``python tests/test_cli_contract.py`` (it writes the file).
"""

from __future__ import annotations

import json
import re
from enum import Enum
from pathlib import Path
from typing import get_args

import pytest
import typer
from typer.testing import CliRunner

from maskface.apps.cli import app

SNAPSHOT = Path(__file__).with_name("cli_options.json")


def _plain(value):
    """A parameter's default as JSON: enums by value, paths as text."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _type_name(annotation) -> str:
    """``int``, ``Path``, ``list[str]``, ``choice`` (an enum) ...: the type a parameter parses to."""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "choice"
    if isinstance(annotation, type):
        return annotation.__name__
    return f"list[{_type_name(get_args(annotation)[0])}]"


def _choices(annotation) -> list[str] | None:
    for kind in (annotation, *get_args(annotation)):
        if isinstance(kind, type) and issubclass(kind, Enum):
            return [member.value for member in kind]
    return None


def _describe(parameter) -> dict:
    annotation = parameter.type_descriptor.annotation
    return {"decls": [*parameter.opts, *parameter.secondary_opts], "default": _plain(parameter.default),
            "required": parameter.required, "multiple": parameter.multiple, "type": _type_name(annotation),
            "choices": _choices(annotation)}


def command_parameters(group=None, path: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """``"eval lfw" -> [{"decls", "default", "required", "multiple", "type", "choices"}, ...]`` for every command."""
    group = group or typer.main.get_command(app)
    commands: dict[str, list[dict]] = {}
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            commands.update(command_parameters(command, (*path, name)))
            continue
        commands[" ".join((*path, name))] = [_describe(p) for p in sorted(command.params, key=lambda p: p.opts[0])]
    return commands


def test_every_command_keeps_its_options():
    expected = json.loads(SNAPSHOT.read_text())
    actual = command_parameters()
    assert sorted(actual) == sorted(expected)
    for command, parameters in expected.items():
        assert actual[command] == parameters, command


@pytest.mark.parametrize("command", sorted(json.loads(SNAPSHOT.read_text())))
def test_help_lists_every_option(command):
    result = CliRunner().invoke(app, [*command.split(), "--help"], terminal_width=400, env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for parameter in json.loads(SNAPSHOT.read_text())[command]:
        for decl in parameter["decls"]:  # "--mask-robust", "-m", or an argument's name
            assert re.search(rf"(?<![\w-]){re.escape(decl)}(?![\w-])", result.output), (command, decl)


if __name__ == "__main__":
    lines = [f'{json.dumps(name)}: [\n' + ",\n".join(f"  {json.dumps(p)}" for p in parameters) + "\n]"
             for name, parameters in command_parameters().items()]
    SNAPSHOT.write_text("{\n" + ",\n".join(lines) + "\n}\n")  # one line per parameter


def test_face_option_defaults_are_face_configs():
    from dataclasses import fields

    from maskface.apps.cli.options import FACE_OPTIONS
    from maskface.face.pipeline import FaceConfig

    defaults = {f.name: f.default for f in fields(FaceConfig)}
    assert {name: _plain(default) for name, (_, default) in FACE_OPTIONS.items()} == {
        name: defaults[name] for name in FACE_OPTIONS}


def test_exit_code_table():
    from maskface.apps.cli.errors import exit_code
    from maskface.errors import DatasetError, ImageError, MaskfaceError, ModelFileError, NoFaceError

    assert [exit_code(e("x", "y")) for e in (ImageError, NoFaceError, ModelFileError, DatasetError, MaskfaceError)] \
        == [3, 3, 2, 2, 2]
    assert exit_code(ValueError("x")) == exit_code(KeyError("x")) == 2
    assert exit_code(RuntimeError("a bug")) is None and exit_code(TypeError("a bug")) is None  # keep the traceback


@pytest.fixture(scope="module")
def photos(lfw_root, tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    Image.new("RGB", (80, 80)).save(folder / "black.png")
    return {"face": lfw_root / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", "black": folder / "black.png",
            "missing": folder / "nobody.jpg", "folder": folder}


# error class -> (a command that meets it, its exit status, what its one line says)
ERROR_CASES = {
    "ImageError": (lambda p: ["verify", str(p["face"]), str(p["missing"]), "-m", "dlib_resnet_v1"], 3,
                   "nobody.jpg: file not found"),
    "NoFaceError": (lambda p: ["verify", str(p["face"]), str(p["black"]), "-m", "dlib_resnet_v1"], 3,
                    "black.png: no face found"),
    "ModelFileError": (lambda p: ["verify", str(p["face"]), str(p["face"]), "-m", str(p["folder"] / "x.onnx")], 2,
                       "x.onnx: file not found"),
    "DatasetError": (lambda p: ["eval", "lfw", "--out", str(p["folder"] / "run"), "--data", str(p["folder"])], 2,
                     "LFW is not at"),
    "ValueError": (lambda p: ["eval", "crossfit", "--out", str(p["folder"] / "run"), "--half", "maskface_v1"], 2,
                   "--half 'maskface_v1': expected MODEL@FOLDS"),
    "KeyError": (lambda p: ["deocclude", str(p["face"]), "--out", str(p["folder"] / "d"), "-m", "nope"], 2,
                 "error: unknown model 'nope'; available: "),
}


@pytest.mark.parametrize("error", sorted(ERROR_CASES))
def test_each_error_ends_in_its_exit_status_and_one_line(error, photos, monkeypatch):
    """Through the real commands; the mapping is watched to check which error class it met."""
    from maskface.apps.cli import errors

    met, fail = [], errors.fail
    monkeypatch.setattr(errors, "fail", lambda exc, code: met.append(type(exc).__name__) or fail(exc, code))
    args, status, says = ERROR_CASES[error]
    result = CliRunner().invoke(app, args(photos), terminal_width=400)
    assert met == [error]
    assert result.exit_code == status, result.output
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and says in line, line
    assert result.stdout == "" and "Traceback" not in result.output
