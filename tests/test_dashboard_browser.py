"""End to end: `streamlit run dashboard/app.py` in a real headless Chromium (Debian's, via Playwright).

Starts the server on a free localhost port against a tiny demo folder, opens the Generate page, checks
the images are on the page with alt text, generates with another seed, downloads the ZIP (with its
manifest), and checks that no request of the visit (Overview, then Generate) leaves localhost.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHROMIUM = "/usr/bin/chromium"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f} s")


@pytest.fixture
def server(tmp_path):
    from dashboard.demo import make_demo_folder

    folder = make_demo_folder(tmp_path / "models")
    port = _free_port()
    env = {**os.environ, "LESIONGAN_CHECKPOINTS": str(folder), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / "app.py"),
           "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    # Run from elsewhere than the repo root: the app must not depend on the cwd.
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_ALL_LOADED = """() => {
    const imgs = [...document.querySelectorAll("[data-testid='stImage'] img")].slice(0, 16);
    return imgs.length === 16 && imgs.every(i => i.complete && i.naturalWidth > 0);
}"""


# 16 samples and the 8-step interpolation below them.
_PAGE_DRAWN = """() => document.querySelectorAll("[data-testid='stImage'] img").length === 24"""


def _sample_srcs(page) -> list[str]:
    return page.locator("[data-testid='stImage'] img").evaluate_all("els => els.map(e => e.src)")


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def test_generate_page_in_chromium(server):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            # The Overview first: its tables, charts-free samples and favicon load too.
            page.goto(server, timeout=60_000)
            page.get_by_text("The report vs this project").wait_for(timeout=60_000)
            page.locator("[data-testid='stImage'] img").first.wait_for(timeout=60_000)
            page.goto(f"{server}/generate", timeout=60_000)
            page.get_by_text("dcgan-demo · DCGAN (Radford et al.) · 32×32 · seeds 0–15").wait_for(timeout=60_000)
            captions = page.locator("[data-testid='stImageCaption']")
            captions.filter(has_text="seed 15").first.wait_for(timeout=30_000)
            page.wait_for_function(_PAGE_DRAWN, timeout=30_000)
            before = _sample_srcs(page)
            assert len(before) == 24 and all(src.endswith(".png") for src in before[:16])  # lossless samples
            # The 16 samples really load as 32 px images (a broken src never gets a naturalWidth).
            page.wait_for_function(_ALL_LOADED, timeout=30_000)
            widths = page.locator("[data-testid='stImage'] img").evaluate_all("els => els.map(e => e.naturalWidth)")
            assert widths[:16] == [32] * 16, widths
            # Every image says what it is (generated, which model, which seed) to a screen reader.
            alts = page.locator("img").evaluate_all("els => els.map(e => e.getAttribute('alt'))")
            assert alts and all(a and a.strip() for a in alts), alts
            assert "Generated by dcgan-demo, seed 0" in alts and "Generated by dcgan-demo, seed 15" in alts
            # The fullscreen button of the image list shows on hover, clear of the caption line above it.
            page.locator("[data-testid='stImage'] img").nth(3).hover()
            toolbar = page.locator("[data-testid='stElementToolbar']").first
            toolbar.wait_for(timeout=10_000)
            tb, cap = toolbar.bounding_box(), page.get_by_text("dcgan-demo · DCGAN").bounding_box()
            assert tb["y"] >= cap["y"] + cap["height"], (tb, cap)

            # Generate again with another seed: new images, new captions.
            seed = page.get_by_role("spinbutton", name="Seed", exact=True)
            seed.fill("100")
            seed.press("Enter")
            page.get_by_text("seeds 100–115").wait_for(timeout=30_000)
            captions.filter(has_text="seed 115").first.wait_for(timeout=30_000)
            page.wait_for_function(_PAGE_DRAWN, timeout=30_000)
            after = _sample_srcs(page)
            assert len(after) == 24 and set(after[:16]).isdisjoint(before[:16])

            # The ZIP holds one PNG per image, named by seed.
            button = page.get_by_role("button", name="Download 16 PNGs (ZIP)")
            button.wait_for(timeout=30_000)
            for attempt in range(3):
                # A click that lands while Streamlit is still re-rendering the button after the seed
                # change can be swallowed on a loaded machine; the third miss fails the test.
                try:
                    with page.expect_download(timeout=20_000) as dl:
                        button.click()
                    break
                except PlaywrightTimeout:
                    if attempt == 2:
                        raise
            data = Path(dl.value.path()).read_bytes()
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                assert zf.namelist() == [f"images/seed{s:04d}.png" for s in range(100, 116)] + ["manifest.json"]
                files = json.loads(zf.read("manifest.json"))["files"]
                assert [(f["file"], f["seed"]) for f in files] == [(f"images/seed{s:04d}.png", s) for s in range(100, 116)]
            assert dl.value.suggested_filename == "dcgan-demo-seeds100-115.zip"
            # Nothing left the machine: no usage statistics, no font or favicon CDN.
            hosts = {urllib.parse.urlsplit(u).hostname for u in requests if u.startswith(("http:", "https:", "ws"))}
            assert hosts and hosts <= LOCAL_HOSTS, sorted(u for u in requests
                                                          if urllib.parse.urlsplit(u).hostname not in LOCAL_HOSTS)
        finally:
            browser.close()
