"""Preflight: before mpirun starts, every host of --hosts checked for what the run needs of it,
in parallel, over the channel the run uses for its cluster information (SSH, MPI, or srun in a
Slurm allocation), as part of "Validating environment".

Each host runs mlpstorage/collectors/preflight.py (the standard library only, sent like the
collection's script) and reports; this host runs it too, and its report is what "the same"
means. preflight_rules.py decides what is wrong. Each finding is one line naming the host; the
stage says how many hosts passed; a failing host stops the run (PreflightFailed, exit code 4)
unless --ignore-preflight. The outcome goes into the run's metadata under "preflight".
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..collectors import preflight as remote
from ..collectors.mpi import MpiCollectionError, run_on_each_host
from ..collectors.ssh import SshConnections, in_parallel, run_script, script_with_args
from ..emitter import Emitter
from ..engines.process import run_collecting
from ..errors import ValidationError
from ..hosts import host_names, is_local_host
from .preflight_rules import (CLOCK_LIMIT_S, CLOCK_WARN_S, ERROR, MODULES, Finding, Markers, Needs, judge_host,
                              unreachable)

EXIT_CODE = 4
SOURCE = Path(remote.__file__).read_text()
LABELS = {"local": "locally", "ssh": "via SSH", "mpi": "via MPI", "srun": "via Slurm (srun)"}
HERE = "(this host)"  # the reference's key among the SSH channel's work


class PreflightFailed(ValidationError):
    """A host of --hosts cannot run its part of the benchmark (found before mpirun started)."""

    exit_code = EXIT_CODE


def preflight_channel(method: str, hosts: list[str], mpi_bin: str, remote_default: str) -> str:
    """The channel of the run's cluster information (cluster.py's method): `none` takes what
    `auto` would; MPI under --mpi-bin srun is srun."""
    if method == "none":
        method = "local" if all(is_local_host(h) for h in hosts) else remote_default
    if method == "mpi" and mpi_bin == "srun":
        return "srun"
    return method


@dataclass
class PreflightResult:
    """Every host's report and clock offset, and what the rules found."""

    channel: str
    hosts: list[str]
    reports: dict[str, dict]
    offsets: dict[str, float | None]
    findings: list[Finding]
    duration_s: float
    ignored: bool = False
    reference: dict = field(default_factory=dict)

    @property
    def failed_hosts(self) -> list[str]:
        failed = {f.host for f in self.findings if f.severity == ERROR}
        return [h for h in self.hosts if h in failed]

    @property
    def passed(self) -> int:
        return len(self.hosts) - len(self.failed_hosts)

    def metadata(self) -> dict:
        """The run metadata's "preflight": the outcome, then one entry per host."""
        return {
            "channel": self.channel, "duration_s": round(self.duration_s, 3), "hosts": len(self.hosts),
            "passed": self.passed, "failed": self.failed_hosts, "ignored": self.ignored,
            "clock_warn_s": CLOCK_WARN_S, "clock_limit_s": CLOCK_LIMIT_S,
            "this_host": _facts(self.reference),  # what "the same" meant
            "per_host": {host: self._host_entry(host) for host in self.hosts},
        }

    def _host_entry(self, host: str) -> dict:
        report = self.reports.get(host) or {}
        mine = [f for f in self.findings if f.host == host]
        status = "failed" if any(f.severity == ERROR for f in mine) else "warning" if mine else "ok"
        entry = {
            "status": status, "clock_offset_s": _rounded(self.offsets.get(host)), **_facts(report),
            "shared": {path: held for path, held in (report.get("markers") or {}).items()},
            "problems": [f.text for f in mine if f.severity == ERROR],
            "warnings": [f.text for f in mine if f.severity != ERROR],
        }
        if "error" in report:
            entry["error"] = report["error"]
        return entry


