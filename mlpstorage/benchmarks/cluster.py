"""Cluster information: which way it is collected (locally, over SSH or under MPI), and the
collection itself under a spinner whose text counts the hosts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..collectors.hostinfo import collect_local
from ..collectors.mpi import MpiCollectionError, collect_via_mpi
from ..collectors.ssh import SshConnections, collect_via_ssh
from ..emitter import Emitter
from ..hosts import Host, host_names, is_local_host

COLLECTION_LABELS = {"local": "locally", "ssh": "via SSH", "mpi": "via MPI"}


@dataclass
class Spinner:
    """The open collection spinner, handed to the collectors: its two callables and its span
    (the parent of per-host spans opened from worker threads)."""

    update: Callable[..., None]
    set_description: Callable[[str], None]
    span: object


class ClusterCollection:
    """Collects every host's information by the run's method. `collectors` maps a method to
    callable(hosts, data_dir, spinner) -> {host: info}; remote: the method for remote hosts
    under "auto" (work launched with MPI prefers MPI)."""

    def __init__(self, options, emitter: Emitter, connections: SshConnections, remote: str = "ssh"):
        self.options = options
        self.emitter = emitter
        self.connections = connections
        self.remote = remote
        self.collectors = {"local": self._locally, "ssh": self._via_ssh, "mpi": self._via_mpi}

    def method(self) -> str:
        """auto: local when the only host is this one, else the remote method."""
        method = self.options.cluster_collection
        if method != "auto":
            return method
        return "local" if all(is_local_host(h) for h in self.options.hosts) else self.remote

    def gather(self) -> dict:
        """{host: info} from every host, under a spinner; a host that gave none is a warning."""
        hosts = host_names(self.options.hosts)
        method = self.method()
        if method == "none":
            return {}
        plural = "s" if len(hosts) != 1 else ""
        with self.emitter.spinner(f"Collecting cluster info ({len(hosts)} host{plural})...", None) as handle:
            spinner = Spinner(handle.update, handle.set_description, self.emitter.current_span())
            spinner.set_description(f"Collecting {COLLECTION_LABELS[method]}...")
            info = self.collectors[method](hosts, self.options.data_dir, spinner)
        for host, host_info in info.items():
            if "error" in host_info:
                self.emitter.warning(f"No cluster information from {host}: {host_info['error']}", host=host)
        return info

    def open_connections(self) -> None:
        """When the run will use SSH, one master connection per remote host, from before the
        collection at the start to after the one at the end (closed as the run leaves, on every
        way out): every use is a session on it. The hosts log in while the collection's
        spinner runs (each host's first use waits for its own master)."""
        if self.method() == "ssh" or not self.options.skip_timeseries:
            try:
                self.connections.open(host_names(self.options.hosts))
            except OSError as exc:  # no private directory for the sockets: each use logs in
                self.emitter.warning(f"SSH connections are not shared in this run: {exc}")

    def _locally(self, hosts: list[str], data_dir: str | None, spinner: Spinner) -> dict:
        info = collect_local(data_dir)
        return {info["hostname"]: info}

    def _via_ssh(self, hosts: list[str], data_dir: str | None, spinner: Spinner) -> dict:
        """Every host in parallel, each a child span of the spinner, whose text counts them."""

        def as_span(host: str, work) -> dict:
            span = self.emitter.start_task(f"host {host}", {"host.name": host}, parent=spinner.span)
            info = collect_local(data_dir) if is_local_host(host) else work()  # no ssh to ourselves
            self.emitter.end_task(span, {"mlpstorage.hostname": info.get("hostname", host)}, error=info.get("error"))
            return info

        def done(count: int) -> None:
            spinner.update(completed=count, description=f"Collecting via SSH... {count}/{len(hosts)} hosts")

        return collect_via_ssh(hosts, data_dir, self.options.ssh, run_host=as_span, on_done=done,
                               connections=self.connections)

    def _via_mpi(self, hosts: list[str], data_dir: str | None, spinner: Spinner) -> dict:
        """One rank per host; if MPI fails, SSH (or local for this host alone), with a warning."""
        try:
            return collect_via_mpi([Host(h) for h in hosts], data_dir, self.options.mpi, self.options.ssh.timeout_s + 20)
        except MpiCollectionError as exc:
            fallback = "local" if all(is_local_host(h) for h in hosts) else "ssh"
            self.emitter.warning(f"MPI collection failed ({exc}); collecting {COLLECTION_LABELS[fallback]} instead")
            spinner.set_description(f"Collecting {COLLECTION_LABELS[fallback]}...")
            return self.collectors[fallback](hosts, data_dir, spinner)


def summarise_hosts(infos: dict) -> dict:
    """Totals for the metadata, and the hosts whose CPU, memory or OS differ from the first."""
    hosts = list(infos.values())
    if not hosts:
        return {"host_count": 0}

    def shape(h: dict) -> tuple:
        return (h.get("cpu", {}).get("model"), h.get("cpu", {}).get("cores"), h.get("memory", {}).get("total_bytes"),
                h.get("os", {}).get("kernel"))

    answered = {name: h for name, h in infos.items() if "error" not in h}
    hosts = list(answered.values()) or hosts
    first = shape(hosts[0])
    return {
        "host_count": len(infos),
        "hosts_without_information": sorted(set(infos) - set(answered)),
        "total_memory_bytes": sum(h.get("memory", {}).get("total_bytes", 0) for h in hosts),
        "total_cores": sum(h.get("cpu", {}).get("cores", 0) for h in hosts),
        "differing_hosts": [name for name, h in answered.items() if shape(h) != first],
    }
