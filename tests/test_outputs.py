"""Where batch commands write (maskface.io.outputs, io.files, io.escaping): output names that never collide, targets
refused before any work, temporary names no longer than the real ones, and an error report any file name survives."""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path

import pytest

from maskface.errors import OutputError
from maskface.io.escaping import escape_field, unescape_field
from maskface.io.files import atomic_write_bytes, temp_prefix
from maskface.io.images import iter_image_files
from maskface.io.outputs import check_targets, plan_outputs
from maskface.io.parallel import BatchReport

MASK_SUFFIXES = (".png", ".occlusion.png")


def _touch(root: Path, *names: str | bytes) -> list[Path]:
    paths = []
    for name in names:
        path = root / os.fsdecode(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\xff\xd8\xff")
        paths.append(path)
    return paths


def _outputs(plan, suffixes=MASK_SUFFIXES) -> list[str]:
    return [f"{base}{suffix}" for _, base in plan.items for suffix in suffixes]


def test_colliding_stems_get_distinct_names_that_keep_the_whole_input_name(tmp_path):
    root = tmp_path / "in"
    _touch(root, "a/x.jpg", "b/x.jpg", "y.jpg", "y.png", "z.jpg", "z.JPEG", "w.jpg", "w.occlusion.jpg", "v.png",
           "v.png.png", "u", "u.png")
    (root / "u").write_bytes(b"\x89PNG\r\n\x1a\n")  # an extensionless image, found by its signature
    out = tmp_path / "out"
    plan = plan_outputs(iter_image_files([root]), out, MASK_SUFFIXES)
    names = sorted(Path(p).relative_to(out).as_posix() for p in _outputs(plan))
    assert names == sorted(f"{n}{s}" for n in ("a/x.jpg", "b/x.jpg", "y.jpg", "y.png", "z.jpg", "z.JPEG", "w.jpg",
                                                "w.occlusion.jpg", "v.png", "v.png.png", "u", "u.png")
                           for s in MASK_SUFFIXES)
    assert len(set(names)) == 24 and not plan.refused
    # w.jpg's occlusion map and w.occlusion.jpg's masked image are different files
    assert "w.jpg.occlusion.png" in names and "w.occlusion.jpg.png" in names


def test_inputs_that_still_share_a_name_are_numbered_in_input_order(tmp_path):
    first, second = _touch(tmp_path, "one/x.jpg", "two/x.jpg")
    upper, lower = _touch(tmp_path, "case/A.jpg", "case/sub/a.jpg")
    found = iter_image_files([tmp_path / "one", tmp_path / "two", first, second, upper, lower])
    plan = plan_outputs(found, tmp_path / "out", MASK_SUFFIXES)
    bases = [base.name for _, base in plan.items]
    # the same relative path under two folders; files named directly; names equal but for case
    assert bases == ["x.jpg", "x.jpg~2", "A.jpg", "a.jpg~2"]
    outputs = _outputs(plan)
    assert len({o.casefold() for o in outputs}) == len(outputs) == 8
    assert len(found) == 4  # first and second were listed once, from their folders


def test_an_output_name_too_long_fails_only_its_input(tmp_path):
    fits, too_long, plain = _touch(tmp_path / "in", "a" * 236 + ".jpg", "b" * 246 + ".jpg", "c.jpg")
    plan = plan_outputs(iter_image_files([tmp_path / "in"]), tmp_path / "out", MASK_SUFFIXES)
    assert [p for p, _ in plan.items] == [fits, plain]  # 240 + ".occlusion.png" = 254 bytes fit
    assert len(plan.refused) == 1 and plan.refused[0][0] == too_long
    assert "output name too long: 264 bytes" in plan.refused[0][1] and "allows 255" in plan.refused[0][1]


def test_an_output_that_would_replace_an_input_or_the_report_stops_the_plan(tmp_path):
    image, chip_named = _touch(tmp_path, "x.jpg", "x.jpg.png")
    with pytest.raises(OutputError, match="x.jpg.png would replace the input"):
        plan_outputs(iter_image_files([image, chip_named]), tmp_path, (".png",))
    with pytest.raises(OutputError, match="would replace the --errors report"):
        plan_outputs(iter_image_files([image]), tmp_path / "out", (".png",), errors=tmp_path / "out" / "x.jpg.png")


def test_targets_that_are_or_lie_inside_an_input_are_refused(tmp_path):
    photos = tmp_path / "photos"
    (image,) = _touch(photos, "x.jpg")
    (tmp_path / "link").symlink_to(photos)
    cases = [({"folder": photos}, "it is the input"), ({"folder": photos / "chips"}, "lies inside the input folder"),
             ({"folder": tmp_path / "link" / "chips"}, "lies inside the input folder"),
             ({"file": photos / "faces.npz"}, "lies inside the input folder"),
             ({"folder": tmp_path / "out", "errors": image}, "refused as --errors: it is the input"),
             ({"folder": tmp_path / "out", "errors": photos / "bad.csv"}, "--errors: it lies inside the input")]
    for targets, says in cases:
        with pytest.raises(OutputError, match=says):
            check_targets([photos, image], **targets)
    with pytest.raises(OutputError, match="it is the input"):
        check_targets([image], file=image)
    check_targets([photos], folder=tmp_path / "out", errors=tmp_path / "bad.csv")  # beside the input: fine
    check_targets([photos / "x.jpg"], folder=photos / "chips")  # beside an input file: fine


def test_targets_of_the_wrong_kind_are_refused_before_any_work(tmp_path):
    folder, afile = tmp_path / "folder", tmp_path / "file.npz"
    folder.mkdir()
    afile.write_bytes(b"keep")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    cases = [({"file": folder}, "--out: it is a directory; give a file name"),
             ({"folder": afile}, "--out: it is a regular file, not a folder"),
             ({"folder": afile / "sub"}, "a part of the path is not a folder"),
             ({"file": tmp_path / "fifo"}, "it is a FIFO"),
             ({"folder": tmp_path / "fifo"}, "it is a FIFO"),
             ({"errors": tmp_path / "dangling"}, "--errors: a dangling symlink"),
             ({"errors": folder}, "--errors: it is a directory"),
             ({"file": tmp_path / "same.npz", "errors": tmp_path / "same.npz"}, "--errors: it is also --out"),
             ({"folder": tmp_path / ("n" * 300)}, "a name in the path has 300 bytes")]
    for targets, says in cases:
        with pytest.raises(OutputError, match=says):
            check_targets([tmp_path / "in"], **targets)
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode) and afile.read_bytes() == b"keep"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_an_unwritable_parent_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError, match="permission denied"):
        check_targets([tmp_path / "in"], folder=locked / "out")


