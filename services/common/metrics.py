"""Prometheus metrics shared by every service, on an explicit registry.

One :class:`CommonMetrics` per process (the demo runs every service in one process, so the
series carry a ``group`` / ``schema`` label rather than per-service metric names). Serving
processes pass ``prometheus_client.REGISTRY`` so that counters defined on the default
registry (the bus watchdog's restarts) appear on ``/metrics`` too; tests use a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

BATCH_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class CommonMetrics:
    registry: CollectorRegistry
    events_in: Counter  # labels: group, topic
    batch_latency: Histogram  # labels: group
    consumer_lag: Gauge  # labels: group
    consumer_errors: Counter  # labels: group, error
    outbox_published: Counter  # labels: schema

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> CommonMetrics:
        reg = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=reg,
            events_in=Counter(
                "outagedesk_events_in",
                "Records consumed and applied",
                ["group", "topic"],
                registry=reg,
            ),
            batch_latency=Histogram(
                "outagedesk_batch_latency_seconds",
                "Time to apply and commit one consumed batch",
                ["group"],
                buckets=BATCH_BUCKETS_S,
                registry=reg,
            ),
            consumer_lag=Gauge(
                "outagedesk_consumer_lag",
                "Records in the assigned partitions not yet consumed",
                ["group"],
                registry=reg,
            ),
            consumer_errors=Counter(
                "outagedesk_consumer_errors",
                "Failed consumer batches, by exception type",
                ["group", "error"],
                registry=reg,
            ),
            outbox_published=Counter(
                "outagedesk_outbox_published",
                "Outbox rows published by the relay",
                ["schema"],
                registry=reg,
            ),
        )


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The registry in Prometheus text format, and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
