"""The evaluation runs behind ``maskface eval``: run folder names, LFW parts per model, finding the scenarios to
pool, and the rows of the de-occlusion picture."""

from __future__ import annotations

import numpy as np
import pytest

from maskface.errors import DatasetError
from maskface.eval.completion import picture_rows
from maskface.eval.protocol import MaskSetting
from maskface.eval.runs import lfw_parts, run_name, shared_scenarios


def test_run_name_marks_oracle_aligned_masked_runs():
    oracle = MaskSetting(oracle_alignment=True)
    assert [run_name(s, oracle) for s in ("U-U", "M-U", "M-M")] == ["U-U", "M-U-oracle", "M-M-oracle"]
    assert run_name("M-M", MaskSetting()) == "M-M"


def test_lfw_parts_give_each_fold_to_one_model(lfw_root, tmp_path):
    from maskface.data.lfw import LFW
    from maskface.face.pipeline import FaceConfig

    lfw = LFW(lfw_root)
    face = FaceConfig(mask_robust=False, chip="arcface", size=112)
    parts = lfw_parts(lfw, [("dlib_resnet_v1", [9]), ("dlib_resnet_v1", [10, 8])], face, 1, tmp_path)
    assert [len(pairs) for pairs, _ in parts] == [600, 1200]
    assert {p.fold for p in parts[0][0]} == {9} and {p.fold for p in parts[1][0]} == {8, 10}
    cache = parts[1][1]
    assert (cache.face.select, cache.face.fallback) == ("center", ("upsample", "center"))  # LFW's faces
    assert (cache.face.chip, cache.face.size, cache.face.padding) == ("dlib", 150, 0.25)  # the model's chips
    assert cache.face.mask_robust is False and cache.cache_dir == tmp_path
    with pytest.raises(ValueError, match=r"fold\(s\) \[9\] are given to more than one model"):
        lfw_parts(lfw, [("dlib_resnet_v1", [1, 9]), ("dlib_resnet_v1", [9, 10])], face, 1, tmp_path)


def test_shared_scenarios_are_ordered_and_must_exist(tmp_path):
    halves = [tmp_path / "a", tmp_path / "b"]
    for half, names in zip(halves, (["M-U-oracle", "M-M", "U-U", "M-U", "extra"], ["U-U", "M-U", "M-M",
                                                                                    "M-U-oracle"])):
        for name in names:
            (half / name).mkdir(parents=True)
            (half / name / "report.json").write_text("{}")
    (halves[1] / "notes").mkdir()  # a folder without report.json is not a run
    assert shared_scenarios(halves) == ["U-U", "M-U", "M-M", "M-U-oracle"]
    with pytest.raises(DatasetError, match="no such run folder"):
        shared_scenarios([halves[0], tmp_path / "missing"])
    with pytest.raises(DatasetError, match=r"no scenario folder \(holding report.json\) is in all of them"):
        shared_scenarios([halves[0], halves[1] / "notes"])


def test_picture_rows_pick_evenly_spaced_faces_as_floats():
    images = {"original": np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1) * 51,
              "estimated_map": np.array([True, False, True, False, True]).reshape(5, 1, 1)}
    rows = picture_rows(images, count=3)
    assert rows["original"].ravel().tolist() == [0.0, 0.4, 0.8]  # faces 0, 2 and 4 of 0, 51, ... 204
    assert rows["estimated_map"].dtype == np.float64 and rows["estimated_map"].ravel().tolist() == [1.0, 1.0, 1.0]
