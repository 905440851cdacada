"""Load and soak of ``maskface serve`` on loopback: a bounded asyncio client (httpx) drives a mix of verify and
identify requests against a gallery of ``--gallery-size`` templates, and reports throughput, p50/p99 latency,
errors and the server's memory.

The gallery holds ``--people`` real LFW people (two photos each, enrolled with the service's own model) and random
templates up to ``--gallery-size`` (drawn per dimension from the real templates' mean and spread, one per synthetic
person, so the search runs over a gallery of that size in the same region of the space). Probes are other photos of
the enrolled people, half of them with a synthetic mask (so the mask-aware model completes them); verify pairs are
drawn from the same pool.

Stages (each optional):

- ``--concurrency 1 2 4 8``: a closed-loop run of ``--duration`` seconds at each number of clients in flight;
- ``--compare-batching C``: the same load (C clients) against a server with ``--max-batch 1`` (one at a time) and
  one with the default micro-batching, in turn;
- ``--inference-gain C``: the model alone, in this process, without HTTP or alignment: the probes' chips sent
  as one-chip requests by C concurrent callers through the service's batching queue with ``max_batch=1`` and with
  the default settings, interleaved over three rounds (best of each);
- ``--soak S``: S seconds at ``--soak-concurrency`` clients, the server's RSS sampled every second; "flat" means
  the median RSS of the last minute is within 10 % of the median of the minute after the first (the warm-up).

    python benchmarks/service_load.py --gallery-size 10000 --concurrency 1 2 4 8 --duration 30 \\
        --compare-batching 8 --soak 600 --soak-concurrency 4 --out service_load.json
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the gallery and the probes ---------------------------------------------------------------------------------
def lfw_people(count: int, photos: int = 3) -> list[tuple[str, list[Path]]]:
    """The first ``count`` LFW people (sorted) with at least ``photos`` photos."""
    people = []
    for folder in sorted((DATA / "lfw").iterdir()):
        files = sorted(folder.glob("*.jpg"))
        if len(files) >= photos:
            people.append((folder.name, files[:photos]))
        if len(people) == count:
            break
    return people


def build_gallery(path: Path, size: int, people: list[tuple[str, list[Path]]], seed: int) -> dict:
    """Enrol two photos of each real person, then random templates up to ``size``; returns what was built."""
    import maskface
    from maskface.apps.gallery import Gallery

    recognizer = maskface.load()
    gallery = Gallery(path, model=recognizer)
    started = time.perf_counter()
    for name, files in people:
        gallery.enroll(name, [str(f) for f in files[:2]])
    real = gallery.store.counts()[1]
    _, vectors = gallery.store.templates_of([name for name, _ in people])
    mean, spread = vectors.mean(0), vectors.std(0)
    rng = np.random.default_rng(seed)
    remaining = max(0, size - real)
    for start in range(0, remaining, 5000):
        n = min(5000, remaining - start)
        fake = (mean + spread * rng.standard_normal((n, vectors.shape[1]))).astype(np.float32)
        names = [f"synthetic-{start + i:06d}" for i in range(n)]
        gallery.add_embeddings(names, fake, [f"random:{start + i}" for i in range(n)])
    people_count, templates = gallery.store.counts()
    gallery.close()
    return {"people": people_count, "templates": templates, "real_templates": real,
            "seconds": round(time.perf_counter() - started, 1)}


def probe_photos(people: list[tuple[str, list[Path]]], seed: int) -> list[bytes]:
    """The third photo of each person as JPEG bytes, and every other one also masked (PNG)."""
    from PIL import Image

    from maskface.face.pipeline import FacePipeline
    from maskface.io.images import load_image
    from maskface.masks.synth import MaskSynthesizer

    pipeline, synth = FacePipeline(), MaskSynthesizer(seed=seed)
    probes = []
    for index, (_, files) in enumerate(people):
        probes.append(files[2].read_bytes())
        if index % 2 == 0:
            image = load_image(files[2])
            face = pipeline.align(image)
            buffer = io.BytesIO()
            Image.fromarray(synth(image, face.landmarks, key=str(files[2])).image).save(buffer, "PNG")
            probes.append(buffer.getvalue())
    return probes


# -- the server ---------------------------------------------------------------------------------------------------
class Server:
    def __init__(self, workdir: Path, gallery: Path, keys: Path, extra: list[str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(workdir / f"server-{self.port}.log", "wb")  # noqa: SIM115
        command = [sys.executable, "-m", "maskface", "serve", "--gallery", str(gallery), "--keys", str(keys),
                   "--port", str(self.port), "--rate", "0", "--timeout", "60", *extra]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        import httpx

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited ({self.process.returncode}); see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError("server not ready after 300 s")

    def rss(self) -> int:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


# -- the load -----------------------------------------------------------------------------------------------------
async def run_load(server: Server, key: str, probes: list[bytes], clients: int, seconds: float, mix: float,
                   seed: int) -> dict:
    """``clients`` concurrent clients, each sending its next request when its last one is answered, for
    ``seconds``; the server's RSS sampled every second."""
    import httpx

    rng = random.Random(seed)
    latencies: dict[str, list[float]] = {"verify": [], "identify": []}
    errors: dict[str, int] = {}
    rss: list[tuple[float, int]] = []
    started = time.perf_counter()
    deadline = started + seconds
    headers = {"Authorization": f"Bearer {key}"}

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            route = "verify" if rng.random() < mix else "identify"
            if route == "verify":
                a, b = rng.sample(probes, 2)
                files = [("a", ("a", a)), ("b", ("b", b))]
            else:
                files = [("image", ("q", rng.choice(probes)))]
            sent = time.perf_counter()
            try:
                answer = await client.post(f"/v1/{route}", files=files, headers=headers)
                status = str(answer.status_code)
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            if status == "200":
                latencies[route].append(time.perf_counter() - sent)
            else:
                errors[status] = errors.get(status, 0) + 1

    async def sample_memory() -> None:
        while time.perf_counter() < deadline:
            rss.append((round(time.perf_counter() - started, 1), server.rss()))
            await asyncio.sleep(1.0)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
        await asyncio.gather(sample_memory(), *[client_loop(client) for _ in range(clients)])
    elapsed = time.perf_counter() - started
    done = sum(len(v) for v in latencies.values())
    everything = sorted(t for v in latencies.values() for t in v)

    def pct(values: list[float], q: float) -> float | None:
        return round(float(np.percentile(values, q)) * 1000, 1) if values else None

    return {"clients": clients, "seconds": round(elapsed, 1), "requests": done,
            "throughput": round(done / elapsed, 2), "errors": errors,
            "p50_ms": pct(everything, 50), "p99_ms": pct(everything, 99),
            "by_route": {r: {"requests": len(v), "p50_ms": pct(v, 50), "p99_ms": pct(v, 99)}
                         for r, v in latencies.items()},
            "rss_mb": {"first": round(rss[0][1] / 2**20), "max": round(max(r for _, r in rss) / 2**20),
                       "last": round(rss[-1][1] / 2**20)} if rss else {},
            "rss_samples": rss}


