"""LesionGAN dashboard: `streamlit run dashboard/app.py`.

This file only wires the pages together; each page is a thin script in views/ over dashboard.lib.
"""

import sys
import traceback
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the repo root that holds gan/ and eval/.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402

st.set_page_config(page_title="LesionGAN", page_icon=":material/biotech:", layout="wide")

HERE = Path(__file__).parent / "views"  # not pages/: that name turns on Streamlit's v1 auto-pages
nav = st.navigation([
    st.Page(HERE / "overview.py", title="Overview", icon=":material/table_chart:", default=True),
    st.Page(HERE / "training.py", title="Training", icon=":material/monitoring:"),
    st.Page(HERE / "gallery.py", title="Gallery", icon=":material/photo_library:"),
    st.Page(HERE / "generate.py", title="Generate", icon=":material/auto_awesome:"),
    st.Page(HERE / "evaluation.py", title="Evaluation", icon=":material/query_stats:"),
])
ui.style()
ui.sidebar()
try:
    nav.run()
except Exception as e:  # noqa: BLE001 - last resort: a message, never a traceback (st.stop/rerun are BaseException)
    traceback.print_exc()  # the details go to the server's console
    st.error(f"This page hit an unexpected error: {type(e).__name__}: {e}")
