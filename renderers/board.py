"""What the text renderers know about the run at any moment, rebuilt from events alone.

Both the plain and the rich renderer feed every event to a Board; elapsed times are always
`now - span start` or the span's own duration, never a timer of the renderer's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlpstorage.emitter.events import ERROR_REPORTED, VERDICT, VERDICT_REASONS


@dataclass
class SpanRow:
    span_id: str
    kind: str  # stage | spinner | task
    name: str
    start_ns: int
    description: str = ""
    total: int | None = None
    completed: int = 0
    stage_index: int | None = None
    stage_count: int | None = None
    status: str | None = None  # None while open, then ok | error
    duration_s: float | None = None
    error: str | None = None
    error_reported: bool = False  # the launcher's own error line says it (see events.ERROR_REPORTED)
    verdict: str | None = None  # a run's CLOSED, OPEN or INVALID (see events.VERDICT)
    verdict_reasons: tuple[str, ...] = ()

    def elapsed_s(self, now_ns: int) -> float:
        if self.duration_s is not None:
            return self.duration_s
        return max(0.0, (now_ns - self.start_ns) / 1e9)


@dataclass
class Board:
    run: SpanRow | None = None
    stages: list[SpanRow] = field(default_factory=list)  # in the order they started
    open_rows: dict[str, SpanRow] = field(default_factory=dict)  # spinners and tasks, by span id
    samples: dict[str, dict] = field(default_factory=dict)  # host -> latest time-series values

    @property
    def current_stage(self) -> SpanRow | None:
        for stage in reversed(self.stages):
            if stage.status is None:
                return stage
        return None

    def apply(self, event: dict) -> SpanRow | None:
        """Updates the board; returns the row the event was about (if any)."""
        kind, _, what = event["type"].partition(".")
        if kind == "sample":
            self.samples[event["host"]] = event["values"]
            return None
        if kind not in ("run", "stage", "spinner", "task"):
            return None
        span_id = event["span_id"]
        if what == "started":
            row = SpanRow(
                span_id=span_id,
                kind=kind,
                name=event["name"],
                start_ns=event["start_unix_nano"],
                description=event.get("description") or event["name"],
                total=event.get("total"),
                completed=event.get("completed") or 0,
                stage_index=event.get("stage_index"),
                stage_count=event.get("stage_count"),
            )
            if kind == "run":
                self.run = row
                self.samples.clear()
            elif kind == "stage":
                self.stages.append(row)
            else:
                self.open_rows[span_id] = row
            return row
        row = self._find(kind, span_id)
        if row is None:  # an update for a span that started before we attached
            return None
        if what == "updated":
            row.description = event.get("description") or row.description
            row.completed = event.get("completed") or 0
            row.total = event.get("total", row.total)
        elif what == "finished":
            row.status = event.get("status", "ok")
            row.duration_s = event.get("duration_s")
            row.error = event.get("error")
            attributes = event.get("attributes") or {}
            row.error_reported = bool(attributes.get(ERROR_REPORTED))
            if attributes.get(VERDICT):
                row.verdict = str(attributes[VERDICT])
                row.verdict_reasons = tuple(str(r) for r in attributes.get(VERDICT_REASONS) or ())
            if "description" in event:
                row.description = event["description"]
            self.open_rows.pop(span_id, None)
        return row

    def _find(self, kind: str, span_id: str) -> SpanRow | None:
        if kind == "run":
            return self.run if self.run and self.run.span_id == span_id else None
        if kind == "stage":
            return next((s for s in self.stages if s.span_id == span_id), None)
        return self.open_rows.get(span_id)


def format_seconds(seconds: float) -> str:
    """12.3s; the plain format keeps seconds so a regex needs no unit arithmetic."""
    return f"{seconds:.1f}s"


def clock(seconds: float) -> str:
    """0:01:02 for the live display."""
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def without_trailing_dots(text: str) -> str:
    """'Collecting via SSH...' -> 'Collecting via SSH': renderers add their own punctuation,
    and never a second set of dots."""
    return text.rstrip(" .…")


def describe_sample(values: dict) -> str:
    """'read 12.3 MB/s, write 0.0 MB/s, net 0.1/0.1 MB/s, load 1.20' from a sample's values."""
    mb = 1e6
    return (f"read {values.get('read_Bps', 0) / mb:.1f} MB/s, write {values.get('write_Bps', 0) / mb:.1f} MB/s, "
            f"net {values.get('rx_Bps', 0) / mb:.1f}/{values.get('tx_Bps', 0) / mb:.1f} MB/s in/out, "
            f"load {values.get('load1', 0):.2f}")
