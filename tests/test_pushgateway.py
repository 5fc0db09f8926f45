"""--metrics-push: a run's final metrics pushed to a Prometheus Pushgateway as it ends
(renderers/pushgateway.py), checked against Debian's real prometheus-pushgateway scraped by a
real Prometheus; the URL checks, and a gateway that is down or silent."""

import json
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from mlpstorage.cli.parser import build_parser
from mlpstorage.cli.wiring import make_renderers
from mlpstorage.emitter import Emitter
from mlpstorage.errors import UsageError
from renderers.pushgateway import PushgatewayRenderer, PushTarget, without_credentials
from support.otlp_sink import base_env
from support.ports import free_port
from support.prometheus import installed, running_prometheus
from support.silent_server import SilentServer
from support.waiting import wait_for
from test_dlio import TINY_RUN, dataset, mlpstorage, only_run_dir  # noqa: F401 (dataset: the fixture)

AU = "mlpstorage_dlio_accelerator_utilization_percent"
THROUGHPUT = "mlpstorage_dlio_throughput_per_second"  # the unit {sample}/s: the exporter drops the annotation
IO_THROUGHPUT = "mlpstorage_dlio_io_throughput_megabytes_per_second"


@pytest.fixture
def pushgateway():
    """Debian's prometheus-pushgateway on loopback, with no persistence: its URL."""
    port = free_port()
    proc = subprocess.Popen([installed("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: gateway_text(url) is not None, "the Pushgateway to answer", timeout=20)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


PROMETHEUS_CONFIG = """global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ["{target}"]
"""


@pytest.fixture
def prometheus(tmp_path, pushgateway):
    """A real Prometheus scraping the Pushgateway every second (honor_labels: the pushed job
    and instance are kept, as the Pushgateway's documentation says): (gateway URL, API URL)."""
    with running_prometheus(tmp_path, PROMETHEUS_CONFIG.format(target=pushgateway.removeprefix("http://"))) as api:
        yield pushgateway, api


def gateway_text(url: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:
            return answer.read().decode()
    except OSError:
        return None


def query(api: str, promql: str) -> list:
    try:
        with urllib.request.urlopen(f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": promql}), timeout=5) as a:
            return json.loads(a.read())["data"]["result"]
    except OSError:
        return []


def run_with_au(emitter: Emitter, run_id: str, au: float) -> None:
    with emitter.run("mlpstorage test run", {"mlpstorage.benchmark": "test", "mlpstorage.run_id": run_id}):
        emitter.set_run_attributes({"mlpstorage.metric.train_au_mean_percentage": au})


def pushed_lines(url: str, name: str) -> list[str]:
    return [line for line in (gateway_text(url) or "").splitlines() if line.startswith(name + "{")]


# ----- the URL ---------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["ftp://gateway:9091", "gateway:9091", "http://", "http://gateway:99999",
                                 "file:///tmp/x", "http://:9091/"])
def test_a_url_that_is_not_http_or_https_with_a_host_is_refused(url):
    with pytest.raises(UsageError, match="--metrics-push .*not an http or https URL with a host"):
        PushTarget(url, "--metrics-push")


def test_a_password_in_the_url_is_basic_authentication_and_never_shown():
    target = PushTarget("https://ci:s3cr%40t@gateway.example:9091/prefix/", "--metrics-push")
    assert (target.url, target.username, target.password) == ("https://gateway.example:9091/prefix", "ci", "s3cr@t")
    assert "s3cr" not in target.shown
    with pytest.raises(UsageError) as refused:
        PushTarget("ftp://ci:hunter2@gateway", "MLPSTORAGE_METRICS_PUSH")
    assert "hunter2" not in str(refused.value) and "MLPSTORAGE_METRICS_PUSH" in str(refused.value)
    assert without_credentials("http://u:p@h:1/x@y") == "http://h:1/x@y"


def test_the_option_or_the_variable_adds_the_renderer_to_a_run_but_not_to_a_replay(monkeypatch):
    monkeypatch.delenv("MLPSTORAGE_METRICS_PUSH", raising=False)
    args = build_parser().parse_args(["exec", "--render", "none", "--metrics-push", "http://127.0.0.1:1", "--", "true"])
    assert [type(r).__name__ for r in make_renderers(args, replaying=False)] == ["NoneRenderer", "PushgatewayRenderer"]
    assert [type(r).__name__ for r in make_renderers(args, replaying=True)] == ["NoneRenderer"]
    monkeypatch.setenv("MLPSTORAGE_METRICS_PUSH", "https://gateway:9091")
    args = build_parser().parse_args(["exec", "--render", "none", "--", "true"])
    [_, pushing] = make_renderers(args, replaying=False)
    assert pushing.target.url == "https://gateway:9091"
    monkeypatch.setenv("MLPSTORAGE_METRICS_PUSH", "gateway:9091")
    with pytest.raises(UsageError, match="MLPSTORAGE_METRICS_PUSH 'gateway:9091'"):
        make_renderers(args, replaying=False)


# ----- a gateway that is down or silent --------------------------------------------------------
def test_a_gateway_that_refuses_is_one_warning_and_the_run_goes_on():
    warnings = []
    renderer = PushgatewayRenderer(PushTarget(f"http://127.0.0.1:{free_port()}", "--metrics-push"), warn=warnings.append)
    run_with_au(Emitter([renderer]), "r1", 90.0)
    assert len(warnings) == 1 and warnings[0].startswith("metrics push to http://127.0.0.1:") and "refused" in warnings[0]


def test_a_gateway_that_never_answers_is_given_up_after_the_push_timeout(monkeypatch):
    monkeypatch.setattr("renderers.pushgateway.PUSH_TIMEOUT_S", 0.5)
    server = SilentServer("127.0.0.1")
    warnings = []
    try:
        renderer = PushgatewayRenderer(PushTarget(f"http://127.0.0.1:{server.port}", "--metrics-push"),
                                       warn=warnings.append)
        run_with_au(Emitter([renderer]), "r1", 90.0)
    finally:
        server.stop()
    assert server.accepted == 1
    assert len(warnings) == 1 and warnings[0].endswith("failed: timed out"), warnings


# ----- a real Pushgateway ----------------------------------------------------------------------
@pytest.mark.slow
def test_each_run_replaces_the_previous_runs_values_of_its_host(pushgateway):
    """--loops: a push per run, with PUT, so the group holds the last run's values only."""
    emitter = Emitter([PushgatewayRenderer(PushTarget(pushgateway, "--metrics-push"))])
    run_with_au(emitter, "first", 91.5)
    [line] = pushed_lines(pushgateway, AU)
    assert line.endswith(" 91.5") and 'job="mlpstorage"' in line
    run_with_au(emitter, "second", 42.25)
    [line] = pushed_lines(pushgateway, AU)
    assert line.endswith(" 42.25")
    [info] = pushed_lines(pushgateway, "mlpstorage_run_info")
    assert 'run_id="second"' in info and 'status="ok"' in info and 'benchmark="test"' in info
    emitter.close()


@pytest.mark.slow
def test_a_real_training_run_pushes_and_prometheus_has_its_final_au(dataset, prometheus, tmp_path):  # noqa: F811
    gateway, api = prometheus
    results = tmp_path / "results"
    env = base_env(MLPSTORAGE_METRICS_PUSH=gateway)
    result = mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(dataset / "data"),
                        "--num-accelerators", "2", "--results-dir", str(results), "--render", "plain",
                        "--timeseries-interval", "0.5", *TINY_RUN, env=env)
    assert result.returncode == 0, result.stderr
    assert "metrics push" not in result.stderr  # no warning
    run_dir = only_run_dir(results, "training", "unet3d", "run")
    summary = json.loads((run_dir / "summary.json").read_text())["metric"]
    instance = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()

    # The run's mean has no epoch label; each epoch's AU is a series of its own.
    selector = f'{{job="mlpstorage",instance="{instance}",dlio_epoch=""}}'
    found = []
    deadline = time.monotonic() + 30  # Prometheus applies a new target on a 5 s tick
    while not found and time.monotonic() < deadline:
        found = query(api, AU + selector)
        time.sleep(0.5)
    assert found, f"Prometheus never had {AU}{selector}; the gateway has: {pushed_lines(gateway, AU)}"
    assert float(found[0]["value"][1]) == summary["train_au_mean_percentage"]
    [throughput] = query(api, THROUGHPUT + selector)
    assert float(throughput["value"][1]) == summary["train_throughput_mean_samples_per_second"]
    [io_throughput] = query(api, IO_THROUGHPUT + selector)
    assert float(io_throughput["value"][1]) == summary["train_io_mean_MB_per_second"]
    epochs = query(api, f'{AU}{{job="mlpstorage",dlio_epoch!=""}}')
    assert sorted(e["metric"]["dlio_epoch"] for e in epochs) == ["1", "2"]
    [info] = query(api, f'mlpstorage_run_info{{instance="{instance}"}}')
    assert info["metric"]["run_id"] == f"training-unet3d-run-{run_dir.name}" and info["metric"]["status"] == "ok"
    # the last sample of the host, and the resource as target_info
    assert query(api, 'system_linux_memory_available_bytes{job="mlpstorage",host_name="localhost"}')
    [target] = query(api, f'target_info{{job="mlpstorage",instance="{instance}"}}')
    assert target["metric"]["host_name"] == instance and target["metric"]["service_name"] == "mlpstorage"
