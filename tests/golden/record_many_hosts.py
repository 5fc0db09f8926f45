"""Writes tests/golden/many_hosts.events.jsonl: a schema-2 recording of a training run on 64
hosts, made from the event constructors with fixed ids and timestamps (no emitter, no clock),
so running it again writes the same file.

    python tests/golden/record_many_hosts.py

"Running benchmark" holds six rounds of time-series samples, 10 s apart, each host a few ms
after the one before it and arriving in a shuffled order, with DLIO output and epochs between
rounds. node17 reads at about a quarter of the others' speed; node42 sends its first two
samples and then none. As from the real sampler, a host's first sample has no rates yet.
"""

import calendar
import time
from itertools import count
from pathlib import Path

from mlpstorage.emitter import events as ev

HERE = Path(__file__).parent
HOSTS = [f"node{i:02d}" for i in range(1, 65)]
SLOW, LOST = "node17", "node42"
ROUNDS, INTERVAL_NS = 6, 10_000_000_000
T0 = calendar.timegm(time.strptime("2026-11-27T10:00:00", "%Y-%m-%dT%H:%M:%S")) * 1_000_000_000
TRACE = "6d6c7065726673746f72616765363468"
MS = 1_000_000
RATES = ("read_Bps", "write_Bps", "rx_Bps", "tx_Bps")


class Recording:
    def __init__(self):
        self.events: list[dict] = []
        self._ids = count(1)
        self._open: list[dict] = []  # started events of the open spans, innermost last

    def start(self, kind: str, name: str, at_ns: int, **attributes) -> dict:
        parent = self._open[-1]["span_id"] if self._open else None
        started = ev.span_started(name=name, trace_id=TRACE, span_id=f"{next(self._ids):016x}", parent_span_id=parent,
                                  attributes={ev.KIND: kind, **attributes}, start_unix_nano=at_ns)
        started.update(self._stage_fields(kind))
        self._open.append(started)
        self.events.append(started)
        return started

    def finish(self, at_ns: int) -> None:
        started = self._open.pop()
        finished = ev.span_finished(**{k: started[k] for k in ("name", "trace_id", "span_id", "parent_span_id",
                                                               "attributes", "start_unix_nano")}, end_unix_nano=at_ns)
        finished.update(self._stage_fields(started["attributes"][ev.KIND]))
        self.events.append(finished)

    def spinner_updated(self, at_ns: int, description: str) -> None:
        started = self._open[-1]
        updated = ev.spinner_updated(name=started["name"], trace_id=TRACE, span_id=started["span_id"],
                                     description=description, completed=0, total=None,
                                     start_unix_nano=started["start_unix_nano"], **self._stage_fields("spinner"))
        updated["timestamp"] = ev.iso_from_ns(at_ns)
        self.events.append(updated)

    def log(self, at_ns: int, level: str, message: str) -> None:
        self.events.append(ev.log(level, message, timestamp=ev.iso_from_ns(at_ns), **self._context()))

    def output(self, at_ns: int, lines: list[str]) -> None:
        self.events.append({**ev.output(lines, "stderr", "dlio", ev.iso_from_ns(at_ns)), **self._context()})

    def sample(self, at_ns: int, host: str, values: dict) -> None:
        # the samplers' threads run in the stage's context
        self.events.append({**ev.sample(host, values, ev.iso_from_ns(at_ns)), **self._context(),
                            "span_id": self._stage()["span_id"]})

    def _stage(self) -> dict | None:
        return next((s for s in reversed(self._open) if s["attributes"][ev.KIND] == "stage"), None)

    def _stage_fields(self, kind: str) -> dict:
        stage = self._stage()
        if kind == "run" or stage is None:
            return {}
        return {"stage_index": stage["stage_index"], "stage_count": stage["stage_count"]}

    def _context(self) -> dict:
        return {"trace_id": TRACE, "span_id": self._open[-1]["span_id"], **self._stage_fields("log")}


def rates(i: int, host: str, k: int) -> dict:
    """Bytes a second of host i in round k: 180-208 MB/s read, no two hosts alike; node17 about 42."""
    if k == 0:
        return dict.fromkeys(RATES, 0.0)
    read = (42.5 if host == SLOW else 180.0 + (i * 37) % 64 * 0.45) * 1e6 + (k * 131_072) % 1_000_000
    return {"read_Bps": read, "write_Bps": 150_000.0, "rx_Bps": read * 1.02, "tx_Bps": 410_000.0 + i * 1000}


