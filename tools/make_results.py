"""Make every results table from the evaluation runs under ``docs/results/``: the page ``docs/results.md``, the
tables of the model card ``docs/models.md`` (between ``<!-- make_results: NAME -->`` and ``<!-- /make_results -->``)
and the ROC/DET plot ``docs/results/all``.

Each run folder was written by ``maskface eval``; the commands that made them are listed in the page itself.
``tests/test_results.py`` checks that the committed pages equal what this script makes.
Run: ``python tools/make_results.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from maskface.defaults import DEFAULT_MODEL
from maskface.eval.report import COLUMNS, compare_runs, report_value, run_label
from maskface.face.pipeline import PIPELINE_VERSION

DOCS = Path(__file__).resolve().parents[1] / "docs"
RUNS = DOCS / "results"

#: What changed in each version of the face front end (``PIPELINE_VERSION``, recorded in every report.json).
FRONT_END_VERSIONS = {
    2: "masked-face detector trained at C = 5",
    3: "masked-face detector retrained at C = 20 (more masked faces found, fewer false fires)",
    4: "a 64-pixel, low-rank masked-face detector (C = 40): a quarter of the extra scan's cost",
    5: "the masked-face detector scans only photos whose centre HOG leaves without a face",
    6: "YuNet (score threshold 0.65) finds faces and their five points; chips for every geometry are cut from them",
}


#: The recognisers measured on the current front end, each in ``docs/results/lfw-<model>`` (full View 2, realistic
#: and oracle alignment, with masked-probe identification).
RECOGNISERS = ("dlib_resnet_v1", "omz_reid_0095", "sface", "omz_sface_ensemble")


def _report(folder: str, scenario: str) -> dict:
    return json.loads((RUNS / folder / scenario / "report.json").read_text())


def _pct(value: float, digits: int = 2) -> str:
    """A rate as the model card writes it: ``93.20 %``."""
    return f"{value:.{digits}%}".replace("%", " %")


def _version_note(reports: list[dict]) -> list[str]:
    """A line saying which older front end made these runs, when any was made before the current one."""
    old = sorted({report_value(r, "pipeline") for r in reports} - {PIPELINE_VERSION})
    if not old:
        return []
    names = ", ".join(f"v{v} ({FRONT_END_VERSIONS[v]})" for v in old)
    return [f"*Made with the front end {names}, not the current v{PIPELINE_VERSION}; see "
            "[front-end versions](#front-end-versions).*", ""]


#: Tables of single runs: (section title, commands, run folders under docs/results as folder/scenario).
RUN_SECTIONS = [
    (f"The recognisers on the default front end (v{PIPELINE_VERSION}, YuNet), realistic alignment",
     [f"maskface eval lfw --data ../shared/data -m {model} -s U-U -s M-U -s M-M --identification "
      f"--out docs/results/lfw-{model}" for model in RECOGNISERS],
     [f"lfw-{model}/{scenario}" for model in RECOGNISERS for scenario in ("U-U", "M-U", "M-M")]),
    (f"The recognisers on the default front end (v{PIPELINE_VERSION}), oracle alignment (landmarks of the unmasked "
     "original)",
     [f"maskface eval lfw --data ../shared/data -m {model} -s M-U -s M-M --oracle-alignment "
      f"--out docs/results/lfw-{model}" for model in RECOGNISERS],
     [f"lfw-{model}/{scenario}-oracle" for model in RECOGNISERS for scenario in ("M-U", "M-M")]),
    ("Teacher, front end v5 (dlib HOG and the mask-robust cascade), realistic alignment",
     ["maskface eval lfw --data ../shared/data -m dlib_resnet_v1 -s U-U -s M-U -s M-M --identification "
      "--detector hog --out docs/results/lfw-dlib_resnet_v1-robust  # front end v5"],
     ["lfw-dlib_resnet_v1-robust/U-U", "lfw-dlib_resnet_v1-robust/M-U", "lfw-dlib_resnet_v1-robust/M-M"]),
    ("MaskInv's template distillation on SFace, interim (step 200 of 650): trained on the people of folds 1-5, "
     "tested on held-out folds 6-10",
     ["maskface train maskinv --config configs/maskinv.yaml --data ../shared/data --out runs/maskinv-kd3000-f1-5 "
      "train.steps=650 loss.head_weight=0 loss.template_kd=3000  # stopped at step 200 for session time",
      "# the student of checkpoints/last.pt (step 200, lr still near its peak), saved with "
      "maskface.models.weights.save_weights as runs/maskinv-kd3000-f1-5/student-step200.safetensors",
      "maskface eval lfw --data ../shared/data --folds 6-10 -m sface -s U-U -s M-U -s M-M "
      "--out docs/results/lfw-folds6-10-sface",
      "maskface eval lfw --data ../shared/data --folds 6-10 "
      "-m sface=runs/maskinv-kd3000-f1-5/student-step200.safetensors -s U-U -s M-U -s M-M "
      "--out docs/results/lfw-folds6-10-maskinv-kd3000  # no --identification: it searches all of LFW, "
      "folds 1-5 too"],
     [f"lfw-folds6-10-{run}/{scenario}" for run in ("sface", "maskinv-kd3000") for scenario in ("U-U", "M-U", "M-M")]),
    ("maskface_v1 against the teacher: held-out folds 6-10, front end v5",
     [f"maskface eval lfw --data ../shared/data --folds 6-10 -m {model} -s M-U -s M-M "
      f"--out docs/results/v5-folds6-10-{model}  # front end v5" for model in ("dlib_resnet_v1", "maskface_v1")],
     [f"v5-folds6-10-{model}/{scenario}" for model in ("dlib_resnet_v1", "maskface_v1")
      for scenario in ("M-U", "M-M")]),
]
#: What the held-out section measures (the other sections explain themselves).
HELD_OUT_TEXT = ("The shipped models (`deocclusion_v1` and the student) trained on the people of View 2 folds 1-5; "
                 "here they and the teacher score the 3,000 pairs of folds 6-10 (5 folds, thresholds chosen on the "
                 "other four), with the cascade front end on the masked photo.")


def _run_table(runs: list[str]) -> list[str]:
    """One row per run: every metric column and the detectors that found the masked side's faces."""
    header = "| run | " + " | ".join(t for _, t, _ in COLUMNS) + " | faces by detector (masked side) |"
    lines = [header, "|---|" + "---:|" * len(COLUMNS) + "---|"]
    for run in runs:
        report = json.loads((RUNS / run / "report.json").read_text())
        cells = " | ".join(fmt.format(report[k]) for k, _, fmt in COLUMNS)
        side = report["detectors"]["a"]
        detectors = ", ".join(f"{k} {v}" for k, v in sorted(side.items(), key=lambda kv: -kv[1]))
        lines.append(f"| [{run_label(report)}](results/{run}/report.md) | {cells} | {detectors} |")
    return lines


