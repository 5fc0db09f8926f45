"""The size of a run's page and how long it takes to build and to draw, for the synthetic
one-hour run of 16 hosts sampled every 10 s (support.synthetic_run: 5 epochs, 2
checkpoints, 128 MPI ranks, 5,776 samples, 6,361 events). Goals: at most 5 MB, drawn in
under 2 s.

    .venv/bin/python perf/report_size.py [--repeat 5]

(a) the page's size, and how much of it is BokehJS;
(b) building it in-process (reading the run, then the page), median of --repeat, after one
    warm-up; and `mlpstorage reports html` end to end (a new process: imports included);
(c) from a recording alone (events.jsonl: the time series from its sample events);
(d) drawing it in headless Chromium from file://: navigation start to every figure drawn,
    the first (cold) load and the median of --repeat warm loads.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlpstorage.reports.page import build_page, write_html
from mlpstorage.reports.record import read_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # `support`: tests/support

from support.browser import start_chromium, time_to_drawn_ms  # noqa: E402
from support.synthetic_run import SyntheticRun, write_synthetic_run  # noqa: E402

MB = 1e6


def timed(work, repeat: int) -> tuple[float, object]:
    work()  # warm up: imports, BokehJS read once
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = SyntheticRun()
        run_dir = write_synthetic_run(Path(tmp) / "run", spec)
        recording = run_dir / "events.jsonl"
        page = run_dir / "report.html"

        read_s, record = timed(lambda: read_run(run_dir), args.repeat)
        build_s, html = timed(lambda: build_page(record, page), args.repeat)
        write_html(html, page)
        alone_s, _ = timed(lambda: build_page(read_run(recording), run_dir / "alone.html"), args.repeat)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mlpstorage", "reports", "html", str(run_dir), "-o",
                        str(run_dir / "cli.html")], check=True, capture_output=True)
        cli_s = time.perf_counter() - started

        bokeh_js = html.index("</script>", html.index("<script")) - html.index("<script")
        size = page.stat().st_size
        print(f"recording: {spec.hosts} hosts, {spec.duration_s / 3600:g} h, a sample every {spec.interval_s:g} s: "
              f"{recording.stat().st_size / MB:.2f} MB, {sum(1 for _ in open(recording))} events")
        print(f"(a) report.html: {size / MB:.2f} MB ({size / 5e6:.0%} of the 5 MB budget), "
              f"of which BokehJS {bokeh_js / MB:.2f} MB, the run's data and the page {(size - bokeh_js) / MB:.2f} MB")
        print(f"(b) build in-process: read the run {read_s:.2f} s + the page {build_s:.2f} s = "
              f"{read_s + build_s:.2f} s; `mlpstorage reports html` end to end {cli_s:.2f} s")
        print(f"(c) from the recording alone (read + page): {alone_s:.2f} s")

        driver = start_chromium()
        try:
            cold = time_to_drawn_ms(driver, page)
            warm = [time_to_drawn_ms(driver, page) for _ in range(args.repeat)]
        finally:
            driver.quit()
        print(f"(d) drawn in headless Chromium: first load {cold:.0f} ms, then median {statistics.median(warm):.0f} ms "
              f"(min {min(warm):.0f}, max {max(warm):.0f}; goal under 2000 ms)")


if __name__ == "__main__":
    main()
