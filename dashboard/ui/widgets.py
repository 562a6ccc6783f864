"""Small widgets shared by the pages: model and reference pickers, image rows, charts, page-wide CSS."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import streamlit as st

from dashboard.discovery import WEIGHTS_HINT, ModelEntry
from dashboard.results import Results
from dashboard.ui import loaders


def pick_model(entries: Sequence[ModelEntry], key: str, label: str = "Model",
               need_weights: bool = False) -> ModelEntry | None:
    """A model selectbox; with ``need_weights`` only models with a loadable file are offered."""
    choices = [e for e in entries if e.weights is not None] if need_weights else list(entries)
    if not choices:
        st.info(f"None of these models has weights yet ({WEIGHTS_HINT}).")
        return None
    names = [e.name for e in choices]
    # Open on the first model that loads, so a broken file does not greet the user.
    index = next((i for i, e in enumerate(choices) if loaders.generator(e)[0] is not None), 0) if need_weights else 0
    name = st.selectbox(label, names, index=index, key=key)
    return choices[names.index(name)]


def reference_picker(results: Results | None, models: Sequence[str], key: str) -> str:
    """A "scored against" choice when some model was also scored against a validation fingerprint."""
    refs = list(dict.fromkeys(r for m in models for r in (results.references(m) if results else [])))
    if len(refs) < 2:
        return refs[0] if refs else "train"
    return st.radio("Scored against", refs, horizontal=True, key=key,
                    help="train: the training split's fingerprint (as in the report); validation: the held-out "
                         "split's, where a validation fingerprint was shipped.")


def style() -> None:
    """Page-wide CSS: samples are sent at their own size and scaled up by the browser without blur
    (encoding 64 native 64 px PNGs is ~6x cheaper than encoding upscaled copies)."""
    st.html("<style>[data-testid='stImage'] img, [data-testid='stFullScreenFrame'] img "
            "{image-rendering: pixelated;}</style>")


def image_row(images: np.ndarray, captions: Sequence[str] | None = None, width: int = 96) -> None:
    """A wrapping row of small images shown ``width`` px wide."""
    # PNG, not Streamlit's default JPEG for arrays: compression artefacts would pass for GAN artefacts.
    st.image(list(images), caption=list(captions) if captions else None, width=width, output_format="PNG")


def plot(fig: Any, key: str | None = None) -> None:
    st.plotly_chart(fig, key=key, config={"displaylogo": False})
