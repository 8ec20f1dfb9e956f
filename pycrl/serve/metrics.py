"""The service's Prometheus metrics, in a registry of their own (not the process-global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Latency buckets in seconds: an image takes ~50 ms, a long video tens of seconds.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("pycrl_requests", "HTTP requests answered, by route and status code",
                                ["route", "code"], registry=self.registry)
        self.latency = Histogram("pycrl_request_seconds", "HTTP request latency, by route", ["route"],
                                 buckets=BUCKETS, registry=self.registry)
        self.stages = Histogram("pycrl_stage_seconds", "seconds per pipeline stage and input (queue: waiting "
                                "for a scoring thread)", ["stage"], buckets=BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("pycrl_queue_depth", "inputs admitted and waiting for a scoring thread",
                                 registry=self.registry)
        self.scoring = Gauge("pycrl_inputs_scoring", "inputs being scored now", registry=self.registry)
        self.results = Counter("pycrl_results", "inputs scored, by status", ["status"], registry=self.registry)
        self.errors = Counter("pycrl_errors", "errors, by type (input errors and refused requests)", ["type"],
                              registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
