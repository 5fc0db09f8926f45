"""What the text renderers know about the run at any moment, rebuilt from events alone.

Both the plain and the rich renderer feed every event to a Board; elapsed times are always
`now - span start` or the span's own duration, never a timer of the renderer's.

Time-series samples are timed by their own timestamps: the board's sample clock is the newest
timestamp among them, and a host is silent when that clock has moved more than
SILENT_AFTER_INTERVALS intervals past its last sample. So a replay judges exactly as the live
run did, and a host whose clock is off does not make the others look silent.

A sample costs the same whatever the number of hosts (a thousand report every interval): the
board keeps the hosts in the order their last sample came, so the silent ones are the first
few, and the gaps between samples sorted, so their median is read, not computed. Only the
aggregate (once per interval in plain mode, once per frame in the live display) visits every
host.
"""

from __future__ import annotations

import bisect
import heapq
from dataclasses import dataclass, field

from mlpstorage.emitter.events import ERROR_REPORTED, VERDICT, VERDICT_NOTES, VERDICT_REASONS, ns_from_iso

# Up to this many hosts the text renderers show each one (a row, a line per sample); with more,
# the aggregate and the hosts that stand out.
FEW_HOSTS = 8
# The hosts that stand out by speed: this many of the slowest.
SLOWEST_HOSTS = 3
# A host is silent after this many intervals without a sample (the interval: the median gap
# between two samples of a host).
SILENT_AFTER_INTERVALS = 2.5
RATES = ("read_Bps", "write_Bps", "rx_Bps", "tx_Bps")


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
    verdict_notes: tuple[str, ...] = ()
    updated_ns: int | None = None  # when its count last changed (its last update's timestamp)
    io: str | None = None  # a traced epoch's I/O against its computing, once it ended (describe_epoch_io)

    def elapsed_s(self, now_ns: int) -> float:
        if self.duration_s is not None:
            return self.duration_s
        return max(0.0, (now_ns - self.start_ns) / 1e9)


@dataclass
class HostSeries:
    """A host's latest time-series sample."""

    values: dict
    sampled_ns: int  # the sample's own timestamp, on the host's clock
    seen_ns: int  # the board's sample clock when it came
    gap_ns: int | None = None  # between its last two samples, on its own clock
    count: int = 1


@dataclass
class HostState:
    name: str
    values: dict | None  # the latest sample's values; None before the host's first
    silent_s: float | None  # seconds without a sample, once the host counts as silent
    has_rates: bool = False  # a first sample has no rates yet (they are since the previous one)


@dataclass
class Aggregate:
    """The time series of all hosts at the board's sample clock."""

    hosts: list[HostState]  # the run's hosts, then any other that sent a sample
    reporting: int  # hosts with a sample that are not silent
    rates: dict[str, float]  # RATES, summed over the reporting hosts
    direction: str  # "read" or "write": the busier one, by which the slowest are ranked
    slowest: list[HostState]  # slowest first: reporting hosts with rates, when at least two have some
    silent: list[HostState]


