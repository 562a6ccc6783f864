"""Helpers the dashboard's tests share (like :mod:`eval.testing`): run the app through Streamlit's
AppTest on a folder of models, and check that a page ran without an error.

In test mode (``$LESIONGAN_DASHBOARD_RAISE`` set, as :func:`run_app` does) the app's last-resort guard
re-raises what a page raised, so ``at.exception`` sees it; served to visitors, the guard shows one calm
line and logs the details.
"""
from __future__ import annotations

from pathlib import Path

APP = str(Path(__file__).resolve().parent / "app.py")
TIMEOUT = 30  # seconds per AppTest run; a cold run imports torch, plotly and the models
RAISE_ENV = "LESIONGAN_DASHBOARD_RAISE"


def run_app(monkeypatch, folder: Path, page: str | None = None, timeout: float = TIMEOUT, raise_errors: bool = True):
    """The app on ``folder`` (as ``$LESIONGAN_CHECKPOINTS``), caches cleared, opened on ``page``
    (a file name in ``dashboard/views`` without ``.py``; default the Overview). ``raise_errors``: test
    mode (a page's exception reaches ``at.exception``); False: as served to visitors."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboard import discovery

    monkeypatch.setenv(discovery.ENV_CHECKPOINTS, str(folder))
    if raise_errors:
        monkeypatch.setenv(RAISE_ENV, "1")
    else:
        monkeypatch.delenv(RAISE_ENV, raising=False)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=timeout).run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    return at


def assert_ok(at) -> None:
    """No exception and no error element on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc, timeout: float = 90.0) -> None:
    import time
    import urllib.request

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


def serve(folder: Path | None, cwd: Path, env: dict | None = None, args: tuple[str, ...] = ()):
    """The dashboard as ``lesiongan-dashboard`` serves it (its Streamlit settings as flags) on a free
    localhost port, started in ``cwd`` (not the repo: the app must not depend on it) on ``folder``
    (``$LESIONGAN_CHECKPOINTS``; None: the shipped checkpoints); ``args``: the app's own arguments
    (``--runs DIR``). A context manager that yields the URL and stops the server."""
    import contextlib
    import os
    import subprocess
    import sys

    from dashboard.launch import streamlit_argv

    @contextlib.contextmanager
    def run():
        port = free_port()
        e = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        e.pop(RAISE_ENV, None)  # as served to visitors
        if folder is not None:
            e["LESIONGAN_CHECKPOINTS"] = str(folder)
        else:
            e.pop("LESIONGAN_CHECKPOINTS", None)
        # As lesiongan-dashboard starts it: the dashboard's Streamlit settings as flags (wherever it starts),
        # on a free localhost port.
        cmd = [sys.executable, "-m", "streamlit", *streamlit_argv([
            *args, f"--server.port={port}", "--server.address=127.0.0.1", "--server.headless=true",
            "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"])]
        proc = subprocess.Popen(cmd, cwd=cwd, env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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

    return run()
