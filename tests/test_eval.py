"""Evaluation protocols end to end: report files, mask-status splits, compare mode, and the LFW protocol."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from maskface.data.lfw import LFW
from maskface.defaults import DEFAULT_MODEL
from maskface.eval.protocol import EmbeddingCache, MaskSetting, crossfit_verification, verification
from maskface.eval.scores import read_pairs
from maskface.face.pipeline import FaceConfig
from maskface.models.embedder import load_embedder

REPORT_KEYS = {"model", "scenario", "accuracy_mean", "accuracy_std", "auc", "eer", "fnmr_at_fmr_1e-2",
               "fnmr_at_fmr_1e-3", "tar_at_far_1e-3", "fdr", "pairs", "failures", "folds"}


@pytest.fixture(scope="module")
def mfr2_style(lfw_root, tmp_path_factory):
    """A small MFR2-layout set made of real LFW photos: .png images, a pairs file and a labels file."""
    from maskface.io.images import load_image, save_image

    root = tmp_path_factory.mktemp("mfr2")
    people = ["Aaron_Peirsol", "Abdullah_Gul", "Adrien_Brody", "Al_Gore", "Alan_Greenspan", "Ali_Naimi"]
    labels, pairs = [], []
    for i, name in enumerate(people):
        (root / name).mkdir()
        for n in (1, 2):
            save_image(load_image(lfw_root / name / f"{name}_{n:04d}.jpg"), root / name / f"{name}_{n:04d}.png")
            labels.append(f"{name}, {n}, {'no-mask' if (n == 1 or i % 2) else 'surgical_blue'}")
        pairs.append(f"{name} 1 2")
        pairs.append(f"{name} 1 {people[(i + 1) % len(people)]} 2")
    (root / "pairs.txt").write_text("\n".join(pairs) + "\n")
    (root / "mfr2_labels.txt").write_text("\n".join(labels) + "\n")
    return root


def test_eval_pairs_writes_every_report_file(mfr2_style, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "maskface", "eval", "pairs", "--pairs", str(mfr2_style / "pairs.txt"),
           "--root", str(mfr2_style), "--labels", str(mfr2_style / "mfr2_labels.txt"), "--out", str(out),
           "--workers", "1", "--cache", str(tmp_path / "cache")]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert set(report) >= REPORT_KEYS
    assert report["pairs"] == 12 and report["failures"] == 0
    assert len(report["folds"]) == 10 and "folds_note" in report
    assert {f.name for f in out.iterdir()} >= {"report.json", "report.md", "scores.npz", "roc.png", "det.png",
                                              "hist.png"}
    pairs = read_pairs(out)
    assert len(pairs) == 12 and pairs[0].a.as_posix() == "Aaron_Peirsol/Aaron_Peirsol_0001.png"
    assert [p.same for p in pairs] == [True, False] * 6
    # The mask-status runs below it point into the top run's pair list instead of storing their own.
    assert [f.name for f in (out / "pairs").iterdir()] == [str(np.load(out / "scores.npz")["pair_list"])]
    assert not (out / "unmasked-unmasked" / "pairs").exists()
    unmasked = read_pairs(out / "unmasked-unmasked")  # every second person's second photo is unmasked
    assert [p.same for p in unmasked] == [False, True] * 3
    assert {p.b.parent.name for p in unmasked} == {"Abdullah_Gul", "Al_Gore", "Ali_Naimi"}
    # Mask-status split: three genuine and three impostor pairs in each of U-U and M-U, none in M-M.
    for group in ("unmasked-unmasked", "masked-unmasked"):
        assert json.loads((out / group / "report.json").read_text())["pairs"] == 6
    assert "masked-masked: skipped" in result.stderr
    compare = subprocess.run([sys.executable, "-m", "maskface", "eval", "compare", str(out),
                              str(out / "unmasked-unmasked"), "--out", str(tmp_path / "cmp")],
                             capture_output=True, text=True)
    assert compare.returncode == 0 and (tmp_path / "cmp" / "roc.png").is_file()
    assert compare.stdout.count(f"| {DEFAULT_MODEL}") == 2  # the default model


def test_embedding_cache_is_reused(mfr2_style, tmp_path):
    from maskface.data.mfr2 import read_mfr2_pairs

    pairs = read_mfr2_pairs(mfr2_style / "pairs.txt", mfr2_style)
    embedder = load_embedder("dlib_resnet_v1")
    cache = EmbeddingCache(embedder, "dlib_resnet_v1", FaceConfig(), tmp_path, workers=1)
    first, _ = verification(pairs, "U-U", cache, MaskSetting())
    files = list(tmp_path.glob("emb-*.npz"))
    assert len(files) == 1
    stamp = files[0].stat().st_mtime_ns
    second, _ = verification(pairs, "U-U", cache, MaskSetting())
    assert files[0].stat().st_mtime_ns == stamp  # nothing recomputed
    assert first["accuracy_mean"] == second["accuracy_mean"]
    # Chips depend on the front end only: another model with the same chip geometry reuses them.
    chips = list(tmp_path.glob("chips-*.npz"))
    assert len(chips) == 1
    chip_stamp = chips[0].stat().st_mtime_ns
    other = EmbeddingCache(load_embedder("maskface_v1"), "maskface_v1", FaceConfig(), tmp_path, workers=1)
    verification(pairs, "U-U", other, MaskSetting())
    assert chips[0].stat().st_mtime_ns == chip_stamp and len(list(tmp_path.glob("emb-*.npz"))) == 2


@pytest.mark.slow
def test_lfw_protocol_two_folds(lfw_root, tmp_path):
    """Folds 9-10 of LFW View 2 (1,200 pairs): the teacher is near 99 % unmasked and clearly worse masked."""
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    pairs = [p for p in LFW(lfw_root).view2_pairs() if p.fold in (9, 10)]
    embedder = load_embedder("dlib_resnet_v1")
    face = FaceConfig(select="center", fallback=("upsample", "center"))
    cache = EmbeddingCache(embedder, "dlib_resnet_v1", face, tmp_path / "cache", workers=2)
    clean, clean_scores = verification(pairs, "U-U", cache, MaskSetting())
    masked, scores = verification(pairs, "M-U", cache, MaskSetting(seed=0, oracle_alignment=True))
    assert clean["accuracy_mean"] >= 0.98 and clean["auc"] >= 0.995
    assert masked["accuracy_mean"] <= clean["accuracy_mean"] - 0.03
    assert masked["eer"] > clean["eer"]
    assert set(scores.detectors["a"]) == {"oracle"}
    assert np.all(np.isfinite(scores.scores))
    # Cross-fitting with the same model on both halves must reproduce the one-model run exactly.
    halves = [([p for p in pairs if p.fold == fold], cache) for fold in (9, 10)]
    pooled, pooled_scores = crossfit_verification(halves, "U-U", MaskSetting())
    assert np.array_equal(pooled_scores.scores, clean_scores.scores)
    assert pooled["accuracy_mean"] == clean["accuracy_mean"] and pooled["eer"] == clean["eer"]
    assert pooled["model"] == "dlib_resnet_v1 on folds 9; dlib_resnet_v1 on folds 10"
    assert sum(pooled["detectors"]["a"].values()) == len(pairs)


def test_scores_file_round_trip_and_shared_pair_list(tmp_path):
    from maskface.data.pairs import Pair
    from maskface.errors import RunFolderError
    from maskface.eval.scores import read_scores, write_scores

    pairs = [Pair(Path(f"/data/lfw/P{i}/P{i}_0001.jpg"), Path(f"/data/lfw/Q{i}/Q{i}_0002.jpg"), i % 2 == 0, i // 2 + 1)
             for i in range(6)]
    scores = np.array([-0.5123456789, -0.9, 0.25, -1e-3, -0.7, -0.333333])
    (tmp_path / "pairs").mkdir()  # a shared pair-list folder above the runs, as docs/results/pairs
    write_scores(tmp_path / "all", scores, pairs)
    write_scores(tmp_path / "part", scores[3:], pairs[3:])
    lists = list((tmp_path / "pairs").iterdir())
    assert len(lists) == 1 and not (tmp_path / "part" / "pairs").exists()  # the part points into the first list
    with np.load(tmp_path / "part" / "scores.npz") as stored:
        assert stored["pair"].tolist() == [3, 4, 5] and stored["score"].dtype == np.float32
    back, same, folds = read_scores(tmp_path / "part")
    assert np.allclose(back, scores[3:], rtol=6e-8, atol=0) and not np.array_equal(back, scores[3:])
    assert same.tolist() == [False, True, False] and folds.tolist() == [2, 3, 3]
    assert read_pairs(tmp_path / "part") == [Pair(Path(f"P{i}/P{i}_0001.jpg"), Path(f"Q{i}/Q{i}_0002.jpg"), i % 2 == 0,
                                                  i // 2 + 1) for i in (3, 4, 5)]
    # Without a shared folder the run keeps its own list.
    write_scores(tmp_path / "other" / "alone" / "run", scores[:2], pairs[:2])
    assert len(list((tmp_path / "other" / "alone" / "run" / "pairs").iterdir())) == 1
    # Scores stay readable without the list; the paths need it.
    lists[0].unlink()
    assert len(read_scores(tmp_path / "part")[0]) == 3
    with pytest.raises(RunFolderError, match="its pair list .* is in none of"):
        read_pairs(tmp_path / "part")
    with pytest.raises(RunFolderError, match="no scores.npz"):
        read_scores(tmp_path / "pairs")


def test_runs_written_before_scores_npz_are_read(tmp_path):
    """Older run folders hold scores.csv; they are read as they are."""
    from maskface.eval.report import load_scores

    run = Path(__file__).parents[1] / "docs/results/lfw-dlib_resnet_v1/M-U"
    _, scores, pairs = load_scores(run)
    old = tmp_path / "old"
    old.mkdir()
    (old / "report.json").write_text((run / "report.json").read_text())
    rows = [f"{p.fold},{int(p.same)},{s:.6f},{p.a.as_posix()},{p.b.as_posix()}" for p, s in zip(pairs, scores.scores)]
    (old / "scores.csv").write_text("fold,label,score,path_a,path_b\n" + "\n".join(rows) + "\n")
    _, legacy, legacy_pairs = load_scores(old)
    assert legacy_pairs == pairs and np.array_equal(legacy.labels, scores.labels)
    assert np.abs(legacy.scores - scores.scores).max() <= 5e-7
    # in the legacy order, the exact scores never fall by more than the CSV's rounding (ties may swap)
    assert np.diff(scores.scores[np.argsort(legacy.scores, kind="stable")]).min() >= -1e-6


def _split_run(run_dir: Path, out: Path, fold_sets: list[set[int]]) -> list[Path]:
    """Write a committed 10-fold run's scores back as separate runs on the given folds."""
    from maskface.eval.protocol import PairScores, pooled_report
    from maskface.eval.report import load_scores, report_value, write_run

    report, scores, pairs = load_scores(run_dir)
    folders = []
    for n, folds in enumerate(fold_sets):
        keep = np.isin(scores.folds, sorted(folds))
        part = PairScores(scores.scores[keep], scores.labels[keep], scores.folds[keep], 0, {"a": {"hog": 1}})
        half, result = pooled_report(f"model-{n}", report["scenario"], [part], report["masks"], report["face"],
                                     report_value(report, "pipeline"))
        folders.append(out / f"half-{n}" / run_dir.name)
        write_run(folders[-1], half, result, [p for p, k in zip(pairs, keep) if k])
    return folders


