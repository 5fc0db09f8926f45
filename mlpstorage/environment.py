"""Whether this machine can run the benchmark, found without running it: mpirun and its MPI,
mpi4py loading that same MPI, DLIO 2.0.0 and every module it imports at run time.

Standard library only, so it works in a venv that lacks half of what it looks for. The text
parsers decide; the probes around them run `mpirun --version` and ask mpi4py for its library.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from typing import NamedTuple

DLIO_VERSION = "2.0.0"

# What DLIO 2.0.0 imports at run time (the `dlio` extra), as module -> the distribution giving it.
# Found by spec, never imported: importing torch alone takes seconds.
DLIO_MODULES = {
    "torch": "torch",
    "numpy": "numpy",
    "h5py": "h5py",
    "pandas": "pandas",
    "PIL": "Pillow",
    "yaml": "PyYAML",
    "psutil": "psutil",
    "omegaconf": "omegaconf",
    "hydra": "hydra-core",
    "dftracer": "pydftracer",
    "mpi4py": "mpi4py",
}

# The launch command line is Open MPI's (-host name:slots, --oversubscribe, --allow-run-as-root).
SUPPORTED_MPI = "Open MPI"

_MPIRUN_FIX = "load your MPI module (module load openmpi) or install OpenMPI (apt-get install openmpi-bin)"

# mpi4py must not initialise MPI in the asking process (Get_library_version is allowed before
# MPI_Init), and a broken libmpi must not take the caller down: so a child Python asks.
_ASK_MPI4PY = ("import mpi4py\nmpi4py.rc.initialize = mpi4py.rc.finalize = False\n"
               "from mpi4py import MPI\nprint(MPI.Get_library_version())")


class EnvironmentCheck(NamedTuple):
    """What `check_environment` found: problems (one line each: what is missing and how to fix
    it; empty when the benchmark can run) and facts (what is there)."""

    problems: list[str]
    facts: list[str]


class MpiBuild(NamedTuple):
    """An MPI implementation and version, as mpirun or a library names it."""

    implementation: str
    version: str

    def __str__(self) -> str:
        return f"{self.implementation} {self.version}"


def mpirun_build(version_output: str) -> MpiBuild | None:
    """The MPI behind `mpirun --version` output, or None for a launcher this does not know."""
    if m := re.search(r"\(Open MPI\) (\S+)", version_output):
        return MpiBuild("Open MPI", m.group(1))
    if m := re.search(r"Intel\(R\) MPI Library.*?Version (\S+)", version_output):
        return MpiBuild("Intel MPI", m.group(1))
    if m := re.search(r"HYDRA build details:.*?Version:\s*(\S+)", version_output, re.DOTALL):
        return MpiBuild("MPICH", m.group(1))
    return None


def library_build(library_version: str) -> MpiBuild | None:
    """The MPI behind MPI_Get_library_version's string, or None for one this does not know."""
    if m := re.match(r"\s*Open MPI v([^\s,]+)", library_version):
        return MpiBuild("Open MPI", m.group(1))
    if m := re.search(r"Intel\(R\) MPI Library (\S+)", library_version):
        return MpiBuild("Intel MPI", m.group(1))
    if m := re.search(r"MPICH Version:\s*(\S+)", library_version):
        return MpiBuild("MPICH", m.group(1))
    return None


def check_environment(path: str | None = None) -> EnvironmentCheck:
    """Check this Python (the one mlpstorage runs DLIO with) and the mpirun found on `path`
    (default: $PATH). Takes well under a second; starts `mpirun --version` and one Python."""
    path = os.environ.get("PATH", os.defpath) if path is None else path
    problems: list[str] = []
    facts = [f"python: {sys.executable} ({sys.version.split()[0]})"]
    mpirun = _check_mpirun(path, problems, facts)
    _check_mpi4py(path, mpirun, problems, facts)
    _check_dlio(problems, facts)
    return EnvironmentCheck(problems, facts)


