"""``maskface train``: the mask-robust front end, and the recipes (de-occlusion, occlusion, distillation) that run
from a YAML config with key=value overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskface.apps.cli.options import COUNT_RANGE, SEED_RANGE, DataOpt, Workers, parse_folds
from maskface.apps.cli.output import out, shown

app = typer.Typer(help="Train maskface's models on your data.", no_args_is_help=True)

#: the exit status of a run stopped with Ctrl-C (its last checkpoint is kept for --resume)
INTERRUPTED = 130


@app.command("frontend")
def train_frontend_cmd(out_dir: Annotated[Path, typer.Option("--out", help="Folder for the model files.")],
                       data: DataOpt = None,
                       folds: Annotated[str, typer.Option(help="LFW View 2 folds whose people train.")] = "1-8",
                       max_images: Annotated[int, typer.Option(help="Training photos (drawn at random).",
                                                               **COUNT_RANGE)] = 2000,
                       seed: Annotated[int, typer.Option(help="Seed of the photo draw and the masks.", **SEED_RANGE)]
                       = 0,
                       only: Annotated[list[str] | None, typer.Option(
                           help="Train only these models (repeatable): detector, landmarks, classifier.")] = None,
                       workers: Workers = 0) -> None:
    """Train the mask-robust detector, 5-point landmark model and mask classifier (teacher-student on masks)."""
    from maskface.train.frontend import FrontendTrainConfig, train_frontend

    models = FrontendTrainConfig.models
    unknown = sorted(set(only or []) - set(models))
    if unknown:
        raise ValueError(f"--only: unknown model(s) {unknown}; choose from {list(models)}")
    config = FrontendTrainConfig(folds=tuple(parse_folds(folds)), max_images=max_images, seed=seed, workers=workers,
                                 models=tuple(m for m in models if m in (only or models)))
    record = train_frontend(data, out_dir, config)
    times = ", ".join(f"{k} {v:.0f} s" for k, v in record["timings_s"].items())
    out.print(f"trained on {record['photos']} photos ({times}); wrote {shown(out_dir)}")


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Recipe YAML (see configs/).")]
TrainOutOpt = Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, logs, TensorBoard, weights.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")]
Overrides = Annotated[list[str] | None, typer.Argument(help="Config overrides key=value, e.g. train.steps=500.")]


def _train_recipe(method: str, config_file: Path | None, data: Path | None, out_dir: Path, resume: bool,
                  overrides: list[str] | None) -> None:
    """Run a registered training recipe in ``out_dir`` and print its last logged values."""
    from maskface.train.config import load_config
    from maskface.train.engine import Engine
    from maskface.train.recipes import recipes

    recipe_class = recipes()[method]
    config = load_config(recipe_class.config_class, config_file, overrides or [])
    try:
        last = Engine(recipe_class(config, data), out_dir, resume=resume).run()
    except KeyboardInterrupt:
        raise typer.Exit(INTERRUPTED) from None
    summary = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if not k.startswith("lr/"))
    out.print(f"{method}: {config.train.steps} steps done ({summary}); run in {shown(out_dir)}")


@app.command("deocclusion")
def train_deocclusion_cmd(out_dir: TrainOutOpt, overrides: Overrides = None, config_file: ConfigOpt = None,
                          data: DataOpt = None, resume: ResumeOpt = False) -> None:
    """Train the de-occlusion generator (masked L1 + hinge GAN + teacher identity) on LFW training folds."""
    _train_recipe("deocclusion", config_file, data, out_dir, resume, overrides)


@app.command("occlusion")
def train_occlusion_cmd(out_dir: TrainOutOpt, overrides: Overrides = None, config_file: ConfigOpt = None,
                        data: DataOpt = None, resume: ResumeOpt = False) -> None:
    """Train the occlusion estimator (segmentation of synthetic masks) on LFW training folds."""
    _train_recipe("occlusion", config_file, data, out_dir, resume, overrides)


@app.command("distill")
def train_distill_cmd(out_dir: TrainOutOpt, overrides: Overrides = None, config_file: ConfigOpt = None,
                      data: DataOpt = None, resume: ResumeOpt = False) -> None:
    """Distil a masked-face student from the teacher, on faces completed by the de-occlusion model."""
    _train_recipe("distill", config_file, data, out_dir, resume, overrides)


@app.command("maskinv")
def train_maskinv_cmd(out_dir: TrainOutOpt, overrides: Overrides = None, config_file: ConfigOpt = None,
                      data: DataOpt = None, resume: ResumeOpt = False) -> None:
    """MaskInv: a student of the teacher's architecture learns the teacher's unmasked templates from masked faces."""
    _train_recipe("maskinv", config_file, data, out_dir, resume, overrides)
