"""The authors' run (issue #16), epoch by epoch, as one figure: what it learns and what it does not.

Sessions 15-20 trained the authors' published implementation on our generator's data with their
own trainer (``tests/authors_code.py``); each epoch was measured and written, one JSON object a
line, to ``pretrained/authors_code_run/evals.jsonl``. This script draws that file:

* left, their dev set by our length groups (unchunked under 45 tokens, chunked 45-100, longer
  than 100) and the length probe (100 rows of ``len_200_300``), with the paper's 90% line;
* right, composition: 2,000 held-out inputs of 45-60 tokens cut once at W 30
  (``tests/sdepth_report.py``), the same inputs read whole, and 300 chunked rows of the training
  set (cut the same way). The distance between the training rows and the held-out ones is what
  the run memorizes instead of learning.

    python tests/authors_run_figure.py pretrained/authors_code_run/evals.jsonl \
        docs/images/authors_run.png

A bad file gets one sentence naming it and the line; nothing is drawn.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

# (label, path of keys into one epoch's record, colour)
DEV_SERIES = (
    ("dev, unchunked (< 45 tokens)", ("dev_groups", "unchunked", "accuracy"), "#2ca02c"),
    ("dev, chunked (45-100)", ("dev_groups", "chunked", "accuracy"), "#ff7f0e"),
    ("dev, longer than 100", ("dev_groups", "long", "accuracy"), "#d62728"),
    ("len_200_300 probe (100 rows)", ("probe", "accuracy"), "#9467bd"),
)
COMPOSITION_SERIES = (
    ("held out, read whole (one chunk)", ("sdepth", "all", "whole"), "#2ca02c"),
    ("chunked training rows (300)", ("train_chunked", "accuracy"), "#7f7f7f"),
    ("held out, cut once at W 30 (2,000)", ("sdepth", "all", "accuracy"), "#ff7f0e"),
)


def _get(record: dict, keys: tuple[str, ...]) -> float | None:
    value: object = record
    for k in keys:
        if not isinstance(value, dict) or k not in value:
            return None
        value = value[k]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def read_epochs(path: Path) -> list[dict]:
    """The file's records, sorted by epoch. Raises ValueError (one sentence) on a bad file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder, not an evals.jsonl file.") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text.") from None
    records = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # JSONDecodeError, or a number too long for int
            raise ValueError(f"{path}, line {i}: not a readable JSON object.") from None
        epoch = record.get("epochs") if isinstance(record, dict) else None
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"{path}, line {i}: no whole number of 'epochs'.")
        records.append(record)
    if not records:
        raise ValueError(f"{path} has no epochs.")
    epochs = [r["epochs"] for r in records]
    if len(set(epochs)) != len(epochs):
        raise ValueError(f"{path} has an epoch twice.")
    return sorted(records, key=lambda r: r["epochs"])


def series(records: list[dict], keys: tuple[str, ...]) -> tuple[list[int], list[float]]:
    """(epochs, values) for the epochs that have a number at ``keys``."""
    xs, ys = [], []
    for r in records:
        v = _get(r, keys)
        if v is not None:
            xs.append(r["epochs"])
            ys.append(v)
    return xs, ys


def draw(records: list[dict], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.4), sharex=True, sharey=True)
    for ax, group in ((ax1, DEV_SERIES), (ax2, COMPOSITION_SERIES)):
        for label, keys, colour in group:
            xs, ys = series(records, keys)
            if xs:
                ax.plot(xs, ys, "o-", ms=3.5, label=label, color=colour)
        ax.set_xlabel("epoch of the authors' trainer")
        ax.set_ylim(0, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    ax1.axhline(0.9, ls="--", color="black", lw=1, label="paper: >= 90% on every length split")
    ax1.set_ylabel("accuracy")
    ax1.set_title("Their dev set by length, and the 200-300-token probe")
    ax2.set_title("Composition: the same held-out inputs cut and whole")
    ax1.legend(loc="lower right", fontsize=8)
    ax2.legend(loc="lower right", fontsize=8)
    last = records[-1]["epochs"]
    fig.suptitle(
        f"The authors' code on our data, the paper's recipe, epochs 1-{last} "
        "(pretrained/authors_code_run/evals.jsonl)"
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("evals", type=Path, help="pretrained/authors_code_run/evals.jsonl")
    parser.add_argument("out", type=Path, help="the PNG to write")
    args = parser.parse_args(argv)
    if args.out.suffix.lower() != ".png":
        parser.error(f"{args.out} does not end in .png.")
    try:
        records = read_epochs(args.evals)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    print(draw(records, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
