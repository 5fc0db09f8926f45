"""A background sampler of this host's /proc counters at a fixed rate.

Each sample holds the raw counters and the per-second rates since the previous sample.
Ticks are scheduled from the start time (start + k * interval), so samples do not drift
however long each one takes.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from . import hostinfo


def snapshot() -> dict:
    disks = hostinfo.diskstats()
    nets = hostinfo.net_dev()
    memory = hostinfo.meminfo()
    return {
        "read_bytes": sum(d["read_sectors"] for d in disks.values()) * 512,
        "write_bytes": sum(d["write_sectors"] for d in disks.values()) * 512,
        "rx_bytes": sum(n["rx_bytes"] for n in nets.values()),
        "tx_bytes": sum(n["tx_bytes"] for n in nets.values()),
        "mem_available_bytes": memory.get("MemAvailable", 0),
        "load1": (hostinfo.loadavg() or [0.0])[0],
    }


_RATES = {"read_bytes": "read_Bps", "write_bytes": "write_Bps", "rx_bytes": "rx_Bps", "tx_bytes": "tx_Bps"}


def with_rates(current: dict, previous: dict | None, seconds: float) -> dict:
    sample = dict(current)
    for counter, rate in _RATES.items():
        sample[rate] = (current[counter] - previous[counter]) / seconds if previous and seconds > 0 else 0.0
    return sample


class TimeseriesSampler:
    """Samples every `interval_s` until stopped or `max_samples` are taken."""

    def __init__(self, interval_s: float, max_samples: int, on_sample: Callable[[dict], None] | None = None,
                 on_limit: Callable[[int], None] | None = None, host: str = "localhost"):
        self.interval_s = interval_s
        self.max_samples = max_samples
        self.samples: list[dict] = []
        self._on_sample = on_sample
        self._on_limit = on_limit
        self._host = host
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="timeseries", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[dict]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval_s + 5)
        return self.samples

    def _loop(self) -> None:
        start = time.monotonic()
        previous, previous_t = None, start
        tick = 0
        while True:
            now = time.monotonic()
            counters = snapshot()
            sample = {"host": self._host, "timestamp_ns": time.time_ns(), "elapsed_s": round(now - start, 6),
                      **with_rates(counters, previous, now - previous_t)}
            self.samples.append(sample)
            if self._on_sample:
                self._on_sample(sample)
            previous, previous_t = counters, now
            if len(self.samples) >= self.max_samples:
                if self._on_limit:
                    self._on_limit(self.max_samples)
                return
            tick += 1
            if self._stop.wait(max(0.0, start + tick * self.interval_s - time.monotonic())):
                return