@dataclass
class Board:
    run: SpanRow | None = None
    stages: list[SpanRow] = field(default_factory=list)  # in the order they started
    open_rows: dict[str, SpanRow] = field(default_factory=dict)  # spinners and tasks, by span id
    run_hosts: list[str] = field(default_factory=list)  # the run's hosts (its mlpstorage.hosts), without slots
    hosts: dict[str, HostSeries] = field(default_factory=dict)  # by host, in the order they first reported
    sample_clock_ns: int = 0  # the newest sample timestamp: the time as the samples tell it
    first_sample_ns: int = 0  # the sample clock at the run's first sample
    stalls: dict[str, dict] = field(default_factory=dict)  # the stalls flagged and not resumed, by key
    # Kept with `hosts` by _apply_sample: the hosts in the order their last sample came (so by
    # seen_ns), their gaps sorted, the run's hosts yet to send one, the hosts outside the run.
    _by_seen: dict[str, None] = field(default_factory=dict, repr=False)
    _gaps: list[int] = field(default_factory=list, repr=False)
    _waiting: set[str] = field(default_factory=set, repr=False)
    _strangers: int = 0

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
            self._apply_sample(event)
            return None
        if kind == "stall":
            if event.get("state") == "stalled":
                self.stalls[event["key"]] = event
            else:
                self.stalls.pop(event["key"], None)
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
                hosts = event.get("attributes", {}).get("mlpstorage.hosts") or []
                hosts = [hosts] if isinstance(hosts, str) else hosts
                self.run_hosts = list(dict.fromkeys(str(h).split(":", 1)[0] for h in hosts))
                self.hosts.clear()
                self._by_seen.clear()
                self._gaps.clear()
                self._waiting, self._strangers = set(self.run_hosts), 0
                self.stalls.clear()
                self.sample_clock_ns = self.first_sample_ns = 0
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
            if event.get("timestamp"):
                row.updated_ns = ns_from_iso(event["timestamp"])
        elif what == "finished":
            row.status = event.get("status", "ok")
            row.duration_s = event.get("duration_s")
            row.error = event.get("error")
            attributes = event.get("attributes") or {}
            row.error_reported = bool(attributes.get(ERROR_REPORTED))
            row.io = describe_epoch_io(attributes)
            if attributes.get(VERDICT):
                row.verdict = str(attributes[VERDICT])
                row.verdict_reasons = tuple(str(r) for r in attributes.get(VERDICT_REASONS) or ())
                row.verdict_notes = tuple(str(n) for n in attributes.get(VERDICT_NOTES) or ())
            if "description" in event:
                row.description = event["description"]
            self.open_rows.pop(span_id, None)
            if kind == "stage":
                self.stalls.clear()  # a stall belongs to its stage
        return row

    def _apply_sample(self, event: dict) -> None:
        stamp = event.get("timestamp")
        at = ns_from_iso(stamp) if stamp else self.sample_clock_ns
        if not self.hosts:
            self.first_sample_ns = at
        self.sample_clock_ns = max(self.sample_clock_ns, at)
        host = event["host"]
        self._by_seen.pop(host, None)
        self._by_seen[host] = None  # last: its seen_ns is the newest
        last = self.hosts.get(host)
        if last is None:
            self.hosts[host] = HostSeries(event["values"], at, self.sample_clock_ns)
            if host in self._waiting:
                self._waiting.discard(host)
            else:
                self._strangers += 1
            return
        if at > last.sampled_ns:
            self._replace_gap(last.gap_ns, at - last.sampled_ns)
            last.gap_ns = at - last.sampled_ns
        last.values, last.sampled_ns, last.seen_ns = event["values"], at, self.sample_clock_ns
        last.count += 1

    def _replace_gap(self, old: int | None, new: int) -> None:
        if old:
            del self._gaps[bisect.bisect_left(self._gaps, old)]
        if new:
            bisect.insort(self._gaps, new)

    def _silent_limit(self) -> int | None:
        """How long past its last sample a host is silent (on the sample clock): None before any
        host has sent two samples."""
        gaps = self._gaps
        return SILENT_AFTER_INTERVALS * gaps[len(gaps) // 2] if gaps else None

    @property
    def host_count(self) -> int:
        """The run's hosts and any other that sent a sample."""
        return len(self.run_hosts) + self._strangers

    def silent_hosts(self) -> list[str]:
        """The hosts silent as of the sample clock (in no particular order); as cheap as there
        are few of them."""
        limit = self._silent_limit()
        if limit is None:
            return []
        silent = list(self._waiting) if self.sample_clock_ns - self.first_sample_ns > limit else []
        for name in self._by_seen:  # the longest silent first: stop at the first that is not
            if self.sample_clock_ns - self.hosts[name].seen_ns <= limit:
                break
            silent.append(name)
        return silent

    def host_states(self) -> list[HostState]:
        """Every host of the run, and any other that sent a sample, as of the sample clock."""
        limit = self._silent_limit()
        clock, first, hosts = self.sample_clock_ns, self.first_sample_ns, self.hosts
        states = []
        for name in (dict.fromkeys([*self.run_hosts, *hosts]) if self._strangers else self.run_hosts):
            series = hosts.get(name)
            # a host that never sent one: silent as long as the series has run
            since = clock - (series.seen_ns if series else first)
            silent = since / 1e9 if limit is not None and since > limit else None
            states.append(HostState(name, series.values if series else None, silent,
                                    series is not None and series.count > 1))
        return states

    def aggregate(self, slowest: int = SLOWEST_HOSTS) -> Aggregate | None:
        """The hosts' latest samples summed, the slowest and the silent ones; None before the
        run's first sample."""
        if not self.hosts:
            return None
        states = self.host_states()
        reporting = [h for h in states if h.values is not None and h.silent_s is None]
        rates = {rate: sum(h.values.get(rate, 0) for h in reporting) for rate in RATES}
        direction = "write" if rates["write_Bps"] > rates["read_Bps"] else "read"
        ranked = [h for h in reporting if h.has_rates]
        if len(ranked) < 2 or not rates[f"{direction}_Bps"]:
            ranked = []
        key = f"{direction}_Bps"
        # the same as sorting them all and taking the first (ties in the hosts' order)
        ranked = heapq.nsmallest(slowest, ranked, key=lambda h: h.values.get(key, 0))
        return Aggregate(states, len(reporting), rates, direction, ranked,
                         [h for h in states if h.silent_s is not None])

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


def megabytes(bytes_per_s: float) -> str:
    return f"{bytes_per_s / 1e6:.1f}"


def describe_rates(values: dict) -> str:
    """'read 12.3 MB/s, write 0.0 MB/s, net 0.1/0.1 MB/s in/out' from a sample's values or sums."""
    read, write, rx, tx = (megabytes(values.get(rate, 0)) for rate in RATES)
    return f"read {read} MB/s, write {write} MB/s, net {rx}/{tx} MB/s in/out"


def describe_sample(values: dict) -> str:
    """'read 12.3 MB/s, write 0.0 MB/s, net 0.1/0.1 MB/s in/out, load 1.20' from a sample's values."""
    return f"{describe_rates(values)}, load {values.get('load1', 0):.2f}"


def describe_epoch_io(attributes: dict) -> str | None:
    """'2 ranks traced: computing 2.58 s, waiting for data 0.18 s, in I/O calls 0.12 s, read
    16.8 MB' from a traced epoch's span (--io-trace; each figure added up over its ranks):
    where an epoch's time went, as it ends. None for any other span."""
    ranks = attributes.get("mlpstorage.io.ranks")
    if not isinstance(ranks, int) or isinstance(ranks, bool) or ranks < 1:
        return None

    def number(key: str) -> float:  # a replayed recording is untrusted: anything else counts as 0
        value = attributes.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    parts = [f"{label} {number(key):.2f} s" for label, key in (
        ("computing", "mlpstorage.compute.time_s"), ("waiting for data", "mlpstorage.io.wait_s"),
        ("in I/O calls", "mlpstorage.io.time_s"))]
    parts += [f"{label} {number(key) / 1e6:,.1f} MB" for label, key in (
        ("read", "mlpstorage.io.read_bytes"), ("wrote", "mlpstorage.io.written_bytes")) if number(key)]
    return f"{ranks} rank{'s' if ranks != 1 else ''} traced: " + ", ".join(parts)


def describe_progress(row: SpanRow, now_ns: int) -> str:
    """'epoch 3/5 1m10s, step 41/128 2.1s ago' for the heartbeat: a task's count, and how long
    since it last moved."""
    text = f"{without_trailing_dots(row.description)} {format_seconds(row.elapsed_s(now_ns))}"
    if row.updated_ns is not None:  # it has counted something
        count = f"{row.completed}/{row.total}" if row.total is not None else str(row.completed)
        text += f", at {count} {format_seconds(max(0.0, (now_ns - row.updated_ns) / 1e9))} ago"
    return text


def stall_idle_s(stall: dict, now_ns: int) -> float | None:
    """How long the stalled thing has been idle as of now (from the event's since_unix_nano)."""
    since = stall.get("since_unix_nano")
    return max(0.0, (now_ns - since) / 1e9) if isinstance(since, int) else stall.get("idle_s")


def describe_host(host: HostState) -> str:
    if host.silent_s is not None:
        return f"no sample for {format_seconds(host.silent_s)}"
    if host.values is None:
        return "no sample yet"
    return describe_sample(host.values)


def describe_aggregate(aggregate: Aggregate) -> str:
    """'63/64 reporting, read 6123.4 MB/s, write 0.0 MB/s, net 6200.1/12.3 MB/s in/out'."""
    return f"{aggregate.reporting}/{len(aggregate.hosts)} reporting, {describe_rates(aggregate.rates)}"
