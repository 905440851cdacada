"""Masked training faces completed once by the frozen de-occlusion model, each with the frozen teacher's embedding
of its clean original.

On a CPU, completing every batch anew takes 1.2 s of a 2.4 s distillation step (batch 32). The distillation recipe
therefore draws from a bank of ``variants`` differently masked copies of every face, built once and cached on disk
(keyed by the faces, the mask settings, the seed and both frozen models' weights). ``bank_variants: 0`` in the
recipe goes back to masking and completing online.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from maskface.data.masked_chips import MaskedChips
from maskface.io.files import atomic_write_text
from maskface.io.locations import cache_dir
from maskface.models.embedder import module_fingerprint


class CompletedBank(Dataset):
    """``(index, epoch) -> {"input", "target", "label", "index"}``: a completed masked chip (float in [0, 1]), the
    teacher's embedding of the clean chip, and the identity label. The epoch is ignored: the bank is fixed."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        meta = json.loads((self.folder / "meta.json").read_text())
        self.names: list[str] = meta["names"]
        self.inputs = np.load(self.folder / "inputs.npy", mmap_mode="r")
        self.targets = np.load(self.folder / "targets.npy", mmap_mode="r")
        self.labels = np.load(self.folder / "labels.npy", mmap_mode="r")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item: tuple[int, int] | int) -> dict[str, torch.Tensor]:
        index = item[0] if isinstance(item, tuple) else item
        chip = torch.from_numpy(np.ascontiguousarray(self.inputs[index].transpose(2, 0, 1))).float() / 255.0
        return {"input": chip, "target": torch.from_numpy(np.array(self.targets[index])),
                "label": torch.tensor(int(self.labels[index])), "index": torch.tensor(index)}

    def __getstate__(self) -> dict:  # DataLoader workers reopen the memory maps
        return {"folder": self.folder}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["folder"])


class _Variants(Dataset):
    """Item ``i`` is face ``i % N`` masked with epoch ``i // N``'s draw: ``variants`` masks per face."""

    def __init__(self, faces: MaskedChips, variants: int):
        self.faces, self.variants = faces, variants

    def __len__(self) -> int:
        return len(self.faces) * self.variants

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.faces[(i % len(self.faces), i // len(self.faces))]


def bank_folder(faces: MaskedChips, variants: int, deoccluder: nn.Module | None, teacher: nn.Module,
                occlusion_map: str, root: Path | None = None) -> Path:
    """Where the bank for these faces, masks and frozen models lives (a content key, so nothing stale is read)."""
    key = json.dumps({"faces": hashlib.sha256("\n".join(faces.chips.keys).encode()).hexdigest(),
                      "masks": asdict(faces.config), "seed": faces.seed, "variants": variants,
                      "deoccluder": module_fingerprint(deoccluder) if deoccluder is not None else "none",
                      "teacher": module_fingerprint(teacher), "map": occlusion_map}, sort_keys=True)
    return (root or cache_dir() / "distill") / hashlib.sha256(key.encode()).hexdigest()[:16]


@torch.no_grad()
def build_completed_bank(faces: MaskedChips, variants: int, complete: Callable[[torch.Tensor, torch.Tensor],
                                                                               torch.Tensor],
                         teacher: nn.Module, device: torch.device, folder: Path, workers: int = 1,
                         batch_size: int = 32) -> CompletedBank:
    """Mask every face ``variants`` times, complete it with ``complete(masked, true_occlusion)`` (what the student
    sees) and embed its clean original with the teacher, into ``folder`` (written aside, then renamed, so an
    interrupted build leaves nothing behind); returns the bank, reusing one that is already there."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    folder = Path(folder)
    if (folder / "meta.json").is_file():
        return CompletedBank(folder)
    items = _Variants(faces, variants)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    size = faces.chips.chip(0).shape[0]
    inputs = np.lib.format.open_memmap(tmp / "inputs.npy", "w+", np.uint8, (len(items), size, size, 3))
    targets = labels = None
    loader = DataLoader(items, batch_size=batch_size, num_workers=workers,
                        multiprocessing_context="forkserver" if workers else None)
    progress = Progress(TextColumn("[bold]completing training faces"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn())
    with progress:
        task = progress.add_task("bank", total=len(items))
        start = 0
        for batch in loader:
            masked = batch["masked"].to(device)
            completed = complete(masked, batch["occlusion"].to(device))
            embedding = teacher(batch["clean"].to(device) * 255).float().cpu().numpy()
            if targets is None:
                targets = np.lib.format.open_memmap(tmp / "targets.npy", "w+", np.float32,
                                                    (len(items), embedding.shape[1]))
                labels = np.lib.format.open_memmap(tmp / "labels.npy", "w+", np.int64, (len(items),))
            end = start + len(masked)
            chips = (completed.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            inputs[start:end], targets[start:end], labels[start:end] = chips, embedding, batch["label"].numpy()
            start = end
            progress.advance(task, len(masked))
    for array in (inputs, targets, labels):
        array.flush()
    atomic_write_text(tmp / "meta.json", json.dumps({"names": list(faces.names), "variants": variants,
                                                     "faces": len(faces)}))
    if (folder / "meta.json").is_file():  # another process finished first
        shutil.rmtree(tmp)
    else:
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    return CompletedBank(folder)
