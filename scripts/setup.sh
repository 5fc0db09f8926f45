#!/usr/bin/env bash
# Sets up what the benchmark needs: OpenMPI (apt, only as root and only when mpirun is missing),
# a venv in .venv with torch 2.13.0, DLIO 2.0.0 and the modules it imports, and the project.
#   --tests  also the system packages the test suite drives (sshd, tmux, Slurm, Prometheus,
#            chromium, ...), the project's [test] extra, and a user without root whose own venv
#            is made by docs/install.md's no-root commands (tests/test_environment.py runs it).
# Without root it installs no system package: it says, one line each, what is missing and how to
# get it, and stops when the benchmark could not run. Safe to run again. See docs/install.md.
set -euo pipefail
cd "$(dirname "$0")/.."

tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1 ;;
    *) echo "usage: bash scripts/setup.sh [--tests]" >&2; exit 2 ;;
  esac
done
root=0
[ "$(id -u)" = 0 ] && root=1

# ----- system packages: "package|why", what is missing on this machine ------------------------
need=()        # installed with their recommends
need_lean=()   # without them
command -v mpirun >/dev/null || need+=("openmpi-bin|mpirun not on PATH: load your MPI module (module load openmpi) or install OpenMPI")
python3 -c 'import ensurepip' 2>/dev/null || need+=("python3-venv|python3 cannot make a venv: install python3-venv or load a Python module")
blocking=${#need[@]}   # without these the benchmark cannot run
# mpirun starts ranks on other hosts, and mlpstorage collects their facts, through ssh
command -v ssh >/dev/null || need+=("openssh-client|no ssh client: runs on more than one host need it")
if [ $tests = 1 ]; then
  [ -x /usr/sbin/sshd ] || need+=("openssh-server|no sshd: the SSH collection tests start their own")
  command -v tmux >/dev/null || need+=("tmux|no tmux: the live display is tested in a real terminal")
  command -v strace >/dev/null || need+=("strace|no strace: the I/O trace tests slow one rank's reads with it")
  command -v faketime >/dev/null || need+=("faketime|no faketime: the preflight tests run one sshd test host's clock ahead")
  command -v pgrep >/dev/null || need+=("procps|no pgrep: the tests look for leftover processes")
  command -v hostname >/dev/null || need+=("hostname|no hostname: the sshd test hosts name themselves")
  command -v unshare >/dev/null || need+=("util-linux|no unshare: each sshd test host gets its own host name (unshare --uts)")
  # daemons live in sbin, off a user's PATH
  [ -x /usr/sbin/slurmctld ] || need+=("slurm-wlm|no Slurm: the Slurm tests run one on this machine")
  [ -x /usr/sbin/munged ] || need+=("munge|no munged: Slurm authenticates through it")
  # srun --mpi=pmix loads the unversioned libpmix.so that only the -dev package installs
  ls /usr/lib/*/libpmix.so >/dev/null 2>&1 || need+=("libpmix-dev|no libpmix.so: srun --mpi=pmix needs it")
  [ -x /usr/bin/chromium ] || need+=("chromium|no chromium: the tests open the report pages in a real browser")
  [ -x /usr/bin/chromedriver ] || need+=("chromium-driver|no chromedriver: Selenium drives chromium through it")
  # Prometheus scrapes a real run in the metrics tests; its recommends would add a node exporter
  command -v prometheus >/dev/null || need_lean+=("prometheus|no prometheus: the metrics tests scrape a real run")
  command -v prometheus-pushgateway >/dev/null || need_lean+=("prometheus-pushgateway|no Pushgateway: the metrics push test pushes a real run to one")
fi

apt_install() {  # apt_install [--no-install-recommends] "package|why"...
  local flags=() packages=() entry
  [ "$1" = --no-install-recommends ] && { flags+=("$1"); shift; }
  for entry in "$@"; do packages+=("${entry%%|*}"); done
  echo "setup: installing system packages: ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  [ -n "${apt_updated:-}" ] || { apt-get update -qq; apt_updated=1; }
  apt-get install -y -qq "${flags[@]}" "${packages[@]}" >/dev/null
}

if [ $root = 1 ]; then
  [ ${#need_lean[@]} -eq 0 ] || apt_install --no-install-recommends "${need_lean[@]}"
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
else
  for entry in "${need[@]}" "${need_lean[@]}"; do echo "setup: ${entry#*|} (apt-get install ${entry%%|*})"; done
  if [ "$blocking" -gt 0 ]; then
    echo "setup: not root, so no system package was installed; the benchmark cannot run without the above" >&2
    exit 2
  fi
fi

# ----- the venv ---------------------------------------------------------------------------------
[ -x .venv/bin/python ] || { echo "setup: creating .venv"; python3 -m venv .venv; }
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# torch 2.13.0 is the CPU wheel on local disk; any other version pulls GBs of CUDA wheels. Nothing
# else installed here asks for torch, so a torch already in the venv (a site's own build) stays.
torch=()
.venv/bin/python -c 'import importlib.metadata as m; m.version("torch")' 2>/dev/null || torch=(torch==2.13.0)
extras=dlio
[ $tests = 1 ] && extras=dlio,test
"${pip[@]}" "${torch[@]}" -e ".[$extras]"
# DLIO 2.0.0 declares tensorflow, torchaudio and nvidia-dali, which it never imports for these
# workloads (and which do not install here): it goes in alone, the dlio extra brings what it imports.
"${pip[@]}" --no-deps dlio-benchmark==2.0.0

# mpi4py's PyPI wheel loads whatever libmpi the loader finds; when that is not mpirun's MPI, build
# it from source against the mpicc on PATH (docs/install.md, "mpi4py and the cluster's MPI").
check=(.venv/bin/python -c '
from mlpstorage.environment import check_environment
problems, _ = check_environment()
print("\n".join(problems))')
problems=$("${check[@]}")
if grep -q '^mpi4py ' <<<"$problems" && command -v mpicc >/dev/null; then
  echo "setup: building mpi4py against $(command -v mpicc)"
  "${pip[@]}" --force-reinstall --no-cache-dir --no-binary mpi4py --no-deps mpi4py
  problems=$("${check[@]}")
fi
if [ -n "$problems" ]; then
  sed 's/^/setup: /' <<<"$problems" >&2
  exit 2
fi

# ----- a user without root, set up by docs/install.md's no-root commands ------------------------
if [ $tests = 1 ]; then
  if [ $root = 1 ]; then
    user=mlps-user
    id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
    home=$(getent passwd "$user" | cut -d: -f6)
    echo "setup: the no-root install as $user in $home/mlpstorage"
    # the checkout as the user would have it: this tree's files (tracked and new), its venv kept
    runuser -u "$user" -- mkdir -p "$home/mlpstorage"
    runuser -u "$user" -- find "$home/mlpstorage" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
    git ls-files -z --cached --others --exclude-standard \
      | tar --null --ignore-failed-read -T - -c 2>/dev/null | runuser -u "$user" -- tar -x -C "$home/mlpstorage"
    # a login's plain environment (none of root's PATH); the commands are docs/install.md's, verbatim
    runuser -u "$user" -- env -i HOME="$home" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 bash -euc '
      cd ~/mlpstorage
      [ -x .venv/bin/python ] || python3 -m venv .venv
      .venv/bin/pip install -q torch==2.13.0 -e ".[dlio]"
      .venv/bin/pip install -q --no-deps dlio-benchmark==2.0.0'
  else
    echo "setup: not root, so no mlps-user venv: the no-root install test skips (fails with CI=1)"
  fi
fi
echo "setup: done (.venv/bin/mlpstorage)"
