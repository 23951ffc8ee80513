"""Prometheus metrics: jobs by status (read from the store at scrape time), export durations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from piiport.service.jobs import Job, JobStore


class Metrics:
    def __init__(self, jobs: JobStore) -> None:
        from prometheus_client import CollectorRegistry, Histogram
        from prometheus_client.core import GaugeMetricFamily

        self.registry = CollectorRegistry()
        store = jobs

        class JobsByStatus:
            def collect(self) -> Iterator[Any]:
                family = GaugeMetricFamily("piiport_jobs", "Access-request jobs by status", labels=["status"])
                for status, count in store.counts().items():
                    family.add_metric([status], count)
                yield family

        self.registry.register(JobsByStatus())
        buckets = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, float("inf"))
        self.export_seconds = Histogram(
            "piiport_export_duration_seconds",
            "Wall time of an export process, by outcome",
            ["status"],
            registry=self.registry,
            buckets=buckets,
        )
        self.scan_seconds = Histogram(
            "piiport_scan_duration_seconds", "Wall time of a scan", registry=self.registry, buckets=buckets
        )

    def export_finished(self, job: Job, seconds: float) -> None:
        self.export_seconds.labels(job.status).observe(seconds)

    def scan_finished(self, _scan: Any, seconds: float) -> None:
        self.scan_seconds.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
