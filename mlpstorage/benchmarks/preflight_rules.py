"""The preflight's rules: what a host's report (mlpstorage/collectors/preflight.py) says is wrong
for the run, compared with this host's. Only decisions, no I/O: the preflight stage
(preflight.py) gathers the reports and says what these functions find.

Each finding is one line naming the host, what is wrong and how to fix it; an error fails the
host (the run stops before mpirun unless --ignore-preflight), a warning does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..engines.mpi import host_list
from ..environment import DLIO_VERSION, MpiBuild, library_build, mpirun_build
from ..hosts import Host

# A host's clock this far from the launcher's misplaces its time series and rank spans: a
# warning with the offset. Past the limit the run's timeline from that host is meaningless
# (and Slurm and munge refuse skews of minutes): the host fails.
CLOCK_WARN_S = 1.0
CLOCK_LIMIT_S = 30.0

ERROR, WARNING = "error", "warning"

# What the ranks' interpreter must import: [module, the distribution whose version it has].
MODULES = [["dlio_benchmark", "dlio-benchmark"], ["mpi4py", "mpi4py"], ["mlpstorage.engines.dlio_rank", "mlpstorage"]]
_INSTALL = {
    "dlio_benchmark": f"pip install --no-deps dlio-benchmark=={DLIO_VERSION} (and what it imports: scripts/setup.sh)",
    "mpi4py": "pip install mpi4py, built against the MPI mpirun starts",
    "mlpstorage.engines.dlio_rank": "pip install -e . from the same mlpstorage checkout as here",
}


@dataclass(frozen=True)
class Finding:
    host: str
    severity: str  # ERROR | WARNING
    text: str  # what is wrong and how to fix it

    @property
    def line(self) -> str:
        return f"{self.host}: {self.text}"


@dataclass
class Needs:
    """What a run needs of every host (DlioBenchmark.preflight_needs())."""

    interpreter: str | None  # the ranks' interpreter; None: not probed (every host is this one)
    launcher: str | None  # mpirun or mpiexec, looked for on each host's PATH; None under srun
    ranks: dict[str, int] = field(default_factory=dict)  # host name -> ranks mapped to it
    oversubscribe: bool = False  # ranks may outnumber a host's cores (--oversubscribe)
    data_dir: str | None = None  # training run: the same data set on every host
    generate_into: str | None = None  # datagen: writable on every host
    checkpoint_folder: str | None = None  # checkpointing: writable, room for the host's share
    shard_bytes: int = 0  # each rank's part of one checkpoint (DLIO holds it in memory)
    checkpoints: int = 0


@dataclass
class Markers:
    """The files the launcher wrote just before, one per folder that may be shared (path -> a
    token); a host that reads the same token shares that folder with the launcher."""

    results: str | None = None
    data: str | None = None
    checkpoint: str | None = None


def ranks_per_host(hosts: list[Host], processes: int, map_by: str, oversubscribe: bool) -> dict[str, int]:
    """How many ranks mpirun maps to each host: the slots host_list() gives them, filled host
    by host (--map-by socket) or one rank per host in turn (--map-by node); ranks beyond the
    slots (oversubscribing) go round the hosts."""
    slots: dict[str, int] = {}
    for item in host_list(hosts, processes, oversubscribe).split(","):
        name, _, count = item.rpartition(":")
        slots[name] = slots.get(name, 0) + int(count)
    ranks = dict.fromkeys(slots, 0)
    left = processes
    if map_by == "node":
        while left and any(ranks[h] < slots[h] for h in slots):
            for host in slots:
                if left and ranks[host] < slots[host]:
                    ranks[host] += 1
                    left -= 1
    else:
        for host in slots:
            ranks[host] = min(slots[host], left)
            left -= ranks[host]
    while left:
        for host in slots:
            if left:
                ranks[host] += 1
                left -= 1
    return ranks


def size(count: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(count) >= scale:
            return f"{count / scale:.2f} {unit}"
    return f"{count:.0f} bytes"


def unreachable(host: str, error: str, channel: str) -> Finding:
    """A host whose report never came: the channel's error, and what to look at."""
    if channel == "ssh":
        fix = ("check that it is up and that `ssh` logs in to it without a prompt (BatchMode; --ssh-user, "
               "--ssh-identity, --ssh-config), or leave it out of --hosts")
    else:
        fix = "check that it is up and that python3 is on its PATH, or leave it out of --hosts"
    how = {"ssh": "over SSH", "local": "here"}.get(channel, "via MPI")
    return Finding(host, ERROR, f"no preflight report {how} ({error}): {fix}")


