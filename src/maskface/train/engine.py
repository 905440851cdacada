"""The one training engine every recipe runs on.

A :class:`Recipe` says what to train (modules, optimiser groups, dataset, one step, a preview, the shipped
weights); the :class:`Engine` does the rest the same way for all of them:

* CPU or CUDA chosen at run time, float16 autocast and gradient scaling on CUDA (``train.amp``);
* ``torchrun`` data parallelism: gloo on CPU, NCCL on GPU, every trainable module wrapped in DDP, the global batch
  split over processes by :class:`~maskface.train.sampler.ResumableSampler`;
* seeds (and ``train.deterministic``), gradient clipping, warm-up then constant / cosine / step learning rates;
* atomic checkpoints every ``train.checkpoint_every`` steps (and on Ctrl-C) that ``--resume`` continues exactly;
* a JSON-lines log, TensorBoard scalars and image grids, PNG previews and a rich progress bar.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from abc import ABC, abstractmethod
from contextlib import nullcontext
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from maskface.io.files import atomic_write_text
from maskface.io.images import save_image
from maskface.models.runtime import select_device
from maskface.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from maskface.train.config import ConfigError, TrainConfig, to_dict
from maskface.train.sampler import ResumableSampler

console = Console(stderr=True)

#: Config keys a resumed run may change: they do not alter what is trained.
RESUMABLE_CHANGES = {"train.workers", "train.device", "train.log_every", "train.checkpoint_every", "train.image_every"}


class Recipe(ABC):
    """One training method. Subclasses set ``name`` and ``config_class`` (a dataclass with a ``train`` field)."""

    name: ClassVar[str]
    config_class: ClassVar[type]

    def __init__(self, config: Any, data: Path | None):
        self.config = config
        self.data = data

    @abstractmethod
    def build(self, device: torch.device) -> dict[str, nn.Module]:
        """Create the trainable modules (and any frozen helpers, kept on ``self``)."""

    @abstractmethod
    def optimizer_groups(self) -> dict[str, tuple[list[str], float]]:
        """``optimiser name -> (module names, learning rate)``."""

    @abstractmethod
    def dataset(self) -> Dataset:
        """The training set; items are addressed by ``(index, epoch)``."""

    @abstractmethod
    def step(self, batch: dict[str, torch.Tensor], engine: Engine) -> dict[str, float]:
        """One training step: forward, ``engine.backward`` and ``engine.optimizer_step``; returns scalars to log."""

    def preview(self, batch: dict[str, torch.Tensor], engine: Engine) -> torch.Tensor | None:
        """An ``R x C x 3 x H x W`` grid of images worth looking at (None: nothing to show)."""
        return None

    def export(self, engine: Engine) -> list[Path]:
        """Write the shipped weights into ``engine.out``; returns the files written."""
        return []


class Engine:
    """Runs a recipe for ``train.steps`` steps in ``out``, resuming from ``out/checkpoints/last.pt`` if asked."""

    def __init__(self, recipe: Recipe, out: Path, resume: bool = False):
        self.recipe, self.out, self.resume = recipe, Path(out), resume
        self.train: TrainConfig = recipe.config.train
        self.rank, self.world_size, self.local_rank = _distributed_env()
        self.distributed = self.world_size > 1
        if self.distributed:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if not dist.is_initialized():
                dist.init_process_group(backend)
            self.device = torch.device(f"cuda:{self.local_rank}") if backend == "nccl" else torch.device("cpu")
            if backend == "nccl":
                torch.cuda.set_device(self.device)
        else:
            self.device = select_device(self.train.device)
        self.amp = self.train.amp and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.step_index = 0
        self.checkpoint_file = self.out / "checkpoints" / "last.pt"

    # --- what recipes call -------------------------------------------------------------------------------------

    def module(self, name: str) -> nn.Module:
        """The module to run forward (DDP-wrapped when distributed)."""
        return self.wrapped[name]

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def optimizer_step(self, name: str) -> None:
        """Unscale, clip to ``train.grad_clip``, step and zero the gradients of one optimiser."""
        optimizer = self.optimizers[name]
        if self.train.grad_clip:
            self.scaler.unscale_(optimizer)
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.train.grad_clip)
        self.scaler.step(optimizer)
        optimizer.zero_grad(set_to_none=True)

    def gather(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """Each tensor concatenated over all processes (in rank order); itself in a single process."""
        if not self.distributed:
            return list(tensors)
        gathered = []
        for tensor in tensors:
            parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
            dist.all_gather(parts, tensor.contiguous())
            gathered.append(torch.cat(parts))
        return gathered

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # --- the run ----------------------------------------------------------------------------------------------

    def _setup(self) -> None:
        seed = self.train.seed
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        if self.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.modules = {k: m.to(self.device) for k, m in self.recipe.build(self.device).items()}
        # Modules without trainable parameters (memory banks) are checkpointed but not wrapped.
        self.wrapped = {k: DistributedDataParallel(m, device_ids=[self.device] if self.device.type == "cuda"
                                                   else None)
                        if self.distributed and any(p.requires_grad for p in m.parameters()) else m
                        for k, m in self.modules.items()}
        self.optimizers, self.schedulers = {}, {}
        for name, (module_names, lr) in self.recipe.optimizer_groups().items():
            params = [p for m in module_names for p in self.modules[m].parameters() if p.requires_grad]
            if self.train.optimizer == "sgd":
                optimizer = torch.optim.SGD(params, lr=lr, momentum=self.train.momentum, nesterov=True,
                                            weight_decay=self.train.weight_decay)
            else:
                optimizer = torch.optim.AdamW(params, lr=lr, betas=self.train.betas,
                                              weight_decay=self.train.weight_decay)
            self.optimizers[name] = optimizer
            self.schedulers[name] = torch.optim.lr_scheduler.LambdaLR(optimizer, self._lr_factor)

    def _lr_factor(self, step: int) -> float:
        t = self.train
        if t.warmup_steps and step < t.warmup_steps:
            return (step + 1) / t.warmup_steps
        if t.schedule == "cosine":
            progress = (step - t.warmup_steps) / max(1, t.steps - t.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        if t.schedule == "step":
            return t.step_gamma ** sum(step >= m * t.steps for m in t.step_milestones)
        return 1.0

    def _state(self) -> dict[str, Any]:
        return {"step": self.step_index, "recipe": self.recipe.name, "config": to_dict(self.recipe.config),
                "modules": {k: m.state_dict() for k, m in self.modules.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
                "scaler": self.scaler.state_dict(), "rng": rng_state(), "world_size": self.world_size}

    def _restore(self, state: dict[str, Any]) -> None:
        if state["recipe"] != self.recipe.name:
            raise ConfigError(str(self.checkpoint_file), f"is a {state['recipe']} checkpoint, not {self.recipe.name}")
        changed = [k for k in _changed_keys(state["config"], to_dict(self.recipe.config)) if k not in RESUMABLE_CHANGES]
        if changed:
            raise ConfigError(str(self.checkpoint_file), f"was trained with another config (differs in {changed}); "
                                                         "resume with the same config and overrides")
        for k, m in self.modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.step_index = state["step"]

    def save(self) -> None:
        if self.is_main:
            save_checkpoint(self.checkpoint_file, self._state())
        if self.distributed:
            dist.barrier()

    def _loader(self, dataset: Dataset) -> DataLoader:
        per_process = self.train.batch_size // self.world_size
        sampler = ResumableSampler(len(dataset), self.train.batch_size, self.train.seed, self.step_index,
                                   self.rank, self.world_size)
        workers = self.train.workers
        return DataLoader(dataset, batch_size=per_process, sampler=sampler, num_workers=workers,
                          pin_memory=self.device.type == "cuda", drop_last=False,
                          multiprocessing_context="forkserver" if workers else None,
                          persistent_workers=bool(workers), prefetch_factor=4 if workers else None)

    def run(self) -> dict[str, float]:
        """Train to ``train.steps``; returns the last logged scalars."""
        self.out.mkdir(parents=True, exist_ok=True)
        self._setup()
        if self.resume:
            self._restore(load_checkpoint(self.checkpoint_file))
        elif self.checkpoint_file.is_file():
            raise ConfigError(str(self.out), "already holds a training run: pass --resume to continue it, "
                                             "or choose another --out")
        if self.is_main:
            atomic_write_text(self.out / "config.json", json.dumps(to_dict(self.recipe.config), indent=2))
        writer = _tensorboard(self.out / "tensorboard") if self.is_main else None
        dataset = self.recipe.dataset()
        batches = iter(self._loader(dataset))
        last: dict[str, float] = {}
        progress = Progress(TextColumn(f"[bold]{self.recipe.name}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=console, disable=not self.is_main)
        try:
            with progress:
                task = progress.add_task("train", total=self.train.steps, completed=self.step_index, status="")
                while self.step_index < self.train.steps:
                    started = time.perf_counter()
                    batch = {k: v.to(self.device, non_blocking=True) for k, v in next(batches).items()}
                    for module in self.modules.values():
                        module.train()
                    scalars = self.recipe.step(batch, self)
                    self.scaler.update()
                    for scheduler in self.schedulers.values():
                        scheduler.step()
                    self.step_index += 1
                    scalars = self._mean_over_processes(scalars)
                    scalars["seconds_per_step"] = time.perf_counter() - started
                    progress.update(task, completed=self.step_index,
                                    status=" ".join(f"{k} {v:.3g}" for k, v in scalars.items() if k != "lr"))
                    if self.step_index % self.train.log_every == 0 or self.step_index == self.train.steps:
                        last = self._log(scalars, writer)
                    if writer is not None and self.step_index % self.train.image_every == 0:
                        self._preview(batch, writer)
                    if self.step_index % self.train.checkpoint_every == 0 or self.step_index == self.train.steps:
                        self.save()
        except KeyboardInterrupt:
            self.save()
            console.print(f"interrupted: checkpoint at step {self.step_index} in {self.checkpoint_file}; "
                          "run again with --resume to continue", markup=False)
            raise
        if self.is_main:
            files = self.recipe.export(self)
            for file in files:
                console.print(f"wrote {file}", markup=False)
        if writer is not None:
            writer.close()
        return last

    def _mean_over_processes(self, scalars: dict[str, float]) -> dict[str, float]:
        if not self.distributed or not scalars:
            return scalars
        values = torch.tensor(list(scalars.values()), dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        return dict(zip(scalars, (values / self.world_size).tolist()))

    def _log(self, scalars: dict[str, float], writer) -> dict[str, float]:
        scalars = dict(scalars)
        for name, optimizer in self.optimizers.items():
            scalars[f"lr/{name}"] = optimizer.param_groups[0]["lr"]
        if self.is_main:
            with open(self.out / "log.jsonl", "a") as handle:
                handle.write(json.dumps({"step": self.step_index, **scalars}) + "\n")
            if writer is not None:
                for key, value in scalars.items():
                    writer.add_scalar(key, value, self.step_index)
        return scalars

    def _preview(self, batch: dict[str, torch.Tensor], writer) -> None:
        for module in self.modules.values():
            module.eval()
        with torch.no_grad():
            grid = self.recipe.preview(batch, self)
        if grid is None:
            return
        picture = image_grid(grid)
        writer.add_image("preview", picture, self.step_index, dataformats="HWC")
        save_image(picture, self.out / "previews" / f"step-{self.step_index:06d}.png")


def image_grid(grid: torch.Tensor, gap: int = 2) -> np.ndarray:
    """An ``R x C x 3 x H x W`` tensor in [0, 1] as one uint8 picture with white gaps."""
    rows, cols, _, height, width = grid.shape
    picture = np.full((rows * (height + gap) - gap, cols * (width + gap) - gap, 3), 255, np.uint8)
    images = (grid.clamp(0, 1) * 255).round().byte().permute(0, 1, 3, 4, 2).cpu().numpy()
    for r in range(rows):
        for c in range(cols):
            picture[r * (height + gap): r * (height + gap) + height,
                    c * (width + gap): c * (width + gap) + width] = images[r, c]
    return picture


def _tensorboard(folder: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(folder))


def _distributed_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += _changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}")
    return changed