def _pip(*args: str) -> str:
    return " ".join([sys.executable, "-m", "pip", "install", *args])


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "(nothing)")


def _check_mpirun(path: str, problems: list[str], facts: list[str]) -> MpiBuild | None:
    where = shutil.which("mpirun", path=path)
    if where is None:
        problems.append(f"mpirun not on PATH: {_MPIRUN_FIX}")
        return None
    try:
        done = subprocess.run([where, "--version"], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PATH": path}, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        problems.append(f"{where} --version failed ({exc}): {_MPIRUN_FIX}")
        return None
    build = mpirun_build(done.stdout + done.stderr)
    if build is None:
        problems.append(f"{where} is no MPI launcher this check knows (its --version says "
                        f"{_first_line(done.stdout + done.stderr)!r}): {_MPIRUN_FIX}")
        return None
    facts.append(f"mpirun: {where} ({build})")
    if build.implementation != SUPPORTED_MPI:
        problems.append(f"mpirun is {build}, and mlpstorage launches with Open MPI's options "
                        "(-host name:slots, --oversubscribe): load an Open MPI module instead")
    return build


def _check_mpi4py(path: str, mpirun: MpiBuild | None, problems: list[str], facts: list[str]) -> None:
    try:
        dist = importlib.metadata.distribution("mpi4py")
    except importlib.metadata.PackageNotFoundError:
        return  # said once, with the other modules DLIO imports
    wheel = dist.read_text("WHEEL") or ""
    # PyPI's wheels carry manylinux tags and load libmpi at run time; a local build does not.
    how = "PyPI binary wheel, finds libmpi at run time" if "manylinux" in wheel else "built from source"
    rebuild = ("build mpi4py against the MPI on PATH: "
               + _pip("--force-reinstall", "--no-cache-dir", "--no-binary", "mpi4py", "--no-deps", "mpi4py")
               + " (needs that MPI's mpicc)")
    try:
        done = subprocess.run([sys.executable, "-c", _ASK_MPI4PY], capture_output=True, text=True,
                              timeout=60, env={**os.environ, "PATH": path}, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        problems.append(f"mpi4py took over 60 s to load its MPI library: {rebuild}")
        return
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        problems.append(f"mpi4py {dist.version} cannot load an MPI library ({last}): {rebuild}")
        return
    build = library_build(done.stdout)
    facts.append(f"mpi4py {dist.version} ({how}): {build or _first_line(done.stdout)}")
    if mpirun is not None and build != mpirun:
        loads = str(build) if build else repr(_first_line(done.stdout))
        problems.append(f"mpi4py loads {loads} but mpirun is {mpirun}: {rebuild}")


def _check_dlio(problems: list[str], facts: list[str]) -> None:
    try:
        version = importlib.metadata.version("dlio-benchmark")
    except importlib.metadata.PackageNotFoundError:
        version = None
    install_dlio = _pip("--no-deps", f"dlio-benchmark=={DLIO_VERSION}")
    if version is None or importlib.util.find_spec("dlio_benchmark") is None:
        problems.append(f"dlio_benchmark not installed for {sys.executable}: {install_dlio}")
    elif version != DLIO_VERSION:
        problems.append(f"dlio-benchmark {version} installed, mlpstorage drives {DLIO_VERSION}: {install_dlio}")
    else:
        facts.append(f"dlio-benchmark {version}")
    found, missing = [], []
    for module, distribution in DLIO_MODULES.items():
        if importlib.util.find_spec(module) is None:
            missing.append(module)
            continue
        try:
            found.append(f"{module} {importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(module)
    if found:
        facts.append("DLIO's modules: " + ", ".join(found))
    if "torch" in missing:
        problems.append("torch not importable: install it from your site's index, or "
                        + _pip("torch==2.13.0") + " (the CPU build)")
    others = [m for m in missing if m != "torch"]
    if others:
        problems.append(f"{', '.join(others)} not importable (DLIO imports them): "
                        + _pip("-e", "'.[dlio]'") + " from the mlpstorage checkout")
