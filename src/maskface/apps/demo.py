"""``maskface demo``: the point of maskface, shown on real LFW pairs in a few minutes on a CPU.

It takes pairs of people from LFW View 2 fold 10 (people the shipped models never trained on), finds and aligns
their faces, puts synthetic masks on them (detected again on the masked photo, as a user's photo would be), scores
every pair with dlib's recogniser (the one face_recognition uses) and with maskface's default, each on the chips it
was trained on, prints the table, and writes a Markdown report with a picture grid (face, masked, completed where
the model completes faces, the face it is compared with) and ROC curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskface.data.lfw import LFW
from maskface.defaults import DEFAULT_MODEL, TEACHER_MODEL
from maskface.eval.metrics import kfold_accuracy, roc_auc
from maskface.eval.plots import plot_roc
from maskface.eval.protocol import MaskSetting, variant_chip
from maskface.face.batch import run_face_batch
from maskface.face.pipeline import FaceConfig
from maskface.io.files import atomic_write_text
from maskface.io.images import save_image
from maskface.io.parallel import BatchReport
from maskface.models.embedder import Embedder, compare, load_embedder, to_similarity

SCENARIOS = (("U-U", "both unmasked"), ("M-U", "first face masked"), ("M-M", "both masked"))


@dataclass
class DemoRow:
    scenario: str
    model: str
    accuracy: float  # 10-fold: each fold's threshold chosen on the other nine, as in the LFW protocol
    auc: float


@dataclass
class DemoResult:
    pairs: int
    rows: list[DemoRow]
    report: Path
    failures: int


def _chips(paths: list[str], masked: bool, config: FaceConfig, workers: int, label: str, report: BatchReport):
    jobs = [(p, masked, MaskSetting(seed=0)) for p in paths]
    found = dict(run_face_batch(jobs, variant_chip, config, workers=workers, description=label, report=report,
                                name_of=lambda j: j[0]))
    return {job[0]: chip for job, (chip, _) in found.items()}


def run_demo(data: str | Path | None, out_dir: str | Path, pairs_per_class: int = 30, workers: int = 2,
             teacher: str = TEACHER_MODEL, model: str = DEFAULT_MODEL) -> DemoResult:
    out_dir = Path(out_dir)
    lfw = LFW.find(data)
    fold = [p for p in lfw.view2_pairs() if p.fold == 10]
    chosen = [p for p in fold if p.same][:pairs_per_class] + [p for p in fold if not p.same][:pairs_per_class]
    embedders = {teacher: load_embedder(teacher), model: load_embedder(model)}
    base = FaceConfig(select="center", fallback=("upsample", "center"))
    report = BatchReport()
    paths = sorted({str(p.a) for p in chosen} | {str(p.b) for p in chosen})
    chips = {}  # (model, masked) -> path -> chip in that model's geometry
    for name, embedder in embedders.items():
        for masked in (False, True):
            label = f"{'masked' if masked else 'clean'} faces for {name}"
            chips[name, masked] = _chips(paths, masked, embedder.face_config(base), workers, label, report)
    usable = [p for p in chosen if all(str(x) in faces for x in (p.a, p.b) for faces in chips.values())]
    labels = np.array([p.same for p in usable])
    sides = {"U-U": (False, False), "M-U": (True, False), "M-M": (True, True)}

    def scores(name: str, scenario: str) -> np.ndarray:
        first, second = (chips[name, masked] for masked in sides[scenario])
        embedder = embedders[name]
        a = embedder.embed_chips(np.stack([first[str(p.a)] for p in usable]))
        b = embedder.embed_chips(np.stack([second[str(p.b)] for p in usable]))
        return compare(a, b, embedder.spec.metric)

    rows, curves = [], {}
    for scenario, _ in SCENARIOS:
        for name, embedder in embedders.items():
            similarity = to_similarity(scores(name, scenario), embedder.spec.metric)
            accuracy = kfold_accuracy(similarity, labels, np.arange(len(labels)) % 10 + 1).mean
            rows.append(DemoRow(scenario, name, float(accuracy), roc_auc(similarity, labels)))
            if scenario != "U-U":
                curves[f"{name} {scenario}"] = (similarity, labels)

    out_dir.mkdir(parents=True, exist_ok=True)
    plot_roc(curves, out_dir / "roc.png")
    _grid(usable, chips[model, False], chips[model, True], embedders[model], out_dir / "pairs.png")
    table = "\n".join(f"| {r.scenario} | `{r.model}` | {r.accuracy:.1%} | {r.auc:.3f} |" for r in rows)
    text = (f"# maskface demo\n\n{len(usable)} LFW pairs from View 2 fold 10 ({pairs_per_class} same-person and "
            f"{pairs_per_class} different-person pairs asked for), faces found and aligned on the photos, masks "
            "drawn with seed 0 and the face found again on the masked photo. Accuracy as in the LFW protocol: "
            "the pairs are split into 10 folds and each fold is judged at the threshold that does best on the "
            "other nine.\n\n| scenario | model | accuracy | ROC AUC |\n|---|---|---:|---:|\n"
            f"{table}\n\nEach row of the picture, as `{model}` sees it: a face, the same face masked"
            + (", what the model made of it (completed where it found a mask)" if _deoccluder(embedders[model])
               else "") + ", and the face it is compared with.\n\n![pairs](pairs.png)\n\n"
            "![ROC](roc.png)\n")
    report_path = out_dir / "report.md"
    atomic_write_text(report_path, text)
    return DemoResult(len(usable), rows, report_path, len(report.failures))


def _grid(pairs: list, clean: dict, masked: dict, embedder: Embedder, path: Path) -> None:
    """Up to 8 evenly spread pairs: face, masked face, its completion (for a model that completes faces), the
    other face."""
    from maskface.models.deocclusion import complete_chips

    shown = pairs[:: max(1, len(pairs) // 8)][:8]
    firsts = np.stack([masked[str(p.a)] for p in shown])
    deoccluder = _deoccluder(embedder)
    completed = complete_chips(deoccluder, firsts)[0] if deoccluder is not None else [None] * len(shown)
    tiles = [np.hstack([x for x in (clean[str(p.a)], first, done, clean[str(p.b)]) if x is not None])
             for p, first, done in zip(shown, firsts, completed)]
    save_image(np.vstack(tiles), path)


def _deoccluder(embedder: Embedder):
    """The de-occlusion module of a mask-aware model, or None for a model that does not complete faces."""
    return getattr(getattr(embedder, "module", None), "deoccluder", None)