def _run_sections() -> list[str]:
    lines = []
    for title, commands, listed in RUN_SECTIONS:
        runs = [run for run in listed if (RUNS / run / "report.json").is_file()]
        missing = [f"`{run}`" for run in listed if run not in runs]
        reports = [json.loads((RUNS / run / "report.json").read_text()) for run in runs]
        intro = [HELD_OUT_TEXT, ""] if title.startswith("maskface_v1") else []
        command = [f"`{commands[0]}`"] if len(commands) == 1 else ["```bash", *commands, "```"]
        lines += [f"## {title}", "", *intro, *command, "", *_version_note(reports), *_run_table(runs)]
        if missing:
            lines += ["", f"Not yet measured: {', '.join(missing)}."]
        lines += _identification_lines(runs)
        lines.append("")
    return lines


def _identification_lines(runs: list[str]) -> list[str]:
    """Masked-probe identification of each run folder of a realistic-alignment section, where it was measured."""
    folders = list(dict.fromkeys(run.split("/")[0] for run in runs if not run.endswith("-oracle")))
    found = [(f, json.loads((RUNS / f / "identification.json").read_text())) for f in folders
             if (RUNS / f / "identification.json").is_file()]
    if not found:
        return []
    first = found[0][1]
    lines = ["", f"Identification: an unmasked gallery of {first['gallery']} people (LFW people with at least 2 "
                 f"images), {first['probes']} masked probes (realistic alignment).", "",
             "| run | rank-1 | rank-5 | failed images |", "|---|---:|---:|---:|"]
    for folder, data in found:
        lines.append(f"| `{data['model']}` ({folder}) | **{data['rank1']:.2%}** | {data['rank5']:.2%} | "
                     f"{data['failures']} |")
    return lines


