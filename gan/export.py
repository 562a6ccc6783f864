"""Export G_ema as a compact generator-only file:
``python -m gan.export RUN_DIR_OR_CHECKPOINT --out FILE``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gan import checkpoint as ckpt_io
from gan.cli import entry_point, prog
from gan.fileio import prepare_output
from gan.rundir import RunDir


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("gan.export", "lesiongan-export"), description=__doc__)
    p.add_argument("source", help="a run folder (its checkpoint.pt) or a training checkpoint file")
    p.add_argument("--out", required=True, help="the generator file to write (e.g. generator.pt)")
    args = p.parse_args(argv)
    src = Path(args.source)
    try:
        prepare_output(args.out, "--out", kind="file")
        ckpt = RunDir(src).load_checkpoint() if src.is_dir() else ckpt_io.load(src, kinds=(ckpt_io.KIND_TRAIN,))
        out = ckpt_io.export_generator(ckpt, args.out)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {ckpt['model']}, {ckpt['nimg']} images seen)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
