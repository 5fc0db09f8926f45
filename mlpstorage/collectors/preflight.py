"""What every host runs for the preflight (mlpstorage/benchmarks/preflight.py): one report of
what a run needs from that host, before mpirun starts.

Like hostinfo.py, this module is also what remote hosts run, so it uses the standard library
only. Over SSH its source goes to the fixed `python3 -` with its request as a Python literal;
under mpirun or srun it runs as `python3 -c SOURCE REQUEST`, one rank per host:

    python3 preflight.py '{"interpreter": ..., "launcher": ..., "data": ..., ...}'

It prints its report as MARK lines of JSON text in small pieces, each written whole by one
write: lines that many ranks print at once through mpirun's or srun's output forwarding stay
whole, and read_reports() puts each rank's pieces back together. The report ends with this
host's wall clock taken just before the last piece leaves, so the launcher can tell the
host's offset from its own clock by when that piece arrives.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

SCHEMA = "mlpstorage.preflight/1"
MARK = "@mlpstorage.preflight"
PIECE_CHARS = 1024  # well under PIPE_BUF: one write() is never split between readers
PROBE_TIMEOUT_S = 60.0  # importing DLIO (torch) from a cold shared file system can take this long
SAMPLE_NAMES = 32

# Runs in the interpreter the ranks will run: DLIO's main imported as the rank module imports
# it (with the tensorflow stand-in), mpi4py kept from initialising MPI (its library version is
# allowed before MPI_Init). Each module's import error is kept, not raised.
PROBE = r"""
import importlib, importlib.machinery, importlib.metadata, importlib.util, json, sys, types
out = {"python": sys.version.split()[0], "modules": {}}
try:
    import mpi4py
    mpi4py.rc.initialize = mpi4py.rc.finalize = False
except Exception:
    pass
if "tensorflow" not in sys.modules and importlib.util.find_spec("tensorflow") is None:
    stub = types.ModuleType("tensorflow")  # as the rank module does: DLIO 2.0.0 imports it always
    stub.__spec__ = importlib.machinery.ModuleSpec("tensorflow", loader=None)
    sys.modules["tensorflow"] = stub
for module, distribution in json.loads(sys.argv[1]):
    try:
        importlib.import_module(module + ".main" if module == "dlio_benchmark" else module)
        out["modules"][module] = {"version": importlib.metadata.version(distribution)}
    except BaseException as exc:
        out["modules"][module] = {"error": (type(exc).__name__ + ": " + str(exc)).strip()[:300]}
try:
    from mpi4py import MPI
    out["mpi_library"] = MPI.Get_library_version().strip("\x00 \n")
except BaseException as exc:
    out["mpi_library_error"] = (type(exc).__name__ + ": " + str(exc))[:300]
print(json.dumps(out))
"""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def probe_interpreter(path: str, modules: list[list[str]]) -> dict:
    """Whether the interpreter at path exists and imports modules ([module, distribution]), with
    each one's version or error, and the MPI library mpi4py loads there. It runs in / so that
    no source tree in the working folder stands in for an installed package."""
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        return {"path": path, "error": "does not exist" if not os.path.exists(path) else "is not executable"}
    try:
        done = subprocess.run([path, "-c", PROBE, json.dumps(modules)], capture_output=True, text=True,
                              timeout=PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL, cwd="/")
    except subprocess.TimeoutExpired:
        return {"path": path, "error": f"took over {PROBE_TIMEOUT_S:g} s to import {', '.join(m for m, _ in modules)}"}
    except OSError as exc:
        return {"path": path, "error": f"cannot start: {exc.strerror}"}
    try:
        return {"path": path, **json.loads(done.stdout.strip().splitlines()[-1])}
    except (json.JSONDecodeError, IndexError):
        return {"path": path, "error": f"exit code {done.returncode}: {_last_line(done.stderr) or 'no output'}"}


def launcher_version(name: str) -> dict:
    """The first lines of `name --version` for the launcher found on this host's PATH (mpirun
    starts its daemon on the other hosts from there)."""
    where = shutil.which(name)
    if where is None:
        return {"name": name, "error": "not on PATH", "path_variable": os.environ.get("PATH", "")}
    try:
        done = subprocess.run([where, "--version"], capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"name": name, "path": where, "error": str(exc)}
    return {"name": name, "path": where, "version_output": "\n".join((done.stdout + done.stderr).splitlines()[:4])}


def list_files(path: str) -> tuple[list[str], int]:
    """Every file under path (relative names, sorted; hidden ones left out: a check's temporary
    file is no part of a data set) and their total size."""
    names, total = [], 0
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            full = os.path.join(folder, name)
            try:
                total += os.stat(full).st_size
            except OSError:
                continue
            names.append(os.path.relpath(full, path))
    return sorted(names), total


def sample_names(names: list[str], count: int = SAMPLE_NAMES) -> list[str]:
    """count names spread evenly over sorted names, the first and the last included."""
    if len(names) <= count:
        return list(names)
    step = (len(names) - 1) / (count - 1)
    return [names[round(i * step)] for i in range(count)]


def describe_data(path: str, sample: list[str], listing: tuple[list[str], int] | None = None) -> dict:
    """The data set at path as the launcher compares it: file count, total bytes, and the size
    of each sampled name (None for a name that is not there). listing: list_files(path) when
    the caller has it already."""
    if not os.path.isdir(path):
        return {"path": path, "exists": False}
    names, total = listing or list_files(path)
    sizes = {}
    for name in sample:
        try:
            sizes[name] = os.stat(os.path.join(path, name)).st_size
        except OSError:
            sizes[name] = None
    return {"path": path, "exists": True, "files": len(names), "bytes": total, "sample": sizes}


def nearest_existing(path: str) -> str:
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    return existing


def writable(path: str) -> dict:
    """Whether path can be created or written (tried for real in its nearest existing folder,
    leaving nothing behind), and the free space there."""
    existing = nearest_existing(path)
    result = {"path": path, "checked": existing}
    try:
        stat = os.statvfs(existing)
        result["free_bytes"] = stat.f_bavail * stat.f_frsize
        os.rmdir(tempfile.mkdtemp(prefix=".mlpstorage-check-", dir=existing))
        result["ok"] = True
    except OSError as exc:
        result.update(ok=False, error=exc.strerror or str(exc))
    return result


def holds_marker(path: str, token: str) -> bool:
    """Whether the file the launcher just wrote at path is here with its token: a folder shared
    with the launcher's host."""
    try:
        with open(path) as handle:
            return handle.read() == token
    except OSError:
        return False


