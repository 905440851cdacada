"""The command line's contract: every command keeps its options (names, defaults, choices), its ``--help`` lists
them, and each kind of error ends in its exit status (2: usage, models, data; 3: an input could not be used).

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
