"""The report's HTML in a real browser: Debian's headless Chromium, driven by selenium, opens
the file of a real replay with the network blocked, and every chart must have drawn its data
points (not only exist), with no request leaving the file."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from analytics_fixtures import SmallReplay
from rich.console import Console

from analytics.report import run_report

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CLOSED_PORT = 9  # discard: nothing listens, so any request through the proxy fails
CHARTS = 6  # equity, drawdown, P&L distribution, monthly heat map, fill rates, rejects

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]  # ~7 s: Chromium starts

# per chart: its traces' data sizes and what the SVG drew for them
DRAWN = """
return [...document.querySelectorAll('.js-plotly-plot')].map(p => ({
  types: (p.data || []).map(t => t.type),
  sizes: (p.data || []).map(t => Math.max((t.x || []).length, (t.y || []).length,
                                          (t.z || []).length)),
  lines: [...p.querySelectorAll('.scatterlayer .trace .js-line')]
           .filter(e => (e.getAttribute('d') || '').length > 2).length,
  markers: p.querySelectorAll('.scatterlayer .trace .point').length,
  bars: [...p.querySelectorAll('.barlayer .point path')]
           .filter(e => (e.getAttribute('d') || '').length > 2).length,
  heatmaps: [...p.querySelectorAll('.heatmaplayer image, .hm image')]
           .filter(e => (e.getAttribute('href') || e.getAttribute('xlink:href') || '')
                        .startsWith('data:image')).length,
  rendered: !!p._fullLayout,
}));
"""


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"no browser: {CHROMIUM} and {CHROMEDRIVER} are needed "
                    "(Debian: apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--proxy-server=http://127.0.0.1:{CLOSED_PORT}", "--proxy-bypass-list=<-loopback>",
                "--no-first-run", "--disable-background-networking"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _requested_urls(driver) -> list[str]:
    import json

    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def test_every_chart_draws_its_data_offline(browser, small_replay: SmallReplay,
                                            tmp_path: Path) -> None:
    files = run_report(small_replay.db, small_replay.cfg, out=tmp_path,
                       console=Console(file=open("/dev/null", "w")))  # noqa: SIM115
    html = files[0]
    # moved away from the database and its tables: the page needs nothing but itself
    alone = tmp_path / "alone" / "report.html"
    alone.parent.mkdir()
    shutil.copyfile(html, alone)
    browser.get(alone.as_uri())
    deadline = time.monotonic() + 30
    while True:
        charts = browser.execute_script(DRAWN)
        if (len(charts) == CHARTS and all(c["rendered"] for c in charts)) \
                or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(charts) == CHARTS, charts
    kinds = sorted({t for c in charts for t in c["types"]})
    assert kinds == ["bar", "heatmap", "histogram", "scatter"]
    for c in charts:
        assert c["rendered"], c
        assert c["types"] and all(n > 0 for n in c["sizes"]), c  # every trace has data
        drawn = {"scatter": c["lines"], "bar": c["bars"], "histogram": c["bars"],
                 "heatmap": c["heatmaps"]}
        for t in set(c["types"]):
            assert drawn[t] > 0, (t, c)
        if "scatter" in c["types"]:
            assert c["lines"] == c["types"].count("scatter"), c  # one drawn line per curve
    urls = _requested_urls(browser)
    assert urls and all(u.startswith(("file:", "data:", "blob:")) for u in urls), urls
    entries = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
        ".concat(performance.getEntriesByType('navigation').map(e => e.name))")
    assert all(u.startswith(("file:", "data:", "blob:")) for u in entries), entries