def _held_out_table() -> list[str]:
    """v5's mask-robust cascade trained on LFW people of folds 1-8: compare it with YuNet on folds 9-10 alone."""
    runs = {f"front end v{PIPELINE_VERSION} (YuNet)": "lfw-dlib_resnet_v1",
            "front end v5 (HOG cascade)": "lfw-dlib_resnet_v1-robust"}
    rows = []
    for scenario in ("U-U", "M-U", "M-M"):
        cells = []
        for folder in runs.values():
            folds = {f["fold"]: f["accuracy"] for f in _report(folder, scenario)["folds"]}
            cells.append(f"{(folds[9] + folds[10]) / 2:.2%}")
        rows.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return ["## Held-out folds only", "",
            "Front end v5's mask-robust cascade was trained on LFW people of View 2 folds 1-8 (with masks drawn the "
            "same way as the test masks), so the two front ends are also compared on folds 9-10 alone (YuNet "
            "trained on no LFW photo): the teacher's mean accuracy of those two folds, thresholds as above.", "",
            "| scenario | " + " | ".join(runs) + " |", "|---|---:|---:|", *rows, ""]


def _deocclusion_rows() -> tuple[dict, list[str], str]:
    """``deocclusion.json``, its table (PSNR, SSIM, teacher cosine per input) and the occlusion estimator's line."""
    r = json.loads((RUNS / "deocclusion.json").read_text())
    cos, est = r["teacher_cosine_to_original"], r["estimator"]
    inputs = [("masked input", "masked_input", "masked"), ("completed, true map", "completed_true_map", None),
              ("completed, estimated map", "completed_estimated_map", None)]
    metrics = [("PSNR inside the mask (dB)", lambda key, _: f"{r[key]['psnr_in_mask_db']:.2f}"),
               ("SSIM inside the mask", lambda key, _: f"{r[key]['ssim_in_mask']:.3f}"),
               ("teacher cosine similarity to the original", lambda key, c: f"{cos[c or key]:.4f}")]
    table = [f"| held-out folds {r['folds'][0]}-{r['folds'][-1]}, {r['faces']} masked chips (mask seed "
             f"{r['mask_seed']}) | " + " | ".join(name for name, _, _ in inputs) + " |", "|---|---:|---:|---:|",
             *[f"| {title} | " + " | ".join(cell(key, c) for _, key, c in inputs) + " |" for title, cell in metrics]]
    line = (f"Occlusion estimator on the same masked chips: **mean IoU {est['mean_iou']:.4f}** (median "
            f"{est['median_iou']:.4f}, pooled {est['pooled_iou']:.4f}; {est['share_iou_at_least_0.9']:.1%} of faces "
            f"at IoU >= 0.9; target 0.9); it calls {est['masked_faces_judged_masked']:.2%} of them masked and "
            f"{est['clean_faces_judged_masked']:.2%} of {est['clean_faces']} unmasked held-out chips masked.")
    return r, table, line


def _deocclusion_section() -> list[str]:
    """Completion quality of deocclusion_v1 on held-out people (``maskface eval deocclusion``)."""
    r, table, line = _deocclusion_rows()
    folds = f"{r['folds'][0]}-{r['folds'][-1]}"
    return ["## De-occlusion (deocclusion_v1), held-out people", "",
            f"`maskface eval deocclusion --data ../shared/data --folds {folds} --limit {r['faces']} "
            "--real ../shared/data/rwmfd --out docs/results/deocclusion.json --picture docs/img/deocclusion.png`",
            "", f"{r['faces']} chips of LFW people of View 2 folds {folds} (never seen in training), each with a "
            f"synthetic mask drawn from (seed {r['mask_seed']}, `<person>/<file>`). PSNR and SSIM are measured "
            "over the mask's pixels against the unmasked original; the teacher's cosine similarity compares "
            "embeddings of the face and of the unmasked original.", "", *table, "",
            f"The completed face is closer to the original than the masked input for "
            f"{r['teacher_cosine_improved_share']['completed_estimated_map']:.1%} of faces (estimated map).", "",
            line, "", "![original / masked / completed / estimated map, and real masked photos](img/deocclusion.png)",
            ""]


