"""The run's time series: /proc counters of every host sampled while "Running benchmark"
lasts (mlpstorage/collectors/timeseries.py), each sample an event, and all of them kept in
<benchmark>_<datetime>_timeseries.json."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..collectors.timeseries import Timeseries
from ..emitter import Emitter
from ..hosts import host_names
from ..results import write_json


class RunTimeseries:
    """on_sample(host, sample) also gets every sample (the stall watch reads them)."""

    def __init__(self, options, emitter: Emitter, connections, on_sample: Callable[[str, dict], None]):
        self.options = options
        self.emitter = emitter
        self.connections = connections
        self.on_sample = on_sample
        self.sampler: Timeseries | None = None
        self.samples: dict[str, list[dict]] = {}

    def start(self) -> None:
        if self.options.skip_timeseries:
            return
        self.sampler = Timeseries(
            host_names(self.options.hosts),
            self.options.timeseries_interval,
            self.options.max_timeseries_samples,
            on_sample=self._sampled,
            on_limit=lambda n: self.emitter.warning(f"Time-series sampling stopped at its limit of {n} samples per host"),
            ssh=self.options.ssh,
            connections=self.connections,
        )
        self.sampler.start()

    def _sampled(self, host: str, sample: dict) -> None:
        self.emitter.sample(host, sample)
        self.on_sample(host, sample)

    def stop(self) -> None:
        if self.sampler is not None and not self.sampler.stopped:
            self.samples = self.sampler.stop()
            for host, error in self.sampler.errors().items():
                self.emitter.warning(f"No time series from {host}: {error}", host=host)

    def write(self, path: Path) -> None:
        if self.sampler is not None:
            write_json(path, {"interval_s": self.sampler.interval_s, "max_samples": self.sampler.max_samples,
                              "hosts": self.samples, "errors": self.sampler.errors()})
