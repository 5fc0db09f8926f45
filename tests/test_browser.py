"""The pages in a real browser: headless Chromium (Debian's, installed by scripts/setup.sh)
opens each from file:// with no network, and a test fails on any console error, on anything
loaded from elsewhere, and when the timeline or a plot did not draw. Screenshots are saved in
each test's temporary folder.

For another page (index.html): `page = load_page(browser, path, tmp_path / "index.png")`, then
`assert_drawn_offline(page)` and checks of its own (load_page, from support.browser,
works for any page, with or without Bokeh figures).
"""

from __future__ import annotations

import json

import pytest
from test_dlio import STAGES, TINY, mlpstorage
from test_report_page import EVIL_HOST, EVIL_NAME, make_evil_run, rewrite_events, without_time_series

from mlpstorage.reports import timeline as tl
from mlpstorage.reports.page import write_run_page
from mlpstorage.reports.record import read_run
from support.browser import FIGURES, LoadedPage, load_page, start_chromium, time_to_drawn_ms
from support.otlp_sink import base_env
from support.synthetic_run import SyntheticRun, host_names, write_synthetic_run
from test_iotrace_reports import SMALL, align, mark_traced, traced

pytestmark = pytest.mark.slow
SVG_RUN = SyntheticRun(hosts=3, duration_s=120, interval_s=10, ranks_per_host=2, epochs=2)

@pytest.fixture(scope="module")
def browser():
    driver = start_chromium()
    yield driver
    driver.quit()


def assert_drawn_offline(page: LoadedPage) -> None:
    assert page.errors == []
    assert all(url.startswith(("file://", "data:", "blob:")) for url in page.resources), page.resources
    assert page.screenshot.stat().st_size > 10_000
    for name, figure in page.figures.items():
        assert figure["width"] > 0 and figure["height"] > 0, name
        assert figure["coloured"] > 200, f"{name} drew nothing"


def test_load_page_catches_console_errors_and_anything_loaded_from_elsewhere(browser, tmp_path):
    page_path = tmp_path / "broken.html"
    page_path.write_text('<!DOCTYPE html><html><head><script src="http://127.0.0.1:9/cdn.js"></script></head>'
                         '<body><script>throw new Error("boom")</script></body></html>')
    page = load_page(browser, page_path, tmp_path / "broken.png")
    assert any("boom" in error for error in page.errors)
    assert any("127.0.0.1:9/cdn.js" in error for error in page.errors)
    assert "http://127.0.0.1:9/cdn.js" in page.resources
    with pytest.raises(AssertionError):
        assert_drawn_offline(page)


def timeline_names(driver) -> list[str]:
    return driver.execute_script(
        "const tl = Bokeh.documents[0].get_model_by_name('timeline');"
        "return tl.renderers.find((r) => r.glyph.type === 'Quad').data_source.data.name;")


# ----- the pages -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hour_of_sixteen_hosts(tmp_path_factory):
    """The synthetic one-hour run of 16 hosts sampled every 10 s (as perf/report_size.py)."""
    run_dir = write_synthetic_run(tmp_path_factory.mktemp("hour") / "run", SyntheticRun())
    return write_run_page(run_dir)


def test_a_one_hour_sixteen_host_page_draws_every_figure_offline(browser, hour_of_sixteen_hosts, tmp_path):
    page = load_page(browser, hour_of_sixteen_hosts, tmp_path / "report.png")
    assert_drawn_offline(page)
    assert hour_of_sixteen_hosts.stat().st_size < 5_000_000
    assert set(page.figures) == {"timeline", "total read_Bps+write_Bps", "total rx_Bps+tx_Bps",
                                 "total mem_available_bytes", "total load1", "read_Bps", "write_Bps", "rx_Bps",
                                 "tx_Bps", "mem_available_bytes", "load1"}
    names = timeline_names(browser)
    assert len(names) == 1 + 4 + 2 * (1 + 16) + 5 + 2 + 128  # run, stages, collections, epochs, checkpoints, ranks
    for metric in ("read_Bps", "write_Bps", "rx_Bps", "tx_Bps", "mem_available_bytes", "load1"):
        lines = page.figures[metric]["lines"]
        assert lines == {f"node{i:02d}": 361 for i in range(1, 17)}, metric
    assert page.figures["total read_Bps+write_Bps"]["lines"] == {"Read": 361, "Write": 361}
    assert page.figures["total load1"]["lines"] == {"Load (1 min)": 361}


