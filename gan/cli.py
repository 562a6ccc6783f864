"""Shared by the command-line entry points: the name a command was run under."""
from __future__ import annotations

import sys
from pathlib import Path


def prog(module: str, script: str) -> str:
    """``lesiongan-train`` when run as that console script, else ``python -m gan.train``, so that
    usage and error lines name the command the user typed."""
    return script if Path(sys.argv[0]).name == script else f"python -m {module}"
