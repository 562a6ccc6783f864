"""``lesiongan-dashboard``: start Streamlit on the installed dashboard, from any folder.

    lesiongan-dashboard                                   # http://localhost:8501
    lesiongan-dashboard --runs runs --data /data/isic2017 --server.port 8600

It runs ``streamlit run`` on the package's ``app.py`` with the dashboard's settings (the repository's
``.streamlit/config.toml``, carried in the package as ``streamlit-config.toml``) given as Streamlit flags,
so they hold wherever the command starts. ``--runs``, ``--data`` and ``--root`` go to the dashboard
(:mod:`dashboard.roots`); every other option goes to Streamlit (``--server.port 8600``, ``--server.headless
true``) and wins over the packaged settings. The shipped models are found through :mod:`gan.assets`
(``$LESIONGAN_HOME``).
"""
from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
APP = HERE / "app.py"
CONFIG = HERE / "streamlit-config.toml"  # the repository's .streamlit/config.toml, as package data
APP_OPTIONS = ("--runs", "--data", "--root")  # the dashboard's own (dashboard.roots); the rest are Streamlit's


def config_flags(path: Path = CONFIG) -> list[str]:
    """Streamlit flags (``--section.option=value``) for every setting in a Streamlit ``config.toml``."""
    def flat(table: dict[str, Any], prefix: str) -> list[str]:
        out = []
        for key, value in table.items():
            if isinstance(value, dict):
                out += flat(value, f"{prefix}{key}.")
            elif prefix:  # options live in sections; a top-level key is not one
                text = str(value).lower() if isinstance(value, bool) else str(value)
                out.append(f"--{prefix}{key}={text}")
        return out

    try:
        return flat(tomllib.loads(path.read_text(encoding="utf-8")), "")
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: unreadable Streamlit settings ({e.__class__.__name__})") from None


def streamlit_argv(argv: Sequence[str]) -> list[str]:
    """The ``streamlit`` command line (without the program name) for ``lesiongan-dashboard ARGV``."""
    p = argparse.ArgumentParser(add_help=False)
    for option in APP_OPTIONS:
        p.add_argument(option, action="append", default=[])
    ours, streamlit_options = p.parse_known_args(list(argv))
    app_args = [f"{option}={value}" for option in APP_OPTIONS for value in getattr(ours, option[2:])]
    return ["run", *config_flags(), *streamlit_options, str(APP), *(["--", *app_args] if app_args else [])]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    try:
        args = streamlit_argv(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from streamlit.web.cli import main as streamlit_main

    return streamlit_main(args=args, prog_name="lesiongan-dashboard")


if __name__ == "__main__":
    sys.exit(main())
