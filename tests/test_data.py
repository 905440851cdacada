"""Dataset loaders and protocols as data: real LFW, AT&T and Yale; MFR2, CelebA and insightface files written here
in exactly their formats."""

from __future__ import annotations

import io
import pickle
import struct

import numpy as np
import pytest
from PIL import Image

from maskface.data.folders import read_celeba_identities, read_identity_folders, read_yale
from maskface.data.insightface import RecordFile, read_verification_bin
from maskface.data.lfw import LFW, find_lfw, read_pairs
from maskface.data.mfr2 import read_mfr2_pairs
from maskface.errors import DatasetError


def _jpeg(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), value, np.uint8)).save(buffer, format="JPEG", quality=100)
    return buffer.getvalue()


def test_lfw_view2_has_ten_identity_disjoint_folds(lfw_root):
    lfw = LFW(lfw_root)
    pairs = lfw.view2_pairs()
    assert len(pairs) == 6000 and sum(p.same for p in pairs) == 3000
    assert all(p.a.is_file() and p.b.is_file() for p in pairs)
    people = lfw.view2_people()
    assert sorted(people) == list(range(1, 11))
    assert sum(sum(v.values()) for v in people.values()) == 13233
    folds = [set(v) for v in people.values()]
    assert all(not (folds[i] & folds[j]) for i in range(10) for j in range(i + 1, 10))
    for pair in pairs:  # every pair's people belong to its own fold
        assert pair.a.parent.name in people[pair.fold] and pair.b.parent.name in people[pair.fold]
    assert len(lfw.view1_pairs("train")) == 2200 and len(lfw.view1_pairs("test")) == 1000
    assert len(lfw.view1_people("train")) == 4038
    assert len(lfw.identities()) == 5749


def test_lfw_location_from_option_or_environment(lfw_root, monkeypatch, tmp_path):
    assert find_lfw(lfw_root.parent) == lfw_root
    monkeypatch.setenv("MASKFACE_DATA", str(lfw_root))
    assert find_lfw() == lfw_root
    with pytest.raises(DatasetError, match="Get the deep-funneled images"):
        find_lfw(tmp_path)
    monkeypatch.delenv("MASKFACE_DATA")
    with pytest.raises(DatasetError, match="pass --data DIR or set MASKFACE_DATA"):
        find_lfw()


def test_pairs_file_errors_name_the_line(tmp_path):
    bad = tmp_path / "pairs.txt"
    bad.write_text("2 1\nA 1 2\nA 1 B x\nC 1 2\nC 1 D 1\n")
    with pytest.raises(DatasetError, match="line 3"):
        read_pairs(bad)
    bad.write_text("2 1\nA 1 2\n")
    with pytest.raises(DatasetError, match="header says 2 folds"):
        read_pairs(bad)


def test_mfr2_pairs_and_mask_labels(tmp_path):
    for name, n in [("AdrianDunbar", 1), ("AdrianDunbar", 2), ("AlexanderNevsky", 1)]:
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / f"{name}_{n:04d}.png").write_bytes(b"")
    (tmp_path / "pairs.txt").write_text("AdrianDunbar 1 2\nAdrianDunbar 1 AlexanderNevsky 1\n")
    (tmp_path / "mfr2_labels.txt").write_text(
        "AdrianDunbar, 1, no-mask\nAdrianDunbar, 2, surgical_blue\nAlexanderNevsky, 1, KN95\n")
    pairs = read_mfr2_pairs(tmp_path / "pairs.txt", tmp_path, tmp_path / "mfr2_labels.txt")
    assert [p.same for p in pairs] == [True, False]
    assert pairs[0].b.name == "AdrianDunbar_0002.png"  # the .png is found
    assert pairs[0].masked == (False, True) and pairs[1].masked == (False, True)
    (tmp_path / "bad_labels.txt").write_text("AdrianDunbar 1 no-mask\n")
    with pytest.raises(DatasetError, match="line 1"):
        read_mfr2_pairs(tmp_path / "pairs.txt", tmp_path, tmp_path / "bad_labels.txt")


def test_att_orl_identity_folders(data_root):
    att = read_identity_folders(data_root / "att_faces")
    assert len(att.names) == 40 and len(att.samples) == 400
    assert all(len(v) == 10 for v in att.by_identity().values())


def test_yale_extensionless_files(data_root):
    yale = read_yale(data_root / "yalefaces")
    groups = yale.by_identity()
    assert len(groups) == 15 and len(yale.samples) == 164
    assert len(groups["subject01"]) == 10  # subject01.centerlight is missing from this copy


def test_celeba_identity_file(tmp_path):
    (tmp_path / "identity_CelebA.txt").write_text("000001.jpg 2880\n000002.jpg 2937\n000003.jpg 2880\n")
    celeba = read_celeba_identities(tmp_path / "identity_CelebA.txt", tmp_path / "img_align_celeba")
    assert celeba.names == ["2880", "2937"]
    assert [p.name for p in celeba.by_identity()["2880"]] == ["000001.jpg", "000003.jpg"]


def test_insightface_bin_verification_set(tmp_path):
    images = [_jpeg(v) for v in (10, 20, 30, 40)]
    path = tmp_path / "lfw.bin"
    with open(path, "wb") as handle:  # what insightface writes: pickle.dump((bins, issame_list), f, protocol)
        pickle.dump((images, [True, False]), handle, protocol=pickle.HIGHEST_PROTOCOL)
    bins, issame = read_verification_bin(path)
    assert bins == images and issame.tolist() == [True, False]
    evil = tmp_path / "evil.bin"
    evil.write_bytes(pickle.dumps(print))
    with pytest.raises(DatasetError, match="refusing to load"):
        read_verification_bin(evil)


def test_insightface_rec_and_idx(tmp_path):
    rec, idx = tmp_path / "train.rec", tmp_path / "train.idx"
    offsets, blob = [], b""
    records = [(0, 5.0, [], b""), (1, 0.0, [], _jpeg(50)), (2, 7.0, [7.0, 1.5], _jpeg(200))]
    for rec_id, label, extra, image in records:
        payload = struct.pack("<IfQQ", len(extra), label, rec_id, 0) + struct.pack(f"<{len(extra)}f", *extra) + image
        offsets.append(len(blob))
        blob += struct.pack("<II", 0xCED7230A, len(payload)) + payload + b"\0" * (-len(payload) % 4)
    rec.write_bytes(blob)
    idx.write_text("".join(f"{i}\t{o}\n" for i, o in enumerate(offsets)))
    reader = RecordFile(rec)
    assert len(reader) == 3
    second = reader.read(1)
    assert second.label == 0.0 and second.decode()[0, 0, 0] in range(45, 56)
    third = reader.read(2)
    assert third.labels.tolist() == [7.0, 1.5] and third.id == 2 and abs(int(third.decode()[0, 0, 0]) - 200) <= 3
    rec.write_bytes(b"\0" * len(blob))
    with pytest.raises(DatasetError, match="bad magic"):
        RecordFile(rec).read(1)
