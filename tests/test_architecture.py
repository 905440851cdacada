"""The layers of docs/architecture.md hold: every import runs down them, and the registries are leaves.

The import-linter contract lives in pyproject.toml; these tests run ``lint-imports`` on the package, and once more
on a copy with one back-import added, so a contract that checks nothing would fail here too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
REGISTRIES = ("maskface.models.registry", "maskface.losses.registry")
#: What a leaf may import from maskface: the top-level modules every layer may use.
LEAF_IMPORTS = {"maskface.errors", "maskface.defaults"}


def _package_source() -> Path:
    import maskface

    return Path(maskface.__file__).parent


def lint_imports(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess:
    """Run ``lint-imports`` with the contract of ``cwd/pyproject.toml`` on the maskface found in ``package_parent``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def contract_layers() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return contract["layers"]


def test_imports_run_down_the_layers():
    result = lint_imports(REPO, _package_source().parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(("importer", "imported"), [
    ("face", "maskface.apps.recognizer"),  # the front end reaching for the API above it
    ("io", "maskface.face.pipeline"),      # the lowest layer reaching one up
])
def test_a_back_import_breaks_the_contract(tmp_path, importer, imported):
    copy = tmp_path / "src" / "maskface"
    shutil.copytree(_package_source(), copy, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    (copy / importer / "back_import.py").write_text(f"import {imported}  # noqa: F401\n")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    result = lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"maskface.{importer}.back_import -> {imported}" in result.stdout
    assert "0 kept, 1 broken" in result.stdout


def test_a_new_subpackage_without_a_layer_breaks_the_contract(tmp_path):
    copy = tmp_path / "src" / "maskface"
    shutil.copytree(_package_source(), copy, ignore=shutil.ignore_patterns("__pycache__", "weights"))
    (copy / "gallery").mkdir()
    (copy / "gallery" / "__init__.py").write_text("")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    result = lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "maskface.gallery" in result.stdout


def test_registries_are_leaves():
    graph = grimp.build_graph("maskface", cache_dir=None)
    for registry in REGISTRIES:
        package = registry.rpartition(".")[0]
        registered = {m for m in graph.find_modules_that_directly_import(registry) if m.startswith(package + ".")}
        assert registered, f"no module of {package} registers itself in {registry}"
        imported = {m for m in graph.find_modules_directly_imported_by(registry) if m.startswith("maskface")}
        assert imported <= LEAF_IMPORTS, f"{registry} imports {sorted(imported - LEAF_IMPORTS)}"


def test_the_documented_order_is_the_contracts():
    """docs/architecture.md writes the order as ``io → face → ... → apps``; it must be the contract's, reversed."""
    text = (REPO / "docs" / "architecture.md").read_text()
    chains = re.findall(r"`((?:\w+ → )+\w+)`", text)
    packages = [layer for layer in reversed(contract_layers()) if "|" not in layer]
    assert " → ".join(packages) in chains