def test_a_one_hour_thousand_host_page_draws_the_spread_and_finds_a_host(browser, tmp_path, record_property):
    """1,024 hosts x one hour at 10 s: every figure draws offline, the plots of the hosts are
    spreads with the 3 slowest alone, the page stays within 5 MB, and typing a host's name in
    the table of hosts leaves its row alone. The draw time is printed (and kept as the test's
    drawn_ms property), not asserted: this machine is shared."""
    run_dir = write_synthetic_run(tmp_path / "run", SyntheticRun(hosts=1024))
    page_path = write_run_page(run_dir)
    page = load_page(browser, page_path, tmp_path / "thousand.png")
    assert_drawn_offline(page)
    assert page_path.stat().st_size <= 5_000_000
    for metric in ("read_Bps", "write_Bps", "rx_Bps", "tx_Bps", "mem_available_bytes", "load1"):
        glyphs = [glyph[:2] for glyph in page.figures[metric]["glyphs"]]
        assert glyphs == [["VArea", 361], ["VArea", 361], ["Line", 361], ["MultiLine", 3]], metric
        assert list(page.figures[metric]["lines"].values()) == [361] * 3, metric  # the 3 slowest, alone
    assert len(timeline_names(browser)) < 60
    browser.execute_script("const box = document.getElementById('host-search'); box.value = 'node517';"
                           "box.dispatchEvent(new Event('input'));")
    shown = browser.execute_script("return [...document.querySelectorAll('#host-table tr:not(:first-child)')]"
                                   ".filter((row) => row.style.display !== 'none').map((row) => row.cells[0].textContent)")
    assert shown == ["node517"]
    drawn = [time_to_drawn_ms(browser, page_path) for _ in range(3)]
    record_property("drawn_ms", drawn)
    record_property("page_bytes", page_path.stat().st_size)
    print(f"one-hour 1,024-host page: {page_path.stat().st_size / 1e6:.2f} MB, drawn in "
          f"{', '.join(f'{ms:.0f}' for ms in drawn)} ms")


def io_figures_in_their_section(driver) -> list[str]:
    """The names of the Bokeh roots drawn inside the page's I/O section."""
    return driver.execute_script("return [...Bokeh.index.roots].filter((v) => v.el.closest('#io'))"
                                 ".map((v) => v.model.name)")


def test_a_traced_one_hour_sixteen_host_page_draws_its_io_section(browser, tmp_path, record_property):
    """With --io-trace: the latency per host of the operation chosen, the heatmap of 128 ranks
    over the hour, the epochs of 16 hosts; another operation chosen redraws the lines. The page
    stays within 5 MB; the time it takes to draw is measured here (printed, and kept as the
    test's drawn_ms property), not asserted: this machine is shared."""
    run_dir = write_synthetic_run(tmp_path / "run", SyntheticRun(io_trace=True))
    page_path = write_run_page(run_dir)
    page = load_page(browser, page_path, tmp_path / "traced.png")
    assert_drawn_offline(page)
    assert page_path.stat().st_size <= 5_000_000
    assert io_figures_in_their_section(browser) == ["io operation", "io latency", "io heatmap", "io epochs"]
    assert set(page.figures["io latency"]["lines"]) == set(host_names(16))
    assert page.figures["io heatmap"]["glyphs"] == [["Image", 1, None]]
    assert page.figures["io heatmap"]["coloured"] > 100_000  # its cells: the colour bar alone is some 6,000 pixels
    assert [glyph[:2] for glyph in page.figures["io epochs"]["glyphs"]] == [["VBar", 80]] * 3 + [["Scatter", 80]]
    reads = page.figures["io latency"]["lines"]
    browser.execute_script("Bokeh.documents[0].get_model_by_name('io operation').value = 'fsync'")
    fsyncs = browser.execute_script(FIGURES)["io latency"]
    assert set(fsyncs["lines"]) == set(host_names(16)) and fsyncs["lines"] != reads and fsyncs["coloured"] > 200
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    drawn = [time_to_drawn_ms(browser, page_path) for _ in range(3)]
    record_property("drawn_ms", drawn)
    record_property("page_bytes", page_path.stat().st_size)
    print(f"traced one-hour 16-host page: {page_path.stat().st_size / 1e6:.2f} MB, drawn in "
          f"{', '.join(f'{ms:.0f}' for ms in drawn)} ms")


def test_the_io_section_of_a_real_trace_draws(browser, tmp_path):
    """The recorded traces of a real tiny run (2 ranks, 2 epochs): a row and a bar per rank."""
    run_dir = write_synthetic_run(tmp_path / "run", SMALL)
    mark_traced(run_dir, align(run_dir, traced(run_dir)))
    page = load_page(browser, write_run_page(run_dir), tmp_path / "real-trace.png")
    assert_drawn_offline(page)
    assert io_figures_in_their_section(browser) == ["io operation", "io latency", "io heatmap", "io epochs"]
    assert set(page.figures["io latency"]["lines"]) == {"vm"}
    assert [glyph[:2] for glyph in page.figures["io epochs"]["glyphs"]] == [["VBar", 4]] * 3 + [["Scatter", 4]]
    rows = browser.execute_script("return [...document.querySelectorAll('#io table.io-percentiles tr.all')]"
                                  ".map((r) => r.cells[0].innerText)")
    assert rows[:4] == ["read posix", "open posix", "close posix", "lseek posix"]


