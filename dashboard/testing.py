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
