"""Where the files that ship with LesionGAN lie, whatever the current folder: commands whose defaults
name a shipped file (the dermoscopy encoder, the trained models) resolve them here, never relative to
the folder they were started from."""
from __future__ import annotations

from pathlib import Path


def checkpoints_dir() -> Path:
    """The shipped ``checkpoints/`` folder (trained models, the dermoscopy encoder, fingerprints): beside
    the ``gan`` package, as in a source checkout or an editable install."""
    return Path(__file__).resolve().parents[1] / "checkpoints"