#: (row label, folder under docs/results) of the cross-fitted comparison: each folder pools a folds 6-10 run and a
#: folds 1-5 run (``maskface eval pool``, CROSSFIT_COMMANDS), realistic scenarios and ``-oracle`` ones.
CROSSFIT = [
    ("teacher on masked faces", "crossfit-teacher"),
    ("teacher on completed faces", "crossfit-teacher+deocclusion"),
    ("student, instance loss only", "crossfit-student-instance"),
    ("student, instance + pair + triplet (RKD)", "crossfit-student-rkd"),
    ("student, full method (+ identity-centred soft term)", "crossfit-student-full"),
    ("**maskface_v1**: full student + teacher on completed faces, averaged", "crossfit-maskface_v1"),
]
#: The half runs each cross-fitted folder pools (folds 6-10 scored by models of folds 1-5, and the reverse).
CROSSFIT_HALVES = {
    "crossfit-teacher": "dlib_resnet_v1",
    "crossfit-teacher+deocclusion": "dlib_resnet_v1+deocclusion_v1",
    "crossfit-student-instance": "maskface_v1-instance",
    "crossfit-student-rkd": "maskface_v1-rkd",
    "crossfit-student-full": "maskface_v1-full",
    "crossfit-maskface_v1": "maskface_v1",
}

#: How the models of the folds 6-10 half were trained and every half run and pool was made.
CROSSFIT_COMMANDS = [
    "# models of the other half: trained on the people of folds 6-10 (configs as shipped, folds overridden)",
    "maskface train occlusion --config configs/occlusion.yaml --data ../shared/data --out runs/occlusion-f6-10 "
    "'data.folds=[6,7,8,9,10]'",
    "maskface train deocclusion --config configs/deocclusion.yaml --data ../shared/data --out runs/deocclusion-f6-10 "
    "'data.folds=[6,7,8,9,10]'",
    "mkdir runs/deoccluder-f6-10 && cp runs/occlusion-f6-10/occlusion_estimator.safetensors "
    "runs/deocclusion-f6-10/deocclusion_generator.safetensors runs/deoccluder-f6-10/",
    "maskface train distill --config configs/distill.yaml --data ../shared/data --out runs/distill-B-ensemble "
    "'data.folds=[6,7,8,9,10]' deocclusion=deocclusion_v1=runs/deoccluder-f6-10",
    "# the ablation students (embedding completed faces alone): the same command with --out runs/distill-B-full "
    "masked_embedding=student, --out runs/distill-B-instance loss.soft=0 loss.rkd_distance=0 loss.rkd_angle=0 "
    "masked_embedding=student, "
    "--out runs/distill-B-rkd loss.soft=0 masked_embedding=student; and for the folds 1-5 half without the "
    "data.folds and deocclusion overrides (runs/distill-A-*)",
    "# each half, once with -s U-U -s M-U -s M-M and once with -s M-U -s M-M --oracle-alignment",
    "maskface eval lfw --data ../shared/data --folds 1-5 -m dlib_resnet_v1 "
    "--out docs/results/lfw-folds1-5-dlib_resnet_v1",
    "maskface eval lfw --data ../shared/data --folds 1-5 -m dlib_resnet_v1+deocclusion_v1=runs/deoccluder-f6-10 "
    "--out docs/results/lfw-folds1-5-dlib_resnet_v1+deocclusion_v1",
    "maskface eval lfw --data ../shared/data --folds 1-5 -m maskface_v1=runs/distill-B-ensemble/student.safetensors "
    "--out docs/results/lfw-folds1-5-maskface_v1",
    "# ablation students: -m maskface_v1=runs/distill-B-{full,instance,rkd}/student.safetensors "
    "--out docs/results/lfw-folds1-5-maskface_v1-{full,instance,rkd}; folds 6-10: the shipped models "
    "(dlib_resnet_v1+deocclusion_v1, maskface_v1) and runs/distill-A-*, --out docs/results/lfw-folds6-10-*",
    "# pooled: a folds 6-10 run (models of folds 1-5) with the folds 1-5 run (models of folds 6-10)",
    "maskface eval pool docs/results/lfw-folds6-10-dlib_resnet_v1 docs/results/lfw-folds1-5-dlib_resnet_v1 "
    "--out docs/results/crossfit-teacher",
    "maskface eval pool docs/results/lfw-folds6-10-dlib_resnet_v1+deocclusion_v1 "
    "docs/results/lfw-folds1-5-dlib_resnet_v1+deocclusion_v1 --out docs/results/crossfit-teacher+deocclusion",
    "maskface eval pool docs/results/lfw-folds6-10-maskface_v1 docs/results/lfw-folds1-5-maskface_v1 "
    "--out docs/results/crossfit-maskface_v1",
    "# and likewise lfw-folds*-maskface_v1-{full,instance,rkd} -> crossfit-student-{full,instance,rkd}",
]


