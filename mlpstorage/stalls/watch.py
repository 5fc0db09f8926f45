"""The stall watch of one run: feeds the detector, says what it finds, keeps the evidence.

While "Running benchmark" runs, a thread wakes every second (TICK_S): it learns the ranks' hosts and
pids (each rank writes ranks/process-<rank>.json as it starts, see engines/dlio_rank.py),
measures the I/O of the job's processes on this host when nothing else moved, and asks the
detector what changed. Each finding becomes a `stall` event (a warning line, a highlighted
row, a span event in the trace) and an entry in the metadata's "stalls". With --on-stall dump
the stalled ranks' stacks and /proc state go into stalls/ (evidence.py); with --on-stall
abort the job is then stopped, and the run ends with StallAborted (exit code 3).

The job's I/O on this host is read from its own processes (/proc/PID/io: every byte read or
written, page cache included), not from the host's disks: the launcher's own writes and
anything else on the host would otherwise look like progress. Other hosts' I/O comes from
their time-series samples (disk and network, above the detector's IO_FLOOR_BPS).
"""

from __future__ import annotations

import contextvars
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil

from ..emitter import Emitter
from ..emitter.events import iso_from_ns
from ..engines.process import CHILDREN
from ..hosts import is_local_host
from . import evidence
from .detector import Finding, StallDetector
from ..emitter.rank_process import read_rank_processes

# The watch wakes every TICK_S, or four times per stall timeout when that is shorter.
TICK_S = 1.0
# The job's own I/O is measured once nothing else has moved for this long (or a quarter of the
# timeout): a first look is the baseline, the next ones tell whether it read or wrote.
IO_CHECK_AFTER_S = 2.0
ACTIONS = ("warn", "dump", "abort")
# What --on-stall dump records evidence of: a rank or job that stopped, a host that stopped
# reading (its ranks). A late epoch is slow, not stopped.
DUMPS_ON = ("rank", "job", "host")
# What --on-stall abort stops the job for: only a rank or the job that stopped (a host that
# reads nothing may have its data in its page cache).
ABORTS_ON = ("rank", "job")
# stop() waits this long for a tick under way (evidence may be being recorded).
JOIN_S = evidence.PY_SPY_TIMEOUT_S + 5


