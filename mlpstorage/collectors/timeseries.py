"""Time series during a run: every host sampled at a fixed rate, this host directly and the
others over SSH (the same sampler code, hostinfo.samples, runs on both sides)."""

from __future__ import annotations

import contextvars
import json
import subprocess
import threading
from typing import Callable

from ..engines.process import CHILDREN
from ..hosts import is_local_host
from . import hostinfo
from .ssh import SshOptions, remote_script, ssh_argv

OnSample = Callable[[str, dict], None]


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
            sample["host"] = self.host
            self.samples.append(sample)
            self._on_sample(self.host, sample)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class SshSampler:
    """One long-lived ssh per host, printing a JSON line per sample."""

    def __init__(self, host: str, interval_s: float, max_samples: int, on_sample: OnSample, ssh: SshOptions):
        self.host, self.samples, self.error = host, [], None
        self._script = remote_script("sample", str(interval_s), str(max_samples))
        self._argv = ssh_argv(ssh, host)
        self._on_sample = on_sample
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        try:
            self._proc = CHILDREN.spawn(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            self.error = f"cannot run ssh: {exc.strerror}"
            return
        self._proc.stdin.write(self._script)
        self._proc.stdin.close()
        self._thread = _thread_in_this_context(self._loop, self.host)
        self._thread.start()

    def _loop(self) -> None:
        for line in self._proc.stdout:
            try:
                sample = json.loads(line)
            except json.JSONDecodeError:
                continue
            sample["host"] = self.host
            self.samples.append(sample)
            self._on_sample(self.host, sample)

    def stop(self) -> None:
        if self._proc is None:
            return
        CHILDREN.stop(self._proc, grace_s=5)
        self._thread.join(timeout=5)
        stderr = self._proc.stderr.read().strip().splitlines()
        if not self.samples and self.error is None:
            self.error = stderr[-1] if stderr else f"ssh exited with code {self._proc.returncode}"


class Timeseries:
    """Samples every host from start() to stop(); each sample goes to on_sample as it comes."""

    def __init__(self, hosts: list[str], interval_s: float, max_samples: int, on_sample: OnSample,
                 on_limit: Callable[[int], None], ssh: SshOptions | None = None):
        self.interval_s, self.max_samples = interval_s, max_samples
        self._on_limit = on_limit
        self._limit_reported = False
        self.stopped = False
        self._lock = threading.Lock()

        def counted(host: str, sample: dict) -> None:
            on_sample(host, sample)
            self._check_limit(host)

        self.samplers = [
            LocalSampler(h, interval_s, max_samples, counted) if is_local_host(h)
            else SshSampler(h, interval_s, max_samples, counted, ssh or SshOptions())
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