def _crossfit_cell(folder: str, scenario: str) -> dict | None:
    path = RUNS / folder / scenario / "report.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _ablation_tables() -> list[str]:
    """The ablation of DESIGN.md section 1.1, cross-fitted over all 10 folds: realistic and oracle alignment
    (accuracy mean ± std over folds / EER / FNMR at FMR 1e-3, per scenario)."""
    lines = []
    for oracle in (False, True):
        table, reports = [], []
        for label, folder in CROSSFIT:
            cells = []
            for scenario in ("U-U", "M-U", "M-M"):
                r = _crossfit_cell(folder, scenario + ("-oracle" if oracle and scenario != "U-U" else ""))
                reports += [r] if r else []
                cells.append(f"{r['accuracy_mean']:.2%} ± {r['accuracy_std']:.2%} / {r['eer']:.2%} / "
                             f"{r['fnmr_at_fmr_1e-3']:.2%}" if r else "-")
            table.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += [f"**{'Oracle' if oracle else 'Realistic'} alignment** (accuracy mean ± std over the folds / "
                  "EER / FNMR at FMR 1e-3; U-U is the same under both)", "", *_version_note(reports),
                  "| model | U-U | M-U | M-M |", "|---|---:|---:|---:|", *table, ""]
    halves = ", ".join(f"[{name}](results/{name})" for _, folder in CROSSFIT for h in ("6-10", "1-5")
                       for name in [f"lfw-folds{h}-{CROSSFIT_HALVES[folder]}"])
    return ["## Cross-fitted LFW: the de-occlusion distillation ablation", "",
            "Models trained on the people of View 2 folds 1-5 score the pairs of folds 6-10, and models "
            "trained on folds 6-10 score folds 1-5, so no pair is scored by a model that saw its people; "
            "the 6,000 scores are pooled into the usual 10-fold report (thresholds chosen on the other nine "
            "folds, EER and FNMR over all pairs). The teacher trains on nothing; its rows are pooled the same "
            "way from its two half runs, so they are the teacher's full-LFW run with this front end. Front end: the "
            "mask-robust cascade; realistic alignment detects the masked photo, oracle alignment cuts it with the "
            "unmasked original's landmarks. Unmasked faces go to the teacher in every maskface model, so U-U moves "
            "only when a clean face is mistaken for a masked one.", "", *lines,
            f"The half runs each row pools (5 folds each, with their scores): {halves}.", "",
            "Commands:", "", "```bash", *CROSSFIT_COMMANDS, "```", ""]


#: Figures of front ends whose runs were not kept (superseded the same day; the numbers are those the docs gave
#: when each was current): teacher on all 6,000 pairs (M-U, M-M, centre-box fallbacks of the masked side) and the
#: held-out half (folds 6-10) of the teacher and of maskface_v1 (M-U, M-M).
UNKEPT_FRONT_ENDS = {
    3: {"full": (0.8943, 0.8767, 67), "teacher": (0.9017, 0.8820), "maskface_v1": (0.9363, 0.9367)},
    4: {"full": (0.9015, 0.8793, 89), "teacher": (0.9070, 0.8830), "maskface_v1": (0.9377, 0.9377)},
}
#: Runs of each kept version: full-LFW teacher with the cascade, and the held-out half of teacher and maskface_v1.
KEPT_FRONT_ENDS = {
    2: {"full": "crossfit-teacher", "teacher": "lfw-folds6-10-dlib_resnet_v1",
        "maskface_v1": "lfw-folds6-10-maskface_v1"},
    5: {"full": "lfw-dlib_resnet_v1-robust", "teacher": "v5-folds6-10-dlib_resnet_v1",
        "maskface_v1": "v5-folds6-10-maskface_v1"},
    6: {"full": "lfw-dlib_resnet_v1", "teacher": "v6-folds6-10-dlib_resnet_v1",
        "maskface_v1": "v6-folds6-10-maskface_v1"},
}


