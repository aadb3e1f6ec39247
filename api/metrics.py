"""Prometheus metrics, one registry per app (several apps can live in one test process)."""

from __future__ import annotations

from typing import Any


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("flockid_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("flockid_http_request_seconds", "HTTP request latency", ["route"],
                                 registry=self.registry,
                                 buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.reports = Counter("flockid_reports_total", "Reports received by outcome", ["outcome"],
                               registry=self.registry)
        self.alerts = Counter("flockid_alerts_raised_total", "Alerts raised", ["kind"], registry=self.registry)

        # Labelled children by label values: `labels()` validates and locks on every call, a visible
        # share of a request on the ingest path. Children live as long as the registry anyway.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._report_children: dict[str, Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        children = self._request_children.get((method, route, status))
        if children is None:
            children = (self.requests.labels(method, route, str(status)), self.latency.labels(route))
            self._request_children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_report(self, outcome: str) -> None:
        child = self._report_children.get(outcome)
        if child is None:
            child = self._report_children[outcome] = self.reports.labels(outcome)
        child.inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def count_alerts(self, kinds: Any) -> None:
        for k in kinds:
            self.alerts.labels(k).inc()
