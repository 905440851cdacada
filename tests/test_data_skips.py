"""A test skipped for missing data fails the run where ``../shared/data`` exists (CI), and only skips elsewhere.

Each case runs pytest on a throwaway checkout holding this suite's conftest.py and one test that needs LFW.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

NEEDS_LFW = "def test_needs_lfw(lfw_root):\n    assert lfw_root.is_dir()\n"


def run_suite(root: Path) -> subprocess.CompletedProcess:
    tests = root / "checkout" / "tests"
    tests.mkdir(parents=True)
    shutil.copy(Path(__file__).with_name("conftest.py"), tests / "conftest.py")
    (tests / "test_needs_lfw.py").write_text(NEEDS_LFW)
    env = {k: v for k, v in os.environ.items() if k != "MASKFACE_DATA"}  # data from ../shared/data, as in CI
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tests)], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)


def test_without_shared_data_a_data_test_skips(tmp_path):
    result = run_suite(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout and "real data not found" in result.stdout


@pytest.mark.parametrize("present", [(), ("att_faces",)])
def test_with_shared_data_a_data_skip_fails_the_run(tmp_path, present):
    """../shared/data exists but holds no lfw/ (empty, or other data sets only): the LFW test must not pass."""
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    for name in present:
        (shared / name).mkdir()
    result = run_suite(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "skipped" not in result.stdout.splitlines()[-1]
    assert f"skipped for missing data although {shared} exists: Skipped: real data not found at {shared / 'lfw'}" \
        in result.stdout
