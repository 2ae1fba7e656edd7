"""Control (issue #16): the authors' own implementation, trained from scratch on our data.

Sessions 6 and 14 reproduced every training behaviour of the authors' code in ours and got the
same curve (chunked inputs stop near 60%). What is left is their code itself, end to end: their
data pipeline, trainer, optimizer, schedule and early stopping, on data from our generator. This
script prepares a checkout of JRC1995/BeamRecursionFamily (outside this repository; nothing of it
is copied here) and measures its checkpoints by our length groups:

    python tests/authors_code.py prepare --code DIR
    (cd DIR/preprocess && python process_listopsc.py)
    cd DIR && PYTHONPATH=DIR/_stubs:DIR OMP_NUM_THREADS=2 python train.py --model HEBT_GRC \\
        --dataset listopsc --device cpu --times 1 --display_step 50
    python tests/authors_code.py eval --code DIR CHECKPOINT [--probe 100] [--length-rows 200] \\
        [--train-rows 300]
    python tests/authors_code.py convert --code DIR CHECKPOINT OUT [--check 64]

Their code runs in its own virtual environment (``pip install torch==2.13.0 numpy scipy einops
jsonlines tqdm fvcore safetensors``: the last for ``eval``, which imports ``rir_core``; run
``preprocess``, ``train.py`` and ``eval`` with that Python).
``train.py --load_checkpoint`` resumes from the per-epoch checkpoint
``experiments/checkpoints/listopsc_HEBT_GRC_classifier.pt`` (with
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``: their ``torch.load`` predates PyTorch's weights-only
default, and the checkpoint holds their random states). The run of sessions 15-18 is committed as
``pretrained/authors_code_run/``: its resume checkpoint (``resume.pt``, their format, the list of
last epoch's training predictions emptied), their log and our evaluations (``evals.jsonl``).
To continue it, prepare a checkout, run their preprocessing, copy ``resume.pt`` to that path and
start ``train.py`` as above with ``--load_checkpoint``.

``prepare`` does two things:

1. Writes the files their ``preprocess/process_listopsc.py`` reads into ``DIR/data/listops``:
   ``train_d20s.tsv`` is 1,000 expressions of the unfiltered recipe (2-1,000 tokens, generator
   seed 777, none in our ``train`` split), which their preprocessing takes as the dev set (SPEC
   7.1: 22% chunked, 11% longer than 100 tokens), followed by our ``train`` split (90,000, all
   at most 100 tokens, which their preprocessing keeps whole). The test files hold the first rows
   of our standard splits (their trainer reads them only with ``--test``).
2. Makes three edits that let their trainer start on a CPU-only machine without changing what it
   computes: the import of fairseq's learning-rate scheduler base (used by MEGA schedules only)
   falls back to a stub; the encoders other than HEBT_GRC are imported only if their dependencies
   are there; the data loader's 6 worker processes become 0 (2 cores here). The buckets and
   their batches are the same; the order of the 5 batches inside a bucket, shuffled in the
   collate function, comes from the main process's random state instead of a worker's.
   ``DIR/_stubs`` gets a ``pytorch_lightning.utilities.rank_zero_only`` (S4's logging decorator).

``eval`` loads their checkpoint into their model (their code, eval mode) and reports accuracy on
the 1,000 dev rows by our length groups (unchunked: under 45 tokens, one chunk at W 30 in both
implementations; chunked: 45-100; long: over 100) and on the first ``--probe`` rows of our
``len_200_300`` split, as JSON, comparable with ``pretrained/authors_run``'s evaluations; with
``--length-rows N`` also on the first N rows of each length split; with ``--train-rows N`` also
on the first N chunked (45-100-token) rows of the training split, which it has seen once an
epoch, beside the held-out chunked rows (memorization shows as the gap between the two).
Rows of more than 30 tokens run one at a time, so that each is chunked by its own length.

``convert --code DIR CHECKPOINT OUT`` writes one of their checkpoints as ours (a
``rir_core.checkpoint`` folder), so that every report of ours (``tests/sdepth_report.py``,
``python -m rir_core.evaluate``) runs on their run's weights. Their parameters map
one to one onto ours (the embedding and output rows re-indexed by token and label, the S4D
``A_imag`` negated: theirs is ``A = -exp(A_real) - i A_imag``); with ``--check N`` (default
64) it runs both models on the first N unchunked dev rows and fails if any logit differs by
more than 1e-3 (measured on their checkpoints after epochs 5-11: 2.9e-6 to 8.6e-6).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rir_core.data import Example, atomic_write_text, read_tsv, write_tsv  # noqa: E402
from rir_core.generate import Recipe, generate, load_split  # noqa: E402
from rir_core.trainer import length_group  # noqa: E402

DEV_SEED = 777
LENGTH_FILES = {"200_300": "len_200_300", "500_600": "len_500_600", "900_1000": "len_900_1000"}
OTHER_LENGTHS = (300, 400, 600, 700, 800)  # their preprocessing also reads these; tiny files
CHECKPOINT = "experiments/checkpoints/listopsc_HEBT_GRC_classifier.pt"

# (file, text that must be there, its replacement): see the module docstring, step 2.
SCHEDULER_IMPORT = (
    "from fairseq.optim.lr_scheduler import FairseqLRScheduler, register_lr_scheduler"
)
EDITS = (
    (
        "controllers/scheduler_controller.py",
        SCHEDULER_IMPORT,
        "try:\n    " + SCHEDULER_IMPORT + "\nexcept ImportError:  # harness: MEGA schedules only\n"
        "    class FairseqLRScheduler:\n        def __init__(self, *args, **kwargs):\n"
        "            pass\n",
    ),
    ("configs/listopsc_configs.py", "self.num_workers = 6", "self.num_workers = 0"),
)
STUB = "def rank_zero_only(fn):\n    return fn\n"


class HarnessError(Exception):
    """The checkout is not the one this harness knows; the message says what is missing."""


def write_rows(path: Path, examples: Sequence[Example], lra: bool = False) -> int:
    """Write rows as their preprocessing reads them (ours, or LRA's header and swapped columns);
    returns the row count."""
    if lra:
        atomic_write_text(path, ["Source\tTarget", *(f"{ex.text}\t{ex.label}" for ex in examples)])
    else:
        write_tsv(path, examples)
    return len(examples)


def dev_rows(train: Sequence[Example], n: int = 1000, seed: int = DEV_SEED) -> list[Example]:
    """``n`` expressions of the unfiltered recipe (2-1,000 tokens), none of them in ``train``."""
    exclude = {ex.text for ex in train}
    return generate(Recipe(2, 1000), n, seed, exclude=exclude)


def write_data(
    out: Path, train: Sequence[Example], dev: Sequence[Example], n_test: int = 200
) -> dict:
    """The data files of their ``process_listopsc.py``; returns the row count of each file."""
    out.mkdir(parents=True, exist_ok=True)
    if any(len(ex.tokens) > 100 for ex in train):
        raise HarnessError(
            "the training rows must be at most 100 tokens (their filter would drop them)"
        )
    counts = {"train_d20s.tsv": write_rows(out / "train_d20s.tsv", [*dev, *train])}
    iid = load_split("test_iid", n=n_test)
    counts["test_d20s.tsv"] = write_rows(out / "test_d20s.tsv", iid)
    counts["test_iid_arg.tsv"] = write_rows(out / "test_iid_arg.tsv", iid)
    counts["basic_test.tsv"] = write_rows(
        out / "basic_test.tsv", load_split("lra", n=n_test // 2), lra=True
    )
    counts["test_ood_10arg.tsv"] = write_rows(
        out / "test_ood_10arg.tsv", load_split("args_10", n=n_test // 2)
    )
    counts["test_ood_15arg.tsv"] = write_rows(
        out / "test_ood_15arg.tsv", load_split("args_15", n=n_test // 2)
    )
    for key, split in LENGTH_FILES.items():
        counts[f"test_{key}.tsv"] = write_rows(out / f"test_{key}.tsv", load_split(split, n=n_test))
    for lo in OTHER_LENGTHS:
        rows = generate(Recipe(lo, lo + 100), 20, 900 + lo)
        counts[f"test_{lo}_{lo + 100}.tsv"] = write_rows(out / f"test_{lo}_{lo + 100}.tsv", rows)
    return counts


def patch_checkout(code: Path) -> list[str]:
    """Apply the harness edits (idempotent); returns what changed."""
    changed = []
    for rel, old, new in EDITS:
        path = code / rel
        if not path.is_file():
            raise HarnessError(
                f"{path} does not exist: is {code} a checkout of JRC1995/BeamRecursionFamily?"
            )
        text = path.read_text()
        if new in text:
            continue
        if old not in text:
            raise HarnessError(f"{path} has no line {old!r}: a different version of their code")
        path.write_text(text.replace(old, new, 1))
        changed.append(rel)
    init = code / "models/encoders/__init__.py"
    if not init.is_file():
        raise HarnessError(
            f"{init} does not exist: is {code} a checkout of JRC1995/BeamRecursionFamily?"
        )
    lines = init.read_text().splitlines()
    if not any("HEBT_GRC" in line for line in lines):
        raise HarnessError(f"{init} does not import HEBT_GRC: a different version of their code")
    if not any(line.startswith("try:") for line in lines):
        out = []
        for line in lines:
            if not line.strip() or "HEBT_GRC" in line:
                out.append(line)
            else:
                out += [
                    "try:",
                    "    " + line,
                    "except ImportError:  # harness: only HEBT_GRC is needed",
                    "    pass",
                ]
        init.write_text("\n".join(out) + "\n")
        changed.append(str(init.relative_to(code)))
    stub = code / "_stubs" / "pytorch_lightning"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text("")
    if not (stub / "utilities.py").is_file():
        (stub / "utilities.py").write_text(STUB)
        changed.append("_stubs/pytorch_lightning")
    return changed


def read_rows(path: Path, n: int | None) -> list[tuple[str, list[str]]]:
    """The first ``n`` rows (None: all) of a data file as (label, tokens), as :func:`score`
    takes them."""
    return [(str(ex.label), list(ex.tokens)) for ex in read_tsv(path)[:n]]


def chunked_train_rows(path: Path, n: int, skip: int = 1000) -> list[tuple[str, list[str]]]:
    """The first ``n`` training rows that are chunked at W 30 (45-100 tokens), as :func:`score`
    takes them: the rows after the ``skip`` dev rows at the head of ``train_d20s.tsv``."""
    rows = read_rows(path, None)[skip:]
    return [r for r in rows if length_group(len(r[1]), 30, 100) == "chunked"][:n]


#: Their parameter names (HEBT_GRC classifier) -> ours (rir_ebt_grc); the embedding and the
#: output layer are re-indexed by token and label, the S4D tensors lose their leading 1.
THEIR_NAMES = {
    "encoder.RNN.S4DBlock.layer.D": "s4d.kernel.d",
    "encoder.RNN.S4DBlock.layer.kernel.C": "s4d.kernel.c",
    "encoder.RNN.S4DBlock.layer.kernel.B": "s4d.kernel.b",
    "encoder.RNN.S4DBlock.layer.kernel.inv_dt": "s4d.kernel.log_dt",  # dt = exp(inv_dt)
    "encoder.RNN.S4DBlock.layer.kernel.A_real": "s4d.kernel.log_a_real",  # -exp(A_real)
    "encoder.RNN.S4DBlock.layer.kernel.A_imag": "s4d.kernel.a_imag",  # negated: A = .. - i A_imag
    "encoder.RNN.GLU.0.weight": "s4d.out.weight",
    "encoder.RNN.GLU.0.bias": "s4d.out.bias",
    "encoder.initial_transform.weight": "leaf.0.weight",
    "encoder.initial_transform.bias": "leaf.0.bias",
    "encoder.NT.weight": "leaf.1.weight",
    "encoder.NT.bias": "leaf.1.bias",
    "encoder.treecell_layer.wcell1.weight": "encoder.inner.cell.w1.weight",
    "encoder.treecell_layer.wcell1.bias": "encoder.inner.cell.w1.bias",
    "encoder.treecell_layer.wcell2.weight": "encoder.inner.cell.w2.weight",
    "encoder.treecell_layer.wcell2.bias": "encoder.inner.cell.w2.bias",
    "encoder.treecell_layer.NT.weight": "encoder.inner.cell.norm.weight",
    "encoder.treecell_layer.NT.bias": "encoder.inner.cell.norm.bias",
    "encoder.decision_module.0.weight": "encoder.inner.child_scorer.proj.weight",
    "encoder.decision_module.0.bias": "encoder.inner.child_scorer.proj.bias",
    "encoder.decision_module.2.weight": "encoder.inner.child_scorer.out.weight",
    "encoder.decision_module.2.bias": "encoder.inner.child_scorer.out.bias",
    "prediction_linear1.weight": "head.1.weight",
    "prediction_linear1.bias": "head.1.bias",
}
#: The output layer, whose rows are in their label order.
OUTPUT_NAMES = {
    "prediction_linear2.weight": "head.4.weight",
    "prediction_linear2.bias": "head.4.bias",
}


def to_our_state(their: dict, vocab2idx: dict[str, int], labels2idx: dict[str, int]) -> dict:
    """Their HEBT_GRC classifier's state dict as our ``rir_ebt_grc`` model's (paper config).

    The embedding rows are taken in our token order (their ``<PAD>`` row for our padding; their
    ``<UNK>`` and ``<SEP>`` rows are dropped), the output rows in our label order (digit d at
    row d). Raises :class:`HarnessError` naming what is missing or left over.
    """
    from rir_core.vocab import PAD_ID, TOKENS

    expected = {*THEIR_NAMES, "word_embedding.weight", *OUTPUT_NAMES}
    missing = sorted(expected - set(their))
    extra = sorted(set(their) - expected)
    if missing or extra:
        raise HarnessError(
            "not a checkpoint of their HEBT_GRC classifier: "
            + "; ".join(
                f"{what} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                for what, names in (("missing", missing), ("unexpected", extra))
                if names
            )
        )
    ours = {new: their[old] for old, new in THEIR_NAMES.items()}
    for name in ("s4d.kernel.c", "s4d.kernel.b"):  # (1, H, N/2, 2) -> (H, N/2, 2)
        ours[name] = ours[name].squeeze(0)
    for name in ("s4d.kernel.d", "s4d.kernel.log_dt"):  # (1, H) and (H, 1) -> (H,)
        ours[name] = ours[name].reshape(-1)
    ours["s4d.kernel.a_imag"] = -ours["s4d.kernel.a_imag"]
    rows = [vocab2idx["<PAD>" if i == PAD_ID else t] for i, t in enumerate(TOKENS)]
    ours["embedding.weight"] = their["word_embedding.weight"][rows]
    order = [labels2idx[str(d)] for d in range(len(labels2idx))]
    for theirs, mine in OUTPUT_NAMES.items():
        ours[mine] = their[theirs][order]
    return {k: v.detach().clone().contiguous() for k, v in ours.items()}


def convert(code: Path, checkpoint: Path, out: Path) -> Path:
    """Write one of their checkpoints as ours (``rir_core.checkpoint`` format) at ``out``."""
    import torch

    from rir_core.checkpoint import save_checkpoint
    from rir_core.config import ModelConfig
    from rir_core.model import build_model

    meta_path = code / "processed_data/listopsc/metadata.pkl"
    if not meta_path.is_file():
        raise HarnessError(
            f"{code} has no processed data: run their preprocess/process_listopsc.py first"
        )
    if not checkpoint.is_file():
        raise HarnessError(f"no checkpoint at {checkpoint}")
    with open(meta_path, "rb") as f:
        meta = pickle.load(f)
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        their = state["model_state_dict"]
    except Exception as err:  # noqa: BLE001 - any unreadable file gets one sentence
        raise HarnessError(f"{checkpoint} is not one of their checkpoints ({err})") from None
    model = build_model(ModelConfig())
    model.load_state_dict(to_our_state(their, meta["vocab2idx"], meta["labels2idx"]))
    epochs = state.get("past_epochs")
    return save_checkpoint(
        out,
        model,
        metadata={
            "notes": f"the authors' code (JRC1995/BeamRecursionFamily) trained on our data, "
            f"{epochs} epochs; converted from {checkpoint.name} by tests/authors_code.py",
            "source": "authors_code",
            "epochs": epochs,
        },
    )


def max_logit_gap(code: Path, checkpoint: Path, ours_path: Path, n: int) -> float:
    """The largest |difference| between their logits and our converted model's, over the first
    ``n`` unchunked (under 45 tokens) dev rows, each run alone, in our label order.

    Unchunked rows only: their eval samples the beam alignment between chunks from its own
    random stream, ours from per-example seeds, so chunked rows need not agree draw for draw.
    """
    import torch

    from rir_core.checkpoint import load_checkpoint

    ours, _ = load_checkpoint(ours_path)
    model, vocab, idx2label, _ = load_their_model(code, checkpoint)
    rows = read_rows(code / "data/listops/train_d20s.tsv", 1000)
    rows = [tok for _, tok in rows if length_group(len(tok), 30, 100) == "unchunked"][:n]
    digit_of = torch.tensor([int(idx2label[i]) for i in range(len(idx2label))])
    gap = 0.0
    with torch.no_grad():
        for tok in rows:
            seq = torch.tensor([[vocab[t] for t in tok]])
            theirs = model({"sequences_vec": seq, "input_masks": torch.ones(1, len(tok))})
            reordered = torch.empty_like(theirs["logits"])
            reordered[:, digit_of] = theirs["logits"]
            ids, mask, lengths = ours.encode_tokens([tok])
            mine = ours(ids, mask, lengths=lengths)
            gap = max(gap, (mine - reordered).abs().max().item())
    return gap


def load_their_model(code: Path, checkpoint: Path):
    """Their HEBT_GRC classifier, built as their train.py builds it, weights loaded, eval mode."""
    import torch

    if not (code / "train.py").is_file() or not (code / "_stubs").is_dir():
        raise HarnessError(
            f"{code} is not a prepared checkout of theirs: run `prepare --code {code}` first"
        )
    if not (code / "processed_data/listopsc/metadata.pkl").is_file():
        raise HarnessError(
            f"{code} has no processed data: run their preprocess/process_listopsc.py first"
        )
    if not checkpoint.is_file():
        raise HarnessError(f"no checkpoint at {checkpoint}")
    sys.path[:0] = [str(code / "_stubs"), str(code)]
    from argparser import get_args
    from configs.configLoader import load_config
    from models import classifier_framework

    config = load_config(
        get_args().parse_args(["--model", "HEBT_GRC", "--dataset", "listopsc", "--device", "cpu"])
    )
    with open(code / "processed_data/listopsc/metadata.pkl", "rb") as f:
        meta = pickle.load(f)
    vocab = meta["vocab2idx"]
    data = {
        "embeddings": None,
        "labels2idx": meta["labels2idx"],
        "vocab2idx": vocab,
        "vocab_len": len(vocab),
        "PAD_id": vocab["<PAD>"],
        "UNK_id": vocab.get("<UNK>"),
        "classes_num": len(meta["labels2idx"]),
    }
    config.update(
        device=torch.device("cpu"), idx2vocab=dict(vocab), vocab2idx=None, charvocab2idx=None
    )
    config.update(labels2idx=meta["labels2idx"], dataset="listopsc")
    model = classifier_framework(data=data, config=config)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model_state_dict"])
    model.eval()
    return (
        model,
        vocab,
        {i: label for label, i in meta["labels2idx"].items()},
        state.get("past_epochs"),
    )


def score(model, vocab, idx2label, rows) -> list[tuple[int, bool]]:
    """(length, right) per row; rows over 30 tokens run alone (their chunk rule is per batch)."""
    import torch

    pad = vocab["<PAD>"]
    torch.manual_seed(0)  # their beam alignment samples at eval too (Categorical over beam scores)
    out = []
    short = [r for r in rows if len(r[1]) <= 30]
    with torch.no_grad():
        batches = [short[i : i + 64] for i in range(0, len(short), 64)]
        batches += [[r] for r in rows if len(r[1]) > 30]
        for batch in batches:
            width = max(len(tokens) for _, tokens in batch)
            seq = torch.tensor(
                [[vocab[t] for t in tok] + [pad] * (width - len(tok)) for _, tok in batch]
            )
            mask = torch.tensor([[1.0] * len(tok) + [0.0] * (width - len(tok)) for _, tok in batch])
            pred = model({"sequences_vec": seq, "input_masks": mask})["logits"].argmax(-1).tolist()
            out += [
                (len(tok), idx2label[p] == label)
                for (label, tok), p in zip(batch, pred, strict=True)
            ]
    return out


def share(right: Sequence[bool]) -> dict:
    return {"accuracy": sum(right) / len(right), "n": len(right)}


def grouped(results: list[tuple[int, bool]]) -> dict:
    """Accuracy by our trainer's length groups at W 30, longest training input 100 tokens."""
    groups: dict[str, list[bool]] = {}
    for n, ok in results:
        groups.setdefault(length_group(n, 30, 100), []).append(ok)
    return {g: share(v) for g, v in sorted(groups.items())}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="commands: prepare --code DIR | convert --code DIR CHECKPOINT OUT [--check N] | "
        "eval --code DIR CHECKPOINT [--probe N] [--length-rows N] [--train-rows N] "
        "(each with its own --help)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "prepare", help="write our data into a checkout of theirs and make it start on CPU"
    )
    p.add_argument(
        "--code", type=Path, required=True, help="their checkout (outside this repository)"
    )
    c = sub.add_parser(
        "convert",
        help="write one of their checkpoints in our format (for our evaluate, reports, app)",
    )
    c.add_argument("--code", type=Path, required=True)
    c.add_argument("checkpoint", type=Path)
    c.add_argument("out", type=Path, help="our checkpoint folder to write")
    c.add_argument(
        "--check",
        type=int,
        default=64,
        help="compare logits with their model on this many unchunked dev rows (default 64; "
        "0: skip); fails above 1e-3",
    )
    e = sub.add_parser("eval", help="accuracy of one of their checkpoints by our length groups")
    e.add_argument("--code", type=Path, required=True)
    e.add_argument("checkpoint", type=Path)
    e.add_argument("--probe", type=int, default=100, help="rows of len_200_300 (default 100)")
    e.add_argument(
        "--length-rows",
        type=int,
        default=0,
        help="also the first N rows of each length split (200-300, 500-600, 900-1000; at most "
        "the 200 that prepare writes); default 0: none",
    )
    e.add_argument(
        "--train-rows",
        type=int,
        default=0,
        help="also the first N chunked (45-100-token) training rows, to set beside the "
        "held-out chunked accuracy (memorization); default 0: none",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            train = load_split("train", progress=True)
            counts = write_data(args.code / "data/listops", train, dev_rows(train))
            changed = patch_checkout(args.code)
            print(json.dumps({"files": counts, "edited": changed}))
            return 0
        if args.command == "convert":
            out = convert(args.code, args.checkpoint, args.out)
            result = {"checkpoint": str(out)}
            if args.check:
                gap = max_logit_gap(args.code, args.checkpoint, out, args.check)
                result["max_logit_gap"] = gap
                if not gap <= 1e-3:
                    raise HarnessError(
                        f"the converted model's logits differ from theirs by {gap:.3g} "
                        f"(more than 1e-3) on unchunked dev rows: the mapping is wrong"
                    )
            print(json.dumps(result))
            return 0
        model, vocab, idx2label, epochs = load_their_model(args.code, args.checkpoint)
        dev = read_rows(args.code / "data/listops/train_d20s.tsv", 1000)
        probe = read_rows(args.code / "data/listops/test_200_300.tsv", args.probe)
        result = {"checkpoint": str(args.checkpoint), "epochs": epochs}

        def accuracy(rows) -> dict:
            return share([ok for _, ok in score(model, vocab, idx2label, rows)])

        dev_results = score(model, vocab, idx2label, dev)
        result["dev"] = share([ok for _, ok in dev_results])["accuracy"]
        result["dev_groups"] = grouped(dev_results)
        result["probe"] = {"split": "len_200_300", **accuracy(probe)}
        if args.length_rows:
            result["lengths"] = {
                split: accuracy(
                    read_rows(args.code / f"data/listops/test_{key}.tsv", args.length_rows)
                )
                for key, split in LENGTH_FILES.items()
            }
        if args.train_rows:
            rows = chunked_train_rows(args.code / "data/listops/train_d20s.tsv", args.train_rows)
            result["train_chunked"] = accuracy(rows)
        print(json.dumps(result))
        return 0
    except (HarnessError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
