"""The manifest that ``gan.synthesize`` writes into a synthetic set (``manifest.json``), read here: by
``gan.synthesize`` before it overwrites a folder, and by the data loader, which warns about a set that
was never finished."""
from __future__ import annotations

import json
import re
from pathlib import Path

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "lesiongan-synthetic-set"
MANIFEST_VERSION = 2  # 2: a random run id, "complete" and "support_files"; --overwrite trusts nothing older
RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")


def read_own_manifest(out: Path) -> dict:
    """The manifest of the set that ``gan.synthesize`` wrote in ``out``: its format id and the random run
    id that only this command writes, with the list of files it wrote.

    Raises:
        ValueError: naming ``--out``, when ``out`` holds no such manifest (none, another program's
            ``manifest.json``, or one without a run id), so nothing in it is provably this command's.
    """
    p = out / MANIFEST
    if not p.is_file() or p.is_symlink():
        raise ValueError(f"--out {out}: not empty and holds no {MANIFEST}, so it is not a set written by "
                         f"gan.synthesize; refusing to overwrite it")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"--out {out}: its {MANIFEST} is not a set written by gan.synthesize (no format "
                         f"{MANIFEST_FORMAT!r}); refusing to overwrite anything in it")
    if not (isinstance(doc.get("run_id"), str) and RUN_ID_RE.match(doc["run_id"]) and isinstance(doc.get("files"), list)
            and isinstance(doc.get("support_files", []), list)):
        raise ValueError(f"--out {out}: its {MANIFEST} carries no run id and file list of gan.synthesize, so nothing "
                         f"proves which files it wrote; refusing to overwrite (remove the folder yourself)")
    return doc


def set_status(folder: Path) -> str | None:
    """``"complete"`` or ``"incomplete"`` for a folder holding a set this command wrote (its manifest is
    written first, marked incomplete, and again when the last image is written); None for any other
    folder."""
    try:
        doc = read_own_manifest(folder)
    except ValueError:
        return None
    return "complete" if doc.get("complete") is True else "incomplete"
