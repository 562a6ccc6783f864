"""Make the metadata inside shipped weight files and fingerprints portable, keeping every tensor as it is.

    python tools/portable_weights.py                 # every .pt and .npz under checkpoints/ (links skipped)
    python tools/portable_weights.py FILE ... [--dry-run]

Files written before metadata became portable hold the training machine's paths in their metadata
strings: a run config's data folder and reference fingerprint (``generator.pt``, ``discriminator.pt``),
the encoder's training command (``encoder.pt``), a fingerprint's source folder (``.npz``). Each string is
rewritten as files written today hold it:

* a run config (the ``config`` entry of a generator or discriminator file) in the form of
  :meth:`gan.config.RunConfig.portable` (from the file's folder: data paths relative to it when near,
  else none; the reference fingerprint relative to it), only its path fields changed; when the folder's
  ``config.json`` is the same config, the data set's name and content hash come from it;
* every other string: each absolute path in it, alone or as a word of a command line, as
  :func:`gan.assets.portable_command` names it (``/data/isic2017`` -> ``isic2017``).

The new file is made in memory, read back (``torch.load(weights_only=True)``, ``np.load(allow_pickle=False)``)
and compared with the old one: every tensor and array bit-identical (same dtype and shape, ``torch.equal``
/ ``np.array_equal``), every other value equal but the strings rewritten. Only then is it written,
atomically; a file that fails the check is left as it was and the command exits 1.

A file's SHA-256 changes with its bytes, and the derm metrics name their encoder by its file's SHA-256.
So the encoder's old digest is replaced by the new one wherever a record keeps it (``--records``,
default every text file under ``checkpoints/``; the full digest or a prefix of 12+ hex digits), in
``encoder-config.json`` with the file's new size, and in the fingerprints' derm block. Files that were
made with the encoder before its rewrite and arrive later (a fingerprint or results of a run that was
under way) follow it with ``--encoder-was OLD_SHA256``: the old digest becomes the shipped encoder's.

    python tools/portable_weights.py runs/x/fingerprint.npz --records runs/x/results.json --encoder-was 7b075a91...
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan.assets import checkpoints_dir, portable_command, portable_name
from gan.config import RunConfig
from gan.fileio import atomic_write, sha256_file

RECORD_SUFFIXES = (".json", ".md", ".csv", ".txt")
ENCODER_CONFIG = "encoder-config.json"


def portable_text(text: str, base: Path) -> str:
    """``text`` with each absolute path in it named portably (a path alone: :func:`gan.assets.portable_name`;
    words of a command line: :func:`gan.assets.portable_command`)."""
    if text.startswith("/") and " " not in text:
        return portable_name(text, base)
    if "/" not in text:
        return text
    return re.sub(r"\S+", lambda m: portable_command([m.group(0)], base), text)


def portable_strings(value: Any, base: Path) -> Any:
    """``value`` (JSON-like) with every string through :func:`portable_text`; a string that holds a JSON
    object or list is rewritten inside and written back compactly."""
    if isinstance(value, dict):
        return {k: portable_strings(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [portable_strings(v, base) for v in value]
    if isinstance(value, str):
        if value[:1] in "{[":
            try:
                inner = json.loads(value)
            except ValueError:
                return portable_text(value, base)
            new = portable_strings(inner, base)
            return value if new == inner else json.dumps(new)
        return portable_text(value, base)
    return value


def portable_run_config(text: str, folder: Path) -> str:
    """A run config's JSON as :meth:`gan.config.RunConfig.portable` gives it, from ``folder``: only the path
    fields change (the rest of the text stays as it was written), plus the data set's name and content hash
    from ``folder/config.json`` when that file holds the same config."""
    doc = json.loads(text)
    cfg = RunConfig.from_dict(doc).portable(folder.resolve())
    data = doc.setdefault("data", {})
    for key in ("path", "labels", "subset", "cache_dir"):
        if key in data:
            data[key] = getattr(cfg.data, key)
    if "train" in doc and "metrics_ref" in doc["train"]:
        doc["train"]["metrics_ref"] = cfg.train.metrics_ref
    shipped = folder / "config.json"
    if shipped.is_file() and not (data.get("name") and data.get("sha256")):
        other = RunConfig.from_json(shipped.read_text(encoding="utf-8"))
        named = cfg.replace(data=dataclasses.replace(cfg.data, name=other.data.name, sha256=other.data.sha256))
        if _plain(named.to_dict()) == _plain(other.to_dict()):
            data["name"], data["sha256"] = other.data.name, other.data.sha256
            cfg = named
    if _plain(RunConfig.from_dict(doc).to_dict()) != _plain(cfg.to_dict()):
        raise ValueError("the rewritten config does not read back as RunConfig.portable gives it")
    return json.dumps(doc)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def rewrite_pt(doc: dict, path: Path) -> dict:
    """The metadata of a ``.pt`` document made portable; tensors (and dicts of them) are passed through."""
    out = {}
    for key, value in doc.items():
        if isinstance(value, str) and key == "config" and doc.get("model") is not None:
            out[key] = portable_run_config(value, path.parent)
        elif isinstance(value, (str, list)) or (isinstance(value, dict) and not _holds_tensors(value)):
            out[key] = portable_strings(value, path.parent)
        else:
            out[key] = value
    return out


def _holds_tensors(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, dict):
        return any(_holds_tensors(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_tensors(v) for v in value)
    return False


def same_apart_from_strings(old: Any, new: Any, where: str = "") -> list[str]:
    """Where ``new`` differs from ``old`` other than in strings: a tensor not bit-identical (dtype, shape,
    values), a number, a key set or a type changed. An empty list is a pass."""
    if isinstance(old, torch.Tensor) or isinstance(new, torch.Tensor):
        ok = (isinstance(old, torch.Tensor) and isinstance(new, torch.Tensor) and old.dtype == new.dtype
              and old.shape == new.shape and torch.equal(old, new))
        return [] if ok else [f"tensor {where or '.'} differs"]
    if isinstance(old, np.ndarray) or isinstance(new, np.ndarray):
        ok = (isinstance(old, np.ndarray) and isinstance(new, np.ndarray) and old.dtype == new.dtype
              and old.shape == new.shape and (old.dtype.kind in "US" or np.array_equal(old, new)))
        return [] if ok else [f"array {where or '.'} differs"]
    if isinstance(old, dict) and isinstance(new, dict):
        if list(old) != list(new):
            return [f"keys of {where or '.'} differ"]
        return [d for k in old for d in same_apart_from_strings(old[k], new[k], f"{where}/{k}")]
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)) and type(old) is type(new):
        if len(old) != len(new):
            return [f"length of {where} differs"]
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in same_apart_from_strings(a, b, f"{where}[{i}]")]
    if isinstance(old, str) and isinstance(new, str):
        return []
    return [] if (type(old) is type(new) and old == new) else [f"{where} changed ({old!r} -> {new!r})"]


def new_pt(path: Path) -> tuple[bytes, list[str]] | None:
    """The rewritten ``.pt`` file's bytes and the check's findings, or None when nothing changes."""
    doc = torch.load(path, map_location="cpu", weights_only=True)
    new = rewrite_pt(doc, path)
    if all(new[k] == doc[k] for k in doc if not _holds_tensors(doc[k])):
        return None
    buf = io.BytesIO()
    torch.save(new, buf)
    back = torch.load(io.BytesIO(buf.getvalue()), map_location="cpu", weights_only=True)
    return buf.getvalue(), same_apart_from_strings(doc, back)


def new_npz(path: Path, encoder_digests: dict[str, str] | None = None) -> tuple[bytes, list[str]] | None:
    """The rewritten fingerprint's bytes (``np.savez_compressed``, as :func:`eval.fingerprint.save_fingerprint`
    writes) and the check's findings, or None when nothing changes. ``encoder_digests`` (old -> new) also
    renames the encoder in the derm block."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    if "meta" not in arrays:
        return None
    meta = json.loads(str(arrays["meta"]))
    new_meta = portable_strings(meta, path.parent)
    derm = new_meta.get("derm") if isinstance(new_meta.get("derm"), dict) else None
    if derm and encoder_digests and derm.get("encoder_sha256") in encoder_digests:
        derm["encoder_sha256"] = encoder_digests[derm["encoder_sha256"]]
    if new_meta == meta:
        return None
    new_arrays = {**arrays, "meta": np.array(json.dumps(new_meta))}
    buf = io.BytesIO()
    np.savez_compressed(buf, **new_arrays)
    with np.load(io.BytesIO(buf.getvalue()), allow_pickle=False) as z:
        back = {k: z[k] for k in z.files}
    findings = same_apart_from_strings({k: v for k, v in arrays.items() if k != "meta"},
                                       {k: v for k, v in back.items() if k != "meta"})
    if list(back) != list(arrays) or json.loads(str(back["meta"])) != new_meta:
        findings.append("meta does not read back as written")
    return buf.getvalue(), findings