def _pair(rates: tuple[float, float] | None) -> str:
    """``M-U / M-M`` accuracies of a run pair, or a dash where the runs were not made."""
    return "not measured" if rates is None else f"{rates[0]:.2%} / {rates[1]:.2%}"


def _front_end_history() -> list[str]:
    rows = []
    for version, change in FRONT_END_VERSIONS.items():
        if version in KEPT_FRONT_ENDS:
            runs = KEPT_FRONT_ENDS[version]
            mu, mm = (_report(runs["full"], s) for s in ("M-U", "M-M"))
            full = (mu["accuracy_mean"], mm["accuracy_mean"], mu["detectors"]["a"].get("center", 0))
            half = {m: tuple(_report(runs[m], s)["accuracy_mean"] for s in ("M-U", "M-M"))
                    if (RUNS / runs[m]).is_dir() else None for m in ("teacher", "maskface_v1")}
        else:
            full, half = UNKEPT_FRONT_ENDS[version]["full"], UNKEPT_FRONT_ENDS[version]
        name = f"**v{version}** (current)" if version == PIPELINE_VERSION else f"v{version}"
        rows.append(f"| {name} | {change} | {full[0]:.2%} / {full[1]:.2%} | {full[2]} | "
                    f"{_pair(half['teacher'])} | {_pair(half['maskface_v1'])} |")
    return ["## Front-end versions", "",
            "Every report.json records the version of the face front end that found and aligned its faces (reports "
            "without the field were made with v2), and `maskface eval pool` refuses to pool runs of different "
            "versions. v3, v4 and v5 were all made on 2026-12-01; v3 and v4 chose their masked-face "
            "detector on LFW photos the front end never trained on ([selection](results/masked-detector-selection.md),"
            " [model card](models.md#the-mask-robust-front-end-shipped-in-maskfaceweights)), and v5 keeps v4's "
            "models (of the 6,000 masked photos of side a, 5 now keep HOG's face at the centre where v4 chose a "
            "masked-face box nearer to it). v6 (2026-12-07) replaces dlib's HOG by YuNet for every face, masked or "
            "not; the masked-face detector and landmark model stay available with `--detector hog`. Accuracy on "
            "masked LFW by version (realistic alignment; v3 and v4 runs "
            "were not kept, their figures are those measured when each was current):", "",
            "| front end | what changed | teacher, all 6,000 pairs: M-U / M-M | masked photos left to the "
            "centre-box fallback | held-out half (folds 6-10), teacher: M-U / M-M | the same, maskface_v1 |",
            "|---|---|---:|---:|---:|---:|", *rows, "",
            "The cross-fitted ablation stays at v2: the other half's models (de-occluder and students trained on "
            "folds 6-10) are not shipped, and retraining them takes about 1 h 35 min of this CPU "
            "([benchmarks](benchmarks.md#training-engine-and-the-de-occlusion-module)). The front end changes only "
            "which masked faces are found and how they are cut, the same for every model in a table, so the "
            "comparisons within a table stand.", ""]


#: Runs drawn in the ROC/DET plot of docs/results/all: every run of the single-run tables.
PLOTTED = [run for _, _, runs in RUN_SECTIONS for run in runs if (RUNS / run / "report.json").is_file()]


def _gallery_section() -> list[str]:
    """Open-set identification through ``maskface.Gallery`` (``tools/gallery_open_set.py``), where it was run."""
    path = RUNS / "gallery-open-set.json"
    if not path.is_file():
        return []
    d = json.loads(path.read_text())
    stale = ("" if d["model"] == DEFAULT_MODEL else
             f" Made with `{d['model']}`, before `{DEFAULT_MODEL}` became the default: not yet re-measured with it.")
    strict = d.get("at_fmr", {}).get("1e-4")
    stricter = ("" if strict is None else
                f" With the FMR 1e-4 thresholds (`--fmr 1e-4`), FNIR is {strict['fnir']:.1%} and FPIR "
                f"{strict['fpir']:.2%}.")
    return ["## Identification through a gallery (open set, masked probes)", "",
            f"With {d['enrolled']} LFW people enrolled and masked probes (details, command and DET curve: "
            "[results/gallery-open-set.md](results/gallery-open-set.md)), `maskface.Gallery` with "
            f"`{d['model']}` finds the mate at rank 1 for {d['rank1_gallery']:.2%} of {d['mated_probes']} masked "
            f"probes; `maskface eval lfw --identification`'s code gives {d['rank1_eval_identification']:.2%} on the "
            f"same probes. At the shipped thresholds (pair FMR 1e-3), FNIR is {d['fnir_at_shipped']:.1%} and FPIR "
            f"{d['fpir_at_shipped']:.1%} ({d['non_mated_probes']} non-mated probes).{stricter}{stale}", ""]


