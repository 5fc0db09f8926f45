"""The headline metrics of a run, worded and formatted once for the page, the terminal view
and the comparison, with the target each is held to where MLPerf Storage sets one (the AU)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .record import RunRecord

# key -> (label, format of the number, unit)
KNOWN = {
    "train_au_mean_percentage": ("Accelerator utilisation (AU)", "{:.2f}", "%"),
    "train_throughput_mean_samples_per_second": ("Throughput", "{:,.2f}", "samples/s"),
    "train_io_mean_MB_per_second": ("I/O throughput", "{:,.2f}", "MB/s"),
    "num_accelerators": ("Accelerators", "{}", ""),
    "checkpoints_written": ("Checkpoints written", "{}", ""),
    "checkpoint_bytes": ("Checkpoint size", "{:,}", "bytes"),
    "checkpoint_mean_duration_s": ("Mean checkpoint duration", "{:.3f}", "s"),
    "checkpoint_write_GB_per_second": ("Checkpoint write throughput", "{:.3f}", "GB/s"),
}
SHOWN_ELSEWHERE = {"train_au_meet_expectation"}  # the AU line says it


@dataclass
class Headline:
    key: str
    label: str
    value: object
    form: str  # of the number
    unit: str
    target: str | None = None
    met: bool | None = None

    @property
    def text(self) -> str:
        """The value with its unit: '97.34 %', '11.90 samples/s'."""
        shown = format_number(self.form, self.value)
        return f"{shown} {self.unit}" if self.unit and number(self.value) is not None else shown


def headlines(record: RunRecord) -> list[Headline]:
    metrics = record.metrics()
    found = []
    for key, value in metrics.items():
        if key in SHOWN_ELSEWHERE or not isinstance(key, str):
            continue
        label, form, unit = KNOWN.get(key, (key, "{}", ""))
        found.append(Headline(key, label, value, form, unit))
    for item in found:
        if item.key == "train_au_mean_percentage":
            _au_target(record, item, metrics.get("train_au_meet_expectation"))
    known = list(KNOWN)
    return sorted(found, key=lambda h: known.index(h.key) if h.key in known else len(known))


def number(value) -> float | None:
    """value as a finite float, or None (a string, a bool, nan)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def format_number(form: str, value) -> str:
    """value in form ('{:,.2f}') when it is a number; anything else as it is."""
    try:
        return form.format(value) if number(value) is not None else str(value)
    except (ValueError, TypeError):
        return str(value)


def au_target(record: RunRecord) -> float | None:
    """The AU a run must reach, in percent: the run's resolved parameters, else the shipped
    workload's configuration."""
    metric = record.resolved_parameters().get("metric")
    au = metric.get("au") if isinstance(metric, dict) else None
    workload = record.what("workload")
    if number(au) is None and isinstance(workload, str) and workload.replace("_", "").isalnum():
        from ..workloads import load_workload

        try:
            au = (load_workload(workload).get("metric") or {}).get("au")
        except Exception:  # a workload this version does not ship
            au = None
    return number(au) * 100 if number(au) is not None else None


def _au_target(record: RunRecord, item: Headline, expectation) -> None:
    target = au_target(record)
    value = number(item.value)
    if target is not None:
        item.target = f"≥ {target:.0f} %"
        item.met = value is not None and value >= target
    elif isinstance(expectation, str):
        item.target = "DLIO's expectation"
        item.met = expectation == "success"
