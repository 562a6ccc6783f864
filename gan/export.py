"""Export G_ema as a compact generator-only file:
``python -m gan.export RUN_DIR_OR_CHECKPOINT --out FILE``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gan import checkpoint as ckpt_io
from gan.loop import export_generator


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gan.export", description=__doc__)
    p.add_argument("source", help="a run folder (its checkpoint.pt) or a training checkpoint file")
    p.add_argument("--out", required=True, help="the generator file to write (e.g. generator.pt)")
    args = p.parse_args(argv)
    src = Path(args.source)
    src = src / "checkpoint.pt" if src.is_dir() else src
    try:
        ckpt = ckpt_io.load(src, kinds=(ckpt_io.KIND_TRAIN,))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = export_generator(ckpt, args.out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {ckpt['model']}, {ckpt['nimg']} images seen)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
