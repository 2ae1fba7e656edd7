"""tests/root_report.py: the grouping by root operator, the widths it parses, and the S4D cut."""

from __future__ import annotations

import pytest
import torch
from model_helpers import tiny_config
from root_report import main, mass_beyond, parse_widths, report, root_operator, s4d_taps

from rir_core.checkpoint import save_checkpoint
from rir_core.model import build_model


def test_the_root_operator_is_the_first_tokens() -> None:
    assert root_operator("[SM 3 [MAX 2 5 ] 4 ]") == "SM"
    assert root_operator("[MED [MIN 1 2 ] 7 ]") == "MED"
    assert root_operator("7") == "digit"


def test_widths_are_numbers_or_whole() -> None:
    assert parse_widths("30,whole") == [30, None]
    assert parse_widths(" 8 , 12 ") == [8, 12]
    with pytest.raises(ValueError, match="'1' is neither"):
        parse_widths("30,1")
    with pytest.raises(ValueError, match="'all' is neither"):
        parse_widths("all")


def test_report_counts_each_root_operator_and_all() -> None:
    texts = ["[SM 1 2 ]", "[SM 3 4 ]", "[MAX 1 9 ]", "5"]
    truths = [3, 7, 9, 5]
    table = report(texts, truths, {"W 30": [3, 0, 9, 5], "whole": [3, 7, 0, 5]})
    assert table["SM"] == {"W 30": (1, 2), "whole": (2, 2)}
    assert table["MAX"] == {"W 30": (1, 1), "whole": (0, 1)}
    assert table["digit"] == {"W 30": (1, 1), "whole": (1, 1)}
    assert table["all"] == {"W 30": (3, 4), "whole": (3, 4)}


def test_cut_kernels_hide_context_beyond_the_taps_and_leave_short_inputs_alone() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    taps = 4
    a = "[SM 3 4 5 6 7 8 [MAX 1 2 ] ]"
    b = "[SM 9 4 5 6 7 8 [MAX 1 2 ] ]"  # differs from a at token 1 only
    short = "[SM 3 4 ]"  # 4 tokens: no tap is cut
    ids, mask = model.encode_texts([a, b])[:2]
    sids, smask = model.encode_texts([short])[:2]
    with torch.no_grad():
        leaves = model.embed(ids, mask)  # (2, L, D)
        short_leaves = model.embed(sids, smask)
        with s4d_taps(model, taps):
            cut = model.embed(ids, mask)
            short_cut = model.embed(sids, smask)
        again = model.embed(ids, mask)
    # Token 1 reaches positions 1..4 through taps 0..3; position 5 on only through later taps.
    assert not torch.allclose(leaves[0, 5:], leaves[1, 5:], atol=1e-5)
    torch.testing.assert_close(cut[0, 5:], cut[1, 5:])
    assert not torch.allclose(cut[0, 1:5], cut[1, 1:5], atol=1e-5)
    torch.testing.assert_close(short_cut, short_leaves)
    torch.testing.assert_close(again, leaves)  # the layer (and its cache) whole again


def test_the_report_runs_on_a_checkpoint(tmp_path, capsys) -> None:
    path = tmp_path / "tiny"
    save_checkpoint(path, build_model(tiny_config()), {"notes": "test"})
    assert main(["--checkpoint", str(path), "--split", "dev", "--limit", "12",
                 "--widths", "5,whole", "--s4d-taps", "8"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "dev, first 12 rows" in out and "S4D kernels cut to 8 taps (" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert lines["all"][1] == "12"
    assert sum(int(lines[k][1]) for k in lines if k != "all") == 12
    assert "W 5" in out.splitlines()[1] and "whole" in out.splitlines()[1]


def test_bad_widths_are_one_clear_line(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--widths", "30,wide"])
    assert "--widths: 'wide' is neither a chunk width (>= 2) nor 'whole'" in capsys.readouterr().err


def test_mass_beyond_is_the_share_of_the_kernel_a_cut_removes() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    shares = [mass_beyond(model, taps, 64) for taps in (0, 8, 32, 64)]
    assert shares[0] == pytest.approx(1.0)
    assert shares[-1] == 0.0
    assert shares[0] > shares[1] > shares[2] > 0  # decaying kernels: less beyond later taps
