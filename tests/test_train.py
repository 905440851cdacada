"""The training engine: typed configs, the resumable sampler, exact resume after a kill, and torchrun agreement."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from maskface.train.config import ConfigError, TrainConfig, load_config
from maskface.train.sampler import ResumableSampler


@dataclass
class _Inner:
    width: int = 8
    dilations: tuple[int, ...] = (1, 2)
    name: str | None = None


@dataclass
class _Config:
    train: TrainConfig = field(default_factory=TrainConfig)
    model: _Inner = field(default_factory=_Inner)
    weight: float = 1.0


def test_config_from_yaml_and_overrides(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("method: x\ntrain:\n  steps: 50\n  betas: [0.5, 0.9]\nmodel:\n  width: 4\n")
    config = load_config(_Config, file, ["model.dilations=[3, 4, 5]", "weight=2", "train.grad_clip=null"])
    assert config.train.steps == 50 and config.train.betas == (0.5, 0.9)
    assert config.model == _Inner(width=4, dilations=(3, 4, 5))
    assert config.weight == 2.0 and isinstance(config.weight, float) and config.train.grad_clip is None


@pytest.mark.parametrize("override, message", [
    (["train.stepz=5"], "unknown key(s) ['stepz']"),
    (["train.steps=many"], "train.steps: must be int"),
    (["train.schedule=linear"], "must be one of"),
    (["train.betas=[1]"], "must have 2 items"),
    (["steps"], "overrides are key=value"),
])
def test_config_mistakes_are_named(override, message):
    with pytest.raises(ConfigError, match=None) as info:
        load_config(_Config, None, override)
    assert message in str(info.value)


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(_Config, tmp_path / "nope.yaml")


def _batches(sampler: ResumableSampler, per_process: int, count: int) -> list[list[tuple[int, int]]]:
    stream = iter(sampler)
    return [[next(stream) for _ in range(per_process)] for _ in range(count)]


def test_sampler_resumes_and_shards_one_global_batch():
    full = _batches(ResumableSampler(10, 4, seed=3), 4, 6)  # 2 steps per epoch: 3 epochs
    assert sorted(i for i, _ in full[0] + full[1]) == sorted(set(i for i, _ in full[0] + full[1]))
    assert [e for _, e in full[2]] == [1] * 4 and full[2] != full[0]
    assert _batches(ResumableSampler(10, 4, seed=3, start_step=3), 4, 3) == full[3:]
    ranks = [_batches(ResumableSampler(10, 4, seed=3, rank=r, world_size=2), 2, 6) for r in range(2)]
    for step in range(6):
        assert sorted(ranks[0][step] + ranks[1][step]) == sorted(full[step])
    with pytest.raises(ValueError, match="does not split evenly"):
        ResumableSampler(10, 5, world_size=2)


# --- real short training runs on real LFW chips -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_chips(lfw_sample, tmp_path_factory) -> Path:
    """A chip set of 16 real LFW faces, made by the foundation pipeline."""
    from maskface.data.chips import LFW_FACE, build_chip_set
    from maskface.io.parallel import BatchReport

    folder = tmp_path_factory.mktemp("chips")
    chip_set = build_chip_set(lfw_sample[:16], LFW_FACE, workers=1, report=BatchReport())
    assert len(chip_set) == 16 and chip_set.landmarks.shape == (16, 68, 2)
    chip_set.save(folder)
    return folder


def _train_args(chips: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return ["train", "deocclusion", "--out", str(out), f"data.chips={chips}", f"train.steps={steps}",
            "train.batch_size=4", "train.workers=0", "train.checkpoint_every=1", "train.log_every=1",
            "train.image_every=2", "model.width=8", "model.dilations=[2]", "train.lr=0.002", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _weights(out: Path) -> dict[str, torch.Tensor]:
    state = torch.load(out / "checkpoints" / "last.pt", map_location="cpu", weights_only=True)
    return {f"{m}.{k}": v for m, s in state["modules"].items() for k, v in s.items()}


@pytest.mark.slow
def test_resume_after_a_kill_matches_an_uninterrupted_run(tiny_chips, tmp_path):
    steps = 8
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    cli = [sys.executable, "-m", "maskface"]
    subprocess.run(cli + _train_args(tiny_chips, whole, steps), check=True, env=_env(), capture_output=True)
    # Kill a second run hard once it has checkpointed a few steps, then resume it.
    process = subprocess.Popen(cli + _train_args(tiny_chips, broken, steps), env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = broken / "checkpoints" / "last.pt"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if checkpoint.is_file() and torch.load(checkpoint, weights_only=True)["step"] >= 3:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = torch.load(checkpoint, weights_only=True)["step"]
    assert 3 <= killed_at < steps, "the run was not interrupted mid-way"
    resumed = subprocess.run(cli + _train_args(tiny_chips, broken, steps) + ["--resume"], env=_env(),
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _weights(whole), _weights(broken)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (whole / "deocclusion_generator.safetensors").is_file()
    assert list((whole / "previews").glob("*.png")) and list((whole / "tensorboard").iterdir())
    # The same --out without --resume refuses to overwrite the run.
    again = subprocess.run(cli + _train_args(tiny_chips, whole, steps), env=_env(), capture_output=True, text=True)
    assert again.returncode == 2 and "pass --resume" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.slow
def test_torchrun_two_processes_agree_with_one(tiny_chips, tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    assert torchrun, "torchrun is installed with torch"
    one, two = tmp_path / "one", tmp_path / "two"
    # SGD: Adam's first steps are lr * sign(gradient), which turns float rounding in near-zero gradients into
    # full-size differences; SGD shows whether the two layouts compute the same gradients.
    args = lambda out: _train_args(tiny_chips, out, 3, "train.optimizer=sgd", "train.lr=0.05")  # noqa: E731
    subprocess.run([sys.executable, "-m", "maskface", *args(one)], check=True, env=_env(), capture_output=True)
    result = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "maskface", *args(two)],
                            env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = _weights(one), _weights(two)
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst < 1e-4, worst
    assert torch.load(two / "checkpoints" / "last.pt", weights_only=True)["world_size"] == 2


@pytest.mark.slow
def test_distill_recipe_trains_every_loss_term(tiny_chips, tmp_path):
    import json

    out = tmp_path / "distill"
    result = subprocess.run([sys.executable, "-m", "maskface", "train", "distill", "--out", str(out),
                             f"data.chips={tiny_chips}", "train.steps=2", "train.batch_size=4", "train.workers=0",
                             "train.log_every=1", "loss.margin_head=arcface"], env=_env(), capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    logged = json.loads((out / "log.jsonl").read_text().splitlines()[-1])
    for term in ("instance", "soft", "rkd_distance", "rkd_angle", "margin"):
        assert np.isfinite(logged[term]), term
    assert logged["distance_to_teacher"] > 0  # masked, completed faces are not where the teacher puts clean ones
    from maskface.models import create_model
    from maskface.models.embedder import load_embedder
    from maskface.models.weights import load_state

    student, teacher = load_state(out / "student.safetensors"), create_model("dlib_resnet_v1", pretrained=True)
    for name, value in teacher.state_dict().items():  # stem and blocks 0-6 frozen (freeze_blocks=7), the rest trained
        frozen = name.startswith("stem") or int(name.split(".")[1]) < 7 if name != "fc.weight" else False
        assert torch.equal(student[name], value.half().float()) == frozen, name
    recognizer = load_embedder(f"maskface_v1={out / 'student.safetensors'}")
    for thresholds in recognizer.module.thresholds.values():  # per pair type, from the 16 faces clean and masked
        assert thresholds["1e-4"] <= thresholds["1e-3"] <= thresholds["1e-2"]
    assert recognizer.spec.threshold == recognizer.module.threshold(False, False, "1e-2")


def test_completed_bank_holds_completed_faces_and_teacher_targets(tiny_chips, tmp_path):
    from maskface.data.chips import ChipSet
    from maskface.data.masked_chips import MaskedChips
    from maskface.models import create_model
    from maskface.train.completed_bank import bank_folder, build_completed_bank

    faces = MaskedChips(ChipSet.load(tiny_chips), seed=3)
    teacher = create_model("dlib_resnet_v1", pretrained=True)
    deoccluder = create_model("deocclusion_v1", pretrained=True)
    folder = bank_folder(faces, 2, deoccluder, teacher, "estimated", root=tmp_path)

    def complete(masked, occlusion):  # with the estimated map, as the recipe does by default
        return deoccluder(masked)[0]

    bank = build_completed_bank(faces, 2, complete, teacher, torch.device("cpu"), folder, workers=0)
    assert len(bank) == 2 * len(faces) == 32 and bank.names == faces.names
    for i in (0, 5, 16, 31):  # item i is face i % 16 with the mask of epoch i // 16
        item = faces[(i % 16, i // 16)]
        with torch.no_grad():
            target = teacher(item["clean"][None] * 255)[0]
            completed = deoccluder(item["masked"][None])[0][0]
        stored = bank[(i, 7)]  # the epoch is ignored: the bank is fixed
        assert torch.allclose(stored["target"], target, atol=1e-5)
        assert (stored["input"] - completed).abs().max() <= 0.5 / 255 + 1e-6  # uint8 rounding only
        assert int(stored["label"]) == int(item["label"])
    stamp = (folder / "inputs.npy").stat().st_mtime_ns
    build_completed_bank(faces, 2, complete, teacher, torch.device("cpu"), folder, workers=0)
    assert (folder / "inputs.npy").stat().st_mtime_ns == stamp  # reused, not rebuilt
    other = bank_folder(MaskedChips(ChipSet.load(tiny_chips), seed=4), 2, deoccluder, teacher, "estimated",
                        root=tmp_path)
    assert other != folder  # another mask draw is another bank