def test_hovering_a_bar_shows_its_duration_and_a_script_in_a_name_stays_text(browser, tmp_path):
    page_path = write_run_page(make_evil_run(tmp_path))
    page = load_page(browser, page_path, tmp_path / "evil.png")
    assert_drawn_offline(page)
    tooltip = hover_bar(browser, EVIL_NAME)
    assert EVIL_NAME in tooltip and "duration" in tooltip and "38.0 s" in tooltip
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.execute_script("return document.body.innerText").count("<script>window.__pwned") >= 1
    assert page.figures["read_Bps"]["lines"][EVIL_HOST] == 13
    tooltip = hover_line(browser, "read_Bps", EVIL_HOST, 6)
    assert EVIL_HOST in tooltip and "MB/s" in tooltip
    browser.save_screenshot(str(tmp_path / "evil-hover.png"))
    assert browser.execute_script("return window.__pwned === undefined")
    assert load_page(browser, page_path, tmp_path / "evil-again.png").errors == []


def test_a_page_with_nothing_to_plot_draws_its_svg_timeline_and_a_script_in_a_name_stays_text(browser, tmp_path):
    run_dir = without_time_series(write_synthetic_run(tmp_path / "run", SVG_RUN))
    rewrite_events(run_dir, lambda e: {**e, "name": EVIL_NAME} if e.get("name") == "checkpoint 1" else e)
    page = load_page(browser, write_run_page(run_dir), tmp_path / "svg.png")
    assert_drawn_offline(page)
    assert page.figures == {} and browser.execute_script("return window.Bokeh === undefined")
    drawn = browser.execute_script("""
        const bars = [...document.querySelectorAll("svg.timeline g.bars rect")];
        const evil = bars.find((r) => r.parentNode.querySelector("title").textContent.startsWith(arguments[0]));
        evil.scrollIntoView();
        const box = evil.getBoundingClientRect();
        const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
        return {bars: bars.length, drawn: bars.filter((r) => r.getBBox().width > 0).length,
                hovered: hit.parentNode.querySelector("title").textContent,
                width: document.querySelector("svg.timeline").getBoundingClientRect().width};""", EVIL_NAME)
    bars = sum(len(lane.bars) for lane in tl.lanes(read_run(run_dir)))
    assert drawn["bars"] == drawn["drawn"] == bars and drawn["width"] == 1150
    assert drawn["hovered"].startswith(EVIL_NAME + "\nstart +") and "\nduration " in drawn["hovered"]
    assert browser.execute_script("return window.__pwned === undefined")


def hover_bar(driver, name: str) -> str:
    """Moves the mouse to the middle of the timeline bar called name; returns the tooltip's text."""
    data = driver.execute_script("return Bokeh.documents[0].get_model_by_name('timeline').renderers"
                                 ".find((r) => r.glyph.type === 'Quad').data_source.data")
    i = data["name"].index(name)
    return hover(driver, "timeline", (data["left"][i] + data["right"][i]) / 2, (data["top"][i] + data["bottom"][i]) / 2)


def hover_line(driver, figure: str, name: str, index: int) -> str:
    """Moves the mouse onto point index of the line called name in figure; returns the tooltip's text."""
    data = driver.execute_script("return Bokeh.documents[0].get_model_by_name(arguments[0]).renderers"
                                 ".find((r) => r.glyph.type === 'MultiLine').data_source.data", figure)
    i = data["name"].index(name)
    return hover(driver, figure, data["xs"][i][index], data["ys"][i][index])


def hover(driver, figure: str, x: float, y: float) -> str:
    from selenium.webdriver.common.action_chains import ActionBuilder

    point = driver.execute_script("""
        const view = [...Bokeh.index.roots].find((v) => v.model.name === arguments[0]);
        view.el.scrollIntoView();
        const box = view.canvas_view.primary.canvas.getBoundingClientRect();
        const [x, y] = [view.frame.x_scale.compute(arguments[1]), view.frame.y_scale.compute(arguments[2])];
        return [box.left + x, box.top + y];
        """, figure, x, y)
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(point[0]), int(point[1]))
    actions.perform()
    return driver.execute_script("""
        const texts = [];
        const walk = (root) => root.querySelectorAll("*").forEach((e) => {
          if (e.shadowRoot) walk(e.shadowRoot);
          if (e.classList && [...e.classList].some((c) => c.startsWith("bk-tooltip"))) texts.push(e.textContent);
        });
        walk(document);
        return texts.join(" | ");""")