def inference_gain(probes: list[bytes], clients: int, rounds: int = 3) -> dict:
    """Chips per second through :class:`MicroBatcher` one at a time and batched (see the module docstring)."""
    import maskface
    from maskface.apps.service.batcher import MicroBatcher
    from maskface.apps.service.settings import Batching

    recognizer = maskface.load()
    chips = np.stack([recognizer.face(p).chip for p in probes])

    def infer(batch: np.ndarray):
        vectors, completed = recognizer._embed_reporting_completion(batch)
        return vectors, None if completed is None else np.asarray(completed)

    async def one_pass(max_batch: int, max_wait: float) -> float:
        batcher = MicroBatcher(infer, max_batch, max_wait)
        batcher.start()
        queue = list(range(len(chips))) * 2
        started = time.perf_counter()

        async def caller() -> None:
            while queue:
                index = queue.pop()
                await batcher.embed(chips[index : index + 1])

        await asyncio.gather(*[caller() for _ in range(clients)])
        elapsed = time.perf_counter() - started
        await batcher.stop()
        return 2 * len(chips) / elapsed

    infer(chips[:4])  # warm-up
    default = Batching()
    best = {"one_at_a_time": 0.0, "batched": 0.0}
    for _ in range(rounds):
        best["one_at_a_time"] = max(best["one_at_a_time"], asyncio.run(one_pass(1, 0.0)))
        best["batched"] = max(best["batched"], asyncio.run(one_pass(default.max_batch, default.max_wait)))
    masked = int(sum(recognizer._embed_reporting_completion(chips)[1] or ()))
    return {"clients": clients, "chips": len(chips), "completed_chips": masked,
            "chips_per_s": {k: round(v, 2) for k, v in best.items()},
            "gain": round(best["batched"] / best["one_at_a_time"], 3)}


