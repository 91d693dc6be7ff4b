"""Prometheus exposition of what /monitoring shows, collected from Redis at scrape time.

Latencies are real histograms (all-time bucket counts per series, core/timing.py): a custom collector
over buckets held in Redis, which add up every web process and worker on every host, where
prometheus_client's multiprocess mode would only see the files of one host."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from core.timing import timing_histogram, timing_series
from monitoring.selectors import (
    cache_overview_get,
    endpoints_overview_get,
    jobs_overview_get,
    providers_overview_get,
    queues_and_workers_get,
)
from prices.providers.telemetry import provider_series


class FolioCollector:
    def collect(self):
        cache = cache_overview_get(minutes=5)
        hits = CounterMetricFamily("folio_query_cache_hits", "Query cache hits", labels=["namespace"])
        misses = CounterMetricFamily("folio_query_cache_misses", "Query cache misses", labels=["namespace"])
        for name, stats in cache["namespaces"].items():
            hits.add_metric([name], stats["hits"])
            misses.add_metric([name], stats["misses"])
        yield hits
        yield misses
        yield GaugeMetricFamily("folio_redis_used_memory_bytes", "Redis memory in use",
                                value=cache["redis"]["used_memory"] or 0)
        yield GaugeMetricFamily("folio_redis_evicted_keys", "Keys Redis evicted",
                                value=cache["redis"]["evicted_keys"] or 0)

        requests = GaugeMetricFamily("folio_provider_requests_1h", "Provider requests, last hour", labels=["provider"])
        errors = GaugeMetricFamily("folio_provider_errors_1h", "Provider errors, last hour", labels=["provider"])
        limited = GaugeMetricFamily("folio_provider_rate_limited_1h", "Provider 429s, last hour", labels=["provider"])
        latency = HistogramMetricFamily("folio_provider_latency_seconds", "Provider request latency",
                                        labels=["provider"])
        circuit = GaugeMetricFamily("folio_provider_circuit_open", "1 when the provider's circuit is open",
                                    labels=["provider"])
        instruments = GaugeMetricFamily("folio_instruments", "Active instruments by price freshness",
                                        labels=["provider", "freshness"])
        for provider in providers_overview_get():
            name = provider["name"]
            for state, count in provider["instruments"].items():
                instruments.add_metric([name, state], count)
            if provider.get("circuit") is None:
                continue
            requests.add_metric([name], provider["requests"])
            errors.add_metric([name], provider["errors"])
            limited.add_metric([name], provider["rate_limited"])
            circuit.add_metric([name], 0 if provider["circuit"] == "closed" else 1)
            latency.add_metric([name], *timing_histogram(series=provider_series(name)))
        yield from (requests, errors, limited, latency, circuit, instruments)

        endpoint_latency = HistogramMetricFamily("folio_endpoint_latency_seconds", "Endpoint latency",
                                                 labels=["endpoint"])
        endpoint_count = GaugeMetricFamily("folio_endpoint_requests_1h", "Requests, last hour", labels=["endpoint"])
        for row in endpoints_overview_get():
            endpoint_count.add_metric([row["endpoint"]], row["count"])
        # Every endpoint ever timed, idle ones too: a histogram's series must not vanish between requests.
        for series in timing_series(prefix="endpoint:"):
            endpoint_latency.add_metric([series.removeprefix("endpoint:")], *timing_histogram(series=series))
        yield endpoint_latency
        yield endpoint_count

        workers = queues_and_workers_get()
        queue = GaugeMetricFamily("folio_queue_length", "Tasks waiting per Celery queue", labels=["queue"])
        for name, length in workers["queues"].items():
            queue.add_metric([name], length)
        yield queue
        yield GaugeMetricFamily("folio_worker_heartbeat_age_seconds", "Seconds since a worker last beat",
                                value=workers["heartbeat_age_seconds"] if workers["heartbeat_age_seconds"] is not None
                                else float("inf"))
        jobs = jobs_overview_get(limit=50)
        yield GaugeMetricFamily("folio_jobs_running", "Refresh jobs not finished",
                                value=sum(1 for job in jobs if job["state"] in ("PENDING", "PROGRESS")))


def metrics_text() -> bytes:
    registry = CollectorRegistry()
    registry.register(FolioCollector())
    return generate_latest(registry)