def replace_digests(text: str, digests: dict[str, str]) -> str:
    """``text`` with each old digest (whole, or a prefix of 12 or more hex digits that no hex digit follows)
    replaced by the same length of the new one."""
    for old, new in digests.items():
        text = re.sub(rf"(?<![0-9a-f]){old[:12]}[0-9a-f]{{0,52}}(?![0-9a-f])",
                      lambda m: new[:len(m.group(0))] if old.startswith(m.group(0)) else m.group(0), text)
    return text


def _write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def _targets(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".pt", ".npz") and p.is_file() and not p.is_symlink())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tools/portable_weights.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("files", nargs="*", help="the .pt and .npz files (default: every one under checkpoints/)")
    p.add_argument("--records", nargs="*", default=[], help="text files besides those under checkpoints/ (every "
                                                            ".json, .md, .csv, .txt) whose encoder digests follow "
                                                            "the new encoder")
    p.add_argument("--encoder-was", metavar="SHA256", help="the encoder's digest before its rewrite: records and "
                                                           "fingerprints that name it are given the shipped encoder's")
    p.add_argument("--dry-run", action="store_true", help="check and report, write nothing")
    a = p.parse_args(argv)
    root = checkpoints_dir()
    files = [Path(f) for f in a.files] if a.files else _targets(root)
    records = sorted(f for f in root.rglob("*") if f.suffix in RECORD_SUFFIXES and f.is_file() and not f.is_symlink())
    records += [Path(f) for f in a.records]
    failed = 0
    digests: dict[str, str] = {}  # the encoder's old -> new SHA-256
    shipped_encoder = root / "derm-encoder" / "encoder.pt"
    if a.encoder_was:
        if not re.fullmatch(r"[0-9a-f]{64}", a.encoder_was) or not shipped_encoder.is_file():
            p.error("--encoder-was: give the old encoder's full SHA-256 (64 hex digits), with the shipped encoder in "
                    f"{portable_name(root)}/derm-encoder")
        digests[a.encoder_was] = sha256_file(shipped_encoder)
    # weights first (the encoder's new digest is known before the fingerprints that name it are rewritten)
    for path in sorted(files, key=lambda f: f.suffix != ".pt"):
        try:
            made = new_pt(path) if path.suffix == ".pt" else new_npz(path, digests)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            failed += 1
            continue
        if made is None:
            print(f"{path}: already portable")
            continue
        data, findings = made
        if findings:
            print(f"error: {path}: not rewritten, the check failed: {'; '.join(findings[:5])}", file=sys.stderr)
            failed += 1
            continue
        print(f"{path}: metadata made portable, every tensor bit-identical{' (dry run)' if a.dry_run else ''}")
        if a.dry_run:
            continue
        old_sha = sha256_file(path)
        _write(path, data)
        if path.name == "encoder.pt":
            digests[old_sha] = sha256_file(path)
            cfg_path = path.parent / ENCODER_CONFIG
            if cfg_path.is_file():
                cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
                if cfg.get("sha256") == old_sha:
                    cfg.update(sha256=digests[old_sha], encoder_bytes=path.stat().st_size)
                    atomic_write(cfg_path, lambda f: f.write((json.dumps(cfg, indent=2) + "\n").encode()))
    for rec in records if digests else ():
        text = rec.read_text(encoding="utf-8")
        new = replace_digests(text, digests)
        if new != text:
            atomic_write(rec, lambda f, new=new: f.write(new.encode("utf-8")))
            print(f"{rec}: the encoder's digest updated")
    for old, new in digests.items():
        print(f"encoder SHA-256 {old} -> {new}")
    if shipped_encoder.is_file() and not a.dry_run:  # every fingerprint names the encoder that ships
        sha = sha256_file(shipped_encoder)
        for fp in (f for f in _targets(root) if f.suffix == ".npz"):
            with np.load(fp, allow_pickle=False) as z:
                named = (json.loads(str(z["meta"])).get("derm") or {}).get("encoder_sha256") if "meta" in z.files else None
            if named not in (None, sha):
                print(f"error: {fp}: its derm features name encoder {named[:12]}, the shipped one is {sha[:12]}",
                      file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
