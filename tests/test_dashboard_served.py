"""The dashboard as served to visitors (`streamlit run dashboard/app.py` in Debian's headless Chromium, via
Playwright; no browser download): every page at 1440x900 and 390x844 with hostile addresses, and what a
visitor must never see.

Each visit asserts: no exception element, no "Traceback", no internal word (``ci_low``, ``kimg``, ``G_ema``,
a server path), one line for a path outside the shared folders, captions at 4.5:1 or more as rendered
(the text colour composited with every ancestor's opacity over the background it is drawn on), and the
Evaluation page's headline numbers equal to what ``results.json`` holds.

The walk of every page at both sizes with every hostile address is ``slow``; the quick test visits each
page once with one of them.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt install chromium)"),
]

PAGES = ("", "training", "gallery", "generate", "evaluation", "utility-privacy")
SIZES = ((1440, 900), (390, 844))
OUTSIDE = "outside the folders this server shares"
HOSTILE = (("folder", "/proc/1"), ("runs", "/etc"), ("folder", "x" * 300), ("folder", "%00"),
           ("folder", "%C3%BCn%C3%AF/%E8%B7%AF%E5%BE%84"), ("folder", "~"), ("folder", "checkpoints/../../../etc"),
           ("runs", "/proc/self/cwd"))
HOME = str(Path.home()).rstrip("/") + "/"  # the server's home folder, never shown
INTERNAL = ("Traceback", "ci_low", "kimg", "G_ema", HOME, "/proc", "results.json", "stats.jsonl",
            "metrics.jsonl", "pixel_64", "pixel_32")

# Composited colour of every caption: its colour (with alpha) times the opacity of it and each ancestor,
# over the first opaque background behind it.
_CAPTION_CONTRAST = """() => {
  const rgba = c => { const v = c.match(/[\\d.]+/g).map(Number); return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; };
  const lum = c => { const l = c.map(x => { x /= 255; return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
                     return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
  const out = [];
  const sel = "[data-testid='stCaptionContainer'] p, [data-testid='stImageCaption'], [data-testid='stWidgetLabel'] p";
  for (const el of document.querySelectorAll(sel)) {
    if (!el.textContent.trim() || !el.getClientRects().length) continue;
    let [r, g, b, a] = rgba(getComputedStyle(el).color);
    for (let n = el; n; n = n.parentElement) a *= parseFloat(getComputedStyle(n).opacity);
    let bg = [255, 255, 255];
    for (let n = el; n; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c[3] > 0.99) { bg = c.slice(0, 3); break; }
    }
    const fg = [r, g, b].map((x, i) => a * x + (1 - a) * bg[i]);
    const [hi, lo] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    out.push([el.textContent.slice(0, 40), (hi + 0.05) / (lo + 0.05)]);
  }
  return out;
}"""


# The page's visible text outside code (commands, file names in backticks).
_WORDS = """() => {
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const out = [];
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const el = n.parentElement;
    if (el && !el.closest('code, pre') && el.checkVisibility()) out.push(n.textContent);
  }
  return out.join(' ');
}"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from dashboard.demo import make_demo_folder

    return make_demo_folder(tmp_path_factory.mktemp("served") / "models")


@pytest.fixture(scope="module")
def server(demo):
    from dashboard.testing import serve

    with serve(demo, cwd=demo.parent) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM,
                              args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield b
        finally:
            b.close()


def _settle(page, timeout: float = 120.0) -> float:
    """Wait until the page has run (a title, then no running indicator or spinner for a second); the
    seconds it took."""
    t0 = time.monotonic()
    page.wait_for_selector("h1", timeout=timeout * 1000)
    quiet = 0
    while time.monotonic() - t0 < timeout:
        busy = page.locator("[data-testid='stStatusWidget'], [data-testid='stSpinner'], [data-stale='true']").count()
        quiet = quiet + 1 if busy == 0 else 0
        if quiet >= 4:
            return time.monotonic() - t0
        time.sleep(0.25)
    raise TimeoutError(f"{page.url} still running after {timeout:.0f} s")


def _visit(browser, url: str, size: tuple[int, int], private: Path) -> tuple[str, object]:
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.goto(url, timeout=120_000)
    _settle(page)
    text = page.inner_text("body")
    assert page.locator("[data-testid='stException']").count() == 0, (url, size)
    # Commands are shown as typed (their flags, such as --kimg, included); every other word is checked.
    words = page.evaluate(_WORDS)
    assert page.locator("h1").first.inner_text().strip() in words  # the walk sees the page
    assert "Traceback" not in text and str(private) not in text and HOME not in text, (url, size)
    for word in INTERNAL:
        assert word not in words, (url, size, word)
    for _ in range(3):  # a rerun fades elements and brings them back with a short transition: the steady state
        low = [c for c in page.evaluate(_CAPTION_CONTRAST) if c[1] < 4.5]
        if not low:
            break
        time.sleep(2)
    assert not low, (url, size, low)
    return text, page


def _one_line(page, url) -> None:
    alerts = [a for a in page.locator("[data-testid='stAlert'] [data-testid='stMarkdownContainer']").all_inner_texts()
              if OUTSIDE in a]
    assert len(alerts) == 1 and alerts[0].strip().count("\n") == 0, (url, alerts)


@pytest.mark.slow  # 26 s; the fast suite checks every outside path in tests/test_dashboard_roots.py, and the
# slow walk below does every page at both sizes with every hostile address
def test_each_page_once_with_a_path_outside_the_shared_folders(server, browser, demo):
    for i, name in enumerate(PAGES):
        key, value = HOSTILE[i % 2]
        url = f"{server}/{name}?{key}={value}"
        text, page = _visit(browser, url, SIZES[0], demo.parent)
        _one_line(page, url)
        page.close()
    # A data set path outside them, typed into the Gallery's field: the same one line.
    _, page = _visit(browser, f"{server}/gallery", SIZES[0], demo.parent)
    page.get_by_role("textbox", name="Data set path (optional)").fill("/etc")
    page.keyboard.press("Enter")
    _settle(page)
    alerts = [a for a in page.locator("[data-testid='stAlert']").all_inner_texts() if OUTSIDE in a]
    assert alerts == [f"Data set path: That path is {OUTSIDE}."], alerts
    assert "passwd" not in page.inner_text("body")
    page.close()


def test_headline_numbers_are_the_ones_results_json_holds(server, browser, demo):
    row = next(r for r in json.loads((demo / "results.json").read_text())["rows"]
               if r["model"] == "dcgan-demo" and r["reference"] == "train")
    from dashboard.comparison import fmt_number
    from dashboard.results import arrow
    from eval.registry import catalogue

    _, page = _visit(browser, f"{server}/evaluation", SIZES[0], demo.parent)
    tiles = {m.locator("[data-testid='stMetricLabel'] [data-testid='stMarkdownContainer']").inner_text().strip():
             m.locator("[data-testid='stMetricValue']").inner_text().strip()
             for m in page.locator("[data-testid='stMetric']").all()}
    page.close()
    checked = 0
    for spec in catalogue():
        label = next((k for k in tiles if k == f"{spec.label} {arrow(spec)}"), None)
        if label is None:
            continue
        v = row.get(spec.key)
        assert tiles[label] == ("n/a" if v is None else fmt_number(v)), (spec.label, tiles[label], v)
        checked += v is not None
    assert checked >= 8  # the colour, diversity, copy-rate and encoder metrics of the demo


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_page_at_both_sizes_with_every_hostile_address(server, browser, demo, size):
    for name in PAGES:
        text, page = _visit(browser, f"{server}/{name}", size, demo.parent)
        assert OUTSIDE not in text
        page.close()
        for key, value in HOSTILE:
            url = f"{server}/{name}?{key}={value}"
            _, page = _visit(browser, url, size, demo.parent)
            _one_line(page, url)
            page.close()


@pytest.mark.slow
def test_utility_page_first_visit_on_the_shipped_checkpoints_is_under_10_s(browser, tmp_path):
    from dashboard.testing import serve
    from gan.assets import find_checkpoints

    if find_checkpoints() is None:
        pytest.skip("no shipped checkpoints here")
    with serve(None, cwd=tmp_path) as url:
        # A server that has served a page before (the Training page loads no generator and makes no sample):
        # its libraries are imported, which the first request after a start pays for once.
        warm = browser.new_page(viewport={"width": 1440, "height": 900})
        warm.goto(f"{url}/training", timeout=120_000)
        _settle(warm)
        warm.close()
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/utility-privacy", timeout=120_000)
        seconds = _settle(page)
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.get_by_text("Privacy: membership-inference audit").count() == 1
        page.close()
    print(f"Utility and privacy, first visit on the shipped checkpoints: {seconds:.1f} s")
    assert seconds < 10, seconds


def _config(path: Path, kimg: float) -> None:
    (path / "config.json").write_text(json.dumps({"format": 1, "model": "dcgan", "model_cfg": {"resolution": 32},
                                                  "train": {"kimg": kimg, "log_kimg": 1}}))


@pytest.mark.slow
def test_a_live_run_counts_its_age_stops_when_its_writer_goes_and_a_new_run_appears_unasked(browser, demo, tmp_path):
    """No reload button: the status strip redraws itself while a run trains, and with "Follow training"
    on, a run that starts in the shared runs folder joins the sidebar's list; the chosen run stays in
    the address."""
    import re

    from dashboard.testing import serve
    from gan.fileio import held_lock
    from gan.rundir import RunDir

    runs = tmp_path / "runs"
    run = RunDir(runs / "00000-dcgan-live-32").open_for_writing()
    _config(run.path, 10)
    for i in range(1, 4):
        run.append_stats({"nimg": 1000 * i, "kimg": i, "time_s": 30.0 * i, "loss_D": 1.0, "loss_G": 2.0})

    def age(page) -> int:
        text = page.locator(".st-key-tr_status").inner_text()
        assert "running · 3k of 10k images (30%)" in text, text
        return int(re.search(r"updated (\d+) s ago", text).group(1))

    with serve(demo, cwd=tmp_path, args=("--runs", str(runs))) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/training?runs=runs&folder=runs/00000-dcgan-live-32", timeout=120_000)
        _settle(page)
        first = age(page)
        time.sleep(12)
        assert age(page) >= first + 8  # counted on its own, no visitor action
        held_lock(run.path).release()  # the writer is gone
        time.sleep(12)
        assert "stopped · 3k of 10k images" in page.locator(".st-key-tr_status").inner_text()
        page.get_by_text("Follow training").click()
        _settle(page)
        new = RunDir(runs / "00001-dcgan-new-32").open_for_writing()
        _config(new.path, 5)
        time.sleep(14)
        _settle(page)
        page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
        options = page.locator("[role='option']").all_inner_texts()
        assert "runs/00001-dcgan-new-32" in options and "runs/00000-dcgan-live-32" in options, options
        assert "folder=runs/00000-dcgan-live-32" in page.url
        page.close()
        held_lock(new.path).release()


@pytest.mark.slow
def test_the_zip_of_a_conditional_model_labels_every_file(browser, tmp_path):
    """The download the utility use case needs, as a visitor gets it: a folder per class, and the manifest
    (gan.synthesize's format) naming each file's class and seed as the captions showed them."""
    import io
    import zipfile

    from dashboard import sampling
    from dashboard.testing import serve
    from gan import load_generator
    from test_dashboard_views import _cond_generator

    gen = _cond_generator(tmp_path / "models" / "cond" / "generator.pt")
    want = sampling.seed_labels(load_generator(gen), list(range(16)), None)
    with serve(tmp_path / "models", cwd=tmp_path) as url:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"{url}/generate", timeout=120_000)
        _settle(page)
        captions = page.locator("[data-testid='stImageCaption']").all_inner_texts()[:16]
        assert captions == [f"seed {s} · {c.replace('_', ' ')}" for s, c in enumerate(want)], captions
        page.get_by_text(sampling.LAYOUTS["imagefolder"]).click()
        _settle(page)
        with page.expect_download(timeout=60_000) as dl:
            page.get_by_role("button", name="Download 16 PNGs with their classes (ZIP)").click()
        with zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes())) as zf:
            files = json.loads(zf.read("manifest.json"))["files"]
            assert [(f["file"], f["class"], f["seed"]) for f in files] == [
                (f"{c}/seed{s:04d}.png", c, s) for s, c in enumerate(want)]
            assert set(zf.namelist()) == {f["file"] for f in files} | {"manifest.json"}
        page.close()
