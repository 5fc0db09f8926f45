"""The headline metrics of a run, worded and formatted once for every report: the run's page,
the terminal view, the comparison and reportgen's table and index. One format per figure;
the AU is held to its target where MLPerf Storage sets one."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    label: str
    form: str  # of the number
    unit: str
    short: str | None = None  # reportgen's compact wording ("AU {}"); None: not in its table


FIGURES = {
    "train_au_mean_percentage": Figure("Accelerator utilisation (AU)", "{:.2f}", "%", "AU {}"),
    "train_throughput_mean_samples_per_second": Figure("Throughput", "{:,.2f}", "samples/s", "{}"),
    "train_io_mean_MB_per_second": Figure("I/O throughput", "{:,.2f}", "MB/s", "{}"),
    "num_accelerators": Figure("Accelerators", "{}", ""),
    "checkpoints_written": Figure("Checkpoints written", "{}", ""),
    "checkpoint_bytes": Figure("Checkpoint size", "{:,}", "bytes"),
    "checkpoint_mean_duration_s": Figure("Mean checkpoint duration", "{:.3f}", "s"),
    "checkpoint_write_GB_per_second": Figure("Checkpoint write throughput", "{:.3f}", "GB/s", "write {}"),  # ours
    "save_checkpoint_io_mean_GB_per_second": Figure("Checkpoint write throughput", "{:.3f}", "GB/s", "write {}"),
    "load_checkpoint_io_mean_GB_per_second": Figure("Checkpoint read throughput", "{:.3f}", "GB/s", "read {}"),
}
AU = "train_au_mean_percentage"
AU_EXPECTATION = "train_au_meet_expectation"  # DLIO's own judgement, when no target is known


@dataclass
class Headline:
    key: str
    label: str
    value: object
    form: str  # of the number
    unit: str
    short: str | None = None
    target: str | None = None
    met: bool | None = None

    @property
    def text(self) -> str:
        """The value with its unit: '97.34 %', '11.90 samples/s'."""
        shown = format_number(self.form, self.value)
        return f"{shown} {self.unit}" if self.unit and number(self.value) is not None else shown


def headlines(metrics: dict, au_target: float | None = None) -> list[Headline]:
    """The figures among metrics, in the order reports show them; the AU with its target
    (au_target, in percent, else DLIO's expectation)."""
    found = [Headline(key, figure.label, metrics[key], figure.form, figure.unit, figure.short)
             for key, figure in FIGURES.items() if key in metrics]
    for item in found:
        if item.key == AU:
            _au_target(item, au_target, metrics.get(AU_EXPECTATION))
    return found


def short_texts(metrics: dict) -> list[str]:
    """reportgen's wording: 'AU 97.34 %', '11.90 samples/s', 'write 4.200 GB/s'."""
    return [item.short.format(item.text) for item in headlines(metrics)
            if item.short is not None and number(item.value) is not None]


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


def _au_target(item: Headline, target: float | None, expectation) -> None:
    value = number(item.value)
    if target is not None:
        item.target = f"≥ {target:.0f} %"
        item.met = value is not None and value >= target
    elif isinstance(expectation, str):
        item.target = "DLIO's expectation"
        item.met = expectation == "success"
