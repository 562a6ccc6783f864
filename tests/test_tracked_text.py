"""Tracked text is written for users: no path of a developer's machine and no words about who did the
work or when (numbered work periods or tracker items), in any file git tracks; and the shipped model
cards keep the Hugging Face model-card sections.

The files come from ``git ls-files`` (skipped outside a git checkout). Binary files are skipped (weights,
arrays, images: by suffix, and any file with a NUL byte or that is not UTF-8), and so are ``*.jsonl``
logs. Each offending line is reported as ``file:line: match``. The strings inside tracked weight files
(``.pt``, read with ``torch.load(weights_only=True)``) and arrays (``.npz``: its text arrays) are
scanned too, reported as ``file[key/...]: match``.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The bracketed letters keep these patterns from matching their own source line.
PRIVATE_PATH = re.compile(r"/wor[k]/|/roo[t]/|/hom[e]/[A-Za-z0-9_.-]+|lesiongan-run[s]", re.IGNORECASE)
HISTORY = re.compile(
    r"\bsessions? #?[0-9]+"
    r"|\bin (?:this|that|a later|the next|an earlier|the last|a previous) sessio[n]\b"
    r"|\bissues? #?[0-9]+"
    r"|\bwork ite[m]s?\b",
    re.IGNORECASE)
# Streamlit's per-browser state is not a work period.
NOT_HISTORY = ("session_state",)

BINARY_SUFFIXES = {".pt", ".pth", ".npz", ".npy", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".webp",
                   ".safetensors", ".zip", ".gz", ".jsonl"}

# Lines that name such a path on purpose, each with why: (file, exact text on the line).
ALLOWED: set[tuple[str, str]] = set()  # none today; an entry needs its reason beside it

HF_SECTIONS = ("## Model details", "## Intended use", "## Out-of-scope use", "## Training data", "## Evaluation",
               "## Limitations and biases", "## How to load it")


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"git ls-files failed: {out.stderr.strip()}")
    return [f for f in out.stdout.split("\0") if f]


def read_text(path: Path) -> str | None:
    """The file's text, or None for a binary (by suffix, a NUL byte, not UTF-8) or a missing file."""
    if path.suffix.lower() in BINARY_SUFFIXES:
        return None
    try:
        data = path.read_bytes()
    except OSError:  # tracked but deleted in the working tree, or a dangling link
        return None
    if b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def offending_lines(name: str, text: str) -> list[str]:
    """``file:line: match`` for every private path or history word on a line not in ALLOWED."""
    found = []
    for i, line in enumerate(text.splitlines(), 1):
        if any(f == name and s in line for f, s in ALLOWED):
            continue
        clean = line
        for word in NOT_HISTORY:
            clean = clean.replace(word, "")
        for pattern in (PRIVATE_PATH, HISTORY):
            found += [f"{name}:{i}: {m.group(0)}" for m in pattern.finditer(clean)]
    return found


def scan(names) -> list[str]:
    found = []
    for name in names:
        text = read_text(REPO / name)
        if text is not None:
            found += offending_lines(name, text)
    return found


