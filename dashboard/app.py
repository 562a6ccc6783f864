"""LesionGAN dashboard: `streamlit run dashboard/app.py`.

This file only wires the pages together; each page is a thin script in views/ that draws what the
compute modules of ``dashboard`` return.
"""

import traceback
from pathlib import Path

import streamlit as st

from dashboard.ui import loaders, sidebar, widgets

HERE = Path(__file__).resolve().parent  # resolved: AppTest.from_file("dashboard/app.py") sets a relative __file__
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
loaders.tune_allocator()
widgets.style()
sidebar.sidebar()
try:
    nav.run()
except Exception as e:  # noqa: BLE001 - last resort: a message, never a traceback (st.stop/rerun are BaseException)
    traceback.print_exc()  # the details go to the server's console
    st.error(f"This page hit an unexpected error: {type(e).__name__}: {e}")
