"""A run's time series as columns: per host its sample times and one array per figure the
reports show, read from the run's timeseries.json or from a recording's sample events.

Columns, not a dict per sample: a one-hour run of 1,024 hosts sampled every 10 s holds 370,000
samples, and the page adds them up over hosts per time bin (timeline.py) with numpy. The
timeseries file is decoded by msgspec straight into the fields used (0.7 s for that run's
177 MB here, against 2.7 s for json plus 1.9 s to filter and sort the dicts); a file of
another shape (a value that is not a number, NaN) is read the slow, forgiving way instead.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import msgspec

if TYPE_CHECKING:
    import numpy as np

# The figures of a sample the reports show (timeline.METRICS); a sample's others are left out.
KEYS = ("read_Bps", "write_Bps", "rx_Bps", "tx_Bps", "mem_available_bytes", "load1")


@dataclass
class HostSamples:
    """One host's samples in time order: times_ns (int64) and per figure a float64 array,
    NaN where a sample lacks it."""

    times_ns: np.ndarray
    values: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.times_ns)


def from_dicts(samples: list[dict]) -> HostSamples:
    """A host's samples ({timestamp_ns, figure: number...}, any order; untrusted: a value that
    is not a finite number counts as missing)."""
    import numpy as np  # here: a page needs it, a run's record does not

    rows = sorted((s for s in samples if type(s.get("timestamp_ns")) is int and _in_range(s["timestamp_ns"])),
                  key=lambda s: s["timestamp_ns"])
    return HostSamples(np.array([s["timestamp_ns"] for s in rows], dtype=np.int64),
                       {key: np.array([_number(s.get(key)) for s in rows], dtype=np.float64) for key in KEYS})


def _in_range(ns: int) -> bool:
    return -2**63 <= ns < 2**63  # what an int64 holds (a recording may hold any integer)


def _number(value) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return math.nan


class _Sample(msgspec.Struct):
    timestamp_ns: int
    read_Bps: Optional[float] = None
    write_Bps: Optional[float] = None
    rx_Bps: Optional[float] = None
    tx_Bps: Optional[float] = None
    mem_available_bytes: Optional[float] = None
    load1: Optional[float] = None


class _Timeseries(msgspec.Struct):
    hosts: dict[str, list[_Sample]]
    interval_s: Optional[float] = None


def read_timeseries(data: bytes) -> tuple[dict[str, HostSamples], float | None] | None:
    """(host -> samples, the interval it states) of a timeseries.json's bytes; None when it
    holds no hosts. Raises ValueError when it is not JSON."""
    try:
        found = msgspec.json.decode(data, type=_Timeseries)
    except msgspec.DecodeError:  # another shape than ours writes (or not JSON: the slow way says which)
        return _read_forgiving(data)
    samples = {host: _columns(series) for host, series in found.hosts.items()}
    interval = found.interval_s if found.interval_s and math.isfinite(found.interval_s) else None
    return samples, interval if interval and interval > 0 else None


def read_timeseries_file(path: Path, problems: list[str]) -> tuple[dict[str, HostSamples], float | None]:
    """(host -> samples, the interval) of a run's timeseries file; ({}, None) with a line in
    problems when it does not read (the time series then come from the recording's events)."""
    try:
        found = read_timeseries(Path(path).read_bytes())
    except OSError as exc:
        problems.append(f"{path}: {exc.strerror or exc}; left out")
        return {}, None
    except (ValueError, RecursionError) as exc:
        problems.append(f"{path}: not JSON ({str(exc)[:80]}); left out")
        return {}, None
    if found is None:
        problems.append(f"{path}: no hosts in it; the time series come from the events")
        return {}, None
    samples, interval = found
    return samples, interval or typical_interval(samples)


def _columns(series: list[_Sample]) -> HostSamples:
    import numpy as np  # here: a page needs it, a run's record does not

    series = sorted((s for s in series if _in_range(s.timestamp_ns)), key=lambda s: s.timestamp_ns)
    values = {key: np.array([getattr(s, key) for s in series], dtype=np.float64) for key in KEYS}  # None -> NaN
    for column in values.values():
        column[~np.isfinite(column)] = np.nan
    return HostSamples(np.array([s.timestamp_ns for s in series], dtype=np.int64), values)


def _read_forgiving(data: bytes):
    document = json.loads(data)  # (ValueError when not JSON)
    hosts = document.get("hosts") if isinstance(document, dict) else None
    if not isinstance(hosts, dict) or not all(isinstance(s, list) for s in hosts.values()):
        return None
    samples = {str(host): from_dicts([s for s in series if isinstance(s, dict)]) for host, series in hosts.items()}
    interval = document.get("interval_s")
    good = isinstance(interval, (int, float)) and not isinstance(interval, bool) and math.isfinite(interval)
    return samples, float(interval) if good and interval > 0 else None


def typical_interval(samples: dict[str, HostSamples]) -> float | None:
    """The median gap between a host's consecutive samples, in seconds."""
    if not any(len(s) > 1 for s in samples.values()):
        return None  # without numpy: a run without time series needs none
    import numpy as np  # here: a page needs it, a run's record does not

    gaps = [np.diff(s.times_ns) for s in samples.values() if len(s) > 1]
    middle = float(np.sort(np.concatenate(gaps))[sum(map(len, gaps)) // 2])
    return middle / 1e9 if middle > 0 else None


def time_bounds(samples: dict[str, HostSamples]) -> tuple[int, int] | None:
    """(first, last) sample time over every host, in ns since the epoch."""
    ends = [(int(s.times_ns[0]), int(s.times_ns[-1])) for s in samples.values() if len(s)]
    return (min(a for a, _ in ends), max(b for _, b in ends)) if ends else None
