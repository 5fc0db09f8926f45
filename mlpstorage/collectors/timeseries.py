"""Time series during a run: every host sampled at a fixed rate, this host directly and the
others over SSH (the same sampler code, hostinfo.samples, runs on both sides), each a session
on the run's connection to that host when there is one (SshConnections). Each sample is
compacted (rates in whole bytes a second) before anyone sees it: the event stream, the
recording and the metrics keep every sample of every host."""

from __future__ import annotations

import contextvars
import json
import math
import os
import subprocess
import threading
from typing import Callable

from ..engines.process import CHILDREN
from ..hosts import is_local_host
from . import hostinfo
from .ssh import SshConnections, SshOptions, remote_script

OnSample = Callable[[str, dict], None]


def compact(sample: dict) -> dict:
    """sample with its rates rounded to whole bytes a second, in place. The counters they come
    from are whole bytes, so the digits after the point are only the timing's noise; the
    recording keeps one sample per host and interval, and those digits were 7 % of its bytes
    (docs/performance.md, A thousand hosts)."""
    for rate in hostinfo.RATES.values():
        value = sample.get(rate)
        if isinstance(value, float) and math.isfinite(value):
            sample[rate] = round(value)
    return sample


def _thread_in_this_context(loop: Callable[[], None], host: str) -> threading.Thread:
    """A sampler thread whose samples belong to the caller's run and stage."""
    return threading.Thread(target=contextvars.copy_context().run, args=(loop,), name=f"timeseries-{host}", daemon=True)


class LocalSampler:
    def __init__(self, host: str, interval_s: float, max_samples: int, on_sample: OnSample):
        self.host, self.samples, self.error = host, [], None
        self._args = (interval_s, max_samples)
        self._on_sample = on_sample
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = _thread_in_this_context(self._loop, self.host)
        self._thread.start()

    def _loop(self) -> None:
        for sample in hostinfo.samples(*self._args, stop=self._stop.wait):
            compact(sample)
            sample["host"] = self.host
            self.samples.append(sample)
            self._on_sample(self.host, sample)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class SshSampler:
    """One long-lived ssh session per host, printing a JSON line per sample."""

    def __init__(self, host: str, interval_s: float, max_samples: int, on_sample: OnSample,
                 connections: SshConnections):
        self.host, self.samples, self.error = host, [], None
        self._script = remote_script("sample", str(interval_s), str(max_samples))
        self._connections = connections
        self._on_sample = on_sample
        self._proc: subprocess.Popen | None = None
        self._stopped = False
        self._lock = threading.Lock()  # a sample is taken whole before stop(), or not at all

    def start(self) -> None:
        self.error = self._connections.ready(self.host)
        if self.error is not None:
            return
        try:
            self._proc = CHILDREN.spawn(self._connections.argv(self.host), stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            self.error = f"cannot run ssh: {exc.strerror}"
            return
        self._proc.stdin.write(self._script)
        self._proc.stdin.close()
        _thread_in_this_context(self._loop, self.host).start()

    def _loop(self) -> None:
        for line in self._proc.stdout:
            try:
                sample = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(sample, dict):
                continue
            compact(sample)
            sample["host"] = self.host
            with self._lock:
                if self._stopped:
                    return
                self.samples.append(sample)
                self._on_sample(self.host, sample)

    def stop(self) -> None:
        """Ends the session at once. Its ssh is killed, not asked: a session on a master waits
        for the remote command's exit status whatever signal it gets, and the master holds the
        session's pipes until then (the remote sampler ends at its next write, within one
        interval). So nothing more is read, and the reader thread ends when the pipe does."""
        if self._proc is None:
            return
        with self._lock:
            self._stopped = True
        ended_by_itself = self._proc.poll() is not None
        CHILDREN.stop(self._proc, grace_s=0)
        if not self.samples and self.error is None:
            stderr = _available(self._proc.stderr).strip().splitlines()
            if stderr:
                self.error = stderr[-1]
            elif ended_by_itself:
                self.error = f"ssh exited with code {self._proc.returncode}"
            else:
                self.error = "stopped before its first sample"


def _available(pipe) -> str:
    """What a pipe holds now, without waiting for every writer to close it."""
    fd = pipe.fileno()
    os.set_blocking(fd, False)
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks).decode(errors="replace")


class Timeseries:
    """Samples every host from start() to stop(); each sample goes to on_sample as it comes."""

    def __init__(self, hosts: list[str], interval_s: float, max_samples: int, on_sample: OnSample,
                 on_limit: Callable[[int], None], ssh: SshOptions | None = None,
                 connections: SshConnections | None = None):
        self.interval_s, self.max_samples = interval_s, max_samples
        self._on_limit = on_limit
        self._limit_reported = False
        self.stopped = False
        self._lock = threading.Lock()

        def counted(host: str, sample: dict) -> None:
            on_sample(host, sample)
            self._check_limit(host)

        connections = connections or SshConnections(ssh or SshOptions())  # unopened: direct logins
        self.samplers = [
            LocalSampler(h, interval_s, max_samples, counted) if is_local_host(h)
            else SshSampler(h, interval_s, max_samples, counted, connections)
            for h in dict.fromkeys(hosts)
        ]

    def _check_limit(self, host: str) -> None:
        sampler = next(s for s in self.samplers if s.host == host)
        with self._lock:
            if len(sampler.samples) >= self.max_samples and not self._limit_reported:
                self._limit_reported = True
                self._on_limit(self.max_samples)

    def start(self) -> None:
        for sampler in self.samplers:
            sampler.start()

    def stop(self) -> dict[str, list[dict]]:
        self.stopped = True
        for sampler in self.samplers:
            sampler.stop()
        return {s.host: s.samples for s in self.samplers}

    def errors(self) -> dict[str, str]:
        return {s.host: s.error for s in self.samplers if s.error}
