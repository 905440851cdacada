"""The HTTP service, end to end: the real ``maskface serve`` on loopback with the real default model, every route,
authentication and scopes, every limit, and a corpus of malformed requests, each answered with a 4xx JSON error and
never a 5xx. The server runs with small limits so each one is quick to reach."""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from service_server import SERVICE_KEYS, start_server

pytestmark = pytest.mark.slow

KEYS = SERVICE_KEYS


@pytest.fixture(scope="module")
def server(service_server):
    return service_server


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def photos(service_photos) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in service_photos.items()}


@pytest.fixture(scope="module")
def recognizer():
    import maskface

    return maskface.load("maskface_v1")  # the model the test server runs (SERVICE_ARGS)


def pair(a: bytes, b: bytes) -> list:
    return [("a", ("a.jpg", a, "image/jpeg")), ("b", ("b.jpg", b, "image/jpeg"))]


def assert_error(answer: httpx.Response, status: int, code: str | None = None) -> dict:
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert error["status"] == status and error["message"]
    assert "Traceback" not in answer.text
    if code is not None:
        assert error["code"] == code, error
    return error


# -- health, readiness, docs -------------------------------------------------------------------------------------
def test_health_ready_and_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["model"] == "maskface_v1" and ready["metric"] == "euclidean"
    assert ready["gallery"] is True
    assert "swagger" in client.get("/docs").text.lower()
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/v1/verify", "/v1/embed", "/v1/identify", "/v1/enroll", "/v1/people", "/v1/people/{person}",
                  "/healthz", "/readyz", "/metrics"):
        assert route in paths
    assert "multipart/form-data" in paths["/v1/verify"]["post"]["requestBody"]["content"]


# -- authentication and scopes -----------------------------------------------------------------------------------
READ_ROUTES = [("post", "/v1/verify"), ("post", "/v1/embed"), ("post", "/v1/identify"), ("get", "/v1/people"),
               ("get", "/metrics")]
WRITE_ROUTES = [("post", "/v1/enroll"), ("delete", "/v1/people/someone")]


@pytest.mark.parametrize(("method", "route"), READ_ROUTES)
def test_no_key_wrong_key_and_wrong_scope_are_refused(client, server, photos, method, route):
    files = pair(photos["a1"], photos["a2"]) if method == "post" else None
    kwargs = {"files": files} if files else {}
    error = assert_error(client.request(method, route, **kwargs), 401, "unauthorized")
    assert "API key" in error["message"]
    assert client.request(method, route, **kwargs).headers["www-authenticate"].startswith("Bearer")
    fake = server.tokens["reader"][:-4] + "AAAA"  # right id, wrong secret
    for headers in ({"Authorization": f"Bearer {fake}"}, {"X-API-Key": "mfk_nope_nope"}, {"Authorization": "Basic x"},
                    {"Authorization": "Bearer " + "x" * 5000}):
        assert_error(client.request(method, route, headers=headers, **kwargs), 401, "unauthorized")
    error = assert_error(client.request(method, route, headers=server.headers("writer"), **kwargs), 403, "forbidden")
    assert "'read'" in error["message"]


@pytest.mark.parametrize(("method", "route"), WRITE_ROUTES)
def test_write_routes_need_the_write_scope(client, server, photos, method, route):
    kwargs = {"files": [("image", ("x.jpg", photos["a1"]))], "data": {"person": "someone"}} if method == "post" else {}
    assert_error(client.request(method, route, **kwargs), 401, "unauthorized")
    error = assert_error(client.request(method, route, headers=server.headers("reader"), **kwargs), 403, "forbidden")
    assert "'write'" in error["message"]
    assert "someone" not in people(client, server)


def test_a_revoked_key_stops_working_within_two_seconds(client, server):
    headers = server.headers("revoked")
    assert client.get("/metrics", headers=headers).status_code == 200
    key_id = server.tokens["revoked"].split("_")[1]
    revoked = subprocess.run([sys.executable, "-m", "maskface", "keys", "revoke", key_id, "--keys", str(server.keys)],
                             capture_output=True, text=True)
    assert revoked.returncode == 0, revoked.stderr
    time.sleep(1.5)
    assert_error(client.get("/metrics", headers=headers), 401, "unauthorized")


def test_keys_are_stored_hashed(server):
    stored = server.keys.read_text()
    assert len(server.tokens) == len(KEYS)
    for token in server.tokens.values():
        assert token not in stored and token.split("_", 2)[2] not in stored
    assert server.keys.stat().st_mode & 0o077 == 0  # readable by its owner only