def soak_verdict(samples: list[tuple[float, int]], warmup: float = 60.0) -> dict:
    """Memory over a soak: the median RSS of the minute after the warm-up against the median of the last minute
    ("flat": within 10 %), and the highest single sample (transient peaks while large batches are in flight)."""
    after = [(t, r) for t, r in samples if t >= warmup]
    if len(after) < 2 or after[-1][0] - warmup < 120:
        return {"flat": None, "note": "too short: needs the warm-up and two more minutes"}
    first = [r for t, r in after if t < warmup + 60]
    last = [r for t, r in after if t >= after[-1][0] - 60]
    base, end = float(np.median(first)), float(np.median(last))
    growth = (end - base) / base
    return {"median_rss_first_minute_mb": round(base / 2**20), "median_rss_last_minute_mb": round(end / 2**20),
            "growth_pct": round(100 * growth, 2), "peak_mb": round(max(r for _, r in after) / 2**20),
            "peak_over_first_pct": round(100 * (max(r for _, r in after) - base) / base, 2),
            "flat": abs(growth) <= 0.10}


def report(label: str, result: dict) -> None:
    errors = sum(result["errors"].values())
    print(f"{label:28s} clients {result['clients']:3d}  {result['throughput']:7.2f} req/s  p50 {result['p50_ms']} ms  "
          f"p99 {result['p99_ms']} ms  errors {errors} {result['errors'] or ''}  RSS {result['rss_mb']} MB",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gallery-size", type=int, default=10_000)
    parser.add_argument("--people", type=int, default=40, help="real LFW people enrolled (2 photos each)")
    parser.add_argument("--mix", type=float, default=0.5, help="share of verify requests (the rest identify)")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--compare-batching", type=int, default=0, metavar="CLIENTS")
    parser.add_argument("--inference-gain", type=int, default=0, metavar="CLIENTS")
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--soak-concurrency", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="maskface-load-"))
    workdir.mkdir(parents=True, exist_ok=True)
    from maskface.apps.service.keys import KeysFile

    people = lfw_people(args.people)
    gallery_path = workdir / "gallery.db"
    results: dict = {"machine": machine(), "load_average_at_start": os.getloadavg(), "args": vars(args) | {
        "workdir": str(workdir), "out": str(args.out)}}
    if not gallery_path.exists():
        results["gallery"] = build_gallery(gallery_path, args.gallery_size, people, args.seed)
        print(f"gallery: {results['gallery']}", flush=True)
    probes = probe_photos(people, args.seed)
    key, _ = KeysFile(workdir / "keys.json").create("load", ["read"], rate=0)

    def stage(extra: list[str], clients: list[int], seconds: float, label: str) -> list[dict]:
        server = Server(workdir, gallery_path, workdir / "keys.json", extra)
        try:
            asyncio.run(run_load(server, key, probes, 2, 5, args.mix, args.seed))  # warm-up, not reported
            out = []
            for c in clients:
                result = asyncio.run(run_load(server, key, probes, c, seconds, args.mix, args.seed + c))
                report(label, result)
                out.append(result)
            return out
        finally:
            server.stop()

    if args.concurrency:
        results["sweep"] = stage([], args.concurrency, args.duration, "micro-batching (default)")
    if args.compare_batching:
        c = args.compare_batching
        results["one_at_a_time"] = stage(["--max-batch", "1", "--max-wait-ms", "0"], [c], args.duration,
                                         "one at a time (--max-batch 1)")[0]
        results["batched"] = stage([], [c], args.duration, "micro-batching (default)")[0]
        gain = results["batched"]["throughput"] / max(results["one_at_a_time"]["throughput"], 1e-9)
        results["batching_gain"] = round(gain, 3)
        print(f"micro-batching gain at {c} clients: x{gain:.2f}", flush=True)
    if args.inference_gain:
        results["inference_gain"] = inference_gain(probes, args.inference_gain)
        print(f"model alone through the queue: {results['inference_gain']}", flush=True)
    if args.soak:
        soak = stage([], [args.soak_concurrency], args.soak, f"soak {args.soak:g} s")[0]
        soak["verdict"] = soak_verdict(soak["rss_samples"])
        results["soak"] = soak
        print(f"soak memory: {soak['verdict']}", flush=True)
    results["load_average_at_end"] = os.getloadavg()
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
