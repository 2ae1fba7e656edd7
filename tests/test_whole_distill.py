"""The whole-input target of tests/whole_distill.py (issue #16's W 8 diagnostic)."""

from __future__ import annotations

import json

import pytest
import torch
from whole_distill import distill_terms
from whole_distill import main as distill_main

from rir_core.data import write_tsv
from rir_core.generate import Recipe, generate


def test_the_terms_vanish_when_the_student_reads_as_the_teacher() -> None:
    g = torch.Generator().manual_seed(0)
    logits, pooled = torch.randn(4, 10, generator=g), torch.randn(4, 16, generator=g)
    root, kl = distill_terms(logits, pooled, logits.clone(), pooled.clone())
    assert root.item() == 0.0
    assert abs(kl.item()) < 1e-6


def test_the_root_term_is_relative_to_the_teachers_scale() -> None:
    g = torch.Generator().manual_seed(1)
    teacher = torch.randn(8, 16, generator=g)
    logits = torch.zeros(8, 10)
    root, _ = distill_terms(logits, torch.zeros(8, 16), logits, teacher)
    assert abs(root.item() - 1.0) < 1e-6  # predicting zeros costs one teacher "energy"
    root_big, _ = distill_terms(logits, torch.zeros(8, 16), logits, 10 * teacher)
    assert abs(root_big.item() - 1.0) < 1e-6  # the same at any scale


def test_gradient_reaches_the_student_only() -> None:
    g = torch.Generator().manual_seed(2)
    s_logits = torch.randn(4, 10, generator=g, requires_grad=True)
    s_pooled = torch.randn(4, 16, generator=g, requires_grad=True)
    t_logits = torch.randn(4, 10, generator=g, requires_grad=True)
    t_pooled = torch.randn(4, 16, generator=g, requires_grad=True)
    root, kl = distill_terms(s_logits, s_pooled, t_logits.detach(), t_pooled.detach())
    (root + kl).backward()
    assert s_logits.grad is not None and s_logits.grad.abs().sum() > 0
    assert s_pooled.grad is not None and s_pooled.grad.abs().sum() > 0
    assert t_logits.grad is None and t_pooled.grad is None


def test_a_short_run_logs_both_held_out_readings_and_drops_held_out_rows(tmp_path) -> None:
    rows = generate(Recipe(12, 40), 300, seed=5)
    write_tsv(tmp_path / "train.tsv", rows)
    write_tsv(tmp_path / "dev.tsv", rows[:20])  # every held-out row is also a training row
    out = tmp_path / "log.jsonl"
    torch.set_num_threads(1)
    assert (
        distill_main(
            [
                "2",
                str(out),
                str(tmp_path / "train.tsv"),
                str(tmp_path / "dev.tsv"),
                "--root",
                "1",
                "--kl",
                "1",
                "--eval-every",
                "2",
            ]
        )
        == 0
    )
    events = [json.loads(line) for line in out.read_text().splitlines()]
    evals = [e for e in events if "dev_w8" in e]
    assert [e["step"] for e in evals] == [0, 2]
    for e in evals:
        assert 0.0 <= e["dev_w8"] <= 1.0 and 0.0 <= e["dev_whole"] <= 1.0
    assert events[0] == {"train_rows": 280, "dropped": 20}


def test_a_fixed_set_and_the_weight_decay_are_taken_and_bad_values_refused(tmp_path) -> None:
    rows = generate(Recipe(12, 40), 100, seed=6)
    write_tsv(tmp_path / "train.tsv", rows)
    write_tsv(tmp_path / "dev.tsv", rows[:10])
    out = tmp_path / "log.jsonl"
    files = [str(out), str(tmp_path / "train.tsv"), str(tmp_path / "dev.tsv")]
    torch.set_num_threads(1)
    args = ["1", *files, "--train-rows", "40", "--weight-decay", "0.5", "--eval-every", "5"]
    assert distill_main(args) == 0
    first = json.loads(out.read_text().splitlines()[0])
    assert first == {"train_rows": 40, "dropped": 10}
    for bad in (["--train-rows", "0"], ["--weight-decay", "-1"]):
        with pytest.raises(SystemExit) as err:
            distill_main(["1", *files, *bad])
        assert err.value.code == 2
