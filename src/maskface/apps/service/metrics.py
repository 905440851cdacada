"""Prometheus metrics of one server process, in a registry of its own (several apps in one process never mix):
requests by route and status, latency, batch sizes and inference time, chips waiting, and the process's memory
and CPU (``process_*``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter("maskface_requests", "Requests answered, by route and status.",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("maskface_request_seconds", "Time to answer a request, by route.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.refusals = Counter("maskface_refusals", "Requests refused, by error code (limits, auth, input).",
                                ["code"], registry=self.registry)
        self.batch_chips = Histogram("maskface_batch_chips", "Chips per forward pass of the model.",
                                     buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.batch_seconds = Histogram("maskface_batch_seconds", "Time of one forward pass.",
                                       buckets=LATENCY_BUCKETS, registry=self.registry)
        self.waiting = Gauge("maskface_waiting_chips", "Chips waiting for the model.", registry=self.registry)
        self.ready = Gauge("maskface_ready", "1 when the model is loaded and the server answers.",
                           registry=self.registry)
        self.gallery_people = Gauge("maskface_gallery_people", "People enrolled in the gallery.",
                                    registry=self.registry)
        self.gallery_templates = Gauge("maskface_gallery_templates", "Templates in the gallery.",
                                       registry=self.registry)

    def on_batch(self, chips: int, seconds: float) -> None:
        self.batch_chips.observe(chips)
        self.batch_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
