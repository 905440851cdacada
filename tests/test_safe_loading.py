"""Model and checkpoint files are loaded without running code: every torch.load is weights_only, a crafted pickle
is refused (and proven to be live), and malformed model files give a one-line ModelFileError."""

from __future__ import annotations

import ast
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from maskface.errors import ModelFileError
from maskface.models.embedder import load_embedder
from maskface.models.registry import create_model
from maskface.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state

SRC = Path(__file__).resolve().parents[1] / "src"


class _WritesMarker:
    """A pickle payload: unpickling it runs ``os.system("touch MARKER")``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _crafted(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"step": 3, "recipe": "occlusion", "modules": {}, "rng": _WritesMarker(marker)}, path)
    return path


def test_the_crafted_pickle_is_live(tmp_path):
    """The attack the other tests refuse really runs code when loaded the unsafe way (so they can fail)."""
    marker = tmp_path / "ran"
    file = _crafted(tmp_path / "evil.pt", marker)
    torch.load(file, weights_only=False)
    assert marker.exists()


def test_every_torch_load_in_the_package_is_weights_only():
    calls = []
    for file in sorted((SRC / "maskface").rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                flag = next((k.value for k in node.keywords if k.arg == "weights_only"), None)
                calls.append((file.name, node.lineno, isinstance(flag, ast.Constant) and flag.value is True))
    assert calls, "no torch.load found: the scan is broken"
    assert [c for c in calls if not c[2]] == []


@pytest.mark.slow  # a CLI process that imports torch and builds the model: about 15 s here
def test_resume_refuses_a_crafted_checkpoint_and_runs_nothing(tmp_path):
    run, marker = tmp_path / "run", tmp_path / "pwned"
    _crafted(run / "checkpoints" / "last.pt", marker)
    result = subprocess.run([sys.executable, "-m", "maskface", "train", "occlusion", "--out", str(run), "--resume",
                             "train.steps=2", "train.workers=0"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2, result.stderr
    assert "refusing to load" in result.stderr and "GLOBAL posix.system" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_checkpoint_loader_names_what_is_wrong(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(ModelFileError, match=r"refusing to load: .*\(GLOBAL posix\.system\)"):
        load_checkpoint(_crafted(tmp_path / "a.pt", marker))
    assert not marker.exists()
    raw = tmp_path / "raw.pt"  # a bare pickle, not torch's zip archive: never unpickled at all
    raw.write_bytes(__import__("pickle").dumps(_WritesMarker(marker)))
    with pytest.raises(ModelFileError, match="not a PyTorch zip archive"):
        load_checkpoint(raw)
    assert not marker.exists()
    old = tmp_path / "old.pt"  # what maskface wrote before: NumPy's RNG state pickled as an array
    torch.save({"step": 1, "recipe": "occlusion", "modules": {}, "rng": {"numpy": np.random.get_state()}}, old)
    with pytest.raises(ModelFileError, match="older maskface that pickled NumPy state"):
        load_checkpoint(old)
    listed = tmp_path / "list.pt"
    torch.save([1, 2, 3], listed)
    with pytest.raises(ModelFileError, match="not a maskface training checkpoint"):
        load_checkpoint(listed)
    with pytest.raises(ModelFileError, match="no checkpoint to resume from"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "loop.pt").symlink_to(tmp_path / "loop.pt")
    with pytest.raises(ModelFileError, match="symlink loop"):
        load_checkpoint(tmp_path / "loop.pt")


def test_a_training_checkpoint_round_trips_through_weights_only_loading(tmp_path):
    """What the engine saves (modules, AdamW, LambdaLR, GradScaler, every RNG) loads with weights_only and
    restores the random streams exactly."""
    module = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(module.parameters(), lr=0.01, betas=(0.5, 0.9))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 ** step)
    module(torch.randn(3, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    random.seed(1)
    np.random.seed(2)
    np.random.standard_normal()  # leaves a cached Gaussian in NumPy's state
    torch.manual_seed(3)
    state = {"step": 7, "recipe": "occlusion", "config": {"train": {"betas": (0.5, 0.9), "grad_clip": None}},
             "modules": {"m": module.state_dict()}, "optimizers": {"m": optimizer.state_dict()},
             "schedulers": {"m": scheduler.state_dict()}, "scaler": torch.amp.GradScaler("cuda", enabled=False)
             .state_dict(), "rng": rng_state(), "world_size": 1}
    expected = (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist())
    save_checkpoint(tmp_path / "last.pt", state)
    loaded = load_checkpoint(tmp_path / "last.pt")
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    set_rng_state(loaded["rng"])
    assert (random.random(), np.random.standard_normal(3).tolist(), torch.rand(3).tolist()) == expected
    assert torch.equal(loaded["modules"]["m"]["weight"], module.weight.detach())
    restored = torch.optim.AdamW(torch.nn.Linear(4, 2).parameters(), lr=0.01)
    restored.load_state_dict(loaded["optimizers"]["m"])
    assert torch.equal(restored.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    assert loaded["config"]["train"]["betas"] == (0.5, 0.9) and loaded["step"] == 7


def _student_file(path: Path, config, state: dict[str, torch.Tensor] | None = None) -> Path:
    metadata = {"config": config if isinstance(config, str) else json.dumps(config)}
    save_file(state or {"w": torch.zeros(2)}, str(path), metadata=metadata)
    return path


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> Path:
    """A folder of malformed model files, one per way a model file can be wrong."""
    tmp_path = tmp_path_factory.mktemp("models")
    iresnet18 = create_model("iresnet18").state_dict()
    torch.save([1, 2, 3], tmp_path / "list.pt")
    torch.save({"a": torch.zeros(3)}, tmp_path / "wrong_keys.pt")
    torch.save({**iresnet18, "fc.weight": torch.zeros(5, 5)}, tmp_path / "wrong_shape.pt")
    torch.save({"a": 1}, tmp_path / "not_tensors.pt")
    torch.save({"state_dict": _WritesMarker(tmp_path / "pwned")}, tmp_path / "crafted.pt")
    (tmp_path / "garbage.pt").write_bytes(b"garbage" * 10)
    (tmp_path / "bad_header.safetensors").write_bytes((10**6).to_bytes(8, "little") + b"{}")
    _student_file(tmp_path / "bad_json.safetensors", "{not json")
    _student_file(tmp_path / "json_list.safetensors", "[1, 2]")
    _student_file(tmp_path / "no_architecture.safetensors", {"teacher": "dlib_resnet_v1"})
    _student_file(tmp_path / "unknown_teacher.safetensors", {"architecture": "dlib_resnet_v1", "teacher": "nope"})
    _student_file(tmp_path / "number_teacher.safetensors", {"architecture": "dlib_resnet_v1", "teacher": 5})
    _student_file(tmp_path / "wrong_student.safetensors", {"architecture": "dlib_resnet_v1"})
    (tmp_path / "completer").mkdir()
    _student_file(tmp_path / "completer" / "occlusion_estimator.safetensors", "{bad")
    for name, sidecar in (("list", "[1]"), ("size", '{"size": "big"}'), ("key", '{"colour": 1}')):
        (tmp_path / f"{name}.onnx").write_bytes(b"not onnx")
        (tmp_path / f"{name}.json").write_text(sidecar)
    os.mkfifo(tmp_path / "fifo.pt")
    (tmp_path / "zero.dat").symlink_to("/dev/zero")
    return tmp_path


@pytest.mark.parametrize("spec, reason", [
    ("iresnet50=list.pt", "not a state dict: the file holds a list"),
    ("iresnet50=wrong_keys.pt", "not an IResNet checkpoint of this depth (weights do not fit IResNet: 475 missing"),
    ("iresnet18=wrong_shape.pt", "fc.weight is (5, 5) in the file, (512, 25088) in the model"),
    ("iresnet18=not_tensors.pt", "not a state dict of tensors: 'a' holds a int"),
    ("iresnet18=crafted.pt", "refusing to load: the file holds more than tensors and plain data (GLOBAL posix.system)"),
    ("iresnet18=garbage.pt", "not a PyTorch checkpoint: Unsupported operand"),
    ("iresnet18=fifo.pt", "is a FIFO (named pipe), not a regular file"),
    ("iresnet18=missing.pt", "file not found"),
    ("dlib_resnet_v1=zero.dat", "is a character device (a symlink to /dev/zero), not a regular file"),
    ("dlib_resnet_v1=bad_header.safetensors", "not a safetensors file"),
    ("dlib_resnet_v1=list.pt", "bad integer control byte"),
    ("maskface_v1=bad_json.safetensors", "the config metadata is not valid JSON"),
    ("maskface_v1=json_list.safetensors", "the config metadata is JSON list, not an object of fields"),
    ("maskface_v1=no_architecture.safetensors", "not a maskface student"),
    ("maskface_v1=unknown_teacher.safetensors", "teacher in the metadata: unknown model 'nope'"),
    ("maskface_v1=number_teacher.safetensors", "teacher in the metadata is int, not a model name"),
    ("maskface_v1=wrong_student.safetensors", "weights do not fit DlibResNet: 117 missing"),
    ("dlib_resnet_v1+deocclusion_v1=completer", "the config metadata is not valid JSON"),
    ("list.onnx", "the ONNX embedder config is JSON list, not an object of fields"),
    ("size.onnx", "size must be a whole number of pixels"),
    ("key.onnx", "unexpected keyword argument 'colour'"),
    ("no_such_model", "unknown model 'no_such_model'"),
])
def test_malformed_model_files_give_a_one_line_reason(model_files, monkeypatch, spec, reason):
    monkeypatch.chdir(model_files)
    with pytest.raises(ModelFileError) as info:
        load_embedder(spec)
    assert reason in info.value.reason
    assert "\n" not in str(info.value)
    assert not (model_files / "pwned").exists()