def results_page() -> str:
    """The text of ``docs/results.md``."""
    lines = ["# Results", "",
             "LFW View 2: 6,000 pairs in 10 identity-disjoint folds; accuracy is the mean over folds, each at the "
             "threshold chosen on the other nine. Masks are synthetic, drawn per image from (seed 0, "
             "`<person>/<file>`), so every run sees the same test set. U-U: no masks; M-U: the first face of "
             "each pair masked; M-M: both masked, independent draws. Realistic alignment detects and landmarks "
             "the *masked* photo; oracle alignment cuts the chip with the unmasked original's landmarks. "
             "EER, FNMR and TAR are pooled over all pairs. Made by `python tools/make_results.py` "
             "from the runs below; tables of older front ends are under [front-end versions](#front-end-versions)."
             " Every run folder holds report.json and report.md; [results/README.md](results/README.md) says what "
             "else is kept.", ""]
    lines += _run_sections()
    lines += _held_out_table()
    lines += _ablation_tables()
    lines += _deocclusion_section()
    lines += ["## ROC and DET", "",
              "Every run of the single-run tables above (`python tools/make_results.py` draws them from their "
              "scores; `maskface eval compare RUN... --out DIR` draws any runs).", "",
              "![ROC](results/all/roc.png) ![DET](results/all/det.png)", ""]
    lines += _front_end_history()
    lines += _gallery_section()
    return "\n".join(lines)


def _frontend_table() -> list[str]:
    """The model card's table of the front ends (``maskface eval frontend``): dlib's standard one, front end v5's
    mask-robust HOG cascade, and the default (YuNet)."""
    data = json.loads((RUNS / "frontend.json").read_text())
    s, real = data["synthetic_lfw"], data["real"]
    found = s["cascade_detectors"]
    hog = sum(v for k, v in found.items() if k.startswith("hog"))
    masked = sum(v for k, v in found.items() if k.startswith("masked-hog"))
    missed = {"cascade": found.get("none", 0), "frontend": s["frontend_detectors"].get("none", 0)}
    folds = f"{s['folds'][0]}-{s['folds'][-1]}"

    def share(count: int) -> str:
        return f"{count} ({_pct(count / real['photos'], 0)})"

    return ["| | dlib standard (HOG, 5-point model) | v5: HOG + masked-face cascade | **default: YuNet** |",
            "|---|---:|---:|---:|",
            f"| synthetic masked LFW, held-out folds {folds} ({s['photos']} photos, mask seed {s['seed']}): "
            f"detection rate | {_pct(s['detection_rate_hog'], 1)} | {_pct(s['detection_rate_cascade'])} "
            f"({hog} by HOG, {masked} by the masked-face detector; {missed['cascade']} missed) | "
            f"**{_pct(s['detection_rate_frontend'])}** ({missed['frontend']} missed) |",
            "| same photos, 5-point NME (mean error / inter-ocular distance, boxes from the labels) | "
            f"{_pct(s['nme_standard_5pt'])} | {_pct(s['nme_masked_5pt'])} (masked-face landmark model) | |",
            "| mask classifier accuracy, a clean and a masked chip of each photo | | "
            f"{_pct(s['mask_classifier_accuracy'], 1)} | (the same classifier) |",
            f"| real masked photos, `rwmfd/` ({real['photos']:,} photos, no labels): photos with a face found | "
            f"{share(real['found_hog'])} | {share(real['found_cascade'])} | **{share(real['found_frontend'])}** |",
            "| the same: faces found / of them called masked by the classifier | | | "
            f"{real['frontend_faces']:,} / {real['frontend_masked_faces']:,} "
            f"({_pct(real['frontend_masked_faces'] / real['frontend_faces'], 0)}) |"]