def test_a_compare_page_overlays_each_runs_series(browser, tmp_path):
    runs = [write_synthetic_run(tmp_path / name, SyntheticRun(hosts=2, duration_s=duration, interval_s=10, seed=seed))
            for name, duration, seed in (("a", 120, 1), ("b", 90, 2), ("c", 60, 3))]
    page_path = tmp_path / "compare.html"
    result = mlpstorage("reports", "compare", *map(str, runs), "--html", str(page_path), env=base_env())
    assert result.returncode == 0, result.stderr
    page = load_page(browser, page_path, tmp_path / "compare.png")
    assert_drawn_offline(page)
    assert set(page.figures) == {"read_Bps", "write_Bps", "rx_Bps", "tx_Bps", "mem_available_bytes", "load1"}
    lengths = sorted(page.figures["read_Bps"]["lines"].values())
    assert lengths == [7, 10, 13]  # a line per run, with its samples


# ----- a real run ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dlio_run(tmp_path_factory):
    """A real tiny unet3d run with DLIO under mpirun: 2 ranks, 3 epochs, sampled every 0.5 s."""
    root = tmp_path_factory.mktemp("dlio-page")
    common = ["--data-dir", str(root / "data"), "--results-dir", str(root / "results"), "--render", "plain"]
    result = mlpstorage("training", "datagen", "--model", "unet3d", "--num-processes", "2", *common, *TINY)
    assert result.returncode == 0, result.stderr
    result = mlpstorage("training", "run", "--model", "unet3d", "--num-accelerators", "2", *common,
                        "--timeseries-interval", "0.5", *TINY, "reader.batch_size=2", "reader.read_threads=1",
                        "train.epochs=3", "train.computation_time=0.05")
    assert result.returncode == 0, result.stderr
    [run_dir] = (root / "results" / "training" / "unet3d" / "run").iterdir()
    return run_dir


def test_a_real_run_writes_a_page_with_its_stages_epochs_ranks_and_samples(browser, dlio_run, tmp_path):
    page = load_page(browser, dlio_run / "report.html", tmp_path / "dlio.png")
    assert_drawn_offline(page)
    names = timeline_names(browser)
    assert [n for n in names if n in STAGES] == STAGES
    assert [n for n in names if n.startswith("epoch ")] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert sorted(n for n in names if n.startswith("dlio rank ")) == ["dlio rank 0", "dlio rank 1"]
    badge = browser.execute_script("const b = document.querySelector('#verdict .badge');"
                                   "return b && [b.innerText, getComputedStyle(b).backgroundColor];")
    assert badge and badge[0] in ("CLOSED", "OPEN", "INVALID") and badge[1] != "rgba(0, 0, 0, 0)", badge
    [timeseries] = dlio_run.glob("*_timeseries.json")
    [(host, samples)] = json.loads(timeseries.read_text())["hosts"].items()
    assert len(samples) >= 4
    for metric in ("read_Bps", "write_Bps", "rx_Bps", "tx_Bps", "mem_available_bytes", "load1"):
        assert page.figures[metric]["lines"] == {host: len(samples)}, metric


def test_the_index_of_all_runs_draws_offline_and_links_each_runs_page(browser, dlio_run, tmp_path):
    """reportgen over the real run's results tree: index.html opens offline, lists the run with
    its verdict and a throughput sparkline, and its link leads to the run's page, which draws."""
    results = dlio_run.parents[3]
    output = tmp_path / "report"
    result = mlpstorage("reports", "reportgen", "--results-dir", str(results), "--output-dir", str(output),
                        env=base_env())
    assert result.returncode == 0, result.stderr
    page = load_page(browser, output / "index.html", tmp_path / "index.png")
    assert_drawn_offline(page)
    rows = browser.execute_script("return [...document.querySelectorAll('tbody tr')].map(r => r.innerText)")
    assert any("unet3d" in row and any(v in row for v in ("CLOSED", "OPEN", "INVALID")) for row in rows), rows
    sparklines = browser.execute_script(
        "return [...document.querySelectorAll('svg')].filter(s => s.getBoundingClientRect().width > 0).length")
    assert sparklines >= 1
    links = browser.execute_script("return [...document.querySelectorAll('a')].map(a => a.href)")
    [link] = [l for l in links if l.endswith("/report.html")]
    assert link == (dlio_run / "report.html").as_uri()
    assert_drawn_offline(load_page(browser, dlio_run / "report.html", tmp_path / "linked.png"))
