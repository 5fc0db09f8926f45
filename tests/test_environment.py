"""mlpstorage.environment: the parsers on real launchers' words, the check on fake PATHs (a
missing or mismatched mpirun), on a bare venv (nothing installed), on this machine's venv, and
on the venv a user without root builds by following docs/install.md."""

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from mlpstorage.environment import MpiBuild, check_environment, library_build, mpirun_build

REPO = Path(__file__).resolve().parents[1]
NO_ROOT_USER = "mlps-user"  # scripts/setup.sh --tests creates it and installs its venv


def fake_mpirun(directory: Path, says: str) -> str:
    """A PATH whose only mpirun prints `says` for --version."""
    directory.mkdir(exist_ok=True)
    script = directory / "mpirun"
    # Python, not sh: the fake PATH holds no cat or echo
    script.write_text(f"#!{sys.executable}\nprint({says!r})\n")
    script.chmod(0o755)
    return str(directory)


def mpi_on_this_machine() -> MpiBuild:
    said = subprocess.run(["mpirun", "--version"], capture_output=True, text=True, check=True).stdout
    build = mpirun_build(said)
    assert build is not None, said
    return build


# ----- the parsers, on what the launchers and libraries really print ----------------------------
@pytest.mark.parametrize("said, build", [
    ("mpirun (Open MPI) 4.1.4\n\nReport bugs to http://www.open-mpi.org/community/help/\n",
     MpiBuild("Open MPI", "4.1.4")),
    ("mpirun (Open MPI) 5.0.3\n\nReport bugs to https://www.open-mpi.org/community/help/\n",
     MpiBuild("Open MPI", "5.0.3")),
    ("HYDRA build details:\n    Version:                                 4.1.2\n"
     "    Release Date:                            Wed Jun  7 15:22:45 CDT 2023\n", MpiBuild("MPICH", "4.1.2")),
    ("Intel(R) MPI Library for Linux* OS, Version 2021.10 Build 20230619 (id: c2e19c2f3e)\n",
     MpiBuild("Intel MPI", "2021.10")),
    ("srun: unrecognized option '--version2'\n", None),
])
def test_mpirun_version_output_names_the_mpi(said, build):
    assert mpirun_build(said) == build


@pytest.mark.parametrize("said, build", [
    ("Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022\x00",
     MpiBuild("Open MPI", "4.1.4")),
    ("MPICH Version:      4.1.2\nMPICH Release date: Wed Jun  7 15:22:45 CDT 2023\n", MpiBuild("MPICH", "4.1.2")),
    ("Intel(R) MPI Library 2021.10 for Linux* OS\n", MpiBuild("Intel MPI", "2021.10")),
    ("Microsoft MPI 10.1\n", None),
])
def test_library_version_names_the_mpi(said, build):
    assert library_build(said) == build


# ----- the check on fake PATHs ------------------------------------------------------------------
def test_no_mpirun_is_one_line_saying_how_to_get_one(tmp_path):
    problems, facts = check_environment(path=str(tmp_path))
    assert problems == ["mpirun not on PATH: load your MPI module (module load openmpi) "
                        "or install OpenMPI (apt-get install openmpi-bin)"]
    assert not any(f.startswith("mpirun:") for f in facts)


def test_an_mpirun_of_another_open_mpi_than_mpi4py_loads_is_a_mismatch(tmp_path):
    mine = mpi_on_this_machine()
    other = f"{int(mine.version.split('.')[0]) + 1}.0.3"
    path = fake_mpirun(tmp_path / "bin", f"mpirun (Open MPI) {other}\n\nReport bugs to ...")
    problems, facts = check_environment(path=path)
    assert f"mpirun: {tmp_path}/bin/mpirun (Open MPI {other})" in facts
    [problem] = problems
    assert problem.startswith(f"mpi4py loads Open MPI {mine.version} but mpirun is Open MPI {other}: "
                              "build mpi4py against the MPI on PATH: ")
    assert "--no-binary mpi4py" in problem and "--no-cache-dir" in problem
    assert "\n" not in problem


def test_an_mpich_mpirun_is_named_as_the_wrong_launcher(tmp_path):
    path = fake_mpirun(tmp_path / "bin", "HYDRA build details:\n    Version:   4.1.2\n")
    problems, _ = check_environment(path=path)
    assert problems[0] == ("mpirun is MPICH 4.1.2, and mlpstorage launches with Open MPI's options "
                           "(-host name:slots, --oversubscribe): load an Open MPI module instead")
    assert "but mpirun is MPICH 4.1.2" in problems[1]