def _facts(report: dict) -> dict:
    """What a report says of its host, for the metadata."""
    probe = report.get("interpreter") or {}
    facts = {
        "hostname": report.get("hostname"), "cores": report.get("cores"),
        "memory_total_bytes": (report.get("memory") or {}).get("total_bytes"),
        "memory_available_bytes": (report.get("memory") or {}).get("available_bytes"),
        "versions": {module: found.get("version") for module, found in (probe.get("modules") or {}).items()},
        "mpi_library": probe.get("mpi_library"),
        "launcher": ((report.get("launcher") or {}).get("version_output") or "").split("\n")[0] or None,
    }
    if "data" in report:
        facts["data"] = {k: report["data"].get(k) for k in ("exists", "files", "bytes")}
    return facts


def _rounded(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


class Preflight:
    """One preflight over one channel (local, ssh, mpi or srun) for the hosts of options."""

    def __init__(self, emitter: Emitter, options, needs: Needs, channel: str, connections: SshConnections):
        self.emitter = emitter
        self.options = options
        self.channel = channel
        # Every host being this one, the interpreter is the launcher's own: `mlpstorage check`
        # and validation looked at it, so it is not imported again (that costs a second or two).
        self.needs = replace(needs, interpreter=None, launcher=None) if channel == "local" else needs
        self.connections = connections
        self.hosts = host_names(options.hosts)
        self.timeout_s = options.ssh.timeout_s + remote.PROBE_TIMEOUT_S
        self.here_data: dict | None = None  # this host's data set, described from the listing _request() made

    def run(self) -> PreflightResult:
        started = time.perf_counter()
        token = secrets.token_hex(16)
        markers = self._write_markers(token)
        try:
            request = self._request(markers, token)
            plural = "s" if len(self.hosts) != 1 else ""
            with self.emitter.spinner(f"Preflight ({len(self.hosts)} host{plural})...", None) as handle:
                handle.set_description(f"Checking {LABELS[self.channel]}...")
                reference, reports, offsets = self._gather(request, handle)
        finally:
            _remove_markers(markers)
        if "error" in reference:  # nothing to compare the hosts with
            raise ValidationError(f"the preflight could not run on this host: {reference['error']}")
        findings = []
        for host in self.hosts:
            report = reports[host]
            if "error" in report:
                findings.append(unreachable(host, report["error"], self.channel))
            else:
                findings += judge_host(host, report, reference, self.needs, markers, offsets.get(host))
        return PreflightResult(self.channel, self.hosts, reports, offsets, findings, time.perf_counter() - started,
                               reference=reference)

    # ----- what every host is asked ----------------------------------------------------
    def _write_markers(self, token: str) -> Markers:
        """A file in the nearest existing folder of each folder that may be shared; a host that
        reads its token shares that folder with this one. Removed once the hosts have looked."""
        folders = {"results": str(self.options.results_dir), "data": self.needs.generate_into,
                   "checkpoint": self.needs.checkpoint_folder}
        written = {}
        for purpose, folder in folders.items():
            if folder is None:
                continue
            path = os.path.join(remote.nearest_existing(folder), f".mlpstorage-preflight-{token[:12]}")
            try:
                if path not in written.values():
                    Path(path).write_text(token)
                written[purpose] = path
            except OSError:  # validation said whether it is writable; a marker is only a hint
                continue
        return Markers(**written)

    def _request(self, markers: Markers, token: str) -> dict:
        needs = self.needs
        request = {"interpreter": needs.interpreter, "modules": MODULES if needs.interpreter else [],
                   "launcher": needs.launcher,
                   "writable": [p for p in (needs.generate_into, needs.checkpoint_folder) if p],
                   "markers": [[path, token] for path in dict.fromkeys(
                       p for p in (markers.results, markers.data, markers.checkpoint) if p)]}
        if needs.data_dir:
            # the one walk of the data set here: it picks the sample and is this host's description
            listing = remote.list_files(needs.data_dir)
            sample = remote.sample_names(listing[0])
            request["data"] = {"path": needs.data_dir, "sample": sample}
            self.here_data = remote.describe_data(needs.data_dir, sample, listing)
        return request

    # ----- the channels ----------------------------------------------------------------
    def _gather(self, request: dict, handle) -> tuple[dict, dict[str, dict], dict[str, float | None]]:
        """(this host's report, {host: report or {"error": ...}}, {host: clock offset s})."""
        if self.channel == "local":
            return self._locally(request, handle)
        if self.channel == "ssh":
            return self._via_ssh(request, handle)
        try:
            return self._via_mpi(request, handle)
        except MpiCollectionError as exc:
            fallback = "local" if all(is_local_host(h) for h in self.hosts) else "ssh"
            self.emitter.warning(f"Preflight {LABELS[self.channel]} failed ({exc}); checking {LABELS[fallback]} instead")
            self.channel = fallback
            handle.set_description(f"Checking {LABELS[fallback]}...")
            return self._via_ssh(request, handle) if fallback == "ssh" else self._locally(request, handle)

    def _locally(self, request: dict, handle) -> tuple[dict, dict[str, dict], dict[str, float | None]]:
        """Every host is this one: its report stands for each."""
        reference, _ = self._here(request)
        handle.update(completed=len(self.hosts), description=self._counted(len(self.hosts)))
        return reference, {h: reference for h in self.hosts}, {h: 0.0 for h in self.hosts}

    def _counted(self, done: int) -> str:
        return f"Checking {LABELS[self.channel]}... {done}/{len(self.hosts)} hosts"

    def _here(self, request: dict) -> tuple[dict, float | None]:
        """This host's report, from the same script in a child of its own; its data set is
        the one _request() listed, not walked a second time."""
        here_request = {key: value for key, value in request.items() if key != "data"}
        source = script_with_args(SOURCE, "preflight", [json.dumps(here_request)])
        try:
            code, stdout, stderr = run_collecting([sys.executable, "-"], self.timeout_s, source)
        except Exception as exc:  # TimeoutExpired, OSError
            return {"error": f"{type(exc).__name__}: {exc}"}, None
        report, offset = _one_report(code, stdout, stderr, time.time_ns())
        if self.here_data is not None and "error" not in report:
            report["data"] = self.here_data
        return report, offset

    def _via_ssh(self, request: dict, handle) -> tuple[dict, dict[str, dict], dict[str, float | None]]:
        remote_hosts = [h for h in self.hosts if not is_local_host(h)]
        try:
            self.connections.open(remote_hosts)  # the run's one login per host starts here
        except OSError as exc:
            self.emitter.warning(f"SSH connections are not shared in this run: {exc}")
        source = script_with_args(SOURCE, "preflight", [json.dumps(request)])
        spinner_span = self.emitter.current_span()
        done = [0]

        def work(host: str) -> dict:
            if host == HERE:
                report, _ = self._here(request)
                return {"report": report, "offset": None}
            error, stdout = run_script(host, source, self.connections, self.timeout_s)
            if error is not None:
                return {"report": {"error": error}, "offset": None}
            report, offset = _one_report(0, stdout, "", time.time_ns())
            return {"report": report, "offset": offset}

        def as_span(host: str, host_work) -> dict:
            if host == HERE:
                return host_work()
            span = self.emitter.start_task(f"preflight {host}", {"host.name": host}, parent=spinner_span)
            result = host_work()
            self.emitter.end_task(span, {"mlpstorage.hostname": result["report"].get("hostname", host)},
                                  error=result["report"].get("error"))
            done[0] += 1
            handle.update(completed=done[0], description=self._counted(done[0] + len(self.hosts) - len(remote_hosts)))
            return result

        results = in_parallel([HERE, *remote_hosts], work, self.options.ssh.max_parallel, run_host=as_span)
        reference = results[HERE]["report"]
        reports = {h: results[h]["report"] if h in results else reference for h in self.hosts}
        offsets = {h: results[h]["offset"] if h in results else 0.0 for h in self.hosts}
        return reference, reports, offsets

    def _via_mpi(self, request: dict, handle) -> tuple[dict, dict[str, dict], dict[str, float | None]]:
        """One rank per host (mpirun, or srun in the allocation) runs the script with python3
        from that host's PATH, which needs nothing of the venv it checks; this host's report
        comes from a child of its own meanwhile."""
        from concurrent.futures import ThreadPoolExecutor

        program = [self.options.ssh.remote_python, "-c", SOURCE, json.dumps(request)]
        with ThreadPoolExecutor(max_workers=1) as pool:
            here = pool.submit(self._here, request)
            lines = run_on_each_host(self.hosts, program, self.options.mpi, self.timeout_s + 20)
            reference, _ = here.result()
        by_rank = remote.read_reports(lines)
        reports, offsets = {}, {}
        for host, (report, arrived) in zip(self.hosts, _match_ranks(self.hosts, by_rank)):
            reports[host] = report
            offsets[host] = (report["time_ns"] - arrived) / 1e9 if arrived and "time_ns" in report else None
        handle.update(completed=len(self.hosts), description=self._counted(len(self.hosts)))
        return reference, reports, offsets


def _one_report(code: int, stdout: str, stderr: str, arrived_ns: int) -> tuple[dict, float | None]:
    """The report a single run of the script printed, and its clock's offset from ours."""
    reports = remote.read_reports(stdout.splitlines())
    if not reports:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        return {"error": lines[-1] if lines else f"the preflight printed no report (exit code {code})"}, None
    report, _ = next(iter(reports.values()))
    return report, (report["time_ns"] - arrived_ns) / 1e9 if "time_ns" in report else None


def _match_ranks(hosts: list[str], by_rank: dict[int, tuple[dict, int | None]]) -> list[tuple[dict, int | None]]:
    """Each host's (report, arrival): rank i ran on hosts[i] (one rank per host, in order),
    unless every report's host name names exactly one host (srun orders the nodes its way)."""
    reports = list(by_rank.values())
    short = {h.split(".")[0]: h for h in hosts}
    named = {short.get(str(r.get("hostname", "")).split(".")[0]): (r, t) for r, t in reports}
    if len(reports) == len(hosts) and None not in named and len(named) == len(hosts):
        return [named[h] for h in hosts]
    missing = ({"error": "no report from this rank (mpirun's output lost it)"}, None)
    return [by_rank.get(i, missing) for i in range(len(hosts))]


def _remove_markers(markers: Markers) -> None:
    for path in {markers.results, markers.data, markers.checkpoint} - {None}:
        try:
            os.unlink(path)
        except OSError:
            pass


def conclude(emitter: Emitter, result: PreflightResult, ignore: bool) -> None:
    """Says what the preflight found, one line per finding and one for the hosts that passed;
    raises PreflightFailed when a host failed, unless ignore (--ignore-preflight)."""
    result.ignored = ignore and bool(result.failed_hosts)
    for finding in result.findings:
        level = "error" if finding.severity == ERROR and not ignore else "warning"
        emitter.log(level, finding.line, host=finding.host)
    failed = result.failed_hosts
    count = len(result.hosts)
    summary = (f"Preflight {LABELS[result.channel]}: {result.passed} of {count} host{'s' if count != 1 else ''} "
               f"passed in {result.duration_s:.1f}s")
    if not failed:
        emitter.info(summary, passed=result.passed, hosts=count)
        return
    named = ", ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
    if ignore:
        emitter.warning(f"{summary}; going on without fixing {named} (--ignore-preflight)", passed=result.passed,
                        hosts=count)
        return
    emitter.info(summary, passed=result.passed, hosts=count)
    raise PreflightFailed(f"preflight: {len(failed)} of {count} hosts cannot run the benchmark ({named}): fix what the "
                          "lines above say, or pass --ignore-preflight to run anyway")
