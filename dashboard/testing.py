"""Helpers the dashboard's tests share (like :mod:`eval.testing`): run the app through Streamlit's
AppTest on a folder of models, and check that a page ran without an error."""
from __future__ import annotations

from pathlib import Path

APP = str(Path(__file__).resolve().parent / "app.py")
TIMEOUT = 30  # seconds per AppTest run; a cold run imports torch, plotly and the models


def run_app(monkeypatch, folder: Path, page: str | None = None, timeout: float = TIMEOUT):
    """The app on ``folder`` (as ``$LESIONGAN_CHECKPOINTS``), caches cleared, opened on ``page``
    (a file name in ``dashboard/views`` without ``.py``; default the Overview)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboard import discovery

    monkeypatch.setenv(discovery.ENV_CHECKPOINTS, str(folder))
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
