"""Open-set and closed-set identification on LFW through maskface.Gallery, with masked probes.

The gallery enrols, for each person with at least two photos, their first photo unmasked; mated probes are their
other photos with a synthetic mask (seed 0), re-detected (realistic alignment); non-mated probes are people with one
photo, masked the same way, who are not enrolled. Chips come from the evaluation cache (as ``maskface eval lfw``
cuts them), embeddings and completion flags from the recogniser, searches from the gallery (SQLite + FAISS, pair-type
thresholds). Reports:

- closed-set rank-1 of mated probes through the gallery, beside ``maskface eval lfw --identification``'s rank-1 on
  the same people and probes (they must match);
- FNIR (a mated probe whose mate is not the accepted top candidate) and FPIR (a non-mated probe with an accepted
  top candidate) at the shipped thresholds, and the DET curve over a shift of every threshold.

    python tools/gallery_open_set.py --data ../shared/data --people 300 --unknown 300 \
        --out docs/results/gallery-open-set
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from maskface.apps.gallery import Gallery, embed_chips
from maskface.apps.recognizer import Recognizer
from maskface.data.chips import LFW_FACE
from maskface.data.lfw import LFW
from maskface.defaults import DEFAULT_MODEL
from maskface.eval.protocol import MaskSetting, identification
from maskface.eval.runs import model_cache
from maskface.face.pipeline import FaceConfig
from maskface.io.files import atomic_write_text
from maskface.models.pair_thresholds import FMR_LEVELS, shipped_fmr, shipped_pair_thresholds


def spread(items: list, count: int) -> list:
    """``count`` items spread evenly over the list (all when count is 0 or more than there are)."""
    if not count or count >= len(items):
        return items
    return [items[i] for i in np.linspace(0, len(items) - 1, count).round().astype(int)]


def embeddings(recognizer: Recognizer, cache, paths: list[str], masked: bool, label: str):
    """Path -> (vector, completed) for the paths whose face was found."""
    chips = cache.chips(paths, masked, MaskSetting(), label)
    found = [p for p in paths if p in chips.chips]
    out = {}
    for start in range(0, len(found), 64):
        part = found[start : start + 64]
        vectors, completed = embed_chips(recognizer, np.stack([chips.chips[p] for p in part]))
        out.update({p: (v, c) for p, v, c in zip(part, vectors, completed)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--people", type=int, default=0, help="Enrolled people, spread over LFW (0: all 1680).")
    parser.add_argument("--probes-per-person", type=int, default=5)
    parser.add_argument("--unknown", type=int, default=0, help="Non-mated people (0: all 4069).")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="Writes OUT.json, OUT.md and OUT.png (DET).")
    args = parser.parse_args()

    lfw = LFW.find(args.data)
    everyone = lfw.identities()
    several = spread([n for n, p in everyone.items() if len(p) >= 2], args.people)
    people = {n: everyone[n][: 1 + args.probes_per_person] for n in several}
    strangers = spread([n for n, p in everyone.items() if len(p) == 1], args.unknown)
    face = replace(FaceConfig(), select=LFW_FACE.select, fallback=LFW_FACE.fallback)
    cache = model_cache(args.model, face, args.workers)
    recognizer = Recognizer(cache.embedder, face)

    enrolled = embeddings(recognizer, cache, [str(p[0]) for p in people.values()], False, "gallery (clean)")
    mated_paths = [(str(p), n) for n, paths in people.items() for p in paths[1:]]
    mated = embeddings(recognizer, cache, [p for p, _ in mated_paths], True, "mated probes (masked)")
    unknown = embeddings(recognizer, cache, [str(everyone[n][0]) for n in strangers], True, "non-mated (masked)")

    at_fmr = {}
    with tempfile.TemporaryDirectory() as tmp:
        location = Path(tmp) / "lfw.db"
        with Gallery(location, model=recognizer) as gallery:
            names = [n for n in people if str(people[n][0]) in enrolled]
            rows = [enrolled[str(people[n][0])] for n in names]
            gallery.add_embeddings(names, np.stack([v for v, _ in rows]), [str(people[n][0]) for n in names],
                                   completed=[c for _, c in rows])
            metric = gallery.info.metric
        # the shipped rate first (the DET curve shifts its thresholds), then every other calibrated rate
        shipped = shipped_fmr(args.model)
        rates = [shipped or "model's own"] + [r for r in FMR_LEVELS if r != shipped]
        for rate in rates:
            fmr = rate if rate in FMR_LEVELS else None
            searcher = Recognizer(cache.embedder, face, pair_thresholds=shipped_pair_thresholds(args.model, fmr),
                                  fmr=fmr)
            with Gallery(location, model=searcher) as gallery:
                at_fmr[rate] = margins(gallery, metric, mated, unknown, mated_paths)
    mated_margins, unknown_margins = at_fmr[rates[0]]
    rank1 = float(np.mean(np.isfinite(mated_margins)))
    reference = identification(people, cache, MaskSetting())
    shifts = np.linspace(-0.5, 0.5, 201)
    det = {"shift": shifts.tolist(),
           "fpir": [float(np.mean(unknown_margins >= s)) for s in shifts],
           "fnir": [float(np.mean(~(mated_margins >= s))) for s in shifts]}
    result = {"model": args.model, "enrolled": len(names), "mated_probes": len(mated_paths),
              "mated_faces_found": len(mated), "non_mated_probes": len(strangers),
              "non_mated_faces_found": len(unknown),
              "rank1_gallery": rank1, "rank1_eval_identification": reference["rank1"],
              "fnir_at_shipped": float(np.mean(~(mated_margins >= 0))),
              "fpir_at_shipped": float(np.mean(unknown_margins >= 0)),
              "at_fmr": {rate: {"fnir": float(np.mean(~(m >= 0))), "fpir": float(np.mean(u >= 0))}
                         for rate, (m, u) in at_fmr.items()},
              "det": det}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps({k: v for k, v in result.items() if k != "det"}, indent=2))


def margins(gallery: Gallery, metric: str, mated: dict, unknown: dict, mated_paths: list) -> tuple:
    """How far each probe's top candidate lies on the accepting side of its threshold, for mated probes (-inf when
    the top candidate is not the mate, or the face was not found) and for non-mated ones."""
    def search(found: dict) -> list:
        keys = list(found)
        if not keys:
            return []
        return gallery.identify_embeddings(np.stack([found[k][0] for k in keys]),
                                           completed=[found[k][1] for k in keys], top=1)

    def margin(candidate) -> float:
        return candidate.threshold - candidate.score if metric == "euclidean" else candidate.score - candidate.threshold

    mated_answers = dict(zip(mated, search(mated)))
    mated_margins = np.array([margin(mated_answers[p].candidates[0])
                              if p in mated_answers and mated_answers[p].candidates[0].person == n else -np.inf
                              for p, n in mated_paths])
    return mated_margins, np.array([margin(a.candidates[0]) for a in search(unknown)])


def plot(result: dict, path: Path) -> None:
    """The DET curve over shifts of the shipped thresholds, with a dot for each calibrated false-match rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    det = result["det"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(det["fpir"], det["fnir"], color="0.3", label="every threshold shifted alike")
    for rate, point in sorted(result.get("at_fmr", {}).items()):
        ax.plot([max(point["fpir"], 1e-4)], [point["fnir"]], "o", label=f"thresholds at pair FMR {rate}")
    ax.set_xscale("log")
    ax.set_xlabel("FPIR (non-mated masked probes accepted)")
    ax.set_ylabel("FNIR (mated masked probes missed)")
    ax.set_title(f"LFW open set, {result['enrolled']} enrolled, masked probes\n{result['model']}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
