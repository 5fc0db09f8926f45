"""The reports at a thousand hosts: for the synthetic one-hour run sampled every 10 s
(support.synthetic_run) of 16, 128, 512 and 1,024 hosts, the page's size, reading the run
and building the page in-process, `mlpstorage reports html` end to end (a new process,
imports included) and, with --draw, drawing it in headless Chromium; then `reports
reportgen` over results trees of 1,000 and 10,000 run folders (support.synthetic_results).
Goals for 1,024 hosts: the page at most 5 MB, built in at most 5 s, drawn in at most 2 s;
reportgen over 10,000 folders in at most 30 s.

    .venv/bin/python perf/thousand_hosts_reports.py [--hosts 16 128 512 1024] [--folders 1000 10000] [--draw]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlpstorage.reports.page import build_page, write_html
from mlpstorage.reports.record import read_run
from mlpstorage.reports.reportgen import reportgen

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # `support`: tests/support

from support.synthetic_results import write_results_tree  # noqa: E402
from support.synthetic_run import SyntheticRun, write_synthetic_run  # noqa: E402

MB = 1e6


def page_figures(root: Path, hosts: int, draw) -> dict:
    run_dir = write_synthetic_run(root / f"run-{hosts}", SyntheticRun(hosts=hosts))
    recording = run_dir / "events.jsonl"
    started = time.perf_counter()
    record = read_run(run_dir)
    read_s = time.perf_counter() - started
    page = run_dir / "report.html"
    started = time.perf_counter()
    write_html(build_page(record, page), page)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mlpstorage", "reports", "html", str(run_dir), "-o", str(page)], check=True,
                   capture_output=True)
    cli_s = time.perf_counter() - started
    return {"hosts": hosts, "recording_mb": recording.stat().st_size / MB, "page_mb": page.stat().st_size / MB,
            "read_s": read_s, "build_s": build_s, "cli_s": cli_s, "drawn_ms": draw(page) if draw else None}


def reportgen_s(root: Path, folders: int) -> float:
    tree = write_results_tree(root / f"tree-{folders}", folders)
    started = time.perf_counter()
    reportgen(tree, root / f"out-{folders}", style="plain", out=io.StringIO(), err=io.StringIO())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="*", default=[16, 128, 512, 1024])
    parser.add_argument("--folders", type=int, nargs="*", default=[1000, 10_000])
    parser.add_argument("--draw", action="store_true", help="draw each page in headless Chromium (3 warm loads)")
    args = parser.parse_args()
    driver = None
    if args.draw:
        from support.browser import start_chromium, time_to_drawn_ms

        driver = start_chromium()
    draw = (lambda page: min(time_to_drawn_ms(driver, page) for _ in range(4))) if driver else None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            pages = [page_figures(Path(tmp), hosts, draw) for hosts in args.hosts]
        finally:
            if driver is not None:
                driver.quit()
        print("hosts | recording | report.html | read the run | build the page | `reports html` end to end | drawn")
        for row in pages:
            drawn = f"{row['drawn_ms']:.0f} ms" if row["drawn_ms"] is not None else "-"
            print(f"{row['hosts']:>5} | {row['recording_mb']:7.1f} MB | {row['page_mb']:6.2f} MB | {row['read_s']:6.2f} s"
                  f" | {row['build_s']:6.2f} s | {row['cli_s']:6.2f} s | {drawn}")
        for folders in args.folders:
            print(f"reportgen over {folders:,} run folders: {reportgen_s(Path(tmp), folders):.2f} s")


if __name__ == "__main__":
    main()
