"""The pushgateway renderer: a run's final metrics pushed to a Prometheus Pushgateway as it ends.

A scrape endpoint (renderers/prometheus.py) closes with the launcher, so a Prometheus scraping
every few seconds never sees what a batch job produces at its end (the run's mean AU and
throughput, a traced run's I/O histogram). Prometheus' convention for a job that ends is the
Pushgateway: `--metrics-push URL` (or MLPSTORAGE_METRICS_PUSH) pushes, when each run ends,
what the scrape endpoint serves (renderers/metrics.py: the last sample of each host, each
epoch's and the run's AU and throughput, the run's I/O throughput, the I/O histogram when
traced, the resource as target_info), plus mlpstorage_run_info naming the run.

Grouped by job="mlpstorage" and instance=<this host's name>, and pushed with PUT: a run
replaces the previous run's metrics of its host, the group holding one run's finished values
(the gateway's push_time_seconds says when). The run id is a label of mlpstorage_run_info,
not of the grouping key: the gateway keeps every group until it is deleted, so a group per run
would grow without bound and Prometheus would scrape every old run's values forever.
"""

from __future__ import annotations

import os
import sys
import urllib.parse
from dataclasses import dataclass
from typing import Callable

from opentelemetry.semconv._incubating.attributes.host_attributes import HOST_NAME
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from mlpstorage.emitter.core import default_resource
from mlpstorage.emitter.events import RUN_FINISHED, RUN_STARTED
from mlpstorage.errors import UsageError
from mlpstorage.terminal import harmless

from .metrics import LiveMetrics, RecordedHistograms
from .prometheus import HistogramPrometheusReader

ENVIRONMENT = "MLPSTORAGE_METRICS_PUSH"
JOB = "mlpstorage"
PUSH_TIMEOUT_S = 5.0
RUN_INFO = ("benchmark", "model", "command", "run_id", "status")  # labels of mlpstorage_run_info


class PushTarget:
    """A Pushgateway's address, checked: http or https with a host (and a valid port). A user
    and password in it (https://user:pass@host) become basic authentication and are never
    shown: `shown` is the address without them."""

    def __init__(self, url: str, given_as: str):
        parts = urllib.parse.urlsplit(url.strip())
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
            raise UsageError(f"{given_as} {without_credentials(url)!r}: not an http or https URL with a host "
                             "(e.g. http://pushgateway:9091)")
        self.username = urllib.parse.unquote(parts.username or "")
        self.password = urllib.parse.unquote(parts.password or "")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.shown = self.url

    def handler(self) -> Callable:
        """prometheus_client's request handler: with basic authentication when the URL had a user."""
        from prometheus_client.exposition import basic_auth_handler, default_handler

        if not self.username:
            return default_handler

        def with_auth(url, method, timeout, headers, data):
            return basic_auth_handler(url, method, timeout, headers, data, self.username, self.password)

        return with_auth


class RunInfo:
    """mlpstorage_run_info{benchmark,model,command,run_id,status} 1: which run the pushed values are of."""

    def __init__(self):
        self.labels: dict[str, str] = {}

    def note(self, finished: dict) -> None:
        """The labels from the run's finished event (its final run id, its status)."""
        attributes = finished.get("attributes") or {}
        self.labels = {key: str(attributes.get(f"mlpstorage.{key}", "")) for key in RUN_INFO}
        self.labels["status"] = str(finished.get("status", "ok"))

    def collect(self):
        if self.labels:
            info = GaugeMetricFamily("mlpstorage_run_info", "The run whose final metrics these are",
                                     labels=list(RUN_INFO))
            info.add_metric([self.labels.get(key, "") for key in RUN_INFO], 1.0)
            yield info


@dataclass
class RunMetrics:
    """One run's metrics, on a registry of their own, and the labels naming the run."""

    metrics: LiveMetrics
    registry: CollectorRegistry
    info: RunInfo

    @classmethod
    def new(cls, resource) -> "RunMetrics":
        registry = CollectorRegistry(auto_describe=True)
        histograms = RecordedHistograms()
        info = RunInfo()
        registry.register(info)
        # The scrape endpoint's reader (the same families a scrape gets), on a registry of its
        # own rather than prometheus_client's global one, which that endpoint may be serving.
        reader = HistogramPrometheusReader(histograms, registry=registry)
        return cls(LiveMetrics(resource, [reader], histograms), registry, info)


class PushgatewayRenderer:
    """Feeds each run's events to the metrics of renderers/metrics.py and pushes them when the
    run finishes (its run.finished carries the headline figures). A push that fails is one
    warning line, within PUSH_TIMEOUT_S; the run is unaffected."""

    def __init__(self, target: PushTarget, resource=None, warn: Callable[[str], None] | None = None):
        self.target = target
        self._resource = resource or default_resource()
        self._instance = str(self._resource.attributes.get(HOST_NAME) or "unknown")
        self._warn = warn or (lambda message: print(f"mlpstorage: warning: {message}", file=sys.stderr))
        self._run: RunMetrics | None = None

    @classmethod
    def from_options(cls, options) -> "PushgatewayRenderer":
        if options.metrics_push:
            return cls(PushTarget(options.metrics_push, "--metrics-push"), options.resource)
        if os.environ.get(ENVIRONMENT):
            return cls(PushTarget(os.environ[ENVIRONMENT], ENVIRONMENT), options.resource)
        raise UsageError(f"the pushgateway renderer needs --metrics-push URL or {ENVIRONMENT}")

    def handle(self, event: dict) -> None:
        if event["type"] == RUN_STARTED:  # fresh metrics for each run (--loops): a run pushes its own only
            self._end_run()
            self._run = RunMetrics.new(self._resource)
        if self._run is None:
            return
        self._run.metrics.handle(event)
        if event["type"] == RUN_FINISHED:
            self._run.info.note(event)
            self._push()
            self._end_run()

    def _push(self) -> None:
        from prometheus_client import push_to_gateway

        try:
            push_to_gateway(self.target.url, job=JOB, registry=self._run.registry,
                            grouping_key={"instance": self._instance}, timeout=PUSH_TIMEOUT_S,
                            handler=self.target.handler())
        except Exception as exc:  # never the run's failure: the values are in events.jsonl anyway
            self._warn(f"metrics push to {self.target.shown} failed: {reason(exc)}")

    def _end_run(self) -> None:
        if self._run is not None:
            run, self._run = self._run, None
            run.metrics.provider.shutdown()

    def close(self) -> None:
        self._end_run()  # a run that never finished (the stream cut short) pushes nothing


def without_credentials(url: str) -> str:
    """url without what comes before an @ in its authority (a user and password)."""
    scheme, sep, rest = url.strip().rpartition("://")
    authority, slash, path = rest.partition("/")
    return scheme + sep + authority.rpartition("@")[2] + slash + path


def reason(exc: Exception) -> str:
    """One line for a failed push: the gateway's answer, or why it could not be reached."""
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        body = exc.read(300).decode("utf-8", "replace").strip().splitlines()
        return harmless(f"HTTP {exc.code} {exc.reason}" + (f": {body[0]}" if body else ""))
    if isinstance(exc, urllib.error.URLError):
        return harmless(str(getattr(exc.reason, "strerror", None) or exc.reason))
    return harmless(str(exc)) or type(exc).__name__
