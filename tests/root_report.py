"""Where do long inputs go wrong? Accuracy on a split by the operator of the root list, at
several chunk widths.

The root list of a long input spans every chunk boundary, so its value always crosses them. A
MAX or MIN root absorbs an error in any argument that is not the extreme one; an SM root
(sum mod 10) absorbs none: each of its 2-5 arguments, every one a subtree cut several times at
W 30, must come out exactly. The SM row is therefore the sharpest single test of exact chunk
composition (docs/model_card.md, session 10).

    python tests/root_report.py --checkpoint pretrained/rir_ebt_grc --widths 30,whole

``--widths`` takes chunk widths and ``whole`` (a width larger than every input: the whole input
is one chunk, so the inner beam-tree recursion runs alone, as the authors' code does at
inference with ``--chunk_mode_inference False``). ``--s4d-taps N`` cuts every kernel of the
pre-chunk S4D (SPEC 5) to its first N taps, so that no position sees more than N tokens of
context on either side: at N 100, inputs of at most 100 tokens (all of training) are unchanged,
and a long input's context is what training ever gave. A minute or two of CPU per width at
400 rows of len_200_300; several minutes at 900-1000 tokens.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from app.alignment_lab import wilson_interval  # noqa: E402
from rir_core.checkpoint import load_checkpoint  # noqa: E402
from rir_core.generate import SPLITS, load_split  # noqa: E402

OPERATORS = ("MAX", "MIN", "MED", "SM")


def root_operator(text: str) -> str:
    """The root list's operator (``SM`` for ``[SM ...]``); ``digit`` for a bare digit."""
    first = text.split(maxsplit=1)[0]
    return first[1:] if first.startswith("[") else "digit"


def parse_widths(spec: str) -> list[int | None]:
    """``"30,whole"`` -> ``[30, None]`` (None: the whole input as one chunk)."""
    widths: list[int | None] = []
    for part in spec.split(","):
        part = part.strip()
        if part == "whole":
            widths.append(None)
        elif part.isdigit() and int(part) >= 2:
            widths.append(int(part))
        else:
            raise ValueError(f"--widths: {part!r} is neither a chunk width (>= 2) nor 'whole'")
    return widths


@contextlib.contextmanager
def s4d_taps(model, taps: int) -> Iterator[None]:
    """Within this block every S4D kernel is cut to its first ``taps`` taps (later taps are 0),
    so a position sees at most ``taps`` tokens of context in each direction. Inputs of at most
    ``taps`` tokens are unchanged. The layer (and its spectrum cache) is whole again after."""
    s4d = model.s4d
    if s4d is None:  # no S4D layer: nothing to cut
        yield
        return
    kern = s4d.kernel
    full = kern.kernel

    def cut(length: int) -> torch.Tensor:
        k = full(length)  # (H, L)
        if length <= taps:
            return k
        return torch.cat([k[:, :taps], k.new_zeros(k.shape[0], length - taps)], dim=1)

    kern.__dict__.pop("_spectrum_cache", None)  # spectra of the whole kernels
    kern.kernel = cut
    try:
        yield
    finally:
        del kern.kernel  # the class's method again
        kern.__dict__.pop("_spectrum_cache", None)  # spectra of the cut kernels


def mass_beyond(model, taps: int, length: int) -> float:
    """The median over S4D channels of the share of a kernel's L1 mass (over ``length`` taps)
    that lies at tap ``taps`` or later: how much of the context a cut at ``taps`` removes."""
    with torch.no_grad():
        k = model.s4d.kernel.kernel(length).abs()  # (H, L)
    return float((k[:, taps:].sum(1) / k.sum(1)).median())


def report(
    texts: list[str], truths: list[int], predictions: dict[str, list[int]]
) -> dict[str, dict[str, tuple[int, int]]]:
    """``{root operator or "all": {column: (right, n)}}`` for each column of predictions."""
    table: dict[str, dict[str, tuple[int, int]]] = {}
    for column, preds in predictions.items():
        right: Counter[str] = Counter()
        count: Counter[str] = Counter()
        for text, truth, pred in zip(texts, truths, preds, strict=True):
            for key in (root_operator(text), "all"):
                count[key] += 1
                right[key] += int(pred == truth)
        for key in count:
            table.setdefault(key, {})[column] = (right[key], count[key])
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python tests/root_report.py", description=__doc__)
    p.add_argument("--checkpoint", default="pretrained/rir_ebt_grc")
    p.add_argument("--split", default="len_200_300", choices=sorted(SPLITS))
    p.add_argument("--limit", type=int, default=400, help="the split's first N rows (400)")
    p.add_argument("--widths", default="30,whole", help="chunk widths and/or 'whole'")
    p.add_argument("--s4d-taps", type=int, help="cut the S4D kernels to their first N taps")
    args = p.parse_args(argv)
    try:
        widths = parse_widths(args.widths)
    except ValueError as e:
        p.error(str(e))
    if args.s4d_taps is not None and args.s4d_taps < 1:
        p.error("--s4d-taps must be at least 1")
    rows = load_split(args.split, n=args.limit)
    texts = [ex.text for ex in rows]
    truths = [ex.label for ex in rows]
    longest = max(len(t.split()) for t in texts)
    model, _ = load_checkpoint(args.checkpoint)
    model.eval()
    taps = s4d_taps(model, args.s4d_taps) if args.s4d_taps is not None else contextlib.nullcontext()
    predictions: dict[str, list[int]] = {}
    with taps:
        for w in widths:
            column = f"W {w}" if w is not None else "whole"
            width = w if w is not None else longest + 1  # never cut: L < 1.5 W
            predictions[column] = model.predict(texts, seed=0, chunk_width=width)
    table = report(texts, truths, predictions)
    cut = ""
    if args.s4d_taps is not None and model.s4d is not None:
        share = mass_beyond(model, args.s4d_taps, max(longest, args.s4d_taps + 1))
        cut = f", S4D kernels cut to {args.s4d_taps} taps ({100 * share:.0f}% of their mass)"
    print(f"{args.split}, first {len(texts)} rows (up to {longest} tokens){cut}: {args.checkpoint}")
    header = "".join(f" {c:>22s}" for c in predictions)
    print(f"{'root':6s} {'n':>5s}{header}")
    for key in [*OPERATORS, "digit", "all"]:
        if key not in table:
            continue
        cells = []
        for column in predictions:
            right, n = table[key][column]
            lo, hi = wilson_interval(right, n)
            cells.append(f" {100 * right / n:6.1f}% ({lo:4.1f}-{hi:5.1f})")
        n = table[key][next(iter(predictions))][1]
        print(f"{key:6s} {n:5d}{''.join(f'{c:>23s}' for c in cells)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
