"""``maskface eval``: verification on LFW (plain or cross-fitted) and on any pairs file, pooling and comparing
runs, and measurements of de-occlusion and of the face front end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from maskface.apps.cli.options import (
    COUNT_RANGE,
    CacheOpt,
    DataOpt,
    DeoccluderOpt,
    DeviceOpt,
    LfwDataOpt,
    MaskTypeOpt,
    ModelOpt,
    OracleOpt,
    Scenario,
    ScenarioOpt,
    SeedOpt,
    Workers,
    face_options,
    parse_folds,
)
from maskface.apps.cli.output import err, out, shown
from maskface.defaults import DEFAULT_MODEL
from maskface.errors import DatasetError

if TYPE_CHECKING:
    from maskface.face.pipeline import FaceConfig

app = typer.Typer(help="Evaluate on standard protocols: tables, JSON and plots.", no_args_is_help=True)

ReportsOut = Annotated[Path, typer.Option("--out", help="Folder for the reports (one per scenario).")]


@app.command("lfw")
@face_options("mask_robust", "masked_scan")
def eval_lfw(out_dir: ReportsOut, data: LfwDataOpt = None, model: ModelOpt = DEFAULT_MODEL,
             scenario: ScenarioOpt = [Scenario.uu],  # noqa: B006
             folds: Annotated[str, typer.Option(help="View 2 folds to test, e.g. 1-10 or 6-10.")] = "1-10",
             seed: SeedOpt = 0, mask_type: MaskTypeOpt = None, oracle_alignment: OracleOpt = False,
             identify: Annotated[bool, typer.Option("--identification", help="Also rank-1/5 and CMC: unmasked "
                                                    "gallery, masked probes.")] = False,
             workers: Workers = 0, cache: CacheOpt = None, device: DeviceOpt = None, *, face: FaceConfig) -> None:
    """LFW View 2 (identity-disjoint 10 folds) in the U-U, M-U and M-M scenarios."""
    _lfw_runs(out_dir, data, [(model, parse_folds(folds))], scenario, seed, mask_type, oracle_alignment, identify,
              workers, cache, device, face)


@app.command("crossfit")
@face_options("mask_robust", "masked_scan")
def eval_crossfit(out_dir: ReportsOut,
                  half: Annotated[list[str], typer.Option(
                      help="MODEL@FOLDS: the model that scores these folds' pairs, e.g. "
                           "'maskface_v1=runs/A/student.safetensors@6-10'. Give one per half.")],
                  data: LfwDataOpt = None, scenario: ScenarioOpt = [Scenario.uu],  # noqa: B006
                  seed: SeedOpt = 0, mask_type: MaskTypeOpt = None, oracle_alignment: OracleOpt = False,
                  workers: Workers = 0, cache: CacheOpt = None, device: DeviceOpt = None, *,
                  face: FaceConfig) -> None:
    """Cross-fitted LFW View 2: each half of the folds scored by a model trained on the other half's people, then
    one 10-fold report (the honest protocol for trained models)."""
    halves = []
    for item in half:
        model, at, folds = item.rpartition("@")
        if not at or not model:
            raise ValueError(f"--half {item!r}: expected MODEL@FOLDS, e.g. maskface_v1@6-10")
        halves.append((model, parse_folds(folds)))
    _lfw_runs(out_dir, data, halves, scenario, seed, mask_type, oracle_alignment, False, workers, cache, device,
              face)


def _lfw_runs(out_dir: Path, data: Path | None, models: list[tuple[str, list[int]]], scenarios: list[Scenario],
              seed: int, mask_type: str | None, oracle_alignment: bool, identify: bool, workers: int,
              cache: Path | None, device: str | None, face: FaceConfig) -> None:
    """Run and print LFW verification (each ``(model, folds)`` part scored by its model), then identification."""
    from maskface.data.lfw import LFW
    from maskface.eval.protocol import MaskSetting
    from maskface.eval.report import markdown_table
    from maskface.eval.runs import identification_run, lfw_parts, verification_runs

    lfw = LFW.find(data)
    setting = MaskSetting(seed, mask_type, oracle_alignment)
    parts = lfw_parts(lfw, models, face, workers, cache, device)
    out.print(shown(markdown_table(verification_runs(parts, [s.value for s in scenarios], setting, out_dir))))
    if identify:
        result = identification_run(lfw, parts[0][1], setting, out_dir)
        out.print(f"identification: rank-1 {result['rank1']:.2%}, rank-5 {result['rank5']:.2%} "
                  f"({result['probes']} masked probes, {result['gallery']} gallery)")


@app.command("deocclusion")
def eval_deocclusion(data: DataOpt = None,
                     out_file: Annotated[Path, typer.Option("--out", help="JSON report.")] = Path("deocclusion.json"),
                     picture: Annotated[Path | None, typer.Option(help="Grid of completed faces (PNG).")] = None,
                     real: Annotated[Path | None, typer.Option(help="Folder of real masked photos for the grid.")]
                     = None,
                     model: DeoccluderOpt = "deocclusion_v1",
                     folds: Annotated[str, typer.Option(help="Held-out LFW View 2 folds.")] = "6-10",
                     limit: Annotated[int, typer.Option(help="Masked faces measured (evenly spaced).",
                                                        **COUNT_RANGE)] = 2000,
                     seed: SeedOpt = 0, workers: Workers = 0, device: DeviceOpt = None) -> None:
    """Completion quality on held-out LFW people: PSNR/SSIM in the mask, teacher similarity, estimator IoU."""
    from maskface.apps.deocclude import real_examples
    from maskface.data.lfw import LFW
    from maskface.eval.completion import completion_on_lfw, picture_rows
    from maskface.eval.plots import plot_deocclusion
    from maskface.io.files import atomic_write_text

    run = completion_on_lfw(LFW.find(data), parse_folds(folds), model, seed, limit, workers, device)
    atomic_write_text(out_file, json.dumps(run.report, indent=2) + "\n")
    if picture:
        found = real_examples(real, run.deoccluder, count=6, workers=workers) if real else {}
        plot_deocclusion(picture_rows(run.images), found, picture)
    report = run.report
    for name in ("masked_input", "completed_true_map", "completed_estimated_map"):
        m = report[name]
        out.print(f"{name:24s} PSNR in mask {m['psnr_in_mask_db']:5.2f} dB  SSIM in mask {m['ssim_in_mask']:.3f}")
    for name, value in report["teacher_cosine_to_original"].items():
        out.print(f"teacher cosine to original, {name:24s} {value:.4f}")
    e = report["estimator"]
    out.print(f"estimator: mean IoU {e['mean_iou']:.4f}, pooled {e['pooled_iou']:.4f}; masked judged masked "
              f"{e['masked_faces_judged_masked']:.2%}, clean judged masked {e['clean_faces_judged_masked']:.2%}")
    out.print(f"wrote {shown(out_file)}" + (f" and {shown(picture)}" if picture else ""))


@app.command("pairs")
@face_options("mask_robust", "masked_scan")
def eval_pairs(pairs_file: Annotated[Path, typer.Option("--pairs", help="LFW- or MFR2-format pairs file.")],
               root: Annotated[Path, typer.Option(help="Folder with <Name>/<Name>_NNNN.<ext> images.")],
               out_dir: Annotated[Path, typer.Option("--out", help="Folder for the report.")],
               labels: Annotated[Path | None, typer.Option(help="MFR2 labels file (Name, n, masktype): "
                                                                "adds results split by mask status.")] = None,
               model: ModelOpt = DEFAULT_MODEL, scenario: Annotated[Scenario, typer.Option(
                   help="Synthetic masks to add (U-U: use the images as they are).")] = Scenario.uu,
               seed: SeedOpt = 0, mask_type: MaskTypeOpt = None, oracle_alignment: OracleOpt = False,
               workers: Workers = 0, cache: CacheOpt = None, device: DeviceOpt = None, *,
               face: FaceConfig) -> None:
    """Any pairs file (LFW or MFR2 format); with MFR2 labels, also per mask status (U-U, M-U, M-M)."""
    from maskface.data.mfr2 import read_mfr2_pairs
    from maskface.eval.protocol import MaskSetting
    from maskface.eval.report import markdown_table
    from maskface.eval.runs import mask_status_runs, model_cache, pairs_run

    pairs = read_mfr2_pairs(pairs_file, root, labels)
    store = model_cache(model, face, workers, cache, device)
    setting = MaskSetting(seed, mask_type, oracle_alignment)
    reports = [pairs_run(pairs, scenario.value, store, setting, out_dir)]
    if labels is not None:
        groups, skipped = mask_status_runs(pairs, scenario.value, store, setting, out_dir)
        reports += groups
        for note in skipped:
            err.print(shown(note), markup=False)
    out.print(shown(markdown_table(reports)))


@app.command("frontend")
def eval_frontend(out_file: Annotated[Path, typer.Option("--out", help="JSON file for the measurements.")],
                  data: DataOpt = None,
                  folds: Annotated[str, typer.Option(help="Held-out LFW View 2 folds.")] = "9-10",
                  max_images: Annotated[int, typer.Option(help="Photos of held-out people to mask.", **COUNT_RANGE)]
                  = 600,
                  real: Annotated[Path | None, typer.Option(help="Folder of real masked photos (e.g. rwmfd).")]
                  = None,
                  sheet: Annotated[Path | None, typer.Option(help="Contact sheet PNG of the real photos.")] = None,
                  seed: SeedOpt = 1, workers: Workers = 0) -> None:
    """Detection rate and landmark error on masked faces: synthetic masked LFW, and real masked photos."""
    from maskface.eval.frontend import real_photos, synthetic_lfw
    from maskface.io.files import atomic_write_text

    result = {"synthetic_lfw": synthetic_lfw(data, parse_folds(folds), max_images, seed, workers)}
    if real is not None:
        result["real"] = real_photos(real, workers, sheet)
    atomic_write_text(out_file, json.dumps(result, indent=2) + "\n")
    out.print(json.dumps(result, indent=2))


@app.command("pool")
def eval_pool(halves: Annotated[list[Path], typer.Argument(
                  help="Folders of `maskface eval lfw --folds` runs on disjoint folds (e.g. a model trained on folds "
                       "1-5 tested on 6-10, and one trained on 6-10 tested on 1-5), each holding scenario folders.")],
              out_dir: Annotated[Path, typer.Option("--out", help="Folder for the pooled reports.")]) -> None:
    """Cross-fitting from finished runs: pool each scenario's scores into one 10-fold report, as `eval crossfit`
    would have computed them in one go."""
    from maskface.eval.report import markdown_table
    from maskface.eval.runs import pool_folders

    out.print(shown(markdown_table(pool_folders(halves, out_dir))))


@app.command("compare")
def eval_compare(runs: Annotated[list[Path], typer.Argument(help="Run folders written by maskface eval.")],
                 out_dir: Annotated[Path, typer.Option("--out", help="Folder for compare.md and plots.")]) -> None:
    """Several runs in one Markdown table and one ROC/DET plot."""
    from maskface.eval.report import compare_runs

    missing = [r for r in runs if not (r / "report.json").is_file()]
    if missing:
        raise DatasetError(str(missing[0]), "not a run folder (no report.json)")
    out.print(shown(compare_runs(runs, out_dir)))