def test_pool_runs_reproduces_the_ten_fold_report(tmp_path):
    from maskface.eval.report import pool_runs

    run = Path(__file__).parents[1] / "docs/results/lfw-dlib_resnet_v1/M-U"
    original = json.loads((run / "report.json").read_text())
    halves = _split_run(run, tmp_path, [{6, 7, 8, 9, 10}, {1, 2, 3, 4, 5}])
    report, _, pairs = pool_runs(halves)
    assert report["pairs"] == original["pairs"] == 6000 == len(pairs)
    for key in ("accuracy_mean", "accuracy_std", "eer", "auc", "fnmr_at_fmr_1e-3"):
        assert report[key] == pytest.approx(original[key], abs=1e-6), key
    assert report["model"] == "model-0 on folds 6-10; model-1 on folds 1-5"
    assert report["detectors"] == {"a": {"hog": 2}}
    # Two runs that score the same fold, or runs of different protocols, cannot be pooled.
    overlapping = _split_run(run, tmp_path / "overlap", [{1, 2, 3}, {3, 4}])
    with pytest.raises(ValueError, match=r"fold\(s\) \[3\]"):
        pool_runs(overlapping)
    other = json.loads((halves[1] / "report.json").read_text())
    other["masks"]["oracle_alignment"] = not other["masks"]["oracle_alignment"]
    (halves[1] / "report.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="masks differs"):
        pool_runs(halves)
    # Nor runs whose faces were found by different versions of the front end.
    other["masks"]["oracle_alignment"] = not other["masks"]["oracle_alignment"]
    other["pipeline"] = 99
    (halves[1] / "report.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="pipeline differs"):
        pool_runs(halves)


def test_eval_pool_cli_writes_pooled_runs(tmp_path):
    run = Path(__file__).parents[1] / "docs/results/lfw-dlib_resnet_v1/U-U"
    halves = _split_run(run, tmp_path, [{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}])
    cmd = [sys.executable, "-m", "maskface", "eval", "pool", str(halves[0].parent), str(halves[1].parent),
           "--out", str(tmp_path / "pooled")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "pooled/U-U/report.json").read_text())
    assert report["accuracy_mean"] == pytest.approx(json.loads((run / "report.json").read_text())["accuracy_mean"])
    assert {p.name for p in (tmp_path / "pooled/U-U").iterdir()} >= {"report.md", "scores.npz", "roc.png"}
    missing = subprocess.run([*cmd[:5], str(tmp_path / "nope"), "--out", str(tmp_path / "x")], capture_output=True,
                             text=True)
    assert missing.returncode == 2 and "no such run folder" in missing.stderr
