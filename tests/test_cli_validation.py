"""Every option value the command line cannot use ends in exit status 2 and one ``error:`` line naming it, before
any work; outputs that would overwrite an input or a device are refused the same way; names are shown escaped."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from maskface.apps.cli import app


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(folder / "x.png")
    return folder / "x.png"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), terminal_width=400)


def assert_usage_error(result, *says: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line, line
    assert "Traceback" not in result.output and result.stdout == ""
    for words in says:
        assert words in line, line
    return line


# command -> arguments -> words the one line must hold. Each value is one that used to give a traceback, fail every
# image one by one with status 3, print invalid JSON (NaN) or be accepted silently (issue 25).
INVALID = [
    (["embed", "{x}", "--out", "{tmp}/e.npz", "--batch-size", "0"], ["--batch-size", "1"]),
    (["embed", "{x}", "--out", "{tmp}/e.npz", "--device", "bogus"], ["--device", "unknown device 'bogus'"]),
    (["embed", "{x}", "--out", "{tmp}/e.npz", "--device", "cuda:99"], ["--device", "cuda:99"]),
    (["align", "{x}", "--out", "{tmp}/a", "--size", "0"], ["--size", "32"]),
    (["align", "{x}", "--out", "{tmp}/a", "--size", "-5"], ["--size", "32"]),
    (["align", "{x}", "--out", "{tmp}/a", "--size", "100000"], ["--size", "1024"]),
    (["align", "{x}", "--out", "{tmp}/a", "--size", "abc"], ["--size", "integer"]),
    (["align", "{x}", "--out", "{tmp}/a", "--padding", "-1"], ["--padding", "0"]),
    (["align", "{x}", "--out", "{tmp}/a", "--padding", "nan"], ["--padding"]),
    (["align", "{x}", "--out", "{tmp}/a", "--padding", "inf"], ["--padding"]),
    (["align", "{x}", "--out", "{tmp}/a", "--upsample", "-1"], ["--upsample", "0"]),
    (["align", "{x}", "--out", "{tmp}/a", "--upsample", "3"], ["--upsample", "2"]),
    (["align", "{x}", "--out", "{tmp}/a", "--landmarks", "7"], ["--landmarks", "68 or 5"]),
    (["align", "{x}", "--out", "{tmp}/a", "--workers", "-1"], ["--workers", "0"]),
    (["verify", "{x}", "{x}", "--threshold", "nan"], ["--threshold", "not a finite number"]),
    (["verify", "{x}", "{x}", "--threshold", "-inf"], ["--threshold", "not a finite number"]),
    (["mask", "{x}", "--out", "{tmp}/m", "--seed", "-1"], ["--seed", "0"]),
    (["deocclude", "{x}", "--out", "{tmp}/d", "--device", "bogus"], ["--device"]),
    (["demo", "--pairs", "0"], ["--pairs", "1"]),
    (["eval", "deocclusion", "--limit", "0"], ["--limit", "1"]),
    (["eval", "frontend", "--out", "{tmp}/f.json", "--max-images", "-3"], ["--max-images", "1"]),
    (["eval", "lfw", "--out", "{tmp}/r", "--seed", "-2"], ["--seed", "0"]),
    (["eval", "lfw", "--out", "{tmp}/r", "--folds", "0-3"], ["folds '0-3'", "1 to 10"]),
    (["eval", "lfw", "--out", "{tmp}/r", "--folds", "5-3"], ["folds '5-3'"]),
    (["train", "frontend", "--out", "{tmp}/t", "--max-images", "0"], ["--max-images", "1"]),
    (["export", "onnx", "--out", "{tmp}/m.onnx", "--opset", "3"], ["--opset", "7"]),
    (["align", "", "--out", "{tmp}/a"], ["an empty string"]),
    (["align", "{x}", "--out", ""], ["--out: an empty string"]),
    (["align", "{x}", "--out="], ["--out: an empty string"]),
    (["embed", "{x}", "--out", "{tmp}/e.npz", "--errors", ""], ["--errors: an empty string"]),
    (["verify", "{x}", ""], ["an empty string"]),
]


@pytest.mark.parametrize("args, says", INVALID, ids=[" ".join(a[:1] + a[3:]) for a, _ in INVALID])
def test_each_invalid_value_is_a_usage_error_in_one_line(args, says, photo, tmp_path):
    result = invoke(*[a.format(x=photo, tmp=tmp_path) for a in args])
    assert_usage_error(result, *says)
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_is_refused_where_there_is_none(photo, tmp_path):
    assert_usage_error(invoke("embed", str(photo), "--out", str(tmp_path / "e.npz"), "--device", "cuda"),
                       "CUDA is not available")


def test_valid_edges_of_each_range_are_accepted(photo, tmp_path):
    """The limits themselves are usable values: the same command with them gets past parsing (status 3: the
    grey square holds no face)."""
    result = invoke("align", str(photo), "--out", str(tmp_path / "a"), "--size", "32", "--padding", "0",
                    "--upsample", "0", "--workers", "1")
    assert result.exit_code == 3, result.output
    assert "aligned 0 of 1 images; 1 failed" in result.stdout


def test_an_output_equal_to_or_inside_an_input_is_refused(photo, tmp_path):
    folder = photo.parent
    before = sorted(p.name for p in folder.iterdir())
    assert_usage_error(invoke("align", str(folder), "--out", str(folder)), "refused as --out: it is the input")
    assert_usage_error(invoke("mask", str(folder), "--out", str(folder / "masked")), "lies inside the input folder")
    assert_usage_error(invoke("embed", str(folder), "--out", str(photo)), "--out: it lies inside the input folder")
    assert_usage_error(invoke("embed", str(photo), "--out", str(photo)), "refused as --out: it is the input")
    assert_usage_error(invoke("embed", str(photo), "--out", str(tmp_path / "e.npz"), "--errors", str(photo)),
                       "refused as --errors: it is the input")
    assert_usage_error(invoke("chips", str(folder), "--out", str(folder)), "refused as --out: it is the input")
    assert sorted(p.name for p in folder.iterdir()) == before and not any(tmp_path.iterdir())


def test_device_targets_are_refused_and_stay_devices(photo, tmp_path):
    for args in (["embed", str(photo), "--out", "/dev/null"], ["align", str(photo), "--out", "/dev/null"],
                 ["mask", str(photo), "--out", str(tmp_path / "m"), "--errors", "/dev/full"],
                 ["deocclude", str(photo), "--out", "/dev/full"]):
        assert_usage_error(invoke(*args), "character device")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_targets_of_the_wrong_kind_are_refused_before_any_work(photo, tmp_path):
    (tmp_path / "folder.npz").mkdir()
    (tmp_path / "file").write_text("keep")
    assert_usage_error(invoke("embed", str(photo), "--out", str(tmp_path / "folder.npz")), "it is a directory")
    assert_usage_error(invoke("align", str(photo), "--out", str(tmp_path / "file")), "not a folder")
    assert_usage_error(invoke("align", str(photo), "--out", str(tmp_path / "file" / "chips")),
                       "a part of the path is not a folder")
    assert_usage_error(invoke("align", str(photo), "--out", str(tmp_path / "a"), "--errors", str(tmp_path)),
                       "--errors: it is a directory")
    assert (tmp_path / "file").read_text() == "keep" and not (tmp_path / "a").exists()


def test_control_characters_in_names_are_shown_escaped(photo, tmp_path):
    hostile = tmp_path / "red\x1b[31m\nname"
    hostile.write_text("a file")
    line = assert_usage_error(invoke("align", str(photo), "--out", str(hostile / "chips")), "not a folder")
    assert "\x1b" not in line and "red\\x1b[31m\\nname" in line


def test_collisions_are_made_unique_through_the_command(lfw_root, tmp_path):
    """Two folders with the same relative paths and same-stem files of three kinds: one chip each, none lost."""
    faces = sorted(lfw_root.glob("A*/*_0001.jpg"))[:4]
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        shutil.copy(faces[0], tmp_path / folder / "x.jpg")
    shutil.copy(faces[1], tmp_path / "one" / "y.jpg")
    Image.open(faces[2]).save(tmp_path / "one" / "y.png")
    shutil.copy(faces[3], tmp_path / "one" / "y.JPEG")
    out = tmp_path / "chips"
    result = subprocess.run([sys.executable, "-m", "maskface", "align", str(tmp_path / "one"), str(tmp_path / "two"),
                             "--out", str(out), "--workers", "1"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "aligned 5 of 5 images" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == ["x.jpg.png", "x.jpg~2.png", "y.JPEG.png", "y.jpg.png",
                                                     "y.png.png"]
    chips = {p.name: np.asarray(Image.open(p)) for p in out.iterdir()}
    assert len({c.tobytes() for c in chips.values()}) == 4  # x.jpg twice (the same photo), three others distinct
