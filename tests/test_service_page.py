"""The page at ``/``, in a real headless browser (Debian's Chromium driven by Playwright): a photo dropped on
each slot verifies, the aligned chips come back with their mask status, and the score is shown against the
threshold; one photo identifies against the gallery and lists the top matches; a wrong key shows the server's
error. ``MASKFACE_PAGE_SCREENSHOT=PATH`` saves the page with both answers (docs/img/service-page.png)."""

from __future__ import annotations

import base64
import os
import shutil

import httpx
import pytest

pytestmark = pytest.mark.slow


def chromium() -> str:
    path = os.environ.get("MASKFACE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "Chromium not found (apt-get install chromium, or set MASKFACE_CHROMIUM)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it (.ci/run): a missing browser must not pass by skipping
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


def drop(page, selector: str, path) -> None:
    """A real drop event carrying the file, as a user's drag from the desktop gives."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    transfer = page.evaluate_handle(
        """([data, name]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: name.endsWith(".png") ? "image/png" : "image/jpeg" }));
            return transfer;
        }""", [data, path.name])
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


#: the people the page test enrols (and removes afterwards): (name, LFW photos)
ENROLLED = {"Aaron Peirsol": ["Aaron_Peirsol/Aaron_Peirsol_0003.jpg", "Aaron_Peirsol/Aaron_Peirsol_0004.jpg"],
            "Aaron Eckhart": ["Aaron_Eckhart/Aaron_Eckhart_0001.jpg"],
            "Abdullah Gul": ["Abdullah_Gul/Abdullah_Gul_0001.jpg", "Abdullah_Gul/Abdullah_Gul_0002.jpg"]}


@pytest.fixture
def enrolled(service_server, lfw_root):
    """The gallery holding only :data:`ENROLLED` while the test runs (other tests' people are set aside)."""
    with httpx.Client(base_url=service_server.url, timeout=60, headers=service_server.headers("corpus")) as api:
        for person in api.get("/v1/people").json()["people"]:
            api.delete(f"/v1/people/{person['person']}")
        for name, photos in ENROLLED.items():
            files = [("image", (p, (lfw_root / p).read_bytes())) for p in photos]
            assert api.post("/v1/enroll", data={"person": name}, files=files).status_code == 201
        yield
        for name in ENROLLED:
            api.delete(f"/v1/people/{name}")


def test_page_verifies_and_identifies_dropped_photos(browser, service_server, service_photos, enrolled):
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(service_server.url + "/")
    page.wait_for_selector("#status.ready", timeout=30_000)
    assert "maskface_v1" in page.text_content("#status")
    page.fill("#key", service_server.tokens["page"])
    page.dispatch_event("#key", "change")
    page.set_input_files("#file-a", str(service_photos["a1_masked"]))  # click-to-choose
    drop(page, "#drop-b", service_photos["a2"])  # drag and drop
    page.wait_for_selector("#verdict", timeout=60_000)
    assert page.text_content("#verdict") == "Same person"
    numbers = page.text_content("#verify-numbers")
    assert "threshold" in numbers and "distance" in numbers and "maskface_v1" in numbers
    chips = page.eval_on_selector_all("#verify-result .face img", "imgs => imgs.map(i => [i.naturalWidth, i.complete])")
    assert chips == [[150, True], [150, True]]
    badges = page.eval_on_selector_all("#verify-result .badge", "els => els.map(e => e.textContent)")
    assert badges[0].startswith("masked (p=") and "completed" in badges
    assert any(badge.startswith("unmasked") for badge in badges)

    drop(page, "#drop-q", service_photos["a1_masked"])
    page.wait_for_selector("#identify-verdict", timeout=60_000)
    assert page.text_content("#identify-verdict") == "Best match: Aaron Peirsol"
    rows = page.eval_on_selector_all("#matches tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
    assert rows[0][0] == "Aaron Peirsol" and sorted(row[0] for row in rows) == sorted(ENROLLED)
    assert rows[0][3] == "match" and all(row[3] == "below threshold" for row in rows[1:])
    assert page.eval_on_selector("#identify-result .face img", "i => i.naturalWidth") == 150
    shot = os.environ.get("MASKFACE_PAGE_SCREENSHOT")
    if shot:
        page.screenshot(path=shot, full_page=True)
    assert errors == []
    page.close()


def test_page_shows_the_servers_error_for_a_wrong_key(browser, service_server, service_photos):
    page = browser.new_page()
    page.goto(service_server.url + "/")
    page.fill("#key", "mfk_000000000000_wrong")
    page.dispatch_event("#key", "change")
    page.set_input_files("#file-a", str(service_photos["a1"]))
    page.set_input_files("#file-b", str(service_photos["b1"]))
    page.wait_for_selector("#verify-error", timeout=30_000)
    assert page.text_content("#verify-error") == "unknown or revoked API key"
    page.close()
