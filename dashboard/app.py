"""LesionGAN dashboard: `streamlit run dashboard/app.py` (shared folders: see dashboard/roots.py).

This file only wires the pages together; each page is a thin script in views/ that draws what the
compute modules of ``dashboard`` return.
"""

import logging
import os
from pathlib import Path

import streamlit as st

from dashboard.testing import RAISE_ENV
from dashboard.ui import loaders, sidebar, widgets

HERE = Path(__file__).resolve().parent  # resolved: AppTest.from_file("dashboard/app.py") sets a relative __file__
LOG = logging.getLogger("lesiongan.dashboard")
TESTING = bool(os.environ.get(RAISE_ENV))
# Visitors never see a traceback, an exception's type or its message (they name server paths): the
# details go to the server's log. Tests keep them, to see what failed.
st.set_option("client.showErrorDetails", "full" if TESTING else "none")
# A local favicon: an icon name would make the browser fetch it from a font CDN (which fails offline).
ICON = HERE / "favicon.png"
st.set_page_config(page_title="LesionGAN", page_icon=str(ICON) if ICON.is_file() else None, layout="wide")

# Not pages/: that name turns on Streamlit's v1 auto-pages.
VIEWS = HERE / "views"
nav = st.navigation([
    st.Page(VIEWS / "overview.py", title="Overview", icon=":material/table_chart:", default=True),
    st.Page(VIEWS / "training.py", title="Training", icon=":material/monitoring:"),
    st.Page(VIEWS / "gallery.py", title="Gallery", icon=":material/photo_library:"),
    st.Page(VIEWS / "generate.py", title="Generate", icon=":material/auto_awesome:"),
    st.Page(VIEWS / "evaluation.py", title="Evaluation", icon=":material/query_stats:"),
    st.Page(VIEWS / "safety.py", title="Utility and privacy", icon=":material/shield:", url_path="utility-privacy"),
])
try:
    loaders.tune_allocator()
    widgets.style()
    notice = sidebar.sidebar()
    if notice:
        st.warning(notice, icon=":material/block:")
    nav.run()
except Exception:  # noqa: BLE001 - last resort (st.stop and st.rerun are BaseException and pass through)
    if TESTING:
        raise  # a test sees the failure as an exception, never as a calm page
    LOG.exception("the %s page failed", nav.title)
    st.error("This page hit an unexpected error; its details are in the server's log. Reload the page, or pick "
             "other models in the sidebar.", icon=":material/error:")