def judge_host(host: str, report: dict, reference: dict, needs: Needs, markers: Markers,
               offset_s: float | None) -> list[Finding]:
    """Everything wrong with one host's report for this run. reference: this host's report
    (what "the same" means); offset_s: the host's clock minus this host's (None: not measured)."""
    findings: list[Finding] = []
    for rule in (_interpreter, _mpi, _data, _generated, _checkpoint, _slots_and_memory, _results):
        findings += [Finding(host, severity, text) for severity, text in rule(host, report, reference, needs, markers)]
    if offset_s is not None:
        findings += [Finding(host, severity, text) for severity, text in clock(offset_s)]
    return findings


def clock(offset_s: float) -> list[tuple[str, str]]:
    if abs(offset_s) > CLOCK_LIMIT_S:
        return [(ERROR, f"its clock is {offset_s:+.1f} s off this host's (more than {CLOCK_LIMIT_S:g} s): its time "
                        "series and rank spans would not line up with the run's; sync its clock (chrony or NTP)")]
    if abs(offset_s) > CLOCK_WARN_S:
        return [(WARNING, f"its clock is {offset_s:+.1f} s off this host's: its time series and rank spans will be "
                          "that far out of line with the run's; sync its clock (chrony or NTP)")]
    return []


def _interpreter(host, report, reference, needs, markers):
    if needs.interpreter is None:
        return
    probe = report.get("interpreter") or {}
    if "error" in probe:
        yield ERROR, (f"the ranks' interpreter {needs.interpreter} {probe['error']}: install the same venv at the "
                      "same path on every host (docs/clusters.md)")
        return
    here = (reference.get("interpreter") or {}).get("modules", {})
    for module, distribution in MODULES:
        found = probe.get("modules", {}).get(module, {})
        if "error" in found:
            yield ERROR, f"{needs.interpreter} cannot import {module} ({found['error']}): {_INSTALL[module]}"
        elif "version" in here.get(module, {}) and found.get("version") != here[module]["version"]:
            yield ERROR, (f"{distribution} {found.get('version')} there, {here[module]['version']} here: install "
                          f"{distribution}=={here[module]['version']} into {needs.interpreter} on that host")


def _build_of(report: dict) -> tuple[MpiBuild | None, MpiBuild | None]:
    """(the launcher's build, the library mpi4py loads) as a report says them."""
    launcher = (report.get("launcher") or {}).get("version_output")
    library = (report.get("interpreter") or {}).get("mpi_library")
    return (mpirun_build(launcher) if launcher else None), (library_build(library) if library else None)


def _mpi(host, report, reference, needs, markers):
    launcher, library = _build_of(report)
    here_launcher, here_library = _build_of(reference)
    wanted = here_launcher or here_library  # the MPI mpirun here starts (under srun: the library here)
    fix = "load the same MPI on every host (the same module or package) and build mpi4py against it"
    if needs.launcher:
        found = report.get("launcher") or {}
        if "error" in found:
            yield ERROR, (f"{needs.launcher} {found['error']} there (mpirun starts its daemon on each host from the "
                          "PATH of a non-interactive login): put the MPI's bin folder on that PATH")
        elif launcher is None:
            yield ERROR, f"{needs.launcher} there is no MPI launcher this check knows: {fix}"
        elif here_launcher and launcher != here_launcher:
            yield ERROR, f"{needs.launcher} there is {launcher}, here {here_launcher}: {fix}"
    if needs.interpreter is None:
        return
    probe = report.get("interpreter") or {}
    if "error" in probe or "error" in probe.get("modules", {}).get("mpi4py", {}):
        return  # said with the imports
    if library is None:
        found = probe.get("mpi_library_error") or repr(probe.get("mpi_library", ""))
        yield ERROR, f"mpi4py loads no MPI library this check knows ({found}): {fix}"
    elif wanted and library != wanted:
        yield ERROR, f"mpi4py there loads {library}, but the run's MPI is {wanted}: {fix}"


