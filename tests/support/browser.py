"""A real browser for the tests and perf/report_size.py: Debian's headless Chromium driven by
Selenium (scripts/setup.sh installs both), pages opened from file:// and checked for what a
person would see: console errors, anything loaded from elsewhere, figures that drew."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1400, 900

# Drawn: the document loaded and, on a page with Bokeh figures, every figure's view finished.
DRAWN = """
if (document.readyState !== "complete") return false;
if (!window.Bokeh) return true;
const views = [...Bokeh.index.roots];
return Bokeh.documents.length > 0 && views.length > 0 && views.every((v) => v.has_finished());
"""
# Per Bokeh figure (by name): its glyphs with their number of data points, its lines, its size,
# and how many pixels of its canvas are coloured (lines and bars; axes, grids, text are grey).
FIGURES = """
const found = {};
for (const view of (window.Bokeh ? Bokeh.index.roots : [])) {
  if (!view.canvas_view || !view.model.name) continue;
  const canvas = view.canvas_view.primary.canvas;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let coloured = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const [r, g, b, a] = [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]];
    if (a > 0 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured++;
  }
  found[view.model.name] = {
    width: canvas.width, height: canvas.height, coloured,
    glyphs: view.model.renderers.map((r) => [r.glyph.type, r.data_source.get_length(), r.name]),
    // a MultiLine's lines by name, with their number of points
    lines: Object.fromEntries(view.model.renderers.filter((r) => r.glyph.type === "MultiLine").flatMap(
      (r) => r.data_source.data.name.map((name, i) => [name, r.data_source.data.xs[i].length]))),
  };
}
return found;
"""
# Milliseconds from navigation to drawn (DRAWN, then two frames so that the canvas is painted).
TIME_TO_DRAWN = """
const done = arguments[arguments.length - 1];
const drawn = new Function(arguments[0]);
const poll = () => {
  let ok = false;
  try { ok = drawn(); } catch (e) {}
  if (ok) requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now())));
  else setTimeout(poll, 5);
};
poll();
"""


@dataclass
class LoadedPage:
    """A page as the browser showed it."""

    path: Path
    errors: list[str]  # the console's errors (SEVERE), uncaught exceptions included
    resources: list[str]  # every URL the page loaded, itself first
    screenshot: Path
    figures: dict = field(default_factory=dict)  # Bokeh figures by name (see FIGURES)


def start_chromium():
    """A headless Chromium under Selenium; quit() it when done."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},{HEIGHT}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # A Service with the driver's path keeps Selenium Manager (which would download one) off.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def load_page(driver, path: Path, screenshot: Path, timeout_s: float = 60) -> LoadedPage:
    """Opens path from file://, waits until it has drawn, saves a screenshot of the whole page,
    and returns what the console said, what was loaded, and the figures."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get("about:blank")
    driver.get_log("browser")  # what an earlier page said
    driver.get(Path(path).absolute().as_uri())
    WebDriverWait(driver, timeout_s, poll_frequency=0.05).until(lambda d: d.execute_script(DRAWN))
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(WIDTH, min(height + 100, 12000))
    driver.save_screenshot(str(screenshot))
    driver.set_window_size(WIDTH, HEIGHT)
    errors = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    resources = driver.execute_script("return [location.href, ...performance.getEntriesByType('resource')"
                                      ".map((e) => e.name)]")
    return LoadedPage(Path(path), errors, resources, Path(screenshot), driver.execute_script(FIGURES))


def time_to_drawn_ms(driver, path: Path) -> float:
    """Milliseconds from starting to load path until everything on it is drawn."""
    driver.get("about:blank")
    driver.get(Path(path).absolute().as_uri())
    return driver.execute_async_script(TIME_TO_DRAWN, DRAWN)
