"""Running the collector on other hosts over SSH, in parallel, each host bounded in time.

The OpenSSH client runs in BatchMode (never a prompt) with a connect timeout; the remote
command is the fixed string `python3 -` and the collector's source, with its arguments as a
Python literal, goes over stdin. So nothing the user typed ever reaches a remote shell, and
a remote host needs python3 only.

A run logs in to each remote host once: SshConnections keeps one OpenSSH master connection
per host for the whole run, and every use (collection at the start, the sampler, collection
at the end) is a session on it.
"""

from __future__ import annotations

import contextvars
import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..engines.process import CHILDREN, run_collecting, stop_process_trees
from ..hosts import is_local_host
from . import hostinfo

SCRIPT = Path(hostinfo.__file__).read_text()


@dataclass
class SshOptions:
    user: str | None = None
    port: int | None = None
    identity: str | None = None
    config: str | None = None  # an ssh_config file (ssh -F)
    timeout_s: float = 10.0  # per host: connect and collect
    max_parallel: int = 32
    remote_python: str = "python3"


def ssh_argv(options: SshOptions, host: str, control_path: str | None = None) -> list[str]:
    """The ssh argument list for host (already validated by mlpstorage.hosts): the fixed
    remote command, as a session on the master at control_path when there is one."""
    mux = ["-o", "ControlMaster=no", "-o", f"ControlPath={control_path}"] if control_path else []
    return _ssh_options(options) + mux + [host, options.remote_python, "-"]


def _ssh_options(options: SshOptions) -> list[str]:
    argv = ["ssh"]
    if options.config:
        argv += ["-F", options.config]
    argv += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, math.ceil(options.timeout_s))}",
             "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=2"]
    if options.port:
        argv += ["-p", str(options.port)]
    if options.user:
        argv += ["-l", options.user]
    if options.identity:
        argv += ["-i", options.identity]
    return argv


_FUTURE = "from __future__ import annotations\n"


def remote_script(*args: str) -> str:
    """The collector's source, run as if with these arguments."""
    return script_with_args(SCRIPT, "hostinfo", list(args))


def script_with_args(source: str, name: str, args: list[str]) -> str:
    """A standard-library script's source (hostinfo.py, preflight.py), run as if with these
    arguments (set right after its __future__ import, which must stay first). The arguments
    travel as a Python literal, so no shell ever reads them."""
    head, future, rest = source.partition(_FUTURE)
    return f"{head}{future}import sys\nsys.argv = [{name!r}] + {list(args)!r}\n{rest}"


def _short_error(returncode: int, stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"ssh exited with code {returncode}"


# A Unix socket's path holds at most 107 bytes, and ssh first binds a name 17 bytes longer
# than its ControlPath (then renames it): the directory's own path must stay short.
_MAX_DIR_CHARS = 80
# How often a host's first use looks whether its master is up (a socket appears) yet.
_MASTER_POLL_S = 0.01


def _private_dir() -> str:
    """A new directory only this user can enter (mkdtemp: mode 0700, a random name) in the
    temporary area ($TMPDIR, else /tmp); in /tmp when $TMPDIR's path is too long for sockets."""
    path = tempfile.mkdtemp(prefix="mlpstorage-ssh-")
    if len(os.fsencode(path)) > _MAX_DIR_CHARS:
        os.rmdir(path)
        path = tempfile.mkdtemp(prefix="mlpstorage-ssh-", dir="/tmp")
    return path


class _Master:
    """One host's `ssh -N` master (ControlMaster=yes): the run's only login to that host."""

    def __init__(self, options: SshOptions, host: str, control_path: str, stderr_dir: str):
        self.path = control_path
        self.error: str | None = None
        self._up = False
        self._lock = threading.Lock()
        self._stderr = tempfile.TemporaryFile(dir=stderr_dir)  # unlinked: nothing to leave behind
        self._timeout_s = options.timeout_s
        self._deadline = time.monotonic() + options.timeout_s
        argv = _ssh_options(options) + ["-N", "-o", "ControlMaster=yes", "-o", f"ControlPath={control_path}",
                                        "-o", "ControlPersist=no", host]
        self.proc: subprocess.Popen | None = None
        try:
            self.proc = CHILDREN.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr)
        except OSError as exc:
            self.error = f"cannot run ssh: {exc.strerror}"

    def wait(self) -> str | None:
        """None once the master is up (its socket is there), else why it is not."""
        with self._lock:
            while not self._up and self.error is None:
                if os.path.exists(self.path):
                    self._up = True
                elif self.proc.poll() is not None or time.monotonic() >= self._deadline:
                    self.error = self._why_not()
                    CHILDREN.stop(self.proc, grace_s=1.0)
                else:
                    time.sleep(_MASTER_POLL_S)
            return self.error

    def _why_not(self) -> str:
        if self.proc.returncode is None:
            return f"no answer within {self._timeout_s:g}s"
        self._stderr.seek(0)
        return _short_error(self.proc.returncode, self._stderr.read().decode(errors="replace"))

    def close(self) -> None:
        if self.proc is not None:
            CHILDREN.forget(self.proc)
        self._stderr.close()


