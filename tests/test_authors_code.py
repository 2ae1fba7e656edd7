"""The harness that runs the authors' own code as a control (tests/authors_code.py).

Their code is not here (it is never copied into this repository), so these tests check our side:
the data files their preprocessing reads, the edits made to a checkout, and the grouping.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import authors_code as ac  # noqa: E402

from rir_core.data import Example  # noqa: E402
from rir_core.generate import Recipe, generate  # noqa: E402


def fake_checkout(root: Path) -> Path:
    """The three files the harness edits, as their checkout has them (the lines that matter)."""
    (root / "controllers").mkdir(parents=True)
    (root / "controllers/scheduler_controller.py").write_text(
        "import math\n"
        + ac.SCHEDULER_IMPORT
        + "\n\n\nclass LinearDecaySchedule(FairseqLRScheduler):\n    pass\n"
    )
    (root / "configs").mkdir()
    (root / "configs/listopsc_configs.py").write_text(
        "class optimizer_config:\n    def __init__(self):\n"
        "        self.num_workers = 6\n        self.lr = 1e-3\n"
    )
    (root / "models/encoders").mkdir(parents=True)
    (root / "models/encoders/__init__.py").write_text(
        "from .RecurrentGRC import RecurrentGRC\nfrom .HEBT_GRC import HEBT_GRC\n"
        "from .MEGA import MEGA\n\n"
    )
    return root


def test_patch_checkout_edits_once_and_keeps_hebt_grc_import_unguarded(tmp_path):
    code = fake_checkout(tmp_path / "code")
    changed = ac.patch_checkout(code)
    assert sorted(changed) == sorted(
        [
            "controllers/scheduler_controller.py",
            "configs/listopsc_configs.py",
            "models/encoders/__init__.py",
            "_stubs/pytorch_lightning",
        ]
    )
    sched = (code / "controllers/scheduler_controller.py").read_text()
    assert "try:\n    " + ac.SCHEDULER_IMPORT in sched and "except ImportError" in sched
    assert "self.num_workers = 0" in (code / "configs/listopsc_configs.py").read_text()
    init = (code / "models/encoders/__init__.py").read_text().splitlines()
    assert "from .HEBT_GRC import HEBT_GRC" in init  # unguarded: a failure there must show
    assert (
        "    from .MEGA import MEGA" in init
        and "    from .RecurrentGRC import RecurrentGRC" in init
    )
    # the stub is a working decorator, and the edited files are valid Python
    namespace: dict = {}
    exec((code / "_stubs/pytorch_lightning/utilities.py").read_text(), namespace)
    assert namespace["rank_zero_only"](len) is len
    compile(sched, "scheduler_controller.py", "exec")
    compile("\n".join(init), "__init__.py", "exec")
    # a second run changes nothing
    before = {p: p.read_text() for p in code.rglob("*.py")}
    assert ac.patch_checkout(code) == []
    assert {p: p.read_text() for p in code.rglob("*.py")} == before


def test_patch_checkout_names_what_it_cannot_find(tmp_path):
    with pytest.raises(ac.HarnessError, match="is .* a checkout of JRC1995/BeamRecursionFamily"):
        ac.patch_checkout(tmp_path)
    code = fake_checkout(tmp_path / "code")
    (code / "configs/listopsc_configs.py").write_text("self.num_workers = 4\n")
    with pytest.raises(ac.HarnessError, match="has no line 'self.num_workers = 6'"):
        ac.patch_checkout(code)


def test_data_files_put_the_unfiltered_dev_rows_first(tmp_path, monkeypatch):
    # the standard test splits are replaced by small draws: only the layout is under test here
    def small_split(name, n=None, **_):
        return generate(Recipe(2, 60), n or 10, seed=len(name))

    monkeypatch.setattr(ac, "load_split", small_split)
    train = generate(Recipe(2, 100), 40, seed=11)
    dev = ac.dev_rows(train, n=30)
    assert all(ex.text not in {t.text for t in train} for ex in dev)
    counts = ac.write_data(tmp_path, train, dev, n_test=8)
    lines = (tmp_path / "train_d20s.tsv").read_text().splitlines()
    assert counts["train_d20s.tsv"] == len(lines) == 70
    # their preprocessing takes the first 1,000 rows (here the first 30) as dev, unfiltered
    assert [line.split("\t") for line in lines[:30]] == [[str(ex.label), ex.text] for ex in dev]
    assert [line.split("\t")[1] for line in lines[30:]] == [ex.text for ex in train]
    lra = (tmp_path / "basic_test.tsv").read_text().splitlines()
    assert lra[0] == "Source\tTarget" and lra[1].split("\t")[1].isdigit()
    for key in (
        "200_300",
        "300_400",
        "400_500",
        "500_600",
        "600_700",
        "700_800",
        "800_900",
        "900_1000",
    ):
        assert (tmp_path / f"test_{key}.tsv").stat().st_size > 0
    too_long = Example(tokens=("[SM", *["1"] * 100, "]"), label=0)
    with pytest.raises(ac.HarnessError, match="at most 100 tokens"):
        ac.write_data(tmp_path, [too_long], dev)


def test_chunked_train_rows_skip_the_dev_head_and_keep_45_to_100_tokens(tmp_path):
    train = generate(Recipe(2, 100), 60, seed=12)
    dev = generate(Recipe(45, 100), 5, seed=13)  # chunked too: must be skipped, not counted
    ac.write_rows(tmp_path / "train_d20s.tsv", [*dev, *train])
    want = [(str(ex.label), list(ex.tokens)) for ex in train if 45 <= len(ex.tokens) <= 100]
    assert want and len(want) < len(train)
    assert ac.chunked_train_rows(tmp_path / "train_d20s.tsv", 1000, skip=5) == want
    assert ac.chunked_train_rows(tmp_path / "train_d20s.tsv", 2, skip=5) == want[:2]


def their_state_from(ours: dict, vocab2idx: dict, labels2idx: dict) -> dict:
    """Our state dict written in their layout: the inverse of ``to_our_state``, built here from
    what their checkpoint holds (S4D tensors with a leading 1, ``A_imag`` the negated
    imaginary part, 18 embedding rows in their token order, output rows in their label order).
    """
    import torch

    from rir_core.vocab import PAD_ID, TOKENS

    their = {old: ours[new].clone() for old, new in ac.THEIR_NAMES.items()}
    prefix = "encoder.RNN.S4DBlock.layer."
    their[prefix + "D"] = ours["s4d.kernel.d"][None].clone()
    for name in ("C", "B"):
        their[prefix + "kernel." + name] = ours[f"s4d.kernel.{name.lower()}"][None].clone()
    their[prefix + "kernel.inv_dt"] = ours["s4d.kernel.log_dt"][:, None].clone()
    their[prefix + "kernel.A_imag"] = -ours["s4d.kernel.a_imag"]
    emb = torch.randn(len(vocab2idx), ours["embedding.weight"].shape[1])
    for i, t in enumerate(TOKENS):
        emb[vocab2idx["<PAD>" if i == PAD_ID else t]] = ours["embedding.weight"][i]
    their["word_embedding.weight"] = emb
    w, b = torch.empty_like(ours["head.4.weight"]), torch.empty_like(ours["head.4.bias"])
    for label, row in labels2idx.items():
        w[row], b[row] = ours["head.4.weight"][int(label)], ours["head.4.bias"][int(label)]
    their["prediction_linear2.weight"], their["prediction_linear2.bias"] = w, b
    return their


def test_their_state_maps_onto_ours_by_token_and_label():
    import random

    import torch

    from rir_core.model import build_model

    torch.manual_seed(3)
    ours = build_model().state_dict()
    tokens = ["[MAX", "[MED", "[MIN", "[SM", "]", *"0123456789", "<UNK>", "<PAD>", "<SEP>"]
    random.Random(4).shuffle(tokens)
    labels = list("0123456789")
    random.Random(5).shuffle(labels)
    vocab2idx = {t: i for i, t in enumerate(tokens)}
    labels2idx = {label: i for i, label in enumerate(labels)}
    mapped = ac.to_our_state(their_state_from(ours, vocab2idx, labels2idx), vocab2idx, labels2idx)
    assert set(mapped) == set(ours)
    for name, tensor in ours.items():
        assert mapped[name].shape == tensor.shape, name
        assert torch.equal(mapped[name], tensor), name
    build_model().load_state_dict(mapped)  # strict: every parameter, nothing else


def test_a_foreign_state_dict_is_named_not_mapped():
    import torch

    their = {name: torch.zeros(1) for name in ac.THEIR_NAMES}
    their["encoder.extra.weight"] = torch.zeros(1)
    with pytest.raises(ac.HarnessError) as err:
        ac.to_our_state(their, {}, {})
    msg = str(err.value)
    assert (
        "missing prediction_linear2.bias, prediction_linear2.weight, word_embedding.weight" in msg
    )
    assert msg.endswith("unexpected encoder.extra.weight") and "\n" not in msg


def test_convert_without_processed_data_says_what_to_do(tmp_path, capsys):
    args = ["convert", "--code", str(tmp_path), str(tmp_path / "x.pt"), str(tmp_path / "out")]
    assert ac.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "process_listopsc.py" in err
    assert not (tmp_path / "out").exists()


def test_groups_are_the_trainers(tmp_path):
    results = [(30, True), (44, False), (45, True), (100, True), (101, False), (950, True)]
    groups = ac.grouped(results)
    assert groups == {
        "unchunked": {"accuracy": 0.5, "n": 2},
        "chunked": {"accuracy": 1.0, "n": 2},
        "long": {"accuracy": 0.5, "n": 2},
    }


def test_eval_without_a_prepared_checkout_says_what_to_do(tmp_path, capsys):
    assert ac.main(["eval", "--code", str(tmp_path), str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "run `prepare --code" in err