def test_an_unknown_mpirun_is_quoted(tmp_path):
    path = fake_mpirun(tmp_path / "bin", "\nsomething else 1.0\nmore")
    [problem] = check_environment(path=path).problems
    assert problem.startswith(f"{tmp_path}/bin/mpirun is no MPI launcher this check knows "
                              "(its --version says 'something else 1.0'): load your MPI module")


def test_a_bare_venv_is_told_each_missing_piece_on_one_line(tmp_path):
    """Standard library only at import: the module runs in a venv holding nothing else."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    ask = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
           "from mlpstorage.environment import check_environment\n"
           "print('\\n'.join(check_environment().problems))")
    done = subprocess.run([str(python), "-c", ask], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"dlio_benchmark not installed for {python}: {python} -m pip install --no-deps dlio-benchmark==2.0.0",
        f"torch not importable: install it from your site's index, or {python} -m pip install torch==2.13.0 "
        "(the CPU build)",
        f"numpy, h5py, pandas, PIL, yaml, psutil, omegaconf, hydra, dftracer, mpi4py not importable "
        f"(DLIO imports them): {python} -m pip install -e '.[dlio]' from the mlpstorage checkout",
    ]


# ----- the real thing ---------------------------------------------------------------------------
@pytest.mark.slow
def test_this_venv_has_everything():
    problems, facts = check_environment()
    assert problems == []
    mine = mpi_on_this_machine()
    assert any(f.startswith("mpirun: ") and f.endswith(f"({mine})") for f in facts), facts
    assert any(f.startswith("mpi4py ") and f.endswith(f": {mine}") for f in facts), facts
    assert "dlio-benchmark 2.0.0" in facts


def no_root_venv() -> tuple[str, Path]:
    """The user and the checkout `scripts/setup.sh --tests` installed by docs/install.md's
    no-root commands."""
    try:
        home = Path(pwd.getpwnam(NO_ROOT_USER).pw_dir)
    except KeyError:
        home = None
    checkout = home / "mlpstorage" if home else None
    if os.geteuid() != 0 or checkout is None or not (checkout / ".venv" / "bin" / "mlpstorage").exists():
        why = f"no {NO_ROOT_USER} with a venv in ~/mlpstorage to run as (scripts/setup.sh --tests makes it)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return NO_ROOT_USER, checkout


def as_user(user: str, checkout: Path, *argv: str) -> subprocess.CompletedProcess:
    # a login's plain environment: none of root's PATH, nothing of this test run
    env = ["env", "-i", f"HOME={checkout.parent}", "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]
    return subprocess.run(["runuser", "-u", user, "--", *env, *argv], cwd=checkout, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_the_no_root_install_gives_a_venv_that_runs():
    user, checkout = no_root_venv()
    python = str(checkout / ".venv" / "bin" / "python")
    checked = as_user(user, checkout, str(checkout / ".venv" / "bin" / "mlpstorage"), "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "this machine can run the benchmark" in checked.stdout
    assert f"python: {python}" in checked.stdout
    assert "dlio-benchmark 2.0.0" in checked.stdout
    ran = as_user(user, checkout, str(checkout / ".venv" / "bin" / "mlpstorage"), "exec", "--render", "plain",
                  "--results-dir", str(checkout / "results"), "--", "true")
    assert ran.returncode == 0, ran.stderr
    assert "true finished in" in ran.stderr and "(exit code 0)" in ran.stderr


@pytest.mark.slow
def test_mlpstorage_check_says_each_missing_piece_and_exits_2(tmp_path):
    """The command users run: what is there, one line per problem, and exit code 2."""
    mlpstorage = Path(sys.executable).parent / "mlpstorage"
    env = {**os.environ, "PATH": str(tmp_path)}  # no mpirun anywhere
    result = subprocess.run([str(mlpstorage), "check"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    missing = [line for line in result.stdout.splitlines() if line.startswith("missing  ")]
    assert missing and "mpirun" in missing[0] and "module load openmpi" in missing[0], result.stdout
    assert result.stderr.startswith("mlpstorage: error: ") and len(result.stderr.splitlines()) == 1
    fine = subprocess.run([str(mlpstorage), "check"], capture_output=True, text=True, timeout=60)
    assert fine.returncode == 0 and "this machine can run the benchmark" in fine.stdout, fine.stdout + fine.stderr