def _model_card_crossfit() -> list[str]:
    """The model card's cross-fitted tables of maskface_v1 (realistic, then oracle alignment)."""
    labels = {"crossfit-teacher": "teacher on masked faces",
              "crossfit-teacher+deocclusion": "teacher on completed faces",
              "crossfit-student-instance": "student alone, instance loss only",
              "crossfit-student-rkd": "student alone, instance + pair + triplet (RKD)",
              "crossfit-student-full": "student alone, full method",
              "crossfit-maskface_v1": "**maskface_v1** (full student + teacher)"}

    def cell(folder: str, scenario: str) -> str:
        r = _report(folder, scenario)
        return (f"{_pct(r['accuracy_mean'])} ± {r['accuracy_std'] * 100:.2f} / {_pct(r['eer'])} / "
                f"{_pct(r['fnmr_at_fmr_1e-3'])}")

    lines = ["| realistic alignment | U-U | M-U | M-M |", "|---|---:|---:|---:|"]
    teacher_uu = cell("crossfit-teacher", "U-U")
    for folder, label in labels.items():
        cells = [cell(folder, s) for s in ("U-U", "M-U", "M-M")]
        if folder == "crossfit-maskface_v1":
            cells = [f"**{c}**" for c in cells]
        elif folder != "crossfit-teacher" and cells[0] == teacher_uu:
            cells[0] = "same"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| oracle alignment | M-U | M-M |", "|---|---:|---:|"]
    for folder, label in labels.items():
        cells = [cell(folder, s) for s in ("M-U-oracle", "M-M-oracle")]
        if folder == "crossfit-maskface_v1":
            cells = [f"**{c}**" for c in cells]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _recogniser_table() -> list[str]:
    """The model card's comparison of the recognisers on the default front end: full LFW View 2, accuracy / EER /
    FNMR at FMR 1e-3 per scenario, realistic and oracle alignment, and masked-probe rank-1."""

    def cell(model: str, scenario: str) -> str:
        path = RUNS / f"lfw-{model}" / scenario / "report.json"
        if not path.is_file():
            return "not measured"
        r = json.loads(path.read_text())
        return f"{_pct(r['accuracy_mean'])} / {_pct(r['eer'])} / {_pct(r['fnmr_at_fmr_1e-3'])}"

    lines = ["| recogniser | U-U | M-U | M-M | M-U, oracle | M-M, oracle | masked-probe rank-1 |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for model in RECOGNISERS:
        ident = RUNS / f"lfw-{model}" / "identification.json"
        rank1 = f"{json.loads(ident.read_text())['rank1']:.2%}" if ident.is_file() else "not measured"
        cells = [cell(model, s) for s in ("U-U", "M-U", "M-M", "M-U-oracle", "M-M-oracle")] + [rank1]
        name = f"**`{model}`** (default)" if model == DEFAULT_MODEL else f"`{model}`"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def model_card_blocks() -> dict[str, str]:
    """The generated blocks of ``docs/models.md``, by name."""
    _, deocclusion, estimator = _deocclusion_rows()
    return {"recognisers": "\n".join(_recogniser_table()),
            "frontend": "\n".join(_frontend_table()),
            "deocclusion": "\n".join([*deocclusion, "", estimator]),
            "crossfit": "\n".join(_model_card_crossfit())}


BLOCK = re.compile(r"(<!-- make_results: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /make_results -->)", re.S)


def fill_blocks(text: str, blocks: dict[str, str]) -> str:
    """``text`` with every ``<!-- make_results: NAME -->`` block replaced by ``blocks[NAME]``."""
    names = [m["name"] for m in BLOCK.finditer(text)]
    if sorted(names) != sorted(blocks):
        raise ValueError(f"generated blocks in the page: {names}; expected one each of {sorted(blocks)}")
    return BLOCK.sub(lambda m: m[1] + blocks[m["name"]] + "\n" + m[4], text)


def main() -> None:
    (DOCS / "results.md").write_text(results_page())
    card = DOCS / "models.md"
    card.write_text(fill_blocks(card.read_text(), model_card_blocks()))
    compare_runs([RUNS / run for run in PLOTTED], RUNS / "all")
    print(f"wrote {DOCS / 'results.md'}, the tables of {card} and {RUNS / 'all'}")


if __name__ == "__main__":
    main()
