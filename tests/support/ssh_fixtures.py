"""The pytest fixtures of the real sshd hosts (sshd_hosts.py), registered for every test in
tests/conftest.py. Where the hosts cannot run they skip, except under CI (`CI` set to a true
value) where they fail instead: CI must not go green by silently skipping the SSH tests."""

from __future__ import annotations

import os

import pytest

from .sshd_hosts import SshCluster, missing_prerequisites, ssh_hosts, start_hosts


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def require_prerequisites() -> None:
    """Skip the test when real sshd hosts cannot run here; under CI fail instead."""
    why = missing_prerequisites()
    if why:
        msg = "real sshd hosts unavailable: " + "; ".join(why)
        if _truthy(os.environ.get("CI")):
            pytest.fail(msg + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(msg)


SESSION_HOSTS = 4


@pytest.fixture(scope="session")
def ssh_cluster(tmp_path_factory):
    """4 real sshd hosts (127.0.0.2..5 -> node2..node5) shared by the whole session."""
    require_prerequisites()
    with ssh_hosts(tmp_path_factory.mktemp("sshd"), SESSION_HOSTS) as cluster:
        yield cluster


@pytest.fixture
def make_ssh_cluster(tmp_path_factory):
    """Factory: make_ssh_cluster(count, **start_hosts_kwargs) -> SshCluster, stopped after the
    test.  Its hosts are 127.0.0.2.. like the session cluster's, on another port."""
    require_prerequisites()
    clusters: list[SshCluster] = []

    def make(count: int = 4, **kw) -> SshCluster:
        cluster = start_hosts(tmp_path_factory.mktemp("sshd"), count, **kw)
        clusters.append(cluster)
        return cluster

    yield make
    errors = []
    for cluster in clusters:
        try:
            cluster.stop()
        except Exception as e:  # stop them all, then report
            errors.append(e)
    if errors:
        raise errors[0]