def test_devices_are_refused_and_stay_devices(tmp_path):
    for device in ("/dev/null", "/dev/full"):
        for targets in ({"file": device}, {"errors": device}, {"folder": device}):
            with pytest.raises(OutputError, match="character device"):
                check_targets([tmp_path], **targets)
        assert stat.S_ISCHR(os.stat(device).st_mode)
    fifo = tmp_path / "fifo.png"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="is a FIFO"):  # the atomic write itself never renames over one
        atomic_write_bytes(fifo, b"data")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_temporary_names_are_no_longer_than_the_real_ones(tmp_path):
    for length in (1, 20, 40, 100, 254, 255):
        name = "x" * (length - 4) + ".png" if length > 4 else "x"
        temp = temp_prefix(name) + "abcdefgh.tmp"  # what mkstemp adds: 8 characters and the suffix
        assert len(os.fsencode(temp)) <= max(length, 40), (length, temp)
    multibyte = "é" * 125 + ".png"  # 254 bytes: the prefix is cut by whole characters
    assert len(os.fsencode(temp_prefix(multibyte) + "abcdefgh.tmp")) <= 254
    longest = tmp_path / ("a" * 240 + ".occlusion.png")  # 254 bytes: writes, and no temp file is left
    atomic_write_bytes(longest, b"data")
    assert longest.read_bytes() == b"data" and os.listdir(tmp_path) == [longest.name]


