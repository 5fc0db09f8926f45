"""The run page's I/O section, for a traced run (--io-trace): the latency distribution per
operation (a line per host, log axis), I/O over time per rank (a heatmap on the page's time
axis), I/O against compute per epoch, the percentiles per operation and host, the slowest
calls, the hottest files and the files an epoch did not read.

Only aggregates reach the page (see charts.py): its size does not grow with the number of
calls, only with hosts, ranks and operations, each bounded by io_trace.json itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import timeline as tl
from .io_trace import BUCKET_MIDDLES_US, IoTrace, Latency, format_bytes, format_latency
from .record import RunRecord, shown

PER_RANK_BARS = 16  # up to this many ranks, a bar per epoch and rank; past it a bar per epoch and host (their mean)
LABELLED_RANKS = 32  # up to this many, every heatmap row is labelled; past it, each host's first row
SLOWEST_SHOWN = 20
FIGURES = ("p50", "p90", "p99", "p99.9", "max")


@dataclass
class IoSection:
    """What the template shows; figures are handed to charts.embed with the page's others."""

    trace: IoTrace
    facts: list[tuple[str, object]]
    percentiles: list[dict]  # per operation: its run-wide row and its rows per host
    slowest: list[dict]
    hottest: list[dict]
    unread: list[dict]
    bars_per: str  # "rank" or "host"
    all_read: bool = False  # every epoch opened every file the run read (said in a line, not a table of zeros)
    figures: dict = field(default_factory=dict)  # select, latency, heatmap, epochs: those the trace allows


def io_section(record: RunRecord, x_range) -> IoSection | None:
    """The section of a run with an io_trace.json; None for any other."""
    from . import charts  # Bokeh: only pages need it

    trace = record.io
    if trace is None:
        return None
    origin_us = record.start_ns / 1e3 if record.start_ns is not None else trace.start_unix_us
    section = IoSection(trace, _facts(record, trace), _percentiles(trace), _slowest(trace, origin_us),
                        _hottest(trace), _unread(trace), "rank" if _ranks(trace) <= PER_RANK_BARS else "host")
    section.all_read = bool(trace.unread) and not section.unread
    lines = latency_lines(trace)
    if lines:
        hosts = [shown(host) for host in trace.hosts()]
        section.figures["select"], section.figures["latency"] = charts.latency_distribution(
            lines, charts.colors_for(hosts))
    heatmap = heatmap_rows(trace)
    if heatmap is not None:
        busy, labels, ticks = heatmap
        start_s = (trace.timeline["start_unix_us"] - origin_us) / 1e6 if origin_us is not None else 0.0
        section.figures["heatmap"] = charts.io_heatmap(busy, labels, ticks, start_s, trace.timeline["bin_s"], x_range)
    if trace.epochs:
        section.figures["epochs"] = charts.epoch_bars(*epoch_parts(trace, section.bars_per))
    return section


# ----- the figures' data ------------------------------------------------------------------
def latency_lines(trace: IoTrace) -> dict[str, list[tl.Series]]:
    """operation -> per host (every host, in one order) the share of its calls in each bucket
    (%), from the bucket before its first call to the one after its last."""
    hosts = trace.hosts()
    found = {}
    for operation in trace.operations():
        rows = {row.where: row for row in trace.per_host(operation)}
        found[operation] = [_distribution(shown(host), rows.get(host)) for host in hosts]
    return found


def _distribution(name: str, row: Latency | None) -> tl.Series:
    if row is None or not row.counts[: len(BUCKET_MIDDLES_US)].sum():
        return tl.Series(name, [], [])
    counts = row.counts[: len(BUCKET_MIDDLES_US)]
    used = np.flatnonzero(counts)
    first, last = max(0, used[0] - 1), min(len(counts) - 1, used[-1] + 1)
    share = counts[first:last + 1] / counts.sum() * 100
    return tl.Series(name, BUCKET_MIDDLES_US[first:last + 1].tolist(), share.tolist())


def heatmap_rows(trace: IoTrace) -> tuple[np.ndarray, list[str], dict[float, str]] | None:
    """(busy: a row per rank, top to bottom by host then rank; the rows' labels; the y axis'
    labels), or None without a timeline."""
    if trace.timeline is None:
        return None
    hosts = {host: i for i, host in enumerate(trace.hosts())}
    ranks = sorted(trace.timeline["ranks"], key=lambda r: (hosts.get(str(r.get("host")), len(hosts)),
                                                           r.get("rank") if isinstance(r.get("rank"), int) else 0))
    bins = max(len(r["busy"]) for r in ranks)
    busy = np.zeros((len(ranks), bins))
    for i, row in enumerate(ranks):
        busy[i, :len(row["busy"])] = row["busy"]
    labels = [f"rank {shown(r.get('rank'))} ({shown(r.get('host'))})" for r in ranks]
    rows = len(ranks)
    if rows <= LABELLED_RANKS:
        ticks = {rows - i - 0.5: label for i, label in enumerate(labels)}
    else:  # each host's first row carries its name
        ticks = {}
        for i, row in enumerate(ranks):
            if i == 0 or row.get("host") != ranks[i - 1].get("host"):
                ticks[rows - i - 0.5] = shown(row.get("host"))
    return busy, labels, ticks


