"""Shared by the command-line entry points: the name a command was run under, and Ctrl-C."""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable


def prog(module: str, script: str) -> str:
    """``lesiongan-train`` when run as that console script, else ``python -m gan.train``, so that
    usage and error lines name the command the user typed."""
    return script if Path(sys.argv[0]).name == script else f"python -m {module}"


def entry_point(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap a command's ``main(argv) -> exit code``: Ctrl-C before the command's own handling of
    it (while torch loads, data decode, a checkpoint opens) ends with one line and exit code 130,
    not a KeyboardInterrupt traceback; data warnings (skipped files...) print as one plain
    ``warning: ...`` line each, not Python's warning format with a source line; the folder locks
    (:func:`gan.fileio.lock_folder`) the command took are released when it returns. A command module
    whose import is light (torch imported inside ``main``, as :mod:`gan.train` does) is covered from its
    first moment; one that imports torch at its top can still be interrupted while that import runs."""
    @functools.wraps(main)
    def run(argv: list[str] | None = None) -> int:
        from gan.fileio import held_locks, release_locks_taken_since  # the standard library only

        before = set(held_locks())
        try:
            from gan.data.dataset import show_warnings_plainly  # imports torch: seconds in which Ctrl-C may come

            with show_warnings_plainly():
                return main(argv)
        except KeyboardInterrupt:
            print("interrupted (Ctrl-C)", file=sys.stderr)
            return 130
        finally:  # the folder locks the command took (a run folder's) end with it
            release_locks_taken_since(before)
    return run
