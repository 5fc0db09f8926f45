"""The real-sshd test hosts of tests/support/sshd_hosts.py work: distinct hostnames over ssh
in parallel, the refusing and silent hosts fail the way they should, and teardown leaves
nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from support import sshd_hosts
from support.ports import is_listening, port_state
from support.sshd_hosts import BAD_NAMES, SshCluster, ssh_hosts, start_hosts

pytestmark = pytest.mark.slow


def pgrep(pattern: str) -> list[int]:
    r = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split()]


def assert_all_gone(hosts: list[str], port: int, configs: list[Path], silent: str | None = None) -> None:
    for h in hosts:
        assert port_state(h, port) == "refused", f"{h}:{port} still accepts connections"
    if silent:
        assert port_state(silent, port) == "refused", f"silent server {silent}:{port} still listening"
    for c in configs:
        assert pgrep(str(c)) == [], f"an sshd with {c} is still running"


def test_hosts_answer_with_distinct_names_in_parallel(ssh_cluster: SshCluster):
    c = ssh_cluster
    assert len(c.hosts) == 4
    assert c.hosts == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    assert c.names == ["node2", "node3", "node4", "node5"]

    t0 = time.monotonic()
    procs = [
        subprocess.Popen(["ssh", "-F", str(c.config), h, "hostname"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for h in c.hosts
    ]
    results = [p.communicate(timeout=30) for p in procs]
    elapsed = time.monotonic() - t0
    assert [p.returncode for p in procs] == [0] * 4, results
    got = [out.strip() for out, _ in results]
    assert got == c.names
    assert len(set(got)) == 4
    assert elapsed < 10, elapsed
    # the test process itself is not renamed
    assert socket.gethostname() not in got


def test_ssh_argv_and_client_config(ssh_cluster: SshCluster):
    c = ssh_cluster
    argv = c.ssh_argv(c.hosts[1], "echo", "hi")
    assert argv == ["ssh", "-F", str(c.config), "127.0.0.3", "echo", "hi"]
    assert c.ssh_argv(c.hosts[0], "true", options={"ConnectTimeout": "3"})[1:5] == ["-F", str(c.config), "-o", "ConnectTimeout=3"]
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, "hi\n", "")

    text = c.config.read_text()
    assert "Host 127.0.0.*" in text
    for line in (f"Port {c.port}", "User root", f'IdentityFile "{c.key}"', "IdentitiesOnly yes", "BatchMode yes",
                 "StrictHostKeyChecking no", "UserKnownHostsFile /dev/null", "LogLevel ERROR"):  # fmt: skip
        assert line in text
    assert c.key.is_file() and Path(f"{c.key}.pub").read_text().startswith("ssh-ed25519 ")
    assert oct(c.key.stat().st_mode & 0o777) == "0o600"

    # as root, in the host's own UTS namespace; scp (SFTP) works too
    r = c.ssh(c.hosts[2], "id -un; hostname")
    assert r.stdout.split() == ["root", "node4"]
    src = c.dir / "scp_src.txt"
    src.write_text("payload\n")
    dst = c.dir / "scp_dst.txt"
    r = subprocess.run(["scp", "-F", str(c.config), "-q", str(src), f"{c.hosts[0]}:{dst}"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert dst.read_text() == "payload\n"


def test_refusing_host_fails_fast(ssh_cluster: SshCluster):
    c = ssh_cluster
    assert c.refusing == "127.0.0.50" and c.refusing not in c.hosts
    t0 = time.monotonic()
    r = subprocess.run(c.ssh_argv(c.refusing, "hostname"), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - t0
    assert r.returncode == 255
    assert "Connection refused" in r.stderr
    assert r.stdout == ""
    assert elapsed < 2, elapsed


def test_silent_host_times_out(ssh_cluster: SshCluster):
    c = ssh_cluster
    assert c.silent == "127.0.0.51" and c.silent not in c.hosts
    before = c.silent_server.accepted
    t0 = time.monotonic()
    r = subprocess.run(c.ssh_argv(c.silent, "hostname", options={"ConnectTimeout": "2"}), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - t0
    assert r.returncode == 255
    assert "timed out" in r.stderr, r.stderr
    assert 1.8 <= elapsed <= 4.5, elapsed
    assert c.silent_server.accepted == before + 1  # the TCP connection itself succeeded


def test_bad_names_are_provided(ssh_cluster: SshCluster):
    bad = ssh_cluster.bad_names
    assert bad == BAD_NAMES
    assert "-oProxyCommand=touch /tmp/pwned" in bad
    assert "node;rm -rf /" in bad
    assert all(b not in ssh_cluster.hosts and b not in ssh_cluster.names for b in bad)


def test_teardown_leaves_nothing(tmp_path: Path):
    """Hosts with a live session (a remote `sleep`) stop completely: listener, session child and
    the remote command; the ports refuse connections afterwards."""
    cluster = start_hosts(tmp_path / "c", 4)
    port, hosts, configs = cluster.port, cluster.hosts, [h.config for h in cluster.host_objs]
    try:
        assert all(is_listening(h, port) for h in hosts)
        assert all(pgrep(str(cfg)) for cfg in configs)
        lingering = subprocess.Popen(cluster.ssh_argv(hosts[0], "sleep 300"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not any(pgrep("^sleep 300$")) and time.monotonic() < deadline:
            time.sleep(0.05)
        remote_sleep = pgrep("^sleep 300$")
        assert remote_sleep and set(remote_sleep) <= set(cluster.leftover_pids())
    finally:
        t0 = time.monotonic()
        cluster.stop()
        stop_seconds = time.monotonic() - t0
    assert stop_seconds < 5
    assert lingering.wait(timeout=10) != 0  # the client lost its connection
    assert cluster.leftover_pids() == []
    for pid in remote_sleep + cluster.pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert_all_gone(hosts, port, configs, cluster.silent)
    cluster.stop()  # idempotent


def test_context_manager_stops_hosts_when_the_test_fails(tmp_path: Path):
    seen = {}
    with pytest.raises(RuntimeError, match="boom"):
        with ssh_hosts(tmp_path / "c", 2) as cluster:
            seen.update(port=cluster.port, hosts=cluster.hosts, configs=[h.config for h in cluster.host_objs], silent=cluster.silent)
            assert cluster.ssh(cluster.hosts[1], "hostname").stdout == "node3\n"
            raise RuntimeError("boom")
    assert_all_gone(seen["hosts"], seen["port"], seen["configs"], seen["silent"])


def test_eight_hosts_start_in_parallel(make_ssh_cluster, record_property):
    cluster = make_ssh_cluster(8)
    record_property("start_8_hosts_seconds", round(cluster.start_seconds, 3))
    print(f"\n8 hosts ready in {cluster.start_seconds:.2f}s: " + ", ".join(f"{k} {v:.2f}s" for k, v in cluster.timings.items()))
    assert cluster.names == [f"node{i}" for i in range(2, 10)]
    r = [cluster.ssh(h, "hostname").stdout.strip() for h in (cluster.hosts[0], cluster.hosts[-1])]
    assert r == ["node2", "node9"]
    # listening within well under a second; answering ssh is CPU bound (about 0.25 s per host of
    # key exchange and login shell) and shares the machine with the rest of the suite
    assert cluster.timings["listening"] < 3, cluster.timings
    assert cluster.start_seconds < 15, cluster.timings


def test_fixture_in_a_ci_like_run(tmp_path: Path):
    """A separate pytest run like CI's (CI=true, no stdin, no terminal, its own session) that
    imports the fixture directly; after it ends nothing of its hosts is left."""
    (tmp_path / "test_uses_cluster.py").write_text(
        textwrap.dedent(
            """
            import json, os, subprocess
            from support.ssh_fixtures import ssh_cluster  # noqa: F401  (the fixture, imported directly)

            def test_it(ssh_cluster):
                assert os.environ["CI"] == "true"
                names = [ssh_cluster.ssh(h, "hostname").stdout.strip() for h in ssh_cluster.hosts]
                assert names == ssh_cluster.names
                with open(os.environ["SSHD_HOSTS_OUT"], "w") as f:
                    json.dump({"port": ssh_cluster.port, "hosts": ssh_cluster.hosts, "silent": ssh_cluster.silent,
                               "configs": [str(h.config) for h in ssh_cluster.host_objs],
                               "seconds": ssh_cluster.start_seconds}, f)
            """
        )
    )
    out = tmp_path / "out.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    # tests/ on the path, as pytest puts it for this suite, for `support`
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH")]))
    env.update(CI="true", SSHD_HOSTS_OUT=str(out), TERM="dumb", PYTHONPATH=path)
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, start_new_session=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    info = json.loads(out.read_text())
    assert_all_gone(info["hosts"], info["port"], [Path(c) for c in info["configs"]], info["silent"])


def test_a_host_that_cannot_start_fails_with_its_log_and_cleans_up(tmp_path: Path, monkeypatch):
    """E.g. a container without CAP_SYS_ADMIN: `unshare --uts` fails.  start_hosts() raises with
    the host's log and stops what it had started (the other hosts, the silent server)."""
    fake = tmp_path / "unshare"
    fake.write_text('#!/bin/sh\ncase "$*" in *node3*) echo "unshare: unshare failed: Operation not permitted"; exit 1;; esac\nexec unshare "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setattr(sshd_hosts, "UNSHARE", str(fake))
    live_before = set(sshd_hosts._live_clusters)  # e.g. the session's ssh_cluster
    with pytest.raises(sshd_hosts.SshHostsError, match=r"(?s)127\.0\.0\.3 exited with 1.*Operation not permitted"):
        start_hosts(tmp_path / "c", 3)
    configs = sorted((tmp_path / "c").glob("node*/sshd_config"))
    assert len(configs) == 3
    assert set(sshd_hosts._live_clusters) == live_before
    for cfg in configs:
        assert pgrep(str(cfg)) == []