def _walk_strings(value, where: str):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _walk_strings(v, f"{where}/{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _walk_strings(v, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


def binary_strings(path: Path) -> list[tuple[str, str]]:
    """(key, text) for every string inside a ``.pt`` file (tensors are mapped, not read) or a text array
    of an ``.npz`` file (the other arrays are not read); [] for other files and links."""
    if path.is_symlink() or not path.is_file():
        return []
    if path.suffix == ".pt":
        import torch

        return list(_walk_strings(torch.load(path, map_location="cpu", weights_only=True, mmap=True), ""))
    if path.suffix == ".npz":
        import numpy as np

        out = []
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                with z.open(member) as f:
                    read = (np.lib.format.read_array_header_1_0 if np.lib.format.read_magic(f) == (1, 0)
                            else np.lib.format.read_array_header_2_0)
                    dtype = read(f)[2]
                if dtype.kind in "US":
                    with z.open(member) as f:
                        arr = np.lib.format.read_array(f, allow_pickle=False)
                    out += [(f"/{member.removesuffix('.npy')}", str(x)) for x in arr.reshape(-1)]
        return out
    return []


def scan_binary(names, root: Path = REPO) -> list[str]:
    found = []
    for name in names:
        for where, text in binary_strings(root / name):
            found += [f"{name}[{where}]: {hit.split(': ', 1)[1]}" for hit in offending_lines(name, text)]
    return found


def test_patterns_find_what_they_should_and_nothing_else():
    bad = ["data in /wor" "k/shared/data", "cache /roo" "t/.cache/x", "/hom" "e/alice/runs", "~/lesiongan-run" "s/x",
           "shipped in sessio" "n 7", "session" "s 4", "as asked in that sessio" "n", "retrained in issu" "e 16",
           "issu" "e #3", "the second work ite" "m"]
    for text in bad:
        assert offending_lines("x.md", text), text
    good = ["st.session_state['k'] = 1", "one browser session through every page", "a session's first run",
            "/home/ alone", "issue tracking systems", "the 2-core machine", "runs/derm-encoder", "RUNS/long/x"]
    for text in good:
        assert offending_lines("x.md", text) == [], text


def test_line_numbers_and_allowed_lines(monkeypatch):
    assert offending_lines("a.txt", "ok\nsee issu" "e 12\nok") == ["a.txt:2: issu" "e 12"]
    monkeypatch.setattr(sys.modules[__name__], "ALLOWED", {("Dockerfile", "/hom" "e/lesiongan")})
    assert offending_lines("Dockerfile", "WORKDIR /hom" "e/lesiongan") == []
    assert offending_lines("other/Dockerfile", "WORKDIR /hom" "e/lesiongan") == ["other/Dockerfile:1: /hom" "e/lesiongan"]


def test_binary_and_log_files_are_skipped(tmp_path):
    (tmp_path / "w.pt").write_bytes(b"/wor" b"k/ issu" b"e 1")
    (tmp_path / "s.jsonl").write_text('{"p": "/roo' 't/x"}\n')
    (tmp_path / "b.bin").write_bytes(b"\0\1/wor" b"k/")
    (tmp_path / "l.bin").write_bytes(b"\xff\xfe/wor" b"k/")
    assert [read_text(tmp_path / n) for n in ("w.pt", "s.jsonl", "b.bin", "l.bin")] == [None] * 4
    assert read_text(tmp_path / "missing.md") is None


def test_strings_inside_weight_and_array_files_are_read(tmp_path):
    import numpy as np
    import torch

    torch.save({"w": torch.zeros(3), "config": json.dumps({"data": {"path": "/wor" "k/shared/data"}}),
                "info": {"runs": ["ok", "/roo" "t/x"]}}, tmp_path / "g.pt")
    np.savez_compressed(tmp_path / "f.npz", meta=np.array(json.dumps({"source": "/hom" "e/al/isic"})),
                        x=np.arange(3), names=np.array(["a", "issu" "e 4"]))
    assert sorted(binary_strings(tmp_path / "g.pt")) == [
        ("/config", '{"data": {"path": "/wor' 'k/shared/data"}}'), ("/info/runs[0]", "ok"), ("/info/runs[1]", "/roo" "t/x")]
    assert sorted(binary_strings(tmp_path / "f.npz")) == [
        ("/meta", '{"source": "/hom' 'e/al/isic"}'), ("/names", "a"), ("/names", "issu" "e 4")]
    (tmp_path / "link.pt").symlink_to(tmp_path / "g.pt")
    assert binary_strings(tmp_path / "link.pt") == [] and binary_strings(tmp_path / "x.md") == []
    assert scan_binary(["g.pt", "f.npz"], tmp_path) == [
        "g.pt[/config]: /wor" "k/", "g.pt[/info/runs[1]]: /roo" "t/", "f.npz[/meta]: /hom" "e/al", "f.npz[/names]: issu" "e 4"]


def test_tracked_weight_and_array_files_hold_no_private_paths_or_history_words():
    names = [n for n in tracked_files() if Path(n).suffix in (".pt", ".npz")]
    found = scan_binary(names)
    assert not found, "private paths or history words inside tracked weight or array files:\n" + "\n".join(found)


def test_tracked_text_has_no_private_paths_or_history_words():
    # The shipped configs, results and cards included: data sets by name and content hash, one-sentence
    # unavailable reasons (gan.assets.portable_name, gan.config.RunConfig.portable).
    found = scan(tracked_files())
    assert not found, "private paths or history words in tracked files:\n" + "\n".join(found)


def test_shipped_model_cards_have_the_model_card_sections_in_order():
    cards = sorted(p for p in (REPO / "checkpoints").glob("*/MODEL_CARD.md") if (p.parent / "generator.pt").is_file())
    if not cards:
        pytest.skip("no shipped models in this checkout")
    for card in cards:
        text = card.read_text(encoding="utf-8")
        headings = [line for line in text.splitlines() if line.startswith("## ")]
        assert headings == list(HF_SECTIONS), (card, headings)
        prose = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.S)
        assert "~" not in prose, f"{card}: a '~' outside code renders as strikethrough in pairs"
        # The utility and privacy part is a subsection of Evaluation and points at its validation-split row.
        lines = text.splitlines()
        if "### Utility and privacy" in lines:
            evaluation = lines[lines.index("## Evaluation"):lines.index("### Utility and privacy")]
            assert any(line.startswith("| validation split |") for line in evaluation), card
