"""Running the collector on other hosts over SSH, in parallel, each host bounded in time.

The OpenSSH client runs in BatchMode (never a prompt) with a connect timeout; the remote
command is the fixed string `python3 -` and the collector's source, with its arguments as a
Python literal, goes over stdin. So nothing the user typed ever reaches a remote shell, and
a remote host needs python3 only.
"""

from __future__ import annotations

import contextvars
import json
import math
import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..engines.process import run_collecting
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


def ssh_argv(options: SshOptions, host: str) -> list[str]:
    """The ssh argument list for host (already validated by mlpstorage.hosts)."""
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
    return argv + [host, options.remote_python, "-"]


_FUTURE = "from __future__ import annotations\n"


def remote_script(*args: str) -> str:
    """The collector's source, run as if with these arguments (set right after its
    __future__ import, which must stay first). The arguments travel as a Python literal."""
    head, future, rest = SCRIPT.partition(_FUTURE)
    return f"{head}{future}import sys\nsys.argv = ['hostinfo'] + {list(args)!r}\n{rest}"


def _short_error(returncode: int, stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"ssh exited with code {returncode}"


def collect_one(host: str, data_dir: str | None, options: SshOptions) -> dict:
    """This host's information, or {"hostname": host, "error": ...}."""
    args = ["collect"] + ([data_dir] if data_dir else [])
    try:
        returncode, stdout, stderr = run_collecting(ssh_argv(options, host), options.timeout_s, remote_script(*args))
    except subprocess.TimeoutExpired:
        return {"hostname": host, "error": f"no answer within {options.timeout_s:g}s"}
    except OSError as exc:
        return {"hostname": host, "error": f"cannot run ssh: {exc.strerror}"}
    if returncode != 0:
        return {"hostname": host, "error": _short_error(returncode, stderr)}
    try:
        return json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return {"hostname": host, "error": "the collector printed no JSON"}


def collect_via_ssh(hosts: list[str], data_dir: str | None, options: SshOptions,
                    run_host: Callable[[str, Callable[[], dict]], dict] | None = None,
                    on_done: Callable[[int], None] | None = None) -> dict[str, dict]:
    """{host: info} for every host, in parallel (a bounded pool). run_host(host, work) wraps
    each host's work (the caller makes it a span); on_done(count) follows progress."""
    results: dict[str, dict] = {}
    run_host = run_host or (lambda host, work: work())
    pool = ThreadPoolExecutor(max_workers=max(1, min(options.max_parallel, len(hosts))))
    try:
        futures = {pool.submit(contextvars.copy_context().run, run_host, host,
                               lambda h=host: collect_one(h, data_dir, options)): host
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
