"""The committed results agree with their reports: every table ``tools/make_results.py`` writes, every run's
report.md, the cross-fitted reports (pooled again from their half runs), the README's figures, and every link."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

from maskface.eval.report import pool_runs, report_value, run_markdown

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUNS = DOCS / "results"


def _make_results():
    spec = importlib.util.spec_from_file_location("make_results", ROOT / "tools" / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_results = _make_results()


def test_results_page_equals_what_the_reports_give():
    assert (DOCS / "results.md").read_text() == make_results.results_page()


def test_model_card_tables_equal_what_the_reports_give():
    card = (DOCS / "models.md").read_text()
    blocks = make_results.model_card_blocks()
    assert card.count("<!-- make_results: ") == len(blocks) == 4
    assert make_results.fill_blocks(card, blocks) == card


def test_every_run_report_md_is_made_from_its_report_json():
    runs = sorted(RUNS.glob("*/*/report.json"))
    assert len(runs) == 123
    for path in runs:
        assert (path.parent / "report.md").read_text() == run_markdown(json.loads(path.read_text())), path.parent


@pytest.mark.parametrize("folder", [
    "crossfit-maskface_v1",
    *[pytest.param(name, marks=pytest.mark.slow) for name in make_results.CROSSFIT_HALVES
      if name != "crossfit-maskface_v1"],
])
def test_crossfit_reports_are_their_half_runs_pooled(folder):
    """What `maskface eval pool` gives from the committed half runs is the committed cross-fitted report: equal but
    for the last bits of the FDR and thresholds (the half runs' scores are kept as float32)."""
    model = make_results.CROSSFIT_HALVES[folder]
    scenarios = sorted(p.name for p in (RUNS / folder).iterdir())
    assert scenarios == ["M-M", "M-M-oracle", "M-U", "M-U-oracle", "U-U"]
    for scenario in scenarios:
        pooled, _, pairs = pool_runs([RUNS / f"lfw-folds{half}-{model}" / scenario for half in ("6-10", "1-5")])
        committed = json.loads((RUNS / folder / scenario / "report.json").read_text())
        committed["pipeline"] = report_value(committed, "pipeline")  # made before the key existed
        assert len(pairs) == pooled["pairs"] == 6000
        assert pooled.keys() == committed.keys()
        for key, value in committed.items():
            if key == "fdr":
                assert pooled[key] == pytest.approx(value, rel=1e-6), (scenario, key)
            elif key == "folds":
                assert [f["accuracy"] for f in pooled[key]] == [f["accuracy"] for f in value], scenario
                assert [f["threshold"] for f in pooled[key]] == pytest.approx([f["threshold"] for f in value],
                                                                               abs=1e-6), scenario
            else:
                assert pooled[key] == value, (scenario, key)


def _percentages(text: str) -> set[str]:
    """Rates given to two decimals, as ``93.20``, whether written ``93.20 %`` or ``93.20%``."""
    return set(re.findall(r"(\d+\.\d\d) ?%", text))


def test_readme_and_model_card_quote_the_results_page():
    """Every two-decimal rate the README's LFW rows and the model card's maskface_v1 section quote is a figure of
    results.md, so no page keeps a number that the results no longer give."""
    results = _percentages((DOCS / "results.md").read_text())
    rows = [line for line in (ROOT / "README.md").read_text().splitlines()
            if line.startswith("| ") and ("docs/results.md" in line or "docs/models.md#the-default" in line)]
    assert len(rows) == 5
    card = (DOCS / "models.md").read_text()
    section = card[card.index("## The default recogniser"):card.index("## The teacher, from dlib's file")]
    quoted = _percentages("\n".join(rows)) | _percentages(section)
    assert len(quoted) > 60
    assert quoted - results == set()


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_relative_link_of_the_docs_resolves():
    pages = [ROOT / "README.md", *DOCS.glob("*.md"), *RUNS.rglob("*.md")]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", file.read_text(), re.M)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []


def test_results_stay_small():
    """docs/results holds reports, compact scores and only the plots the docs show (files git keeps: runs made
    locally add plots that .gitignore leaves out)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "docs/results"],
                            cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    files = [ROOT / name for name in listed.stdout.split("\0") if name and (ROOT / name).is_file()]
    assert len(files) > 250
    assert sum(p.stat().st_size for p in files) < 5_000_000
    assert not [p for p in files if p.name == "scores.csv"]
    assert sorted(p.relative_to(RUNS).as_posix() for p in files if p.suffix == ".png") == ["all/det.png",
                                                                                         "all/roc.png"]