def memory() -> dict:
    values = {}
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    values[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return {"total_bytes": values.get("MemTotal", 0), "available_bytes": values.get("MemAvailable", 0)}


def check(request: dict) -> dict:
    """This host's report for request (see mlpstorage/benchmarks/preflight.py)."""
    report = {"schema": SCHEMA, "hostname": socket.gethostname(), "cores": os.cpu_count() or 0, "memory": memory()}
    if request.get("interpreter"):
        report["interpreter"] = probe_interpreter(request["interpreter"], request.get("modules", []))
    if request.get("launcher"):
        report["launcher"] = launcher_version(request["launcher"])
    if request.get("data"):
        report["data"] = describe_data(request["data"]["path"], request["data"].get("sample", []))
    report["writable"] = {path: writable(path) for path in request.get("writable", [])}
    report["markers"] = {path: holds_marker(path, token) for path, token in request.get("markers", [])}
    return report


def rank() -> int:
    """This process's rank under mpirun or srun (0 when started alone)."""
    for name in ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def emit(report: dict, rank_number: int, write=lambda data: os.write(1, data)) -> None:
    """The report as MARK lines, each one write; its wall clock is set just before."""
    report["time_ns"] = time.time_ns()
    text = json.dumps(report)  # ASCII only: names outside it are escaped
    pieces = [text[i:i + PIECE_CHARS] for i in range(0, len(text), PIECE_CHARS)] or [""]
    for index, piece in enumerate(pieces, start=1):
        write(f"{MARK} {rank_number} {index}/{len(pieces)} {piece}\n".encode())


_PIECE = re.compile(re.escape(MARK) + r" (\d+) (\d+)/(\d+) (.*?)\r?$")


def read_reports(lines) -> dict[int, tuple[dict, int | None]]:
    """{rank: (report, arrival)} from MARK lines in any order and among any other output
    (mpirun's tags before them included); lines are text or (arrival_ns, text), and a report's
    arrival is its last piece's. A rank with pieces missing or unreadable is left out."""
    pieces: dict[int, dict[int, str]] = {}
    counts: dict[int, int] = {}
    arrival: dict[int, int | None] = {}
    for entry in lines:
        stamp, line = entry if isinstance(entry, tuple) else (None, entry)
        match = _PIECE.search(line)
        if match is None:
            continue
        number, index, count = int(match.group(1)), int(match.group(2)), int(match.group(3))
        pieces.setdefault(number, {})[index] = match.group(4)
        counts[number] = count
        if index == count:
            arrival[number] = stamp
    reports = {}
    for number, parts in pieces.items():
        if len(parts) != counts[number]:
            continue
        try:
            reports[number] = (json.loads("".join(parts[i] for i in range(1, counts[number] + 1))), arrival.get(number))
        except (json.JSONDecodeError, KeyError):
            continue
    return reports


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: preflight.py REQUEST_JSON", file=sys.stderr)
        return 2
    emit(check(json.loads(argv[0])), rank())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