class StallWatch:
    def __init__(self, emitter: Emitter, detector: StallDetector, run_dir: Path, action: str = "warn",
                 ranks_dir: Path | None = None, ranks: int = 0):
        if action not in ACTIONS:
            raise ValueError(f"unknown --on-stall action {action!r}")
        self.emitter = emitter
        self.detector = detector
        self.action = action
        self.run_dir = run_dir
        self.ranks_dir = ranks_dir
        self.expected_ranks = ranks
        self.aborted: Finding | None = None  # the stall the job was stopped for
        self._proc: subprocess.Popen | None = None
        self._processes: dict[int, dict] = {}  # rank -> {"rank", "host", "pid"} from its process file
        self._io: dict[int, int] = {}  # pid -> bytes read and written, at the last look
        self._io_at = 0.0  # when that look was taken
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._history: list[dict] = []  # every stall flagged, as the metadata keeps it
        self._evidence_count = 0
        self._hostname = socket.gethostname()
        self.on_tick: list = []  # callables run on every tick (DlioProgress.flush)
        self._tick_s = min(TICK_S, detector.timeout_s / 4)
        self._local: dict[str, bool] = {}  # host -> whether it is this one (decided once)
        self._troubled = False
        self._io_after_s = min(IO_CHECK_AFTER_S, detector.timeout_s / 4)

    # ----- life --------------------------------------------------------------------------
    def start(self, proc: subprocess.Popen) -> None:
        """The job's process has started: watch it (from a thread in the caller's context, so
        its events belong to the running stage)."""
        self._proc = proc
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._loop,),
                                        name="stall-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=JOIN_S)
        self._thread = None

    def sample(self, host: str, values: dict) -> None:
        """A host's time-series sample (from its sampler's thread). Reads count from disk and
        from the network (a network file system's data arrives as network traffic); this
        host's I/O is the job's own, measured closer (see _check_local_io)."""
        try:
            local = self._local.get(host)
            if local is None:
                local = self._local[host] = is_local_host(host)
            read = float(values.get("read_Bps", 0.0)) + float(values.get("rx_Bps", 0.0))
            io = read + float(values.get("write_Bps", 0.0)) + float(values.get("tx_Bps", 0.0))
            self.detector.host_rates(host, read, io, job_io=not local)
        except Exception as exc:  # never the sampler's problem
            self._trouble(exc)

    def _loop(self) -> None:
        while not self._stop.wait(self._tick_s):
            if self._proc is not None and self._proc.poll() is not None:
                return  # the job has ended: nothing more to watch (and its pid may be reused)
            try:
                self._tick()
            except Exception as exc:  # the watch must never take the run down
                self._trouble(exc)

    def _trouble(self, exc: Exception) -> None:
        """A failure of the watch itself: one warning, and the watch goes on."""
        if not self._troubled:
            self._troubled = True
            self.emitter.warning(f"Stall detection hit a problem (it goes on): {type(exc).__name__}: {exc}")

    def _tick(self) -> None:
        for call in self.on_tick:
            call()
        self._learn_ranks()
        if time.time() - self.detector.last_activity() >= self._io_after_s:
            self._check_local_io()
        stop_for = None
        for finding in self.detector.check():  # every finding said and recorded before any abort
            self._act(finding)
            if self.action == "abort" and finding.state == "stalled" and finding.condition in ABORTS_ON:
                stop_for = stop_for or finding
        if stop_for is not None and self.aborted is None and self._proc is not None and self._proc.poll() is None:
            self.aborted = stop_for
            self.emitter.error(f"Stopping the job (--on-stall abort): {stop_for.message}")
            CHILDREN.stop(self._proc)
            self._stop.set()

    # ----- what the watch learns ---------------------------------------------------------
    def _learn_ranks(self) -> None:
        if self.ranks_dir is None or (self.expected_ranks and len(self._processes) >= self.expected_ranks):
            return
        for rank, info in read_rank_processes(self.ranks_dir).items():
            if rank not in self._processes:
                self._processes[rank] = info
                self.detector.rank_process(rank, info["host"], info["pid"])

    def _check_local_io(self) -> None:
        """Bytes read and written by the job's processes on this host since the last look;
        any change is a sign of life."""
        if self._proc is None or self._proc.poll() is not None:
            return
        try:
            root = psutil.Process(self._proc.pid)
            family = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        now: dict[int, int] = {}
        for process in family:
            try:
                counters = process.io_counters()
            except psutil.Error:
                continue
            now[process.pid] = counters.read_chars + counters.write_chars
        # A look taken before the job's last sign of life is no baseline: what the job read or
        # wrote since then may be older than that sign.
        fresh = self._io_at >= self.detector.last_activity()
        moved = fresh and any(now[pid] != self._io.get(pid) for pid in now)
        if moved:
            self.detector.activity("I/O of the job on this host")
        self._io, self._io_at = now, time.time()

    # ----- what the watch does -----------------------------------------------------------
    def _act(self, finding: Finding) -> None:
        self.emitter.stall(finding.condition, finding.state, finding.key, finding.subject, finding.message,
                           **finding.fields)
        if finding.state == "resumed":
            for entry in reversed(self._history):
                if entry["key"] == finding.key and entry["resumed_at"] is None:
                    entry["resumed_at"] = iso_from_ns(time.time_ns())
                    entry["idle_s"] = finding.fields.get("idle_s")
                    break
            return
        entry = {"condition": finding.condition, "key": finding.key, "subject": finding.subject,
                 "message": finding.message, "stalled_at": iso_from_ns(time.time_ns()), "resumed_at": None,
                 "idle_s": finding.fields.get("idle_s"), "evidence": [],
                 **{k: finding.fields[k] for k in ("rank", "host", "pid", "epoch") if k in finding.fields}}
        self._history.append(entry)
        if self.action in ("dump", "abort") and finding.condition in DUMPS_ON:
            entry["evidence"] = self._record_evidence(finding)

    def _targets(self, finding: Finding) -> list[tuple[str, int, str, str, int | None]]:
        """(file name, pid, host, header, rank or None) of each process to record for the finding."""
        if finding.condition == "rank":
            ranks = [self._processes.get(finding.fields.get("rank"))]
        elif finding.condition == "host":
            ranks = [p for p in self._processes.values() if p["host"] == finding.fields.get("host")]
        else:  # the whole job: every rank, but those whose own stall has recorded them already
            open_ranks = {f.fields.get("rank") for f in self.detector.open_stalls() if f.condition == "rank"}
            ranks = [r for r in self._processes.values() if r["rank"] not in open_ranks]
        ranks = [r for r in ranks if r is not None]
        if not ranks and finding.condition == "job" and self._proc is not None and self._proc.poll() is None:
            return [(f"{finding.key}-pid-{self._proc.pid}", self._proc.pid, self._hostname,
                     f"the job's process {self._proc.pid}", None)]
        return [(f"{finding.key.replace(':', '-')}" + ("" if finding.condition == "rank" else f"-rank-{r['rank']}"),
                 r["pid"], r["host"], f"rank {r['rank']} on {r['host']} (pid {r['pid']})", r["rank"]) for r in ranks]

    def _record_evidence(self, finding: Finding) -> list[str]:
        paths = []
        targets = self._targets(finding)
        if not targets:
            self.emitter.warning(f"No evidence of {finding.subject}: no process of it is known here (ranks "
                                 "write ranks/process-<rank>.json as they start; a host's are matched by name)")
        for name, pid, host, what, rank in targets:
            if self._stop.is_set():  # the run is leaving "Running benchmark": no more evidence
                break
            if host != self._hostname and not is_local_host(host):
                self.emitter.warning(f"No evidence of {what}: it runs on {host}, not on this host")
                continue
            self._evidence_count += 1
            header = f"{what}\nstall: {finding.message}\nrecorded at {iso_from_ns(time.time_ns())}\n"
            try:
                traced = evidence.last_traced_calls(self.run_dir, rank) if rank is not None else None
                path, no_stacks = evidence.record(self.run_dir / "stalls", f"{self._evidence_count:02d}-{name}.txt",
                                                  pid, header, traced)
            except OSError as exc:
                self.emitter.warning(f"Could not keep the evidence of {what}: {exc}")
                continue
            relative = str(path.relative_to(self.run_dir))
            paths.append(relative)
            if no_stacks:
                self.emitter.warning(f"Evidence of {what} in {relative}, without its Python stacks: {no_stacks}",
                                     evidence=relative)
            else:
                calls = ", its last traced calls" if traced else ""
                self.emitter.info(f"Evidence of {what} (its stacks, /proc state, open files{calls}) in {relative}",
                                  evidence=relative)
        return paths

    # ----- what the run keeps ------------------------------------------------------------
    def history(self) -> dict:
        """The metadata's "stalls": the settings and every stall flagged."""
        return {"timeout_s": self.detector.timeout_s, "on_stall": self.action, "flagged": list(self._history)}

    def rank_attributes(self) -> dict[int, dict]:
        """For each rank that stalled: attributes for its span (how often, the longest idle)."""
        out: dict[int, dict] = {}
        for entry in self._history:
            if entry["condition"] != "rank":
                continue
            attrs = out.setdefault(entry["rank"], {"mlpstorage.stall.count": 0, "mlpstorage.stall.longest_s": 0.0})
            attrs["mlpstorage.stall.count"] += 1
            attrs["mlpstorage.stall.longest_s"] = max(attrs["mlpstorage.stall.longest_s"], entry["idle_s"] or 0.0)
        return out

