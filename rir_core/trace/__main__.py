"""``python -m rir_core.trace "EXPR"``: the trace of one expression, as a summary and JSON.

The command line loads a checkpoint (or the shipped model), so it sits above the model and the
checkpoint loader; the tracing itself (``rir_core.trace``) sits below them. Keeping the two apart
keeps the package's imports free of cycles (``tests/test_imports.py``).
"""

from __future__ import annotations

import argparse
import json
import sys

from rir_core.checkpoint import load_checkpoint
from rir_core.listops import ListOpsSyntaxError
from rir_core.pretrained import load_pretrained
from rir_core.trace import summary, trace_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rir_core.trace",
        description="Trace one ListOps expression through the model.",
    )
    parser.add_argument("expression")
    parser.add_argument("--checkpoint", help="checkpoint directory (default: the shipped model)")
    parser.add_argument("--json", help="write the full trace as JSON to this file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alignment", choices=["sample", "rank", "random", "kbest"])
    parser.add_argument("--beam-size", type=int)
    parser.add_argument("--chunk-width", type=int)
    args = parser.parse_args(argv)
    try:
        if args.checkpoint:
            model, _ = load_checkpoint(args.checkpoint)
        else:
            model = load_pretrained()
        trace = trace_model(
            model,
            args.expression,
            seed=args.seed,
            alignment=args.alignment,
            beam_size=args.beam_size,
            chunk_width=args.chunk_width,
        )
    except (ListOpsSyntaxError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(summary(trace))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(trace.to_dict(), f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
