"""Data-parallel training: 2 CPU ranks (gloo) under torchrun stay in sync and match one process.

Why dropout 0 in the comparison with one process: each rank draws its dropout masks from its own
torch RNG, so with dropout a 2-rank run cannot reproduce a 1-rank run's masks. Everything else is
rank-independent: each example's Gumbel noise comes from a per-example seed drawn for the whole
global batch, each rank takes every second example of the same global batch, and the loss
weighting makes DDP's gradient average the gradient of the global-batch mean. So the two runs
differ only by floating-point summation order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rir_core import train as train_mod
from rir_core.checkpoint import RESUME_TENSORS_FILE, WEIGHTS_FILE, checkpoint_info
from rir_core.data import write_tsv
from rir_core.generate import Recipe, generate

GAUGE = "encoder.inner.child_scorer.out.bias"
REPO = Path(__file__).resolve().parent.parent
FLAGS = [
    "--preset", "classroom", "--hidden-size", "16", "--beam-size", "2", "--chunk-width", "5",
    "--batch-size", "8", "--epochs", "50", "--eval-every", "2", "--no-progress", "--device", "cpu",
]  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("ddp-data")
    train, dev = folder / "train.tsv", folder / "dev.tsv"
    write_tsv(train, generate(Recipe(4, 30), 40, seed=21))
    write_tsv(dev, generate(Recipe(4, 30), 10, seed=22))
    return ["--train-file", str(train), "--dev-file", str(dev)]


def _torchrun(args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run(
        [*cmd, "-m", "rir_core.train", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


def _log(run: Path, event: str) -> list[dict]:
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    return [x for x in lines if x["event"] == event]


def test_two_cpu_ranks_match_one_process(tmp_path: Path, data: list[str]) -> None:
    args = [*FLAGS, "--dropout", "0", "--max-steps", "4", *data]
    _torchrun([*args, "--out", str(tmp_path / "ddp")])
    assert train_mod.main([*args, "--out", str(tmp_path / "single")]) == 0

    info = checkpoint_info(tmp_path / "ddp" / "last")
    assert info.metadata["world_size"] == 2 and info.metadata["step"] == 4
    assert info.metadata["ranks_in_sync"] is True  # rank weights compared at every save
    ddp = load_file(str(tmp_path / "ddp" / "last" / WEIGHTS_FILE))
    single = load_file(str(tmp_path / "single" / "last" / WEIGHTS_FILE))
    assert ddp.keys() == single.keys()
    for name in ddp:
        if name != GAUGE:
            torch.testing.assert_close(ddp[name], single[name], rtol=1e-4, atol=1e-5, msg=name)
    # The pair scorer's output bias shifts every pair score equally, and a softmax over pairs
    # ignores that: its true gradient is 0 and what remains is rounding noise, which AdamW
    # turns into steps of up to lr. It only has to stay within lr x steps.
    assert (ddp[GAUGE] - single[GAUGE]).abs().max() <= 3e-3 * 4
    # Only rank 0 wrote the log; the same global batches were used, with the same loss.
    steps, single_steps = _log(tmp_path / "ddp", "step"), _log(tmp_path / "single", "step")
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    for a, b in zip(steps, single_steps, strict=True):
        assert a["batch"] == b["batch"] == 8 and a["tokens"] == b["tokens"]
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    # The dev shards of the two ranks add up to the whole dev set.
    assert [e["dev_n"] for e in _log(tmp_path / "ddp", "eval")] == [10, 10]


def test_ddp_resume_is_exact(tmp_path: Path, data: list[str]) -> None:
    """With dropout on: 4 steps straight == 2 steps + resume + 2 steps, bit for bit, on 2 ranks
    (each rank's own RNG state is saved and restored)."""
    args = [*FLAGS, "--optimizer", "ranger", *data]
    _torchrun([*args, "--max-steps", "4", "--out", str(tmp_path / "a")])
    _torchrun([*args, "--max-steps", "2", "--out", str(tmp_path / "b")])
    _torchrun(["--resume", str(tmp_path / "b"), "--max-steps", "4", "--no-progress"])
    for name in (WEIGHTS_FILE, RESUME_TENSORS_FILE):
        a = load_file(str(tmp_path / "a" / "last" / name))
        b = load_file(str(tmp_path / "b" / "last" / name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
