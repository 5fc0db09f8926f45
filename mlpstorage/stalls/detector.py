"""Is the run still progressing, and if not, who stopped? The rules, and nothing else.

The detector is told what the launcher sees (each rank's steps, epochs starting and ending,
output and I/O of the job, the hosts' read rates) and asked, now and then, what changed:
check() returns the stalls to flag and the ones that ended. Its clock is injected (tests pass
a fake one; the default is time.time) and it does no I/O; mlpstorage/stalls/watch.py feeds it
and acts on its findings.

The rules (each flagged once, and said again only after it ended):

- rank: a rank has reported no step for the timeout while another rank has reported more
  steps, the last of them after its own. (Counted over the run: a rank's step line can reach
  the launcher before the epoch line rank 0 printed first.) DLIO ranks meet at a barrier after every step, so a frozen rank
  stops the others too; but they stop one step ahead of it, and that names it.
- job: no step from any rank, no output line and no I/O of the job for the timeout.
- epoch: an epoch runs past EPOCH_FACTOR times the median of the epochs before it (the first
  epoch: its expected steps times the computation time), and past that median plus the
  timeout, so short epochs are not flagged for a hiccup: it is late (slow, not stopped). It
  ends with the epoch.
- host: a host that has read (from disk or the network) reads less than IO_FLOOR_BPS for the
  timeout while another host reads.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field

# An epoch is late past this many times the median of the epochs before it.
EPOCH_FACTOR = 2.0
# Host-wide rates (bytes a second) under this count as idle: a host's own background.
IO_FLOOR_BPS = 100_000.0
# The default timeout's bounds (see default_timeout).
MIN_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 600.0
# Steps of computation time a step may take before its rank counts as stalled.
STEPS_OF_SLACK = 20
# Without a step time to go by (checkpointing: a checkpoint's writes and its flush can be
# quiet for minutes; any program under exec).
NO_STEP_TIMEOUT_S = {"checkpointing": 300.0, "exec": 120.0}


def default_timeout(computation_time_s: float | None, epoch_s: float | None, kind: str = "training") -> float:
    """The stall timeout when none is given: 20 steps' computation time or a tenth of the
    expected epoch, whichever is longer, at least 60 s and at most 10 minutes; without a step
    time, NO_STEP_TIMEOUT_S."""
    if not computation_time_s:
        return NO_STEP_TIMEOUT_S.get(kind, MIN_TIMEOUT_S)
    wanted = max(STEPS_OF_SLACK * computation_time_s, (epoch_s or 0.0) / 10)
    return min(MAX_TIMEOUT_S, max(MIN_TIMEOUT_S, wanted))


@dataclass
class Finding:
    """A stall flagged (state "stalled") or ended ("resumed"); fields go into its event."""

    condition: str  # rank | job | epoch | host
    state: str  # stalled | resumed
    key: str  # which one: "rank:5", "job", "epoch:3", "host:node3"
    subject: str
    message: str
    fields: dict = field(default_factory=dict)


@dataclass
class _Rank:
    rank: int
    host: str | None = None
    pid: int | None = None
    step_count: int = 0  # step records seen from it in the whole run
    step: int | None = None  # the last step number it reported
    epoch: int | None = None  # the epoch it reported it in
    at: float | None = None  # when

    @property
    def subject(self) -> str:
        where = f" on {self.host}" if self.host else ""
        pid = f" (pid {self.pid})" if self.pid else ""
        return f"rank {self.rank}{where}{pid}"


@dataclass
class _Host:
    read_at: float | None = None  # its last sample reading at least IO_FLOOR_BPS (None: it never read)
    read_Bps: float = 0.0


def _seconds(value: float) -> str:
    return f"{int(value)} s"


class StallDetector:
    def __init__(self, timeout_s: float, ranks: int | None = None, interval_s: float = 10.0,
                 epoch_factor: float = EPOCH_FACTOR, clock=time.time):
        self.timeout_s = timeout_s
        self.interval_s = interval_s  # of the hosts' samples
        self.epoch_factor = epoch_factor
        self._clock = clock
        self._lock = threading.Lock()
        self._ranks: dict[int, _Rank] = {r: _Rank(r) for r in range(ranks or 0)}
        self._first_step_at: float | None = None
        self._activity_at = clock()  # the job's last sign of life (step, output, I/O)
        self._activity = "start"
        self._epoch: tuple[int, float, int | None, float | None] | None = None  # number, start, steps, expected s
        self._epoch_flagged = False
        self._durations: list[float] = []
        self._hosts: dict[str, _Host] = {}
        self._open: dict[str, Finding] = {}  # flagged and not resumed, by key
        self._since: dict[str, float] = {}  # when each open stall's thing went idle
        self._pending: list[Finding] = []  # resumed, to be returned by the next check()

    # ----- what the launcher sees --------------------------------------------------------
    def rank_process(self, rank: int, host: str | None, pid: int | None) -> None:
        with self._lock:
            state = self._ranks.setdefault(rank, _Rank(rank))
            state.host, state.pid = host, pid

    def step(self, rank: int, step: int, at: float | None = None) -> None:
        """Rank `rank` reported step `step` (DLIO: "Rank R step S processed ...")."""
        self.steps({rank: step}, {rank: 1}, at)

    def steps(self, latest: dict[int, int], counts: dict[int, int], at: float | None = None) -> None:
        """Several ranks' steps at once (a batch of output): each rank's latest step, and how
        many step records it sent."""
        if not latest:
            return
        at = self._clock() if at is None else at
        with self._lock:
            epoch = self._epoch[0] if self._epoch else None
            for rank, step in latest.items():
                state = self._ranks.get(rank)
                if state is None:
                    state = self._ranks[rank] = _Rank(rank)
                state.step_count += counts.get(rank, 1)
                state.step, state.at, state.epoch = step, at, epoch
                if f"rank:{rank}" in self._open:
                    self._resume(f"rank:{rank}", at, f"step {step}{self._of_steps()} after {{idle}} without a step")
            if self._first_step_at is None:
                self._first_step_at = at
            rank, step = next(reversed(latest.items()))
            self._alive(at, f"step {step}{self._of_steps()} from rank {rank}")

    def activity(self, what: str = "output", at: float | None = None) -> None:
        """A sign of life of the job that is not a step: an output line, I/O of its processes."""
        at = self._clock() if at is None else at
        with self._lock:
            self._alive(at, what)

    def epoch_started(self, epoch: int, steps_expected: int | None, expected_s: float | None = None,
                      at: float | None = None) -> None:
        at = self._clock() if at is None else at
        with self._lock:
            self._epoch = (epoch, at, steps_expected, expected_s)
            self._epoch_flagged = False
            self._alive(at, f"epoch {epoch} started")

    def epoch_ended(self, epoch: int, at: float | None = None) -> None:
        at = self._clock() if at is None else at
        with self._lock:
            if self._epoch is None or self._epoch[0] != epoch:
                return
            duration = at - self._epoch[1]
            if f"epoch:{epoch}" in self._open:
                self._resume(f"epoch:{epoch}", at, f"done after {_seconds(duration)}")
            self._durations.append(duration)
            self._epoch = None
            self._alive(at, f"epoch {epoch} ended")

    def host_rates(self, host: str, read_Bps: float, io_Bps: float, job_io: bool = True,
                   at: float | None = None) -> None:
        """A host's time-series sample: its read rate, and all its I/O (disk and network)
        per second. job_io: whether that I/O counts as the job's (not for a host whose job
        I/O is measured more closely, see StallWatch)."""
        at = self._clock() if at is None else at
        with self._lock:
            state = self._hosts.setdefault(host, _Host())
            state.read_Bps = read_Bps
            if read_Bps >= IO_FLOOR_BPS:
                state.read_at = at
                if f"host:{host}" in self._open:
                    self._resume(f"host:{host}", at, f"reads again ({read_Bps / 1e6:.1f} MB/s) after {{idle}}")
            if job_io and io_Bps >= IO_FLOOR_BPS:
                self._alive(at, f"I/O on {host}")

    def _alive(self, at: float, what: str) -> None:  # under _lock
        if at >= self._activity_at:
            self._activity_at, self._activity = at, what
        if "job" in self._open:
            self._resume("job", at, f"moving again after {{idle}} ({what})")

    def _of_steps(self) -> str:
        steps = self._epoch[2] if self._epoch else None
        return f"/{steps}" if steps else ""

    def _resume(self, key: str, at: float, how: str) -> None:  # under _lock
        """how: what happened, with {idle} where the time without progress goes."""
        flagged = self._open.pop(key)
        idle = at - self._since.pop(key, at)
        what = how.replace("{idle}", _seconds(idle))
        self._pending.append(Finding(flagged.condition, "resumed", key, flagged.subject, f"{flagged.subject}: {what}",
                                     {**_who(flagged.fields), "idle_s": round(idle, 3)}))

    # ----- what changed ------------------------------------------------------------------
    def check(self, now: float | None = None) -> list[Finding]:
        """The stalls that ended since the last check, then the ones to flag now."""
        now = self._clock() if now is None else now
        with self._lock:
            found, self._pending = self._pending, []
            # rule by rule, each finding open before the next rule runs (the job's message
            # names the ranks flagged in the same check)
            for rule in (self._rank_stalls, self._job_stall, self._epoch_stall, self._host_stalls):
                for finding, since in list(rule(now)):
                    self._open[finding.key] = finding
                    self._since[finding.key] = since
                    finding.fields.update(idle_s=round(now - since, 3), since_unix_nano=int(since * 1e9))
                    found.append(finding)
            return found

    def last_activity(self) -> float:
        """When the job last showed a sign of life (clock seconds)."""
        return self._activity_at

    def open_stalls(self) -> list[Finding]:
        with self._lock:
            return list(self._open.values())

    def _rank_stalls(self, now: float):
        if not self._ranks:
            return
        ahead = max(r.step_count for r in self._ranks.values())
        leader = max(self._ranks.values(), key=lambda r: (r.step_count, -(r.at or 0)))
        for state in self._ranks.values():
            key = f"rank:{state.rank}"
            since = state.at if state.at is not None else self._first_step_at
            if key in self._open or since is None or state.step_count >= ahead or now - since <= self.timeout_s:
                continue
            if state.at is not None and leader.at is not None and leader.at <= state.at:
                continue  # behind in count only: the others did not step after it
            if state.step is None:
                last = "no step yet"
            else:
                epoch = f" of epoch {state.epoch}" if state.epoch is not None else ""
                last = f"last step {state.step}{self._of_steps()}{epoch}"
            other_epoch = f" of epoch {leader.epoch}" if leader.epoch is not None and leader.epoch != state.epoch else ""
            detail = f"{last}; rank {leader.rank} is at step {leader.step}{self._of_steps()}{other_epoch}"
            message = f"{state.subject}: no step for {_seconds(now - since)}, {detail}"
            fields = {"rank": state.rank, "host": state.host, "pid": state.pid, "step": state.step,
                      "steps_expected": self._epoch[2] if self._epoch else None, "epoch": state.epoch}
            yield Finding("rank", "stalled", key, state.subject, message,
                          {**_who(fields), "detail": f"no step; {detail}"}), since

    def _job_stall(self, now: float):
        idle = now - self._activity_at
        if "job" in self._open or idle <= self.timeout_s:
            return
        signs = "no step from any rank, no output and no I/O" if self._ranks else "no output and no I/O"
        last = [r for r in self._ranks.values() if r.at is not None]
        latest = max(last, key=lambda r: r.at) if last else None
        where = ""
        if latest is not None and not self._activity.startswith("step "):
            where = f"; last step {latest.step}{self._of_steps()} from rank {latest.rank}"
        stopped = [r.subject for r in self._ranks.values() if f"rank:{r.rank}" in self._open]
        behind = f"; stalled: {', '.join(stopped)}" if stopped else ""
        message = f"the whole job: {signs} for {_seconds(idle)} (last: {self._activity}){where}{behind}"
        detail = f"{signs} (last: {self._activity}){where}{behind}"
        yield Finding("job", "stalled", "job", "the whole job", message, {"detail": detail}), self._activity_at

    def _epoch_stall(self, now: float):
        if self._epoch is None or self._epoch_flagged:
            return
        epoch, start, _, expected_s = self._epoch
        if self._durations:
            typical = statistics.median(self._durations)
            basis = (f"the median of epoch{'s' if len(self._durations) > 1 else ''} "
                     f"{_span_of(epoch, len(self._durations))} ({typical:.1f} s)")
        elif expected_s:
            typical, basis = expected_s, f"its expected {expected_s:.1f} s (steps x computation time)"
        else:
            return
        if typical <= 0:
            return
        limit = max(self.epoch_factor * typical, typical + self.timeout_s)
        elapsed = now - start
        if elapsed <= limit:
            return
        self._epoch_flagged = True
        message = f"epoch {epoch} is late: {int(elapsed)} s so far, {elapsed / typical:.1f}x {basis}"
        detail = f"late, past {limit / typical:.1f}x {basis}"
        yield Finding("epoch", "stalled", f"epoch:{epoch}", f"epoch {epoch}", message,
                      {"epoch": epoch, "typical_s": round(typical, 3), "detail": detail}), start

    def _host_stalls(self, now: float):
        if len(self._hosts) < 2:
            return
        recent = 2.5 * self.interval_s  # a host reads "now" if one of its last samples did
        for host, state in self._hosts.items():
            key = f"host:{host}"
            since = state.read_at  # a host that never read may have no ranks, or its data cached
            if key in self._open or since is None or now - since <= self.timeout_s:
                continue
            readers = [(h, s) for h, s in self._hosts.items()
                       if h != host and s.read_at is not None and now - s.read_at <= recent]
            if not readers:
                continue
            rate = sum(s.read_Bps for _, s in readers) / 1e6
            others = f"{len(readers)} other host{'s' if len(readers) > 1 else ''} read ({rate:.1f} MB/s)"
            message = f"host {host}: read under {IO_FLOOR_BPS / 1e6:.1f} MB/s for {_seconds(now - since)} while {others}"
            detail = f"reads under {IO_FLOOR_BPS / 1e6:.1f} MB/s while {others}"
            yield Finding("host", "stalled", key, f"host {host}", message, {"host": host, "detail": detail}), since


def _who(fields: dict) -> dict:
    """The fields that say who or what (rank, host, pid, epoch...), without the empty ones."""
    return {k: v for k, v in fields.items() if v is not None and k not in ("idle_s", "since_unix_nano", "detail")}


def _span_of(epoch: int, count: int) -> str:
    first = epoch - count
    return str(first) if count == 1 else f"{first}-{epoch - 1}"