def sample_values(i: int, host: str, k: int, totals: dict) -> dict:
    now = rates(i, host, k)
    for rate, value in now.items():
        totals[rate] += int(value * INTERVAL_NS / 1e9)
    return {"elapsed_s": k * 10.0 + i * 0.002, "read_bytes": totals["read_Bps"], "write_bytes": totals["write_Bps"],
            "rx_bytes": totals["rx_Bps"], "tx_bytes": totals["tx_Bps"],
            "mem_available_bytes": 480_000_000_000 - i * 1_000_000_000,
            "load1": round((11.4 if host == SLOW else 6.0) + (i % 7) * 0.1, 2), **now}


def scripted_run() -> list[dict]:
    rec = Recording()
    rec.start("run", "mlpstorage training run", T0, **{
        "mlpstorage.benchmark": "training", "mlpstorage.model": "unet3d", "mlpstorage.command": "run",
        "mlpstorage.hosts": [f"{h}:8" for h in HOSTS], "mlpstorage.run_id": "golden-64"})
    stages = ["Validating environment", "Collecting cluster info", "Running benchmark", "Processing results"]

    def stage(index: int, at_ns: int) -> None:
        rec.start("stage", stages[index - 1], at_ns, **{ev.STAGE_INDEX: index, ev.STAGE_COUNT: len(stages)})

    stage(1, T0 + 1 * MS)
    rec.log(T0 + 15 * MS, "info", "Environment validation passed")
    rec.finish(T0 + 20 * MS)
    stage(2, T0 + 21 * MS)
    rec.start("spinner", "Collecting cluster info (64 hosts)...", T0 + 22 * MS,
              **{ev.DESCRIPTION: "Collecting cluster info (64 hosts)...", ev.COMPLETED: 0})
    rec.spinner_updated(T0 + 23 * MS, "Collecting via MPI...")
    rec.finish(T0 + 1400 * MS)
    rec.finish(T0 + 1401 * MS)

    running = T0 + 1500 * MS
    stage(3, running)
    rec.log(running + 5 * MS, "status", "Running dlio_benchmark on 64 hosts (512 processes)")
    totals = {host: dict.fromkeys(RATES, 0) for host in HOSTS}
    order = sorted(range(len(HOSTS)), key=lambda i: (i * 29) % len(HOSTS))  # the order samples arrive in
    step = 0
    for k in range(ROUNDS):
        tick = running + 200 * MS + k * INTERVAL_NS
        if k == 0:
            rec.start("task", "epoch 1/2", tick - 100 * MS)
        if k == 3:
            rec.output(tick - 300 * MS, ["[INFO] Ending epoch 1 - 512 steps completed"])
            rec.finish(tick - 250 * MS)
            rec.start("task", "epoch 2/2", tick - 200 * MS)
        for i in order:
            host = HOSTS[i]
            if host == LOST and k >= 2:
                continue
            rec.sample(tick + i * 2 * MS, host, sample_values(i, host, k, totals[host]))
        step += 85
        rec.output(tick + 400 * MS, [f"[INFO] Rank 0 step {step} processed 8 samples in 0.0712 s"])
    rec.finish(running + 56_000 * MS)  # epoch 2/2
    rec.finish(running + 56_100 * MS)
    stage(4, running + 56_200 * MS)
    rec.log(running + 56_300 * MS, "result", "Training AU: 97.41% (target 90%: success)")
    rec.log(running + 56_301 * MS, "result", "Training throughput: 90315.52 samples/s, 12611.83 MB/s")
    rec.finish(running + 56_400 * MS)
    rec.finish(running + 56_500 * MS)
    return rec.events


if __name__ == "__main__":
    path = HERE / "many_hosts.events.jsonl"
    events = scripted_run()
    problems = [(n, p) for n, p in enumerate(map(ev.validate, events), 1) if p]
    assert not problems, problems
    path.write_text("".join(map(ev.to_json_line, events)))
    print("wrote", path)
