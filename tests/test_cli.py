"""The command line as a user meets it: outputs, error CSVs, exit codes (0 / 2 / 3) and no tracebacks."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from cli_runner import run


@pytest.fixture(scope="module")
def batch(lfw_root, tmp_path_factory):
    """Three real faces in a nested folder, plus a text file, a truncated JPEG and a faceless image."""
    root = tmp_path_factory.mktemp("inputs")
    (root / "people" / "x").mkdir(parents=True)
    sources = sorted(lfw_root.glob("A*/*_0001.jpg"))[:3]
    for src in sources:
        shutil.copy(src, root / "people" / "x" / src.name)
    (root / "people" / "notes.jpg").write_text("not an image")
    data = sources[0].read_bytes()
    (root / "people" / "cut.jpg").write_bytes(data[: len(data) // 3])
    Image.fromarray(np.full((120, 120, 3), 90, np.uint8)).save(root / "people" / "wall.png")
    return root


def test_align_writes_chips_and_reports_each_failure(batch, tmp_path):
    errors = tmp_path / "errors.csv"
    result = run("align", str(batch / "people"), "--out", str(tmp_path / "chips"), "--errors", str(errors),
                 "--workers", "2")
    assert result.returncode == 3
    assert "aligned 3 of 6 images; 3 failed" in result.stdout
    chips = sorted(p.relative_to(tmp_path / "chips").as_posix() for p in (tmp_path / "chips").rglob("*.png"))
    assert len(chips) == 3 and all(c.startswith("x/") for c in chips)
    assert Image.open(tmp_path / "chips" / chips[0]).size == (150, 150)
    rows = list(csv.DictReader(errors.read_text().splitlines()))
    reasons = {r["path"].rsplit("/", 1)[-1]: r["reason"] for r in rows}
    assert set(reasons) == {"notes.jpg", "cut.jpg", "wall.png"}
    assert "not an image" in reasons["notes.jpg"] and "truncated" in reasons["cut.jpg"]
    assert reasons["wall.png"] == "no face found"


def test_align_all_good_exits_zero_and_usage_errors_exit_two(batch, tmp_path):
    result = run("align", str(batch / "people" / "x"), "--out", str(tmp_path / "ok"), "--size", "112",
                 "--chip", "arcface", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert all(Image.open(p).size == (112, 112) for p in (tmp_path / "ok").rglob("*.png"))
    assert run("align", str(batch), "--out", str(tmp_path), "--chip", "square").returncode == 2
    assert run("align", str(batch), "--out", str(tmp_path), "--chip", "arcface", "--landmarks", "5",
               "--detector", "hog").returncode == 2
    assert run("align", str(batch), "--out", str(tmp_path), "--masked-scan", "sometimes").returncode == 2
    assert run("frobnicate").returncode == 2


def test_embed_writes_paths_and_embeddings(batch, tmp_path):
    out = tmp_path / "emb.npz"
    result = run("embed", str(batch / "people" / "x"), "--out", str(out), "--workers", "1")
    assert result.returncode == 0, result.stderr
    data = np.load(out)
    from maskface.defaults import DEFAULT_MODEL
    from maskface.models.registry import model_info

    size = model_info(DEFAULT_MODEL).embedding_size
    assert data["embeddings"].shape == (3, size) and data["embeddings"].dtype == np.float32
    assert [p.rsplit("/", 1)[-1] for p in data["paths"]] == sorted(p.name for p in (batch / "people" / "x").iterdir())


def test_verify_prints_a_decision_and_json(lfw_root):
    """The default model holds an unmasked pair to its shipped U-U threshold; the teacher to its own; the
    mask-aware maskface_v1 also says which faces it completed."""
    from maskface.defaults import DEFAULT_MODEL
    from maskface.models.pair_thresholds import shipped_pair_thresholds

    calibrated = shipped_pair_thresholds(DEFAULT_MODEL)["U-U"]
    a, b = lfw_root / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg", lfw_root / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg"
    other = lfw_root / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"
    same = run("verify", str(a), str(b))
    assert same.returncode == 0 and "same person" in same.stdout and f"threshold {calibrated:.4f}" in same.stdout
    answer = json.loads(run("verify", str(a), str(other), "--json").stdout)
    assert set(answer) >= {"score", "threshold", "same", "pair_type", "masked"} and "completed" not in answer
    assert answer["same"] is False and answer["score"] < answer["threshold"] == pytest.approx(calibrated)
    assert answer["masked"] == [False, False] and answer["pair_type"] == "U-U"
    teacher = json.loads(run("verify", str(a), str(other), "--json", "-m", "dlib_resnet_v1").stdout)
    assert teacher["threshold"] == 0.6 and shipped_pair_thresholds("dlib_resnet_v1") is None  # dlib's own
    assert teacher["metric"] == "euclidean" and teacher["same"] is False and "completed" not in teacher
    mask_aware = json.loads(run("verify", str(a), str(other), "--json", "-m", "maskface_v1").stdout)
    assert mask_aware["completed"] == [False, False]
    assert mask_aware["score"] == pytest.approx(teacher["score"], abs=1e-5)  # unmasked: the teacher's embedding


def test_verify_a_real_masked_photo_that_hog_misses(data_root):
    """A real masked face (RWMFD) that dlib's HOG cannot find: the cascade finds it, calls it masked, and the
    mask-aware maskface_v1 completes it before embedding."""
    photo = data_root / "rwmfd" / "0001" / "0144.jpg"
    result = run("verify", str(photo), str(photo), "--json", "--detector", "hog", "-m", "maskface_v1")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["same"] is True and answer["score"] < 1e-6 and answer["pair_type"] == "M-M"
    assert answer["masked"] == [True, True] and answer["detectors"][0].startswith("masked-hog")
    assert answer["completed"] == [True, True]
    from maskface.models.embedder import load_embedder

    assert answer["threshold"] == pytest.approx(load_embedder("maskface_v1").module.threshold(True, True))
    standard = run("verify", str(photo), str(photo), "--no-mask-robust", "--detector", "hog")
    assert standard.returncode == 3 and "no face found" in standard.stderr


def test_verify_user_mistakes_get_one_line(tmp_path, lfw_root):
    face = lfw_root / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    missing = run("verify", str(face), str(tmp_path / "nobody.jpg"))
    assert missing.returncode == 3 and "nobody.jpg: file not found" in missing.stderr
    Image.fromarray(np.zeros((80, 80, 3), np.uint8)).save(tmp_path / "black.png")
    noface = run("verify", str(face), str(tmp_path / "black.png"))
    assert noface.returncode == 3 and "no face found" in noface.stderr
    bad_model = run("verify", str(face), str(face), "--model", "nope")
    assert bad_model.returncode == 2 and "unknown model" in bad_model.stderr


def test_train_frontend_refuses_an_unknown_model_name(tmp_path):
    result = run("train", "frontend", "--out", str(tmp_path / "out"), "--only", "detector", "--only", "eyes")
    assert result.returncode == 2
    assert "--only: unknown model(s) ['eyes']" in result.stderr and "'landmarks'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_mask_writes_images_and_occlusion_maps(batch, tmp_path):
    out = tmp_path / "masked"
    result = run("mask", str(batch / "people" / "x"), "--out", str(out), "--type", "kn95", "--seed", "3",
                 "--workers", "1")
    assert result.returncode == 0, result.stderr
    images = sorted(out.rglob("*.png"))
    maps = [p for p in images if p.name.endswith(".occlusion.png")]
    assert len(images) == 6 and len(maps) == 3
    occlusion = np.asarray(Image.open(maps[0]))
    assert set(np.unique(occlusion)) <= {0, 255} and 0.03 < (occlusion > 0).mean() < 0.5
    again = tmp_path / "again"
    run("mask", str(batch / "people" / "x"), "--out", str(again), "--type", "kn95", "--seed", "3", "--workers", "2")
    for path in images:
        assert path.read_bytes() == (again / path.relative_to(out)).read_bytes()


@pytest.mark.slow
def test_demo_compares_teacher_and_maskface_on_masked_lfw_pairs(data_root, tmp_path):
    from maskface.defaults import DEFAULT_MODEL
    from maskface.models.registry import model_info

    out = tmp_path / "demo"
    result = run("demo", "--data", str(data_root), "--out", str(out), "--pairs", "6", "--workers", "1")
    assert result.returncode == 0, result.stderr
    for scenario in ("U-U", "M-U", "M-M"):
        for model in ("dlib_resnet_v1", DEFAULT_MODEL):
            assert any(line.split()[:2] == [scenario, model] for line in result.stdout.splitlines()), (scenario,
                                                                                                      model)
    report = (out / "report.md").read_text()
    assert report.count("| M-U |") == 2 and "![ROC](roc.png)" in report
    grid = np.asarray(Image.open(out / "pairs.png"))
    size = model_info(DEFAULT_MODEL).spec.size  # face, masked, the other face in the default model's chips
    assert grid.shape[1] == 3 * size and grid.shape[0] % size == 0
    assert (out / "roc.png").stat().st_size > 10_000
