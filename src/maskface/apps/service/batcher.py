"""Micro-batching: chips from concurrent requests share one forward pass. A request's chips wait at most
``max_wait`` seconds for others to join (fewer while the model is busy, since they queue anyway), a batch holds
at most ``max_batch`` chips (one request's chips are never split), and at most ``max_queue`` chips may wait: beyond
that a request is refused at once (503) instead of queueing without bound. Inference runs on one thread of its
own, so the event loop keeps answering (health, metrics, uploads) while the model works."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

#: what the model call returns for ``N`` chips: ``N x D`` embeddings and, for a mask-aware model, which it completed
Inference = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


class Overloaded(Exception):
    """More chips are waiting than the queue may hold."""


@dataclass
class _Job:
    chips: np.ndarray
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """``await batcher.embed(chips)`` -> ``(vectors, completed)`` for those chips, computed in a shared batch."""

    def __init__(self, infer: Inference, max_batch: int = 16, max_wait: float = 0.01, max_queue: int = 512,
                 on_batch: Callable[[int, float], None] | None = None):
        self.infer, self.max_batch, self.max_wait, self.max_queue = infer, max(1, max_batch), max_wait, max_queue
        self.on_batch = on_batch
        self.waiting = 0  # chips queued, not yet in a batch
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="maskface-inference")

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="maskface-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(Overloaded("the server is shutting down"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def embed(self, chips: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        if self.waiting + len(chips) > self.max_queue:
            raise Overloaded(f"{self.waiting} chips are waiting for the model (limit {self.max_queue})")
        job = _Job(chips, asyncio.get_running_loop().create_future())
        self.waiting += len(chips)
        self._queue.put_nowait(job)
        return await job.future

    async def _collect(self, carry: _Job | None) -> tuple[list[_Job], _Job | None]:
        """One batch: the first job, then whoever arrives within ``max_wait`` while it fits ``max_batch``; a job
        that would overflow it is carried to the next batch."""
        first = carry or await self._queue.get()
        jobs, count = [first], len(first.chips)
        deadline = time.monotonic() + self.max_wait
        while count < self.max_batch:
            if self._queue.empty():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            if count + len(job.chips) > self.max_batch:
                return jobs, job
            jobs.append(job)
            count += len(job.chips)
        return jobs, None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        carry: _Job | None = None
        while True:
            jobs, carry = await self._collect(carry)
            self.waiting -= sum(len(j.chips) for j in jobs)
            jobs = [j for j in jobs if not j.future.done()]  # callers that timed out or went away
            if not jobs:
                continue
            chips = np.concatenate([j.chips for j in jobs])
            started = time.perf_counter()
            try:
                vectors, completed = await loop.run_in_executor(self._executor, self.infer, chips)
            except Exception as exc:  # the callers' handlers turn it into an answer
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(len(chips), time.perf_counter() - started)
            start = 0
            for job in jobs:
                end = start + len(job.chips)
                if not job.future.done():
                    job.future.set_result((vectors[start:end], None if completed is None else completed[start:end]))
                start = end