# -- verify and embed --------------------------------------------------------------------------------------------
def test_verify_answers_like_the_python_api(client, server, photos, recognizer):
    answer = client.post("/v1/verify", files=pair(photos["a1"], photos["a2"]), headers=server.headers("reader"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    local = recognizer.verify(photos["a1"], photos["a2"])
    assert body["same"] is True and body["metric"] == "euclidean" and body["model"] == "maskface_v1"
    assert body["score"] == pytest.approx(local.score, abs=1e-4)
    assert body["threshold"] == pytest.approx(local.threshold, abs=1e-6)
    assert body["score"] < body["threshold"]
    for face in body["faces"]:
        assert face["masked"] is False and face["completed"] is False and face["detector"] == "yunet"
        assert "chip" not in face and len(face["box"]) == 4
    other = client.post("/v1/verify", files=pair(photos["a1"], photos["b1"]), headers=server.headers("reader")).json()
    assert other["same"] is False and other["score"] > other["threshold"]


def test_verify_reports_mask_and_completion_and_returns_chips(client, server, photos, recognizer):
    answer = client.post("/v1/verify?chips=true", files=pair(photos["a1_masked"], photos["a2"]),
                         headers=server.headers("reader"))
    body = answer.json()
    local = recognizer.verify(photos["a1_masked"], photos["a2"])
    masked, plain = body["faces"]
    assert masked["masked"] is True and masked["mask_probability"] > 0.5 and masked["completed"] is True
    assert plain["masked"] is False and plain["completed"] is False
    assert body["threshold"] == pytest.approx(local.threshold, abs=1e-6)  # the M-U pair's threshold
    assert body["score"] == pytest.approx(local.score, abs=1e-4) and body["same"] is local.same
    for face in body["faces"]:
        assert face["chip"].startswith("data:image/png;base64,")
        chip = Image.open(io.BytesIO(base64.b64decode(face["chip"].split(",", 1)[1])))
        assert chip.size == (150, 150)


def test_embed_gives_the_library_embeddings(client, server, photos, recognizer):
    files = [("image", (f"{i}.jpg", photos[k], "image/jpeg")) for i, k in enumerate(("a1", "a2", "b1"))]
    body = client.post("/v1/embed", files=files, headers=server.headers("reader")).json()
    vectors = np.array([item["vector"] for item in body["embeddings"]])
    assert vectors.shape == (3, 128) and body["dimension"] == 128
    local = recognizer.embed([photos["a1"], photos["a2"], photos["b1"]])
    np.testing.assert_allclose(vectors, local, atol=1e-4)
    assert [item["face"]["image"] for item in body["embeddings"]] == ["image[0]", "image[1]", "image[2]"]


def test_concurrent_requests_share_batches(client, server, photos):
    """Eight verifies at once: the model sees fewer forward passes than requests (batches of several chips)."""

    def batches() -> tuple[float, float]:
        text = client.get("/metrics", headers=server.headers("batch")).text
        count = float(re.search(r"^maskface_batch_chips_count (\S+)$", text, re.M).group(1))
        total = float(re.search(r"^maskface_batch_chips_sum (\S+)$", text, re.M).group(1))
        return count, total

    before = batches()
    results = []

    def one() -> None:
        with httpx.Client(base_url=server.url, timeout=60) as own:
            results.append(own.post("/v1/verify", files=pair(photos["a1"], photos["b1"]),
                                    headers=server.headers("batch")).status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = batches()
    assert results == [200] * 8
    passes, chips = after[0] - before[0], after[1] - before[1]
    assert chips == 16
    assert passes < 8, f"{passes} forward passes for 8 concurrent requests"


# -- the gallery: enrol, identify, people, remove ----------------------------------------------------------------
def people(client, server) -> dict[str, int]:
    body = client.get("/v1/people", headers=server.headers("reader")).json()
    return {p["person"]: p["templates"] for p in body["people"]}


def test_enroll_identify_list_and_remove(client, server, photos):
    writer, reader = server.headers("admin"), server.headers("reader")
    files = [("image", ("1.jpg", photos["a2"])), ("image", ("2.jpg", photos["b1"][:500])),
             ("image", ("3.png", _png(200, 200)))]
    answer = client.post("/v1/enroll", data={"person": "Peirsol"}, files=files, headers=writer)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["added"] == 1 and body["already"] == 0
    assert [(s["image"], s["code"]) for s in body["skipped"]] == [("image[1]", "bad_image"), ("image[2]", "no_face")]
    again = client.post("/v1/enroll", data={"person": "Peirsol"}, files=files[:1], headers=writer)
    assert again.status_code == 200 and again.json()["added"] == 0 and again.json()["already"] == 1
    assert client.post("/v1/enroll", data={"person": "Eckhart"}, files=[("image", ("b.jpg", photos["b1"]))],
                       headers=writer).status_code == 201
    listed = people(client, server)
    assert listed["Eckhart"] == 1 and listed["Peirsol"] == 1

    found = client.post("/v1/identify?top=2", files=[("image", ("q.jpg", photos["a1"]))], headers=reader).json()
    assert found["person"] == "Peirsol" and found["unknown"] is False
    best = found["candidates"][0]
    assert best["person"] == "Peirsol" and best["accepted"] and best["score"] < best["threshold"]
    assert found["face"]["masked"] is False and found["face"]["detector"] == "yunet"
    masked = client.post("/v1/identify?chips=true", files=[("image", ("q.png", photos["a1_masked"]))],
                         headers=reader).json()
    assert masked["face"]["masked"] is True and masked["face"]["completed"] is True and masked["face"]["chip"]
    assert masked["candidates"][0]["person"] == "Peirsol"
    # the masked probe is held to the M-U threshold, the plain one to U-U
    assert masked["candidates"][0]["threshold"] != best["threshold"]

    assert client.delete("/v1/people/Eckhart", headers=writer).json() == {"person": "Eckhart", "removed": 1}
    assert_error(client.delete("/v1/people/Eckhart", headers=writer), 404, "no_such_person")
    assert "Eckhart" not in people(client, server)
    nobody = client.post("/v1/identify", files=[("image", ("q.jpg", photos["b1"]))], headers=reader).json()
    assert all(c["person"] != "Eckhart" for c in nobody["candidates"])


def test_enroll_and_identify_refuse_bad_requests(client, server, photos):
    writer = server.headers("corpus")
    one = [("image", ("1.jpg", photos["a2"]))]
    assert_error(client.post("/v1/enroll", files=one, headers=writer), 422, "invalid_person")
    for name in ("", "   ", "a/b", "x" * 200, "tab\there"):
        assert_error(client.post("/v1/enroll", data={"person": name}, files=one, headers=writer), 422,
                     "invalid_person")
    assert_error(client.post("/v1/enroll", data={"person": "p"}, files=[("image", ("t.txt", b"text"))],
                             headers=writer), 422, "no_usable_image")
    assert_error(client.post("/v1/enroll", data={"person": "p"}, headers=writer,
                             files=[("image", (f"{i}.jpg", photos["a2"])) for i in range(5)]), 413, "too_many_images")
    for query in ("top=0", "top=101", "top=x", "combine=max"):
        assert_error(client.post(f"/v1/identify?{query}", files=one, headers=writer), 422, "invalid")
    assert_error(client.post("/v1/identify", files=one * 2, headers=writer), 422, "wrong_image_count")
    assert_error(client.get("/v1/people?limit=0", headers=writer), 422, "invalid")


def test_concurrent_enrol_and_delete_of_one_person_keep_the_gallery_consistent(client, server, photos):
    """Twelve clients enrol and remove the same person at once: every answer is 200, 201 or 404, and afterwards
    the person has exactly the two templates of the two photos, or is gone; the counts agree everywhere."""
    files = [("image", ("1.jpg", photos["a1"])), ("image", ("2.jpg", photos["a2"]))]
    statuses = []

    def work(index: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60, headers=server.headers("corpus")) as own:
            if index % 2:
                statuses.append(own.delete("/v1/people/Contested").status_code)
            else:
                statuses.append(own.post("/v1/enroll", data={"person": "Contested"}, files=files).status_code)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == 12 and set(statuses) <= {200, 201, 404}, statuses
    assert statuses.count(201) >= 1
    listed = people(client, server)
    assert listed.get("Contested", 2) == 2
    metrics = client.get("/metrics", headers=server.headers("reader")).text
    templates = float(re.search(r"^maskface_gallery_templates (\S+)$", metrics, re.M).group(1))
    everyone = client.get("/v1/people", headers=server.headers("reader")).json()
    assert templates == sum(p["templates"] for p in everyone["people"])
    assert float(re.search(r"^maskface_gallery_people (\S+)$", metrics, re.M).group(1)) == everyone["count"]


# -- limits ------------------------------------------------------------------------------------------------------
def test_upload_size_limit(client, server, photos):
    big = photos["a1"] + b"\0" * (2 * 2**20)
    error = assert_error(client.post("/v1/verify", files=pair(big, photos["a2"]), headers=server.headers("corpus")),
                         413, "upload_too_large")
    assert "2 MiB" in error["message"]

    def chunks():  # no Content-Length: the limit holds while the body streams in
        for _ in range(40):
            yield b"x" * 65536

    headers = server.headers("corpus") | {"content-type": "multipart/form-data; boundary=abc"}
    assert_error(client.post("/v1/verify", content=chunks(), headers=headers), 413, "upload_too_large")


def test_pixel_limit_stops_decompression_bombs(client, server, photos):
    bomb = io.BytesIO()
    Image.new("L", (3000, 2000)).save(bomb, "PNG")  # 6 Mpx in a few kilobytes
    assert len(bomb.getvalue()) < 50_000
    error = assert_error(client.post("/v1/verify", files=pair(bomb.getvalue(), photos["a2"]),
                                     headers=server.headers("corpus")), 413, "too_many_pixels")
    assert "3000 x 2000" in error["message"] and error["message"].startswith("a:")


def test_images_per_request_limit(client, server, photos):
    files = [("image", (f"{i}.jpg", photos["a1"], "image/jpeg")) for i in range(5)]
    assert_error(client.post("/v1/embed", files=files, headers=server.headers("corpus")), 413, "too_many_images")
    assert_error(client.post("/v1/verify", files=files[:3], headers=server.headers("corpus")), 422,
                 "wrong_image_count")


def test_request_timeout_ends_slow_uploads(server):
    started = time.monotonic()
    answer = raw(server, f"POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.tokens['corpus']}\r\n"
                         "Content-Type: multipart/form-data; boundary=abc\r\nContent-Length: 100000\r\n\r\n--abc\r\n"
                         .encode())
    elapsed = time.monotonic() - started
    assert answer.startswith("HTTP/1.1 408"), answer[:200]
    assert '"code":"timeout"' in answer
    assert 5.5 < elapsed < 15


def test_clients_that_never_finish_their_headers_do_not_block_others(client, server):
    """Twenty connections each holding half a header block: the server keeps answering everyone else."""
    held = []
    try:
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-")
            held.append(sock)
        started = time.monotonic()
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics", headers=server.headers("reader")).status_code == 200
        assert time.monotonic() - started < 5
    finally:
        for sock in held:
            sock.close()


def test_rate_limit_per_key(client, server):
    """The 'slow' key has its own rate, 1 request/s (a burst of 2): the third request at once is refused."""
    codes = [client.get("/metrics", headers=server.headers("slow")) for _ in range(4)]
    assert [c.status_code for c in codes[:2]] == [200, 200]
    refused = codes[2]
    error = assert_error(refused, 429, "rate_limited")
    assert "1 requests/s" in error["message"] and int(refused.headers["retry-after"]) >= 1
    time.sleep(1.1)
    assert client.get("/metrics", headers=server.headers("slow")).status_code == 200
    # other keys are not slowed by it
    assert client.get("/metrics", headers=server.headers("reader")).status_code == 200


def test_header_limit(client, server):
    assert_error(client.get("/healthz", headers={"x-padding": "a" * 20_000}), 431, "headers_too_large")


# -- the malformed-input corpus ----------------------------------------------------------------------------------
def raw(server, data: bytes) -> str:
    """Send bytes as they are; the status line and body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and len(b"".join(chunks)) > 50:
                text = b"".join(chunks)
                length = re.search(rb"content-length: (\d+)", text, re.I)
                if length and len(text.split(b"\r\n\r\n", 1)[1]) >= int(length.group(1)):
                    break
        return b"".join(chunks).decode("latin-1")


def malformed_requests(token: str, jpeg: bytes) -> dict[str, tuple[dict, bytes]]:
    """name -> (headers, body) of requests that must be refused with a 4xx."""
    auth = {"Authorization": f"Bearer {token}"}
    mp = {"content-type": "multipart/form-data; boundary=XyZ"}

    def part(name: str, data: bytes, filename: str | None = "x.jpg", extra: str = "") -> bytes:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        return f"--XyZ\r\nContent-Disposition: {disposition}\r\n{extra}\r\n".encode() + data + b"\r\n"

    end = b"--XyZ--\r\n"
    return {
        "json instead of multipart": ({"content-type": "application/json"}, b'{"a": "x"}'),
        "form-urlencoded": ({"content-type": "application/x-www-form-urlencoded"}, b"a=1&b=2"),
        "plain image body": ({"content-type": "image/jpeg"}, jpeg),
        "no content type": ({}, jpeg),
        "multipart without boundary": ({"content-type": "multipart/form-data"}, jpeg),
        "boundary too long": ({"content-type": "multipart/form-data; boundary=" + "b" * 100}, b"x"),
        "mixed, not form-data": ({"content-type": "multipart/mixed; boundary=XyZ"}, part("a", jpeg) + end),
        "empty body": (mp, b""),
        "garbage": (mp, b"\x00\xff" * 500),
        "wrong boundary": (mp, b"--OTHER\r\n" + part("a", jpeg)[7:] + b"--OTHER--\r\n"),
        "no closing boundary": (mp, part("a", jpeg) + part("b", jpeg)),
        "cut in the middle of a part": (mp, (part("a", jpeg) + part("b", jpeg) + end)[:3000]),
        "part without disposition": (mp, b"--XyZ\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n" + end),
        "disposition not form-data": (mp, b"--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n" + end),
        "huge part headers": (mp, b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"; filename=\"x\"\r\nX-Pad: "
                              + b"p" * 9000 + b"\r\n\r\n" + jpeg + b"\r\n" + end),
        "too many header lines in a part": (mp, b"--XyZ\r\n" + b"X-A: b\r\n" * 20 + b"\r\n" + jpeg + b"\r\n" + end),
        "non-UTF-8 text field": (mp, part("person", b"\xff\xfe", filename=None) + part("a", jpeg) + end),
        "text field too long": (mp, part("person", b"p" * 5000, filename=None) + part("a", jpeg) + end),
        "too many text fields": (mp, b"".join(part(f"f{i}", b"v", filename=None) for i in range(20)) + end),
        "one image only": (mp, part("a", jpeg) + end),
        "no image at all": (mp, end),
        "truncated jpeg": (mp, part("a", jpeg[: len(jpeg) // 2]) + part("b", jpeg) + end),
        "jpeg header only": (mp, part("a", jpeg[:200]) + part("b", jpeg) + end),
        "empty file": (mp, part("a", b"") + part("b", jpeg) + end),
        "text as an image": (mp, part("a", b"hello, world " * 40) + part("b", jpeg) + end),
        "html as an image": (mp, part("a", b"<html><script>alert(1)</script></html>", extra="Content-Type: "
                                      "image/jpeg\r\n") + part("b", jpeg) + end),
        "svg": (mp, part("a", b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"/>')
                + part("b", jpeg) + end),
        "tiny image": (mp, part("a", _png(8, 8)) + part("b", jpeg) + end),
        "sliver image": (mp, part("a", _png(2000, 40)) + part("b", jpeg) + end),
        "faceless image": (mp, part("a", _png(200, 200)) + part("b", jpeg) + end),
    } | {name: (headers | auth, body) for name, (headers, body) in {}.items()}


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 130, 140)).save(buffer, "PNG")
    return buffer.getvalue()


def test_malformed_requests_get_4xx_json(client, server, photos):
    answers = {}
    for name, (headers, body) in malformed_requests(server.tokens["corpus"], photos["a1"]).items():
        answer = client.post("/v1/verify", content=body, headers=headers | server.headers("corpus"))
        answers[name] = answer.status_code
        assert 400 <= answer.status_code < 500, (name, answer.status_code, answer.text[:200])
        assert_error(answer, answer.status_code)
    assert answers["json instead of multipart"] == 415 and answers["no content type"] == 415
    assert answers["garbage"] == 400 and answers["no closing boundary"] == 400
    assert answers["truncated jpeg"] == 422 and answers["faceless image"] == 422


def test_malformed_http_gets_4xx(server):
    token = server.tokens["corpus"]
    cases = {
        "bad content length": f"POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                              "Content-Type: multipart/form-data; boundary=a\r\nContent-Length: abc\r\n\r\n",
        "negative content length": f"POST /v1/verify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                                   "Content-Length: -5\r\n\r\n",
        "header without colon": "GET /healthz HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n",
        "bad request line": "HELLO\r\n\r\n",
        "header block of 100 kB": "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + "a" * 100_000 + "\r\n\r\n",
        "unsupported transfer encoding": "POST /v1/verify HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    }
    for name, request in cases.items():
        answer = raw(server, request.encode("latin-1"))
        status = int(answer.split(" ", 2)[1]) if answer.startswith("HTTP/1.1 ") else None
        assert status is not None and 400 <= status < 500, (name, answer[:200])


def test_hostile_image_corpus_through_embed(client, server, lfw_root, tmp_path):
    """Every byte-level file of the hostile image corpus (tests/hostile: broken, bombs, formats, sizes, special
    contents) uploaded on its own: 200 with a face, or a 4xx that says why; never a 5xx. Items the corpus expects
    refused are refused. (Its file-name groups are about paths, which an upload does not have.)"""
    from hostile.corpus import build_corpus

    items = build_corpus(tmp_path / "corpus", lfw_root, seed=3)
    refused = [item for item in items if item.expect != "ok"]
    readable = [item for item in items if item.expect == "ok"][::4]  # each one is a whole embedding: a sample
    seen = 0
    for item in refused + readable:
        path = tmp_path / "corpus" / item.path
        if item.group not in ("broken", "bomb", "format", "size", "special") or not path.is_file() or path.is_symlink():
            continue  # FIFOs, devices, links: file-system cases, not uploads
        data = path.read_bytes()
        if len(data) > 2 * 2**20:
            continue  # the upload limit is tested on its own
        seen += 1
        answer = client.post("/v1/embed", files=[("image", ("x", data, "application/octet-stream"))],
                             headers=server.headers("corpus"))
        assert answer.status_code == 200 or 400 <= answer.status_code < 500, (item.kind, answer.text[:200])
        if answer.status_code != 200:
            assert_error(answer, answer.status_code)
        if item.expect != "ok":
            assert answer.status_code in (413, 422), (item.kind, answer.status_code)
    assert seen > 40


# -- metrics, logs, disk -----------------------------------------------------------------------------------------
def test_metrics_in_prometheus_text(client, server):
    answer = client.get("/metrics", headers=server.headers("reader"))
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert re.search(r'^maskface_requests_total\{route="/v1/verify",status="200"\} [1-9]', text, re.M)
    assert re.search(r"^maskface_ready 1\.0$", text, re.M)
    assert re.search(r"^process_resident_memory_bytes \d", text, re.M)
    assert re.search(r'^maskface_refusals_total\{code="unauthorized"\} [1-9]', text, re.M)


def test_security_headers(client):
    headers = client.get("/").headers
    assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "server" not in headers


def test_no_upload_on_disk_no_image_bytes_in_logs_no_tracebacks(server, photos):
    """Run last in this module: nothing was written to the server's TMPDIR, its log holds no traceback, no image
    bytes and no embeddings (long runs of numbers)."""
    assert list(server.tmpdir.iterdir()) == []
    log = server.log_text()
    assert "Traceback" not in log and " 500 " not in log
    assert "JFIF" not in log and "\\xff\\xd8" not in log and "base64" not in log
    assert not re.search(r"(-?\d\.\d{4,}[, ]+){8}", log)


def test_insecure_mode_warns_and_lets_anyone_in(tmp_path):
    server = start_server(tmp_path, ["--insecure-no-auth", "--model", "dlib_resnet_v1"], wait_ready=0)
    try:
        answer = httpx.get(f"{server.url}/metrics", timeout=10)
        assert answer.status_code == 200
        log = server.log_text()
        assert "WARNING: --insecure-no-auth" in log and "ENROL AND DELETE" in log
    finally:
        server.process.kill()  # not waiting for the model it is still loading
        server.process.wait()


def test_keys_cli(tmp_path):
    keys = tmp_path / "k.json"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "maskface", "keys", *args, "--keys", str(keys)],
                              capture_output=True, text=True)

    made = run("create", "door-1", "--scope", "read")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert re.fullmatch(r"mfk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    listed = [json.loads(line) for line in run("list", "--json").stdout.splitlines()]
    assert [(k["name"], k["scopes"]) for k in listed] == [("door-1", ["read"])]
    assert token not in keys.read_text()
    assert run("create", "x", "--scope", "admin").returncode == 2
    bad = run("revoke", "nosuchid")
    assert bad.returncode == 2 and "no key with id" in bad.stderr
    assert run("revoke", listed[0]["id"]).returncode == 0
    assert run("list", "--json").stdout.strip() == ""


@pytest.mark.parametrize(("args", "says"), [
    (["--gallery", "postgresql://db/x"], "--keys"),
    (["--port", "0"], "--port"),
    (["--timeout", "nan"], "--timeout"),
    (["--max-megapixels", "100"], "--max-megapixels"),
])
def test_serve_usage_errors_are_one_line(args, says):
    result = subprocess.run([sys.executable, "-m", "maskface", "serve", *args], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and says in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