class SshConnections:
    """One login per remote host for a whole run (OpenSSH connection multiplexing).

    open() starts a master per remote host (`ssh -N -o ControlMaster=yes`, in the foreground,
    a child owned like any other: see engines/process.py); each later ssh for that host
    (ssh_argv with the host's ControlPath and ControlMaster=no) is a session on it, with no
    new authentication. The control sockets live in a directory of their own (mode 0700, a
    random name in the temporary area). close() stops the masters (SIGTERM: a master closes
    its connection and removes its socket) and removes the directory; use it as a context
    manager so that this happens on every way out. A launcher killed outright (SIGKILL) takes
    its masters with it: the kernel sends each a SIGTERM (PR_SET_PDEATHSIG), and it removes
    its socket; only the empty directory is left.

    A host whose master does not come up (unreachable, refusing, no answer within the
    timeout) is not tried again during the run: every use of it fails at once with the
    master's error. A master that dies during the run (the host went away for longer than
    the keep-alives allow) removes its socket, and ssh then connects directly as it would
    without one. Without open(), every use connects directly."""

    def __init__(self, options: SshOptions):
        self.options = options
        self.dir: str | None = None
        self._masters: dict[str, _Master] = {}

    def open(self, hosts: list[str]) -> None:
        """Starts the masters for the remote hosts among hosts, without waiting for them (a
        host's first use waits for its own). Call from the thread that lives through the run:
        the kernel's parent-death signal follows the thread that started a child."""
        remote = [h for h in dict.fromkeys(hosts) if not is_local_host(h) and h not in self._masters]
        if not remote:
            return
        if self.dir is None:
            self.dir = _private_dir()
        for host in remote:
            self._masters[host] = _Master(self.options, host, os.path.join(self.dir, str(len(self._masters))),
                                          self.dir)

    def ready(self, host: str) -> str | None:
        """Waits for host's master: None when the host can be used, else why not."""
        master = self._masters.get(host)
        return master.wait() if master is not None else None

    def argv(self, host: str) -> list[str]:
        """The ssh argument list for one use of host (call ready() first)."""
        master = self._masters.get(host)
        return ssh_argv(self.options, host, master.path if master is not None else None)

    def close(self) -> None:
        """Stops every master and removes the sockets' directory."""
        masters, self._masters = list(self._masters.values()), {}
        try:
            stop_process_trees([m.proc for m in masters if m.proc is not None and m.proc.poll() is None], grace_s=2.0)
        finally:
            for master in masters:
                master.close()
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None

    def __enter__(self) -> SshConnections:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_script(host: str, source: str, connections: SshConnections, timeout_s: float) -> tuple[str | None, str]:
    """(error, stdout) of source run by `python3 -` on host (a session on its master when
    connections are open): error is None once it exited 0, else why it did not."""
    error = connections.ready(host)
    if error is not None:
        return error, ""
    try:
        returncode, stdout, stderr = run_collecting(connections.argv(host), timeout_s, source)
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout_s:g}s", ""
    except OSError as exc:
        return f"cannot run ssh: {exc.strerror}", ""
    return (_short_error(returncode, stderr) if returncode != 0 else None), stdout


def collect_one(host: str, data_dir: str | None, connections: SshConnections) -> dict:
    """This host's information, or {"hostname": host, "error": ...}."""
    args = ["collect"] + ([data_dir] if data_dir else [])
    error, stdout = run_script(host, remote_script(*args), connections, connections.options.timeout_s)
    if error is not None:
        return {"hostname": host, "error": error}
    try:
        return json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"hostname": host, "error": "the collector printed no JSON"}


def collect_via_ssh(hosts: list[str], data_dir: str | None, options: SshOptions,
                    run_host: Callable[[str, Callable[[], dict]], dict] | None = None,
                    on_done: Callable[[int], None] | None = None,
                    connections: SshConnections | None = None) -> dict[str, dict]:
    """{host: info} for every host, in parallel (a bounded pool). run_host(host, work) wraps
    each host's work (the caller makes it a span); on_done(count) follows progress. With
    connections (opened), each host's collection is a session on its master; without, a
    login of its own."""
    connections = connections or SshConnections(options)
    return in_parallel(hosts, lambda host: collect_one(host, data_dir, connections), options.max_parallel,
                       run_host, on_done)


def in_parallel(hosts: list[str], work: Callable[[str], dict], max_parallel: int,
                run_host: Callable[[str, Callable[[], dict]], dict] | None = None,
                on_done: Callable[[int], None] | None = None) -> dict[str, dict]:
    """{host: work(host)} for every host, at most max_parallel at once, in the order of hosts.
    run_host(host, work) wraps each host's work; on_done(count) follows progress."""
    results: dict[str, dict] = {}
    run_host = run_host or (lambda host, host_work: host_work())
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(hosts))))
    try:
        futures = {pool.submit(contextvars.copy_context().run, run_host, host, lambda h=host: work(h)): host
                   for host in hosts}
        for done, future in enumerate(as_completed(futures), start=1):
            results[futures[future]] = future.result()
            if on_done:
                on_done(done)
    finally:
        # On an interrupt, do not wait for the hosts: their ssh children are stopped with
        # every other child on the way out (engines/process.py, Children).
        pool.shutdown(wait=False, cancel_futures=True)
    return {host: results[host] for host in hosts}
