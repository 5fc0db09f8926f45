"""A real Prometheus (Debian's package) on loopback for the metrics tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from .ports import free_port


def installed(name: str) -> str:
    """The program's path; a skip when it is missing here (a failure under CI, where
    scripts/setup.sh --tests installs it)."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (scripts/setup.sh --tests installs it)")
        pytest.skip(f"{name} is not installed: run scripts/setup.sh --tests")
    return found


@contextlib.contextmanager
def running_prometheus(folder: Path, config: str):
    """Prometheus with this configuration, its data in folder: its API's URL."""
    web_port = free_port()
    (folder / "prometheus.yml").write_text(config)
    proc = subprocess.Popen([installed("prometheus"), f"--config.file={folder / 'prometheus.yml'}",
                             f"--storage.tsdb.path={folder / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"http://127.0.0.1:{web_port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
