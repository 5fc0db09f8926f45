#!/usr/bin/env bash
# Sets up everything mlpstorage and its tests need on a fresh Debian 12 machine:
# system packages, a venv in .venv, the project, and DLIO 2.0.0 with the runtime
# dependencies it really imports (no tensorflow, no DALI). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
need_lean=()
command -v mpirun >/dev/null || need_apt+=(openmpi-bin)
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null || need_apt+=(openssh-client)
command -v tmux >/dev/null || need_apt+=(tmux)
command -v pgrep >/dev/null || need_apt+=(procps)        # the tests look for leftover processes
command -v hostname >/dev/null || need_apt+=(hostname)   # the sshd test hosts name themselves
command -v unshare >/dev/null || need_apt+=(util-linux)
# Slurm on this one machine for the Slurm tests (libpmix-dev: srun --mpi=pmix loads the
# unversioned libpmix.so that only the -dev package installs)
command -v slurmctld >/dev/null || need_apt+=(slurm-wlm)
command -v munged >/dev/null || need_apt+=(munge)
[ -e /usr/lib/x86_64-linux-gnu/libpmix.so ] || ls /usr/lib/*/libpmix.so >/dev/null 2>&1 || need_apt+=(libpmix-dev)
# Prometheus scrapes a real run in the metrics tests; without its recommends (no node exporter)
command -v prometheus >/dev/null || need_lean+=(prometheus)
if [ ${#need_lean[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need_lean[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_lean[@]}" >/dev/null
fi
[ -x /usr/bin/chromium ] || need_apt+=(chromium)         # the tests open the report pages in a real browser
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)  # ... through Selenium
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# torch 2.13.0 is the CPU wheel on local disk; any other version pulls GBs of CUDA wheels.
.venv/bin/python -c 'import torch' 2>/dev/null || "${pip[@]}" torch==2.13.0
# DLIO 2.0.0 declares tensorflow, torchaudio and nvidia-dali (not installable here);
# install it alone and add what it imports at run time.
.venv/bin/python -c 'import dlio_benchmark' 2>/dev/null || "${pip[@]}" --no-deps dlio-benchmark==2.0.0
"${pip[@]}" pydftracer==1.0.2 Pillow PyYAML h5py numpy omegaconf pandas psutil hydra-core mpi4py
"${pip[@]}" -e '.[test]'
echo "setup: done (.venv/bin/mlpstorage)"
