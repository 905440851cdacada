"""Make ``docs/results.md`` (and its combined ROC/DET plots) from the evaluation runs under ``docs/results/``.

Each run folder was written by ``maskface eval lfw``; the commands that made them are listed in the page itself.
Run: ``python tools/make_results.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from maskface.eval.report import COLUMNS, compare_runs, load_scores, report_value, run_label
from maskface.face.pipeline import PIPELINE_VERSION

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: What changed in each version of the face front end (``PIPELINE_VERSION``, recorded in every report.json).
FRONT_END_VERSIONS = {
    2: "masked-face detector trained at C = 5",
    3: "masked-face detector retrained at C = 20 (more masked faces found, fewer false fires)",
    4: "a 64-pixel, low-rank masked-face detector (C = 40): a quarter of the extra scan's cost",
    5: "the masked-face detector scans only photos whose centre HOG leaves without a face",
}


def _version_note(reports: list[dict]) -> list[str]:
    """A line saying which older front end made these runs, when any was made before the current one (runs of the
    standard front end, ``--no-mask-robust``, are the same under every version)."""
    robust = [r for r in reports if r["face"].get("mask_robust", False)]  # no key: made before the cascade existed
    old = sorted({report_value(r, "pipeline") for r in robust} - {PIPELINE_VERSION})
    if not old:
        return []
    names = ", ".join(f"v{v} ({FRONT_END_VERSIONS[v]})" for v in old)
    return [f"*Made with the front end {names}, not the current v{PIPELINE_VERSION}; see "
            "[front-end versions](#front-end-versions).*", ""]

#: (section title, run folder relative to docs/results, command that made it)
SECTIONS = [
    ("Teacher, standard front end (dlib HOG + 68 landmarks), realistic alignment", "lfw-dlib_resnet_v1",
     "maskface eval lfw --data ../shared/data -m dlib_resnet_v1 -s U-U -s M-U -s M-M --identification --no-mask-robust "
     "--out docs/results/lfw-dlib_resnet_v1"),
    ("Teacher, oracle alignment (landmarks of the unmasked original)", "lfw-dlib_resnet_v1",
     "maskface eval lfw --data ../shared/data -m dlib_resnet_v1 -s M-U -s M-M --oracle-alignment --no-mask-robust "
     "--out docs/results/lfw-dlib_resnet_v1"),
    ("Teacher, mask-robust front end (cascade), realistic alignment", "lfw-dlib_resnet_v1-robust",
     "maskface eval lfw --data ../shared/data -m dlib_resnet_v1 -s U-U -s M-U -s M-M --identification "
     "--out docs/results/lfw-dlib_resnet_v1-robust"),
    ("Held-out folds 6-10: teacher on masked faces (cascade front end)", "lfw-folds6-10-dlib_resnet_v1",
     "maskface eval lfw --data ../shared/data --folds 6-10 -m dlib_resnet_v1 -s U-U -s M-U -s M-M "
     "--out docs/results/lfw-folds6-10-dlib_resnet_v1"),
    ("Held-out folds 6-10: teacher on faces completed by deocclusion_v1 (estimated maps)",
     "lfw-folds6-10-dlib_resnet_v1+deocclusion_v1",
     "maskface eval lfw --data ../shared/data --folds 6-10 -s U-U -s M-U -s M-M -m dlib_resnet_v1+deocclusion_v1 "
     "--out docs/results/lfw-folds6-10-dlib_resnet_v1+deocclusion_v1"),
]


def _held_out_table() -> list[str]:
    """The mask-robust front end trained on LFW people of folds 1-8: compare both front ends on folds 9-10 alone."""
    runs = {"standard front end": "lfw-dlib_resnet_v1", "mask-robust cascade": "lfw-dlib_resnet_v1-robust"}
    rows = []
    for scenario in ("U-U", "M-U", "M-M"):
        cells = []
        for folder in runs.values():
            path = DOCS / "results" / folder / scenario / "report.json"
            if not path.is_file():
                return []
            folds = {f["fold"]: f["accuracy"] for f in json.loads(path.read_text())["folds"]}
            cells.append(f"{(folds[9] + folds[10]) / 2:.2%}")
        rows.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return ["## Held-out folds only", "",
            "The mask-robust front end was trained on LFW people of View 2 folds 1-8 (with masks drawn the same way "
            "as the test masks), so its gain is checked on folds 9-10 alone: mean accuracy of those two folds, "
            "thresholds as above.", "", "| scenario | " + " | ".join(runs) + " |", "|---|---:|---:|", *rows, ""]


def _deocclusion_table() -> list[str]:
    """Completion quality of deocclusion_v1 on held-out people (``maskface eval deocclusion``)."""
    path = DOCS / "results" / "deocclusion.json"
    if not path.is_file():
        return []
    r = json.loads(path.read_text())
    cos, est = r["teacher_cosine_to_original"], r["estimator"]
    rows = [("masked input", r["masked_input"], cos["masked"]),
            ("completed, true map", r["completed_true_map"], cos["completed_true_map"]),
            ("completed, estimated map", r["completed_estimated_map"], cos["completed_estimated_map"])]
    folds = f"{r['folds'][0]}-{r['folds'][-1]}"
    return ["## De-occlusion (deocclusion_v1), held-out people", "",
            f"`maskface eval deocclusion --data ../shared/data --folds {folds} --limit {r['faces']} "
            "--real ../shared/data/rwmfd --out docs/results/deocclusion.json --picture docs/img/deocclusion.png`",
            "", f"{r['faces']} chips of LFW people of View 2 folds {folds} (never seen in training), each with a "
            f"synthetic mask drawn from (seed {r['mask_seed']}, `<person>/<file>`). PSNR and SSIM are measured "
            "over the mask's pixels against the unmasked original; the teacher's cosine similarity compares "
            "embeddings of the face and of the unmasked original.", "",
            "| input to the teacher | PSNR in mask (dB) | SSIM in mask | teacher cosine to original |",
            "|---|---:|---:|---:|",
            *[f"| {name} | {m['psnr_in_mask_db']:.2f} | {m['ssim_in_mask']:.3f} | {c:.4f} |" for name, m, c in rows],
            "", f"The completed face is closer to the original than the masked input for "
            f"{r['teacher_cosine_improved_share']['completed_estimated_map']:.1%} of faces (estimated map).", "",
            f"Occlusion estimator: mean IoU **{est['mean_iou']:.4f}** (median {est['median_iou']:.4f}, pooled "
            f"{est['pooled_iou']:.4f}; {est['share_iou_at_least_0.9']:.1%} of faces at IoU >= 0.9). It calls "
            f"{est['masked_faces_judged_masked']:.1%} of the masked faces masked and "
            f"{est['clean_faces_judged_masked']:.1%} of {est['clean_faces']} unmasked held-out faces masked.", "",
            "![original / masked / completed / estimated map, and real masked photos](img/deocclusion.png)", ""]


#: (row label, run folder under docs/results with realistic alignment, with oracle alignment) of the cross-fitted
#: comparison: each folder pools a folds 6-10 run and a folds 1-5 run (``maskface eval pool``, CROSSFIT_COMMANDS).
CROSSFIT = [
    ("teacher on masked faces", "crossfit-teacher", "crossfit-teacher"),
    ("teacher on completed faces", "crossfit-teacher+deocclusion", "crossfit-teacher+deocclusion"),
    ("student, instance loss only", "crossfit-student-instance", "crossfit-student-instance"),
    ("student, instance + pair + triplet (RKD)", "crossfit-student-rkd", "crossfit-student-rkd"),
    ("student, full method (+ identity-centred soft term)", "crossfit-student-full", "crossfit-student-full"),
    ("**maskface_v1**: full student + teacher on completed faces, averaged", "crossfit-maskface_v1",
     "crossfit-maskface_v1"),
]
#: the same rows on each half alone: (models trained on folds 1-5, pairs of folds 6-10) and the reverse
HELD_OUT_HALF = [
    ("teacher on masked faces", "lfw-folds6-10-dlib_resnet_v1"),
    ("teacher on completed faces (deocclusion_v1)", "lfw-folds6-10-dlib_resnet_v1+deocclusion_v1"),
    ("student, instance loss only", "lfw-folds6-10-maskface_v1-instance"),
    ("student, instance + pair + triplet (RKD)", "lfw-folds6-10-maskface_v1-rkd"),
    ("student, full method (+ identity-centred soft term)", "lfw-folds6-10-maskface_v1-full"),
    ("**maskface_v1**: full student + teacher on completed faces, averaged", "lfw-folds6-10-maskface_v1"),
]
OTHER_HALF = [(label, folder.replace("folds6-10", "folds1-5")) for label, folder in HELD_OUT_HALF]

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
    "--out docs/results/lfw-folds1-5-maskface_v1-{full,instance,rkd} (folds 6-10: runs/distill-A-*)",
    "# pooled: a folds 6-10 run (models of folds 1-5) with the folds 1-5 run (models of folds 6-10)",
    "maskface eval pool docs/results/lfw-folds6-10-dlib_resnet_v1 docs/results/lfw-folds1-5-dlib_resnet_v1 "
    "--out docs/results/crossfit-teacher",
    "maskface eval pool docs/results/lfw-folds6-10-dlib_resnet_v1+deocclusion_v1 "
    "docs/results/lfw-folds1-5-dlib_resnet_v1+deocclusion_v1 --out docs/results/crossfit-teacher+deocclusion",
    "maskface eval pool docs/results/lfw-folds6-10-maskface_v1 docs/results/lfw-folds1-5-maskface_v1 "
    "--out docs/results/crossfit-maskface_v1",
    "# and likewise lfw-folds*-maskface_v1-{full,instance,rkd} -> crossfit-student-{full,instance,rkd}",
]


#: Held-out half runs repeated with the current front end: (label, v2 folder, current folder) under docs/results.
FRONT_END_CHECK = [
    ("teacher on masked faces", "lfw-folds6-10-dlib_resnet_v1", f"v{PIPELINE_VERSION}-folds6-10-dlib_resnet_v1"),
    ("**maskface_v1**", "lfw-folds6-10-maskface_v1", f"v{PIPELINE_VERSION}-folds6-10-maskface_v1"),
]
FRONT_END_CHECK_COMMAND = ("maskface eval lfw --data ../shared/data --folds 6-10 -m {model} -s M-U -s M-M "
                           f"--out docs/results/v{PIPELINE_VERSION}-folds6-10-{{model}}")


def _front_end_check() -> list[str]:
    """The same held-out half scored through the v2 and the current front end (accuracy / EER / FNMR at FMR 1e-3)."""
    rows = []
    for label, old, new in FRONT_END_CHECK:
        cells = []
        for folder in (old, new):
            for scenario in ("M-U", "M-M"):
                path = DOCS / "results" / folder / scenario / "report.json"
                if not path.is_file():
                    return []
                r = json.loads(path.read_text())
                cells.append(f"{r['accuracy_mean']:.2%} / {r['eer']:.2%} / {r['fnmr_at_fmr_1e-3']:.2%}")
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    commands = [FRONT_END_CHECK_COMMAND.format(model=m) for m in ("maskface_v1", "dlib_resnet_v1")]
    return ["The held-out half (models trained on folds 1-5, pairs of folds 6-10, realistic alignment) scored through "
            "both front ends (accuracy / EER / FNMR at FMR 1e-3):", "",
            f"| model | M-U, v2 | M-M, v2 | M-U, v{PIPELINE_VERSION} | M-M, v{PIPELINE_VERSION} |",
            "|---|---:|---:|---:|---:|", *rows, "",
            "```bash", *commands, "```", ""]


FRONT_END_NOTE = [
    "## Front-end versions", "",
    "Every report.json records the version of the face front end that found and aligned its faces (reports "
    "without the field were made with v2), and `maskface eval pool` refuses to pool runs of different versions. "
    "Version 3 (2026-12-01) retrained the masked-face detector at C = 20 instead of 5; version 4 (the same day) "
    "replaced it with a 64-pixel, low-rank one that costs the shared HOG scan a quarter as much, both chosen on LFW "
    "photos the front end never trained on ([selection](results/masked-detector-selection.md), "
    "[model card](models.md#the-mask-robust-front-end-shipped-in-maskfaceweights)). Version 5 (the same day) keeps "
    "the models and lets the masked-face detector scan only photos whose centre HOG leaves without a face, so an "
    "unmasked subject costs no second scan; of the 6,000 masked photos of side a, 5 now keep HOG's face at the "
    "centre where v4 chose a masked-face box nearer to it. The "
    "teacher's full-LFW cascade run above was re-run with v5 (v2: M-U 89.28 %, M-M 87.30 %; v3: 89.43 %, 87.67 %; "
    "v4: 90.15 %, 87.93 %; v4 and v5 leave 89 of the 6,000 masked photos to the centre-box fallback, v3 67), and "
    "the check below with v5 (v4: maskface_v1 93.77 % / 93.77 %, the teacher 90.70 % / 88.30 %). The cross-fitted "
    "and half "
    "runs were left at v2: the other half's models (de-occluder and students trained on folds 6-10) are not "
    "shipped, and retraining them takes about two hours of this CPU. The front end changes only which masked faces "
    "are found and how they are cut, the same for every model in a table, so the comparisons within a table "
    f"stand; the check below repeats the shipped model's half with v{PIPELINE_VERSION}.", ""]


def _ablation_rows(rows: list[tuple[str, str, str]]) -> list[str]:
    """Realistic and oracle tables: accuracy mean ± std over folds / EER / FNMR at FMR 1e-3, per scenario."""
    lines = []
    for oracle in (False, True):
        table, reports = [], []
        for label, realistic, oracle_folder in rows:
            folder = oracle_folder if oracle else realistic
            cells = []
            for scenario in ("U-U", "M-U", "M-M"):
                name = scenario + ("-oracle" if oracle and scenario != "U-U" else "")
                path = DOCS / "results" / folder / name / "report.json"
                if not path.is_file():
                    cells.append("-")
                    continue
                r = json.loads(path.read_text())
                reports.append(r)
                cells.append(f"{r['accuracy_mean']:.2%} ± {r['accuracy_std']:.2%} / {r['eer']:.2%} / "
                             f"{r['fnmr_at_fmr_1e-3']:.2%}")
            if any(c != "-" for c in cells[1:]):
                table.append(f"| {label} | " + " | ".join(cells) + " |")
        if table:
            lines += [f"**{'Oracle' if oracle else 'Realistic'} alignment** (accuracy mean ± std over the folds / "
                      "EER / FNMR at FMR 1e-3; U-U is the same under both)", "", *_version_note(reports),
                      "| model | U-U | M-U | M-M |", "|---|---:|---:|---:|", *table, ""]
    return lines


def _ablation_tables() -> list[str]:
    """The ablation of DESIGN.md section 1.1: cross-fitted over all 10 folds, and on the held-out half."""
    lines = []
    crossfit = _ablation_rows(CROSSFIT)
    if crossfit:
        lines += ["## Cross-fitted LFW: the de-occlusion distillation ablation", "",
                  "Models trained on the people of View 2 folds 1-5 score the pairs of folds 6-10, and models "
                  "trained on folds 6-10 score folds 1-5, so no pair is scored by a model that saw its people; "
                  "the 6,000 scores are pooled into the usual 10-fold report (thresholds chosen on the other nine "
                  "folds, EER and FNMR over all pairs). The teacher trains on nothing; its rows are pooled the same "
                  "way from its two half runs. Front end: the mask-robust cascade.", "", *crossfit,
                  "Commands:", "", "```bash", *CROSSFIT_COMMANDS, "```", ""]
    half = _ablation_rows([(label, folder, folder) for label, folder in HELD_OUT_HALF])
    if half:
        lines += ["## Held-out half (folds 6-10): the de-occlusion distillation ablation", "",
                  "Every model here trained on the people of View 2 folds 1-5 only (de-occluder and students), and "
                  "is measured on the 3,000 pairs of folds 6-10 (5 folds, thresholds chosen on the other four). "
                  "The front end is the mask-robust cascade; realistic alignment detects the masked photo, "
                  "oracle alignment cuts it with the unmasked original's landmarks. Unmasked faces go to the "
                  "teacher in every maskface model, so U-U moves only when a clean face is mistaken for a masked "
                  "one. Commands and training: [docs/models.md](models.md#the-default-recogniser-maskface_v1).",
                  "", *half]
    other = _ablation_rows([(label, folder, folder) for label, folder in OTHER_HALF])
    if other:
        lines += ["## The other half (folds 1-5)", "",
                  "The reverse: every model here trained on the people of folds 6-10 only and is measured on the "
                  "3,000 pairs of folds 1-5 (commands above).", "", *other]
    return lines


def main() -> None:
    lines = ["# Results", "",
             "LFW View 2: 6,000 pairs in 10 identity-disjoint folds; accuracy is the mean over folds, each at the "
             "threshold chosen on the other nine. Masks are synthetic, drawn per image from (seed 0, "
             "`<person>/<file>`), so every run sees the same test set. U-U: no masks; M-U: the first face of "
             "each pair masked; M-M: both masked, independent draws. Realistic alignment detects and landmarks "
             "the *masked* photo; oracle alignment cuts the chip with the unmasked original's landmarks. "
             "EER, FNMR and TAR are pooled over all 6,000 pairs. Made by `python tools/make_results.py` "
             "from the runs below.", ""]
    all_runs: list[Path] = []
    header = "| run | " + " | ".join(t for _, t, _ in COLUMNS) + " | faces by detector (masked side) |"
    for title, folder, command in SECTIONS:
        root = DOCS / "results" / folder
        oracle = "oracle" in command
        order = {"U-U": 0, "M-U": 1, "M-M": 2}
        runs = sorted((p for p in root.glob("*/") if (p / "report.json").is_file()
                       and (p.name.endswith("-oracle") == oracle)), key=lambda p: order.get(p.name[:3], 9))
        if not runs:
            continue
        reports = [load_scores(run)[0] for run in runs]
        lines += [f"## {title}", "", f"`{command}`", "", *_version_note(reports),
                  header, "|---|" + "---:|" * len(COLUMNS) + "---|"]
        for run, report in zip(runs, reports):
            cells = " | ".join(fmt.format(report[k]) for k, _, fmt in COLUMNS)
            side = report["detectors"]["a"]
            detectors = ", ".join(f"{k} {v}" for k, v in sorted(side.items(), key=lambda kv: -kv[1]))
            link = run.relative_to(DOCS).as_posix()
            lines.append(f"| [{run_label(report)}]({link}/report.md) | {cells} | {detectors} |")
            all_runs.append(run)
        ident = root / "identification.json"
        if ident.is_file() and not oracle:
            data = json.loads(ident.read_text())
            lines += ["", f"Identification (unmasked gallery of {data['gallery']} people, {data['probes']} masked "
                          f"probes, LFW people with at least 2 images): **rank-1 {data['rank1']:.2%}**, "
                          f"rank-5 {data['rank5']:.2%}, {data['failures']} failed images."]
        lines.append("")
    lines += _ablation_tables()
    lines += _held_out_table()
    lines += _deocclusion_table()
    lines += FRONT_END_NOTE + _front_end_check()
    compare_runs(all_runs, DOCS / "results" / "all")
    lines += ["## All runs", "", "![ROC](results/all/roc.png) ![DET](results/all/det.png)", ""]
    (DOCS / "results.md").write_text("\n".join(lines))
    print(f"wrote {DOCS / 'results.md'}")


if __name__ == "__main__":
    main()
