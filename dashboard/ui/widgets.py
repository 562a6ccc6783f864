"""Small widgets shared by the pages: model and reference pickers, image rows, charts, page-wide CSS."""
from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
import streamlit as st

from dashboard.discovery import WEIGHTS_HINT, ModelEntry
from dashboard.formatting import plain_message, plain_words
from dashboard.results import Results
from dashboard.ui import loaders


def pick_model(entries: Sequence[ModelEntry], key: str, label: str = "Model",
               need_weights: bool = False, default: str | None = None) -> ModelEntry | None:
    """A model selectbox; with ``need_weights`` only models with a loadable file are offered; ``default``:
    the model to open on (e.g. the run that is training)."""
    choices = [e for e in entries if e.weights is not None] if need_weights else list(entries)
    if not choices:
        st.info(f"None of these models has weights yet ({WEIGHTS_HINT}).")
        return None
    names = [e.name for e in choices]
    # Open on the first model that loads, so a broken file does not greet the user.
    index = next((i for i, e in enumerate(choices) if loaders.generator(e)[0] is not None), 0) if need_weights else 0
    if default in names:
        index = names.index(default)
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


# Captions and help text: 8.1:1 on white, 7.2:1 on the sidebar's #f0f2f6 (WCAG AA asks 4.5:1), drawn at full
# opacity: Streamlit 1.67 draws captions at opacity 0.6, which would composite this colour to about 3:1.
# tests/test_dashboard_served.py measures the composited colour in Chromium.
CAPTION_COLOUR = "#4b505c"


def style() -> None:
    """Page-wide CSS: samples are sent at their own size and scaled up by the browser without blur
    (encoding 64 native 64 px PNGs is ~6x cheaper than encoding upscaled copies); captions in a colour
    with at least 4.5:1 contrast as rendered (full opacity); the fullscreen button of an image list sits
    above it, not on its captions."""
    st.html(
        "<style>"
        "[data-testid='stImage'] img, [data-testid='stFullScreenFrame'] img {image-rendering: pixelated;}"
        "[data-testid='stCaptionContainer'], [data-testid='stCaptionContainer'] *, "
        "[data-testid='stImageCaption'], [data-testid='stImageCaption'] *, "
        f"[data-testid='stWidgetLabel'] p {{color: {CAPTION_COLOUR} !important; opacity: 1 !important;}}"
        # An image list's fullscreen button inside its top-right corner, not on the caption line above.
        "[data-testid='stElementContainer']:has([data-testid='stImage']) [data-testid='stElementToolbar'] "
        "{top: 0.25rem; right: 0.25rem;}"
        # The gallery grid keeps its columns side by side on a phone (Streamlit stacks columns below
        # 640 px, which would turn the grid into one long list of unlabelled images).
        ".st-key-ga_grid [data-testid='stHorizontalBlock'] {flex-wrap: nowrap !important; gap: 0.4rem;}"
        ".st-key-ga_grid [data-testid='stColumn'] {min-width: 0 !important; flex: 1 1 0 !important;}"
        ".st-key-ga_grid [data-testid='stElementContainer'], .st-key-ga_grid [data-testid='stImage'], "
        ".st-key-ga_grid [data-testid='stImageContainer'], .st-key-ga_grid [data-testid='stImage'] img "
        "{max-width: 100% !important; min-width: 0 !important; height: auto !important;}"
        "</style>"
    )


def image_row(images: np.ndarray, captions: Sequence[str] | None = None, width: int = 96,
              alts: Sequence[str] | None = None) -> None:
    """A wrapping row of small images shown ``width`` px wide; ``alts``: each image's alt text (real or
    generated, which model, which seed), else the captions."""
    # PNG, not Streamlit's default JPEG for arrays: compression artefacts would pass for GAN artefacts.
    st.image(list(images), caption=list(captions) if captions else None, width=width, output_format="PNG",
             alt=list(alts) if alts else (list(captions) if captions else None))


_IMAGE_RE = re.compile(r"!\[([^\]]*)\]\s*(?:\([^)]*\)|\[[^\]]*\])")
# An HTML tag or comment (``<img ...>``, ``</b>``, ``<!-- -->``), never a comparison such as ``JSD <= 0.01``.
# A link to a file beside the card (``[docs](../../docs/x.md)``): the page has no such address, so its text.
_LOCAL_LINK_RE = re.compile(r"(?<!!)\[([^\]]*)\]\((?![a-z][a-z0-9+.-]*:)[^)]*\)", re.IGNORECASE)
_HTML_RE = re.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")


def safe_markdown(markdown: str, display=None) -> str:
    """Markdown from a file (a model card) as the pages render it: no image of any kind (a remote one
    would make every visitor's browser fetch it; the alt text stays, in brackets), links to files beside
    the card as their text (the page has no such address), no HTML tags, a
    ``~`` never read as strikethrough, no server paths (:func:`dashboard.formatting.plain_message`) and
    the code's own words put plainly outside code (:func:`dashboard.formatting.plain_words`)."""
    out, fence = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
            out.append(line)
            continue
        if not fence:
            line = _IMAGE_RE.sub(lambda m: f"[image: {m.group(1) or 'no description'}]", line)
            line = _LOCAL_LINK_RE.sub(r"\1", line)
            line = _HTML_RE.sub("", line)
            line = plain_words(plain_message(line, display))
            line = line.replace("~", "\\~")
        out.append(line)
    return "\n".join(out)


def demote_headings(markdown: str, levels: int = 3) -> str:
    """Markdown with every ATX heading ``levels`` deeper (a model card's "# Title" inside a page section
    must not become a second h1)."""
    out, fence = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        if not fence and line.startswith("#"):
            hashes = len(line) - len(line.lstrip("#"))
            if line[hashes:hashes + 1] in (" ", ""):
                line = "#" * min(hashes + levels, 6) + line[hashes:]
        out.append(line)
    return "\n".join(out)


def plot(fig: Any, key: str | None = None) -> None:
    st.plotly_chart(fig, key=key, config={"displaylogo": False})
