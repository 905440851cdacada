"""The service's parts on their own, without a model or a server: the micro-batching queue (batch bounds, the
bounded wait, overload, callers that went away), the token buckets, the keys file and the multipart parser."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from maskface.apps.service.batcher import MicroBatcher, Overloaded
from maskface.apps.service.keys import KeysFile, KeysFileError, key_id
from maskface.apps.service.problems import ApiError
from maskface.apps.service.ratelimit import RateLimiter
from maskface.apps.service.uploads import parse_form


class Recorder:
    """An inference function that records each batch's size and returns each chip's first value as its vector."""

    def __init__(self, delay: float = 0.0):
        self.batches: list[int] = []
        self.delay = delay

    def __call__(self, chips: np.ndarray):
        self.batches.append(len(chips))
        time.sleep(self.delay)
        return chips.reshape(len(chips), -1)[:, :1].astype(np.float32), np.zeros(len(chips), bool)


def chips(*values: int) -> np.ndarray:
    return np.array(values, np.uint8).reshape(-1, 1, 1, 1)


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_share_one_batch_and_get_their_own_rows():
    infer = Recorder()

    async def main():
        batcher = MicroBatcher(infer, max_batch=16, max_wait=0.05)
        batcher.start()
        answers = await asyncio.gather(*[batcher.embed(chips(i, i + 100)) for i in range(5)])
        await batcher.stop()
        return answers

    answers = run(main())
    assert infer.batches == [10]
    for i, (vectors, completed) in enumerate(answers):
        assert vectors[:, 0].tolist() == [i, i + 100] and completed.tolist() == [False, False]


def test_a_batch_never_exceeds_max_batch_and_never_splits_a_request():
    infer = Recorder()

    async def main():
        batcher = MicroBatcher(infer, max_batch=4, max_wait=0.05)
        batcher.start()
        answers = await asyncio.gather(*[batcher.embed(chips(*range(3))) for _ in range(4)],
                                       batcher.embed(chips(*range(6))))
        await batcher.stop()
        return answers

    answers = run(main())
    assert sum(infer.batches) == 18 and all(size <= 4 or size == 6 for size in infer.batches)
    assert infer.batches.count(6) == 1  # a request larger than a batch goes alone, whole
    assert [len(v) for v, _ in answers] == [3, 3, 3, 3, 6]


def test_a_lone_request_waits_at_most_max_wait():
    infer = Recorder()

    async def main():
        batcher = MicroBatcher(infer, max_batch=16, max_wait=0.05)
        batcher.start()
        started = time.perf_counter()
        await batcher.embed(chips(1))
        elapsed = time.perf_counter() - started
        await batcher.stop()
        return elapsed

    elapsed = run(main())
    assert 0.04 <= elapsed < 0.5 and infer.batches == [1]


def test_overload_is_refused_at_once_and_abandoned_requests_are_skipped():
    infer = Recorder(delay=0.2)

    async def main():
        batcher = MicroBatcher(infer, max_batch=2, max_wait=0.0, max_queue=4)
        batcher.start()
        first = asyncio.ensure_future(batcher.embed(chips(1, 2)))
        await asyncio.sleep(0.05)  # the first batch is running
        second = asyncio.ensure_future(batcher.embed(chips(3, 4)))
        third = asyncio.ensure_future(batcher.embed(chips(5, 6)))
        await asyncio.sleep(0)
        with pytest.raises(Overloaded):
            await batcher.embed(chips(7))
        second.cancel()  # its caller timed out: its chips never reach the model
        await first
        await third
        await batcher.stop()

    run(main())
    assert infer.batches == [2, 2]


def test_an_inference_error_reaches_every_caller_of_the_batch():
    def broken(chips):
        raise RuntimeError("model failed")

    async def main():
        batcher = MicroBatcher(broken, max_batch=8, max_wait=0.02)
        batcher.start()
        results = await asyncio.gather(batcher.embed(chips(1)), batcher.embed(chips(2)), return_exceptions=True)
        await batcher.stop()
        return results

    assert [str(r) for r in run(main())] == ["model failed", "model failed"]


def test_token_bucket():
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=4, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(4)] == [0.0] * 4
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # keys have their own buckets
    now[0] = 1.0
    assert [limiter.take("a") for _ in range(2)] == [0.0, 0.0] and limiter.take("a") > 0
    # a key's own rate keeps the burst in seconds (2 s): rate 1 holds 2, rate 0 is unlimited
    assert [limiter.take("slow", 1.0) == 0.0 for _ in range(3)] == [True, True, False]
    assert all(limiter.take("free", 0.0) == 0.0 for _ in range(100))


def test_keys_file(tmp_path):
    store = KeysFile(tmp_path / "keys.json")
    token, record = store.create("door", ["write", "read"], rate=2.5)
    assert record.scopes == ("read", "write") and key_id(token) == record.id
    assert store.check(token).name == "door"
    assert store.check(token + "x") is None and store.check("mfk_" + record.id + "_") is None
    assert store.check("nonsense") is None
    other = KeysFile(tmp_path / "keys.json")  # another process's view: the file is the truth
    assert [k.id for k in other.list_keys()] == [record.id] and other.list_keys()[0].rate == 2.5
    assert token not in (tmp_path / "keys.json").read_text()
    with pytest.raises(KeysFileError, match="scopes"):
        store.create("x", ["admin"])
    with pytest.raises(KeysFileError, match="name"):
        store.create("bad\nname", ["read"])
    store.revoke(token)  # by the key itself, or by its id
    with pytest.raises(KeysFileError, match="no key"):
        store.revoke(record.id)
    time.sleep(1.05)  # a server rereads the file at most once a second
    assert store.check(token) is None
    (tmp_path / "broken.json").write_text(json.dumps({"keys": [{"id": 1}]}))
    with pytest.raises(KeysFileError, match="not a maskface keys file"):
        KeysFile(tmp_path / "broken.json").list_keys()


def form(*parts: bytes) -> bytes:
    return b"".join(parts) + b"--B--\r\n"


def part(name: str, data: bytes, filename: str | None = "f.jpg") -> bytes:
    extra = f'; filename="{filename}"' if filename else ""
    return f'--B\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n'.encode() + data + b"\r\n"


def test_multipart_parsing_in_memory():
    parsed = parse_form(form(part("person", "Zoë".encode(), None), part("image", b"\x00\xff" * 10),
                             part("image", b"")), "multipart/form-data; boundary=B", max_files=4)
    assert parsed.fields == {"person": "Zoë"}
    assert [(p.name, p.filename, len(p.data)) for p in parsed.files] == [("image", "f.jpg", 20), ("image", "f.jpg", 0)]


@pytest.mark.parametrize(("body", "content_type", "status", "code"), [
    (b"x", None, 415, "unsupported_media_type"),
    (b"x", "text/plain", 415, "unsupported_media_type"),
    (b"x", "multipart/form-data", 400, "malformed_multipart"),
    (b"garbage", "multipart/form-data; boundary=B", 400, "malformed_multipart"),
    (part("a", b"x"), "multipart/form-data; boundary=B", 400, "malformed_multipart"),
    (form(part("a", b"x") * 5), "multipart/form-data; boundary=B", 413, "too_many_images"),
    (form(part("a", b"x" * 2000, None)), "multipart/form-data; boundary=B", 413, "field_too_large"),
    (form(part("a", b"\xff", None)), "multipart/form-data; boundary=B", 400, "malformed_multipart"),
    (form(b"--B\r\nX-A: 1\r\n\r\nx\r\n"), "multipart/form-data; boundary=B", 400, "malformed_multipart"),
])
def test_multipart_refusals(body, content_type, status, code):
    with pytest.raises(ApiError) as caught:
        parse_form(body, content_type, max_files=4)
    assert (caught.value.status, caught.value.code) == (status, code)