def _data(host, report, reference, needs, markers):
    if needs.data_dir is None:
        return
    there, here = report.get("data") or {}, reference.get("data") or {}
    fix = f"mount the same shared file system at {needs.data_dir} on every host"
    summary = f"{here.get('files', 0)} files, {size(here.get('bytes', 0))} here"
    if not there.get("exists"):
        yield ERROR, f"no data directory {needs.data_dir} ({summary}): {fix}"
        return
    if (there.get("files"), there.get("bytes")) != (here.get("files"), here.get("bytes")):
        yield ERROR, (f"{needs.data_dir} holds {there.get('files')} files, {size(there.get('bytes', 0))} ({summary}): "
                      f"not the same data set, so not a shared directory: {fix}")
        return
    expected = here.get("sample") or {}
    differ = sorted(name for name, length in expected.items() if (there.get("sample") or {}).get(name) != length)
    if differ:
        yield ERROR, (f"{len(differ)} of {len(expected)} sampled files differ from here (e.g. {differ[0]}): "
                      f"not the same data set, so not a shared directory: {fix}")


def _writable(report: dict, path: str) -> dict:
    return (report.get("writable") or {}).get(path) or {}


def _unwritable(what: str, path: str, found: dict, fix: str) -> tuple[str, str]:
    """A folder the run writes that the host cannot: where it was tried, why, and fix."""
    return ERROR, (f"the {what} {path} cannot be written there ({found.get('checked')}: "
                   f"{found.get('error', 'not checked')}): {fix}")


def _generated(host, report, reference, needs, markers):
    if needs.generate_into is None:
        return
    found = _writable(report, needs.generate_into)
    if not found.get("ok"):
        yield _unwritable("data directory", needs.generate_into, found, "make it writable for this user on every host")
    elif markers.data and not report.get("markers", {}).get(markers.data):
        yield WARNING, (f"{needs.generate_into} there is not the folder it is here: the files generated there stay on "
                        "that host; mount the same shared file system on every host")


def _checkpoint(host, report, reference, needs, markers):
    if needs.checkpoint_folder is None:
        return
    found = _writable(report, needs.checkpoint_folder)
    if not found.get("ok"):
        yield _unwritable("checkpoint folder", needs.checkpoint_folder, found, "make it writable on every host")
        return
    shared = bool(markers.checkpoint and report.get("markers", {}).get(markers.checkpoint))
    ranks = sum(needs.ranks.values()) if shared else needs.ranks.get(host, 0)
    need = needs.shard_bytes * ranks * needs.checkpoints
    if found.get("free_bytes", 0) < need:
        whose = ("the run writes (all ranks: the folder is shared with this host)" if shared
                 else f"its {ranks} rank{'s' if ranks != 1 else ''} write")
        yield ERROR, (f"{needs.checkpoint_folder} has {size(found.get('free_bytes', 0))} free for the {size(need)} "
                      f"{whose} in {needs.checkpoints} checkpoints: free space, or write fewer (--num-checkpoints)")


def _slots_and_memory(host, report, reference, needs, markers):
    ranks, cores = needs.ranks.get(host, 0), report.get("cores", 0)
    if ranks > cores and not needs.oversubscribe:
        yield ERROR, (f"{ranks} ranks are mapped to its {cores} cores: give it fewer slots (HOST:{max(1, cores)}), "
                      "add hosts, or pass --oversubscribe to run them anyway")
    held = needs.shard_bytes * ranks
    available = (report.get("memory") or {}).get("available_bytes", 0)
    if held and available < held:
        yield ERROR, (f"{size(available)} of memory available for the {size(held)} its {ranks} rank"
                      f"{'s hold' if ranks != 1 else ' holds'} (DLIO keeps each rank's {size(needs.shard_bytes)} "
                      "checkpoint shard in memory): more hosts, or fewer ranks per host")


def _results(host, report, reference, needs, markers):
    if markers.results and not report.get("markers", {}).get(markers.results):
        yield WARNING, ("the results folder is not shared with it: its ranks' process files and spans stay on that "
                        "host (the stall watch cannot name them); mount the results file system at the same path")
