"""``maskface demo``: the problem maskface exists for, shown on real LFW pairs in a minute on a CPU.

It takes pairs of people from LFW View 2 fold 10, finds and aligns their faces, puts a synthetic mask on the first
face of each pair (detected again on the masked photo, as a user's photo would be), scores every pair with the
dlib teacher, and writes a picture grid plus a Markdown report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskface.apps.batch import BatchReport, run_batch
from maskface.data.lfw import LFW
from maskface.eval.metrics import roc_auc
from maskface.eval.protocol import MaskSetting, variant_chip
from maskface.face.pipeline import FaceConfig
from maskface.io.files import atomic_write_text
from maskface.io.images import save_image
from maskface.models.embedder import compare, is_same, load_embedder, to_similarity


@dataclass
class DemoResult:
    pairs: int
    rows: list[tuple[str, float, float]]  # (scenario, accuracy at the model threshold, AUC)
    grid: Path
    report: Path
    failures: int


def _chips(paths: list[str], masked: bool, config: FaceConfig, workers: int, label: str, report: BatchReport):
    jobs = [(p, masked, MaskSetting(seed=0)) for p in paths]
    found = dict(run_batch(jobs, variant_chip, config, workers=workers, description=label, report=report,
                           name_of=lambda j: j[0]))
    return {job[0]: chip for job, (chip, _) in found.items()}


def run_demo(data: str | Path | None, out_dir: str | Path, pairs_per_class: int = 30, workers: int = 2,
             model: str = "dlib_resnet_v1") -> DemoResult:
    out_dir = Path(out_dir)
    lfw = LFW.find(data)
    fold = [p for p in lfw.view2_pairs() if p.fold == 10]
    chosen = [p for p in fold if p.same][:pairs_per_class] + [p for p in fold if not p.same][:pairs_per_class]
    embedder = load_embedder(model)
    spec = embedder.spec
    config = FaceConfig(select="center", fallback=("upsample", "center"), chip=spec.chip, size=spec.size,
                        padding=spec.padding)
    report = BatchReport()
    firsts = [str(p.a) for p in chosen]
    seconds = [str(p.b) for p in chosen]
    clean = _chips(sorted(set(firsts + seconds)), False, config, workers, "clean faces", report)
    masked = _chips(sorted(set(firsts)), True, config, workers, "masked faces", report)
    usable = [p for p in chosen if str(p.a) in clean and str(p.a) in masked and str(p.b) in clean]
    labels = np.array([p.same for p in usable])

    def scores(first: dict) -> np.ndarray:
        a = embedder.embed_chips(np.stack([first[str(p.a)] for p in usable]))
        b = embedder.embed_chips(np.stack([clean[str(p.b)] for p in usable]))
        return compare(a, b, spec.metric)

    rows = []
    for scenario, first in (("U-U (both unmasked)", clean), ("M-U (first face masked)", masked)):
        values = scores(first)
        decisions = np.array([is_same(s, spec.threshold, spec.metric) for s in values])
        rows.append((scenario, float((decisions == labels).mean()), roc_auc(to_similarity(values, spec.metric),
                                                                              labels)))

    shown = usable[:: max(1, len(usable) // 8)][:8]
    tiles = [np.hstack([clean[str(p.a)], masked[str(p.a)], clean[str(p.b)]]) for p in shown]
    grid_path = out_dir / "pairs.png"
    save_image(np.vstack(tiles), grid_path)
    table = "\n".join(f"| {name} | {acc:.1%} | {auc:.3f} |" for name, acc, auc in rows)
    text = (f"# maskface demo\n\n{len(usable)} LFW pairs from View 2 fold 10 ({pairs_per_class} same-person, "
            f"{pairs_per_class} different), model `{model}`, threshold {spec.threshold} ({spec.metric}).\n\n"
            f"| scenario | accuracy at the threshold | ROC AUC |\n|---|---:|---:|\n{table}\n\n"
            "Each row of the picture: a face, the same face with a synthetic mask (found again on the masked "
            "photo), and the face it is compared with.\n\n![pairs](pairs.png)\n")
    report_path = out_dir / "report.md"
    atomic_write_text(report_path, text)
    return DemoResult(len(usable), rows, grid_path, report_path, len(report.failures))