NAMES = [b"\xff\xfe-undecodable.jpg", b"new\nline.jpg", b"cr\rlf.jpg", b"\x1b[31mred.jpg", "rtl-\u202egpj.exe".encode(),
         b"back\\slash\\x41.jpg", b"comma,\"quote\".jpg", "日本語.jpg".encode(), b"C1-\xc2\x9b.jpg", b"tab\t.jpg"]


def test_the_error_report_survives_any_file_name(tmp_path):
    report = BatchReport()
    for name in NAMES:
        report.fail(os.fsdecode(b"/photos/" + name), f"corrupt image data: {os.fsdecode(name)}\nsecond line")
    target = tmp_path / "errors.csv"
    report.write_errors(target)
    text = target.read_bytes().decode("utf-8")  # valid UTF-8, whatever the names were
    assert text.count("\n") == len(NAMES) + 1  # one line per failure, and the header
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["path", "reason"]
    assert [os.fsencode(unescape_field(row[0])) for row in rows[1:]] == [b"/photos/" + n for n in NAMES]
    assert unescape_field(rows[2][1]) == "corrupt image data: new\nline.jpg\nsecond line"
    assert rows[4][0] == "/photos/\\u001b[31mred.jpg"  # no terminal escape reaches a viewer of the file
    assert rows[6][0] == "/photos/back\\\\slash\\\\x41.jpg"  # a backslash is doubled, so the rule reverses


def test_escaping_round_trips_and_keeps_ordinary_text():
    for name in NAMES:
        assert os.fsencode(unescape_field(escape_field(os.fsdecode(name)))) == name
    assert escape_field("Aaron_Peirsol/Aaron_Peirsol_0001.jpg") == "Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
    assert escape_field("日本語 😀.jpg") == "日本語 😀.jpg"
    assert escape_field(b"\xff") == "\\xff" and escape_field("\x9b") == "\\u009b"  # a byte and a C1 character differ


def test_an_output_place_taken_by_a_folder_or_fifo_fails_only_its_input(tmp_path):
    inputs = _touch(tmp_path / "in", "a.jpg", "b.jpg", "c.jpg")
    out = tmp_path / "out"
    (out / "a.jpg.occlusion.png").mkdir(parents=True)
    os.mkfifo(out / "b.jpg.png")
    plan = plan_outputs(iter_image_files([tmp_path / "in"]), out, MASK_SUFFIXES)
    assert [p for p, _ in plan.items] == [inputs[2]]
    assert [(p, r.rsplit(": ", 1)[1]) for p, r in plan.refused] == [
        (inputs[0], "is a directory, not a file"), (inputs[1], "is a FIFO (named pipe), not a regular file; maskface "
                                                               "writes only regular files")]
    assert stat.S_ISFIFO(os.lstat(out / "b.jpg.png").st_mode)


@pytest.mark.slow
def test_deocclude_fails_only_the_input_whose_output_cannot_be_written(lfw_root, tmp_path, monkeypatch):
    """deocclude writes in the batch process, after the model: a write that fails there (here a full disk,
    injected) fails its input, and the others are written (it used to end the batch with a traceback)."""
    import errno

    from maskface.apps import deocclude
    from maskface.face.pipeline import FaceConfig

    photos = sorted(lfw_root.glob("A*/*_0001.jpg"))[:3]
    real_save = deocclude.save_image

    def save(array, path):
        if os.path.basename(path).startswith(photos[1].name):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real_save(array, path)

    monkeypatch.setattr(deocclude, "save_image", save)
    errors = tmp_path / "errors.csv"
    report, _ = deocclude.deocclude_images(photos, tmp_path / "out", FaceConfig(), workers=1, errors=errors)
    assert (report.total, report.succeeded) == (3, 2)
    rows = list(csv.reader(errors.read_text().splitlines()))
    assert rows[1] == [str(photos[1]), f"cannot write {tmp_path / 'out' / photos[1].name}.chip.png: No space left "
                                       "on device"]
    table = list(csv.reader((tmp_path / "out" / "deocclusion.csv").read_text().splitlines()))
    assert [row[0] for row in table[1:]] == [str(photos[0]), str(photos[2])]