def epoch_parts(trace: IoTrace, per: str) -> tuple[list[tuple[str, str]], dict[str, list[float]], list[float]]:
    """(the bars' (epoch, rank or host) factors, computing / waiting / the rest per bar, the
    time in I/O calls per bar): a host's bar is the mean of its ranks'."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for row in trace.epochs:
        who = f"rank {row['rank']}" if per == "rank" else shown(row.get("host"))
        groups.setdefault((int(row["epoch"]), who), []).append(row)
    order = sorted(groups, key=lambda key: (key[0], _rank_order(groups[key])))
    parts: dict[str, list[float]] = {"compute": [], "wait": [], "other": []}
    io_s = []
    for key in order:
        rows = groups[key]
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("duration_s", "compute_s", "wait_s", "io_s")}
        parts["compute"].append(mean["compute_s"])
        parts["wait"].append(mean["wait_s"])
        parts["other"].append(max(0.0, mean["duration_s"] - mean["compute_s"] - mean["wait_s"]))
        io_s.append(mean["io_s"])
    return [(f"epoch {epoch}", who) for epoch, who in order], parts, io_s


def _rank_order(rows: list[dict]) -> int:
    return min(row["rank"] for row in rows)


def _ranks(trace: IoTrace) -> int:
    return len({row["rank"] for row in trace.epochs})


# ----- the tables ----------------------------------------------------------------------------
def _facts(record: RunRecord, trace: IoTrace) -> list[tuple[str, object]]:
    recorded = record.io_trace
    ranks = len(trace.sources)
    expected = recorded.get("ranks_expected") or next((s.get("of") for s in trace.sources if s.get("of")), None)
    facts = [("Tracer", trace.document.get("tracer")), ("Events", f"{trace.events or 0:,}"),
             ("Ranks traced", f"{ranks} of {expected}" if expected else ranks)]
    if isinstance(recorded.get("missing"), list) and recorded["missing"]:
        facts.append(("Ranks without a trace", "; ".join(_absent(m) for m in recorded["missing"])))
    if trace.bad_lines:
        facts.append(("Lines that could not be read", f"{trace.bad_lines:,}"))
    if trace.files_touched is not None:
        facts.append(("Files touched", f"{trace.files_touched:,} ({trace.files_read or 0:,} read)"))
    return facts


def _absent(missing) -> str:
    """rank 3 (its trace stayed on node02: /path/trace-3-of-4.pfw), as the metadata says."""
    if not isinstance(missing, dict):
        return str(missing)
    hosts = ", ".join(str(h) for h in missing.get("hosts") or ()) or "?"
    return f"rank {missing.get('rank')} (its trace stayed on {hosts}: {missing.get('file')})"


def _row(latency: Latency) -> dict:
    return {"where": latency.where, "count": f"{latency.count:,}",
            "bytes": format_bytes(latency.bytes) if latency.bytes else "",
            "figures": [format_latency(latency.us(label)) for label in FIGURES]}


def _percentiles(trace: IoTrace) -> list[dict]:
    found = []
    for operation in trace.operations():
        overall = trace.overall(operation)
        slowest = [latency for latency in (trace.slowest_host(operation), trace.slowest_rank(operation)) if latency]
        found.append({"operation": operation, "layer": overall.layer, "all": _row(overall),
                      "hosts": [_row(row) for row in trace.per_host(operation)],
                      "slowest": [_row(latency) for latency in slowest]})
    return found


def _slowest(trace: IoTrace, origin_us: float | None) -> list[dict]:
    rows = sorted(trace.slowest, key=lambda r: -r["duration_us"])[:SLOWEST_SHOWN]
    return [{"at": f"+{tl.format_duration((r['start_unix_us'] - origin_us) / 1e6)}" if origin_us is not None else "",
             "operation": r.get("operation"), "host": r.get("host"), "rank": r["rank"], "file": r.get("file"),
             "duration": format_latency(r["duration_us"]), "bytes": format_bytes(r["bytes"]) if r["bytes"] else ""}
            for r in rows]


def _hottest(trace: IoTrace) -> list[dict]:
    return [{"file": r.get("file"), "opens": f"{r['opens']:,}", "reads": f"{r['reads']:,}",
             "read": format_bytes(r["read_bytes"]), "written": format_bytes(r["written_bytes"]),
             "io": format_latency(r["io_s"] * 1e6), "max": format_latency(r["max_us"])} for r in trace.hottest]


def _unread(trace: IoTrace) -> list[dict]:
    """The epochs that left files unread (an epoch that read them all is no row)."""
    return [{"epoch": r["epoch"], "count": f"{r['count']:,}",
             "examples": [e for e in r.get("examples") or () if isinstance(e, str)]} for r in trace.unread
            if r.get("count")]
