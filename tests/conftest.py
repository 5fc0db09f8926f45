import signal

import pytest

from support import ssh_fixtures

# A shell without job control starts a background job (`.ci/run &`) with SIGINT ignored, and
# every process it starts inherits that: the launcher under test would keep ignoring SIGINT as
# POSIX asks, and the tests that send it one would wait in vain. A handler of our own is reset
# to the default in each child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# pytest's own plugin for running pytest on generated test files (the `pytester` fixture)
pytest_plugins = ["pytester"]


def pytest_addoption(parser):
    parser.addoption("--update-goldens", action="store_true", help="rewrite the golden files from the current output (tests/support/golden.py)")


@pytest.fixture
def update_goldens(request) -> bool:
    return request.config.getoption("--update-goldens")


# Real sshd hosts on 127.0.0.2.. for SSH tests (see tests/support/sshd_hosts.py).
ssh_cluster = ssh_fixtures.ssh_cluster
make_ssh_cluster = ssh_fixtures.make_ssh_cluster


@pytest.fixture(autouse=True, scope="session")
def results_outside_the_repository(tmp_path_factory):
    """Commands a test runs without --results-dir (datasize leaves a record too) write to a
    temporary folder, never into the checkout."""
    import os

    os.environ["MLPERF_RESULTS_DIR"] = str(tmp_path_factory.mktemp("default-results"))
    yield
