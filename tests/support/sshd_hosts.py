"""Real sshd "hosts" on one machine, for tests of SSH cluster collection.

Every host is its own /usr/sbin/sshd on a loopback address (127.0.0.2, 127.0.0.3, ...), all on
one port, each in its own UTS namespace so that `hostname` answers node2, node3, ...  One client
key pair (ed25519, no passphrase) is accepted by every host, and an ssh client config file
(`ssh -F cluster.config HOST CMD`) holds everything a client needs.  Only addresses in
127.0.0.0/8 are ever used.

Besides the good hosts there are special ones for failure tests:
  * ``refusing``: an address with nothing listening on the port (connection refused at once);
  * ``silent``: a TCP server that accepts connections and never sends a byte (ssh hangs until
    its ConnectTimeout);
  * ``bad_names``: host strings that must be rejected before they reach ssh's command line.

Use from a test (the fixtures, in ssh_fixtures.py, are registered in tests/conftest.py):

    def test_collect(ssh_cluster):                  # session-scoped, 4 hosts
        out = subprocess.run(ssh_cluster.ssh_argv(ssh_cluster.hosts[0], "hostname"), ...)
        run_my_code(hosts=ssh_cluster.hosts, ssh_config=ssh_cluster.config)

    def test_many(make_ssh_cluster):                # function-scoped factory, stopped after the test
        cluster = make_ssh_cluster(8)

or without pytest: ``with ssh_hosts(tmp_dir, 3) as cluster: ...`` / ``start_hosts(...)`` + ``.stop()``.

Each sshd logs to its host's ``sshd.log``; ``cluster.logins()`` counts the logins in them
({address: count}, one "Accepted ..." line per authenticated connection).

A host can be made to differ from the others the way a broken cluster node does (HostTweak,
given per address to start_hosts(tweaks=...)): each host runs in a mount namespace of its own,
where folders can be emptied (a venv at the same path that lacks DLIO) or show another folder's
files (a data directory that is not shared), and its login sessions can get environment
variables (``clock_off(seconds)``: Debian's faketime preloaded, so the host's clock runs off).

Needs root (sshd must be able to switch to root for the session, and `unshare --uts` needs
CAP_SYS_ADMIN), /usr/sbin/sshd, ssh, ssh-keygen and unshare (missing_prerequisites() says
which are missing; the fixtures skip or, under CI, fail on it).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlpstorage.engines.parent_death import die_with_parent

from .host_tweaks import HostTweak, clock_off  # noqa: F401  (clock_off: for the tests, with the hosts)
from .ports import bindable, free_port, is_listening, loopback, port_state
from .silent_server import SilentServer

SSHD = "/usr/sbin/sshd"
SSH = "ssh"
SSH_KEYGEN = "ssh-keygen"
UNSHARE = "unshare"

FIRST_HOST = 2  # good hosts are 127.0.0.2 .. 127.0.0.(count+1)
REFUSING_ADDR = "127.0.0.50"
SILENT_ADDR = "127.0.0.51"
MAX_HOSTS = 48  # 127.0.0.2 .. 127.0.0.49; never collide with the special hosts
BAD_NAMES = (
    "-oProxyCommand=touch /tmp/pwned",
    "node;rm -rf /",
    "-oProxyCommand=sh -c 'touch /tmp/pwned'",
    "node2 hostname",
    "$(touch /tmp/pwned)",
    "`touch /tmp/pwned`",
    "node2\nhostname",
    "node|touch /tmp/pwned",
    "",
)


class SshHostsError(RuntimeError):
    """The hosts could not be started (the message carries the sshd log tails)."""


def missing_prerequisites() -> list[str]:
    """Why real sshd hosts cannot run here (empty when they can)."""
    why = []
    if os.geteuid() != 0:
        why.append("not root")
    if not os.access(SSHD, os.X_OK):
        why.append(f"{SSHD} missing (apt-get install -y openssh-server)")
    for tool in (SSH, SSH_KEYGEN, UNSHARE):
        if shutil.which(tool) is None:
            why.append(f"{tool} not on PATH")
    return why


def _uts_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/uts")
    except OSError:
        return None


def _pids_in_uts_ns(ns: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _uts_ns(int(entry)) == ns:
            pids.append(int(entry))
    return pids


def _alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class Host:
    addr: str
    name: str
    config: Path
    log: Path
    proc: subprocess.Popen | None = None
    uts_ns: str | None = None

    def logins(self) -> int:
        """Successful logins so far: sshd logs one "Accepted <method> for <user> ..." line per
        authenticated connection (sessions multiplexed on a connection log none)."""
        try:
            return sum(line.startswith("Accepted ") for line in self.log.read_text(errors="replace").splitlines())
        except OSError:
            return 0

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class SshCluster:
    """Running sshd hosts.  `hosts`/`names` are the good hosts' addresses and hostnames."""

    dir: Path
    port: int
    key: Path  # the client's private key (public key: key + ".pub")
    config: Path  # ssh client config: ssh -F config HOST CMD
    host_objs: list[Host]
    refusing: str
    silent: str
    silent_server: SilentServer | None
    bad_names: tuple[str, ...] = BAD_NAMES
    start_seconds: float = 0.0  # wall time start_hosts() took, keys and readiness checks included
    timings: dict[str, float] = field(default_factory=dict)  # seconds per start phase
    _stopped: bool = field(default=False, repr=False)

    @property
    def hosts(self) -> list[str]:
        return [h.addr for h in self.host_objs]

    @property
    def names(self) -> list[str]:
        return [h.name for h in self.host_objs]

    @property
    def name_of(self) -> dict[str, str]:
        return {h.addr: h.name for h in self.host_objs}

    @property
    def pids(self) -> list[int]:
        return [h.proc.pid for h in self.host_objs if h.proc is not None]

    @property
    def logs(self) -> dict[str, Path]:
        return {h.addr: h.log for h in self.host_objs}

    def logins(self) -> dict[str, int]:
        """{address: successful logins so far} (the readiness check made one per host)."""
        return {h.addr: h.logins() for h in self.host_objs}

    def ssh_argv(self, host: str, *command: str, options: dict[str, str] | None = None) -> list[str]:
        """The full ssh argument list for running `command` on `host` with the cluster's config.

        `options` adds `-o KEY=VALUE` (e.g. {"ConnectTimeout": "2"})."""
        argv = [SSH, "-F", str(self.config)]
        for k, v in (options or {}).items():
            argv += ["-o", f"{k}={v}"]
        return argv + [host, *command]

    def ssh(self, host: str, *command: str, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        """Run `command` on `host`; returns the CompletedProcess (text, captured, no stdin)."""
        return subprocess.run(
            self.ssh_argv(host, *command), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, **kw
        )

    def leftover_pids(self) -> list[int]:
        """Processes of this cluster still alive: any process whose command line names one of
        the host configs, and anything (sshd session children, commands) in a host's UTS namespace."""
        left = set()
        me = os.getpid()
        configs = [str(h.config).encode() for h in self.host_objs]
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == me:
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
            except OSError:
                continue
            if any(c in cmdline for c in configs) and _alive(int(entry)):
                left.add(int(entry))
        for h in self.host_objs:
            if h.uts_ns and h.uts_ns != _uts_ns(me):
                left.update(p for p in _pids_in_uts_ns(h.uts_ns) if _alive(p))
        return sorted(left)

    def session_pids(self) -> list[int]:
        """Processes the hosts run for connections and sessions (everything alive in a host's
        UTS namespace but its listening sshd): none once every client has gone and the hosts
        have finished with it."""
        listeners = set(self.pids)
        return sorted(p for h in self.host_objs if h.uts_ns for p in _pids_in_uts_ns(h.uts_ns)
                      if p not in listeners and _alive(p))

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every sshd (its process group, then anything left in its UTS namespace) and the
        silent server; raise SshHostsError if something survives SIGKILL."""
        if self._stopped:
            return
        self._stopped = True
        try:
            procs = [h.proc for h in self.host_objs if h.proc is not None]
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for p in procs:
                    if p.poll() is None:
                        with contextlib.suppress(ProcessLookupError, PermissionError):
                            os.killpg(p.pid, sig)
                for pid in self.leftover_pids():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, sig)
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    for p in procs:
                        p.poll()
                    if all(p.returncode is not None for p in procs) and not self.leftover_pids():
                        break
                    time.sleep(0.02)
                else:
                    continue  # still something alive: escalate to SIGKILL
                break
        finally:
            if self.silent_server is not None:
                self.silent_server.stop()
            _live_clusters.discard(self)
        left = self.leftover_pids()
        if left:
            raise SshHostsError(f"sshd hosts still running after SIGKILL: pids {left}")

    def __enter__(self) -> SshCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __hash__(self) -> int:
        return id(self)


_live_clusters: set[SshCluster] = set()


@atexit.register
def _stop_forgotten_clusters() -> None:
    for cluster in list(_live_clusters):
        with contextlib.suppress(Exception):
            cluster.stop()


def _run_parallel(argvs: list[list[str]], timeout: float) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(a, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for a in argvs
    ]
    results = []
    deadline = time.monotonic() + timeout
    for argv, p in zip(argvs, procs):
        try:
            out, err = p.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err += f"\n(timed out after {timeout}s)"
            p.returncode = -9 if p.returncode is None else p.returncode
        results.append(subprocess.CompletedProcess(argv, p.returncode, out, err))
    return results


def _check(results: list[subprocess.CompletedProcess], what: str) -> None:
    bad = [r for r in results if r.returncode != 0]
    if bad:
        r = bad[0]
        raise SshHostsError(f"{what} failed ({len(bad)} of {len(results)}): {' '.join(map(str, r.args))}\n{r.stdout}{r.stderr}")


def _pick_port(addrs: list[str], silent_addr: str | None) -> tuple[int, SilentServer | None]:
    """A port free on every address; the silent server (if any) is bound on it already."""
    for _ in range(20):
        port = free_port(*addrs)
        if silent_addr is None:
            return port, None
        try:
            return port, SilentServer(silent_addr, port)
        except OSError:  # taken on the silent host's address meanwhile: another
            continue
    raise SshHostsError("no free TCP port found on the loopback addresses")


def _sshd_config(host_dir: Path, addr: str, port: int, host_key: Path, authorized_keys: Path,
                 login_env: tuple[tuple[str, str], ...] = ()) -> str:
    set_env = [f"SetEnv {' '.join(f'{name}={value}' for name, value in login_env)}"] if login_env else []
    return "\n".join(
        set_env + [
            f"ListenAddress {addr}:{port}",
            f"HostKey {host_key}",
            f"PidFile {host_dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized_keys}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            # Collection code may fan out many connections to one host at once.
            "MaxStartups 200",
            "MaxSessions 64",
            "LoginGraceTime 30",
            # The default post-quantum hybrid kex (sntrup761x25519) costs ~0.1 s of CPU per
            # connection on each side; plain curve25519 makes parallel fan-out several times cheaper.
            "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org",
            # scp (SFTP protocol by default since OpenSSH 9.0) and sftp work without extra binaries.
            "Subsystem sftp internal-sftp",
            "",
        ]
    )


def _client_config(port: int, key: Path) -> str:
    return "\n".join(
        [
            "Host 127.0.0.*",
            f"    Port {port}",
            "    User root",
            f'    IdentityFile "{key}"',
            "    IdentitiesOnly yes",
            "    BatchMode yes",
            "    StrictHostKeyChecking no",
            "    UserKnownHostsFile /dev/null",
            "    GlobalKnownHostsFile /dev/null",
            "    LogLevel ERROR",
            "",
        ]
    )


def start_hosts(
    tmp_dir: str | os.PathLike,
    count: int = 4,
    *,
    port: int | None = None,
    first: int = FIRST_HOST,
    refusing: str = REFUSING_ADDR,
    silent: str | None = SILENT_ADDR,
    ready_timeout: float = 20.0,
    tweaks: dict[str, HostTweak] | None = None,
) -> SshCluster:
    """Start `count` sshd hosts on 127.0.0.<first> .. 127.0.0.<first+count-1> (hostnames
    node<last octet>) plus the refusing/silent special hosts; return when every host answers
    `ssh HOST hostname` with its name.  On any failure everything started is stopped again.

    `port`: None picks a random free one (checked on every address used); `silent=None` skips
    the silent server; `tweaks`: {address: HostTweak} for hosts that differ from the others.
    Call .stop() (or use ssh_hosts()/the fixtures) to tear down."""
    tweaks = tweaks or {}
    t0 = time.monotonic()
    if not 1 <= count <= MAX_HOSTS:
        raise ValueError(f"count must be 1..{MAX_HOSTS}")
    addrs = [loopback(f"127.0.0.{first + i}") for i in range(count)]
    specials = [a for a in (refusing, silent) if a]
    for a in specials:
        loopback(a)
        if a in addrs:
            raise ValueError(f"special host {a} overlaps the good hosts {addrs[0]}..{addrs[-1]}")
    why = missing_prerequisites()
    if why:
        raise SshHostsError("real sshd hosts unavailable: " + "; ".join(why))

    root = Path(tmp_dir).absolute()
    root.mkdir(parents=True, exist_ok=True)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)

    # Port first: the silent server holds it from here on.
    if port is None:
        port, silent_server = _pick_port(addrs + [refusing], silent)
    else:
        busy = [a for a in addrs + [refusing] if not bindable(a, port)]
        if busy:
            raise SshHostsError(f"port {port} is in use on {busy}")
        silent_server = SilentServer(silent, port) if silent else None

    key = root / "id_ed25519"
    hosts = []
    for addr in addrs:
        name = f"node{addr.rsplit('.', 1)[1]}"
        hdir = root / name
        hdir.mkdir(exist_ok=True)
        hosts.append(Host(addr=addr, name=name, config=hdir / "sshd_config", log=hdir / "sshd.log"))
    cluster = SshCluster(
        dir=root, port=port, key=key, config=root / "ssh_config", host_objs=hosts,
        refusing=refusing, silent=silent or "", silent_server=silent_server,
    )  # fmt: skip
    _live_clusters.add(cluster)
    try:
        # Keys: the client pair and one host key per host, all generated at once.
        keygens = [[SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "mlpstorage-tests", "-f", str(key)]]
        keygens += [
            [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", h.name, "-f", str(h.config.parent / "host_ed25519_key")]
            for h in hosts
        ]
        for k in [key, *(h.config.parent / "host_ed25519_key" for h in hosts)]:
            for f in (k, Path(f"{k}.pub")):
                f.unlink(missing_ok=True)
        _check(_run_parallel(keygens, timeout=30), "ssh-keygen")
        cluster.timings["keygen"] = time.monotonic() - t0
        authorized = Path(f"{key}.pub")

        for h in hosts:
            login_env = tweaks.get(h.addr, HostTweak()).login_env
            h.config.write_text(_sshd_config(h.config.parent, h.addr, port, h.config.parent / "host_ed25519_key",
                                             authorized, login_env))
        cluster.config.write_text(_client_config(port, key))
        _check(_run_parallel([[SSHD, "-t", "-f", str(h.config)] for h in hosts], timeout=30), "sshd -t")
        cluster.timings["validate"] = time.monotonic() - t0

        # All sshds at once, each its own process group (for teardown), UTS and mount namespace.
        for h in hosts:
            setup = " && ".join([f"hostname {h.name}", *tweaks.get(h.addr, HostTweak()).mount_commands(),
                                 f'exec {SSHD} -D -e -f "$0"'])
            with open(h.log, "wb") as log:
                h.proc = subprocess.Popen(
                    [UNSHARE, "--uts", "--mount", "sh", "-c", setup, str(h.config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=die_with_parent,  # SIGTERM if the test process dies first
                )

        deadline = t0 + ready_timeout
        waiting = list(hosts)
        while waiting:
            for h in list(waiting):
                if h.proc.poll() is not None:
                    raise SshHostsError(f"sshd for {h.addr} exited with {h.proc.returncode}:\n{h.log_tail()}")
                if is_listening(h.addr, port):
                    waiting.remove(h)
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise SshHostsError(
                    f"not listening after {ready_timeout}s: {[h.addr for h in waiting]}\n"
                    + "\n".join(f"--- {h.addr}\n{h.log_tail()}" for h in waiting)
                )
            time.sleep(0.005)

        cluster.timings["listening"] = time.monotonic() - t0
        own_ns = _uts_ns(os.getpid())
        for h in hosts:
            h.uts_ns = _uts_ns(h.proc.pid)
            if h.uts_ns is None or h.uts_ns == own_ns:
                raise SshHostsError(f"sshd for {h.addr} is not in its own UTS namespace ({h.uts_ns})")

        # Every host answers over ssh with its own name (retried until the deadline).
        pending = list(hosts)
        last: dict[str, str] = {}
        while pending:
            results = _run_parallel(
                [cluster.ssh_argv(h.addr, "hostname", options={"ConnectTimeout": "5"}) for h in pending],
                timeout=max(1.0, min(10.0, deadline - time.monotonic())),
            )
            for h, r in zip(list(pending), results):
                got = r.stdout.strip()
                if r.returncode == 0 and got == h.name:
                    pending.remove(h)
                else:
                    last[h.addr] = f"rc={r.returncode} stdout={got!r} stderr={r.stderr.strip()!r}"
            if pending and time.monotonic() > deadline:
                raise SshHostsError(
                    f"hosts not answering `ssh HOST hostname` after {ready_timeout}s:\n"
                    + "\n".join(f"--- {h.addr}: {last.get(h.addr)}\n{h.log_tail()}" for h in pending)
                )
            if pending:
                time.sleep(0.05)

        cluster.timings["ssh_ready"] = time.monotonic() - t0
        state = port_state(refusing, port)
        if state != "refused":
            raise SshHostsError(f"refusing host {refusing}:{port} is not refusing connections ({state})")
    except BaseException:
        with contextlib.suppress(Exception):
            cluster.stop()
        raise
    cluster.start_seconds = time.monotonic() - t0
    return cluster


@contextlib.contextmanager
def ssh_hosts(tmp_dir: str | os.PathLike, count: int = 4, **kw):
    """start_hosts() as a context manager: the hosts are stopped on exit, also on errors."""
    cluster = start_hosts(tmp_dir, count, **kw)
    try:
        yield cluster
    finally:
        cluster.stop()
