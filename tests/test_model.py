"""Properties of the batched model: padding invariance, reductions (RIR -> EBT, K=1 -> greedy),
reproducibility, gradients, sequential depth, config validation and the bf16 path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_helpers import W, tiny_config, tiny_model

from rir_core.config import Alignment, ConfigError, ModelConfig
from rir_core.generate import Recipe, generate
from rir_core.model import build_model
from rir_core.outer import depth_performed, schedule
from rir_core.vocab import PAD_ID, TOKEN_TO_ID


def expression(n: int, seed: int = 0) -> list[str]:
    return list(generate(Recipe(n, n), 1, seed)[0].tokens)


def batch(token_lists: list[list[str]]):
    lengths = [len(t) for t in token_lists]
    ids = torch.full((len(token_lists), max(lengths)), PAD_ID, dtype=torch.long)
    for i, toks in enumerate(token_lists):
        ids[i, : len(toks)] = torch.tensor([TOKEN_TO_ID[t] for t in toks])
    return ids, ids != PAD_ID


# ------------------------------------------------------------------------------------------
# Padding invariance and traces


LENGTHS = [4, 9, 17, 33]  # unchunked, two chunks, four chunks with a short last one, 3 levels


@pytest.mark.parametrize(
    ("model_type", "alignment"),
    [("rir_ebt_grc", a) for a in Alignment]
    + [(m, "sample") for m in ("ebt_grc", "bt_grc", "bbt_grc")],
    ids=str,
)
def test_padding_invariance_eval(model_type: str, alignment: Alignment) -> None:
    """An example alone and inside a batch of longer ones gives the same logits."""
    model = tiny_model(model_type)
    toks = [expression(n, seed=n) for n in LENGTHS]
    seeds = torch.tensor([101, 202, 303, 404])
    ids, mask = batch(toks)
    together = model(ids, mask, seeds, alignment=alignment)
    for i, t in enumerate(toks):
        alone = model(*batch([t]), seeds[i : i + 1], alignment=alignment)
        torch.testing.assert_close(alone[0], together[i], rtol=1e-6, atol=1e-6)


def test_padding_invariance_training() -> None:
    """Training mode (Gumbel top-k), same per-example seeds, dropout 0: same logits."""
    model = tiny_model().train()
    toks = [expression(n, seed=n) for n in LENGTHS]
    seeds = torch.tensor([7, 8, 9, 10])
    ids, mask = batch(toks)
    together = model(ids, mask, seeds)
    for i, t in enumerate(toks):
        alone = model(*batch([t]), seeds[i : i + 1])
        torch.testing.assert_close(alone[0], together[i], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("alignment", list(Alignment))
def test_trace_matches_batched_prediction(alignment: Alignment) -> None:
    """The trace's probabilities are the batched model's softmax, example by example."""
    model = tiny_model(double=False)
    texts = [" ".join(expression(n, seed=n)) for n in (4, 9, 14, 24, 60)]
    ids, mask = model.encode_texts(texts)[:2]
    probs = model(ids, mask, 42, alignment=alignment).softmax(-1)
    for i, text in enumerate(texts):
        trace = model.trace(text, seed=42, alignment=alignment)
        assert trace.probabilities == pytest.approx(probs[i].tolist(), abs=1e-6)
        assert trace.prediction == int(probs[i].argmax())
        assert model.predict([text], seed=42, alignment=alignment) == [trace.prediction]


# ------------------------------------------------------------------------------------------
# Reductions


def test_wide_chunk_reduces_rir_to_ebt() -> None:
    """With W >= n (so n < 1.5 W) RIR-EBT-GRC is exactly EBT-GRC with the same parameters."""
    rir = tiny_model("rir_ebt_grc", chunk_width=40)
    ebt = build_model(rir.config.replace(model_type="ebt_grc")).double().eval()
    ebt.load_state_dict(rir.state_dict())
    assert ebt.s4d is not None and rir.s4d is not None
    toks = [expression(n, seed=n) for n in (4, 13, 25, 40)]
    ids, mask = batch(toks)
    for alignment in Alignment:
        a, out_a = rir.forward_with_details(ids, mask, 3, alignment=alignment)
        b, out_b = ebt.forward_with_details(ids, mask, 3, alignment=alignment)
        # Same arithmetic, but not always the same kernels (the outer recursion batches its
        # rows its own way, and a CPU's BLAS may block other row counts differently), so equal
        # to float64 rounding rather than bit for bit.
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out_a.scores, out_b.scores, rtol=1e-12, atol=1e-12)
        assert out_a.depth == out_b.depth == [n - 1 for n in (4, 13, 25, 40)]
    # The same through the chunk-width override of a narrow-chunked model.
    narrow = tiny_model("rir_ebt_grc")
    ebt.load_state_dict(narrow.state_dict())
    torch.testing.assert_close(
        narrow(ids, mask, 3, chunk_width=40), ebt(ids, mask, 3), rtol=1e-12, atol=1e-12
    )


def _greedy_logits(model, toks: list[str]) -> torch.Tensor:
    """K = 1 by hand: at every step merge the argmax pair (lower index on ties)."""
    inner = model.encoder.inner
    ids, mask = batch([toks])
    nodes = list(model.embed(ids, mask)[0])  # (D,) each
    width = model.config.chunk_width if model.config.model_type == "rir_ebt_grc" else None
    while True:
        n = len(nodes)
        size = n if width is None or 2 * n < 3 * width else width
        roots = []
        for start in range(0, n, size):
            chunk = nodes[start : start + size]
            while len(chunk) > 1:
                left, right = torch.stack(chunk[:-1]), torch.stack(chunk[1:])
                if inner.parent_scorer is not None:
                    scores = inner.parent_scorer(inner.cell(left, right))
                else:
                    scores = inner.child_scorer.pair_scores(left, right)
                s = scores.tolist()
                j = max(range(len(s)), key=lambda i: (s[i], -i))
                chunk = chunk[:j] + [inner.cell(chunk[j], chunk[j + 1])] + chunk[j + 2 :]
            roots.append(chunk[0])
        nodes = roots
        if len(nodes) == 1:
            return model.head(nodes[0])


@pytest.mark.parametrize("model_type", ["rir_ebt_grc", "ebt_grc", "bt_grc"])
def test_beam_one_is_greedy(model_type: str) -> None:
    model = tiny_model(model_type)
    for n in (4, 9, 26):
        toks = expression(n, seed=n)
        with torch.no_grad():
            want = _greedy_logits(model, toks)
            got = model(*batch([toks]), 0, beam_size=1)[0]
        torch.testing.assert_close(got, want.to(got.dtype), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------
# Reproducibility


def test_eval_with_seed_is_reproducible() -> None:
    model = tiny_model(double=False)
    ids, mask = batch([expression(n, seed=n) for n in (9, 40, 70)])
    for alignment in Alignment:
        a = model(ids, mask, 5, alignment=alignment)
        b = model(ids, mask, 5, alignment=alignment)
        assert torch.equal(a, b)


def test_seed_changes_sample_alignment_picks_on_long_inputs() -> None:
    model = tiny_model(double=False)
    text = " ".join(expression(120, seed=1))
    picks = []
    for seed in range(4):
        trace = model.trace(text, seed=seed, alignment="sample")
        picks.append([s["picks"] for lv in trace.levels if lv["alignment"]
                      for s in lv["alignment"]["slots"]])  # fmt: skip
        assert all(p[0] == [0] * len(p[0]) for p in [picks[-1]])  # slot 0: best beams
    assert any(p != picks[0] for p in picks[1:])
    # kbest and rank do not depend on the seed at all.
    for alignment in ("kbest", "rank"):
        a = model.trace(text, seed=0, alignment=alignment).to_dict()
        b = model.trace(text, seed=9, alignment=alignment).to_dict()
        assert a["levels"] == b["levels"] and a["probabilities"] == b["probabilities"]


def test_training_with_same_generator_seed_is_reproducible() -> None:
    """Gumbel noise comes from the generator's per-example seeds; dropout from torch's RNG."""
    ids, mask = batch([expression(n, seed=n) for n in (9, 40, 60)])
    model = tiny_model(double=False).train()  # dropout 0: only the Gumbel noise is random
    a = model(ids, mask, generator=torch.Generator().manual_seed(3))
    b = model(ids, mask, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    others = [model(ids, mask, generator=torch.Generator().manual_seed(s)) for s in (4, 5, 6)]
    assert any(not torch.equal(a, o) for o in others)
    # With dropout on, fixing torch's global seed as well makes the pass reproducible.
    model = tiny_model(double=False, dropout=0.1).train()
    runs = []
    for _ in range(2):
        torch.manual_seed(11)
        runs.append(model(ids, mask, generator=torch.Generator().manual_seed(3)))
    assert torch.equal(runs[0], runs[1])


# ------------------------------------------------------------------------------------------
# Gradients


# Parameters that provably get no gradient: the scorers' output biases. A bias adds the same
# constant to every pair score of a beam, and log_softmax is shift-invariant, so log p (the only
# way the scores reach the loss) does not depend on it: its gradient is exactly zero in exact
# arithmetic (rounding leaves ~1e-17 in float64).
NO_GRAD = {
    "rir_ebt_grc": {"encoder.inner.child_scorer.out.bias"},
    "ebt_grc": {"encoder.inner.child_scorer.out.bias"},
    "bt_grc": {"encoder.inner.parent_scorer.out.bias"},
    "bbt_grc": set(),
}


@pytest.mark.parametrize("model_type", list(NO_GRAD))
def test_gradients_reach_every_parameter(model_type: str) -> None:
    model = tiny_model(model_type, dropout=0.1).train()
    ids, mask = batch([expression(n, seed=n) for n in (9, 17, 26)])
    logits = model(ids, mask, generator=torch.Generator().manual_seed(0))
    F.cross_entropy(logits, torch.tensor([1, 4, 7])).backward()
    no_grad = set()
    for name, p in model.named_parameters():
        if p.grad is None or p.grad.abs().max().item() < 1e-12:
            no_grad.add(name)
        else:
            assert torch.isfinite(p.grad).all(), name
    assert no_grad == NO_GRAD[model_type]


@pytest.mark.parametrize(
    ("model_type", "n"),
    [("rir_ebt_grc", 9), ("rir_ebt_grc", 60), ("ebt_grc", 20), ("bt_grc", 12), ("bbt_grc", 20)],
    ids=str,
)
def test_gradients_are_the_derivative(model_type: str, n: int) -> None:
    """The analytic gradient (node pools, carried pair scores, levels of chunks) equals the
    derivative by central differences, along random directions of three parameters that every
    path goes through. Eval mode, float64: the discrete choices stay fixed for tiny steps."""
    from torch.func import functional_call

    model = tiny_model(model_type)
    ids, mask = batch([expression(n, seed=n)])
    gen = torch.Generator().manual_seed(n)
    names = ["embedding.weight", "leaf.0.weight", "encoder.inner.cell.w1.weight"]
    params = dict(model.named_parameters())
    for name in (x for x in names if x in params):
        weight = params[name].detach().clone()
        cotangent = torch.randn(1, 10, generator=gen, dtype=torch.float64)
        direction = torch.randn(weight.shape, generator=gen, dtype=torch.float64)

        def loss(w: torch.Tensor, name: str = name, cot: torch.Tensor = cotangent) -> torch.Tensor:
            logits = functional_call(model, {name: w}, (ids, mask, torch.tensor([7])))
            return (logits * cot).sum()

        w = weight.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(w), w)
        eps = 1e-6
        with torch.no_grad():
            numeric = (loss(weight + eps * direction) - loss(weight - eps * direction)) / (2 * eps)
        assert (grad * direction).sum().item() == pytest.approx(numeric.item(), rel=1e-6, abs=1e-8)


# ------------------------------------------------------------------------------------------
# Sequential depth (SPEC 3)


def _depth_independent(n: int, width: int) -> int:
    """Depth by the recursion of SPEC 3: a level of n nodes is one chunk (n - 1 merges) when
    n < 1.5 W, else ceil(n / W) chunks whose widest has W nodes (W - 1 merges)."""
    if 2 * n < 3 * width:
        return n - 1
    return (width - 1) + _depth_independent(-(-n // width), width)


def _schedule_independent(n: int, width: int) -> list[list[int]]:
    out = []
    while True:
        if 2 * n < 3 * width:
            return out + [[n]]
        c = math.ceil(n / width)
        out.append([width] * (c - 1) + [n - width * (c - 1)])
        n = c


@pytest.mark.parametrize("width", [2, 5, 30])
def test_depth_formulas(width: int) -> None:
    for n in range(1, 3001):
        assert schedule(n, width) == _schedule_independent(n, width), n
        assert depth_performed(n, width) == _depth_independent(n, width), n
    assert depth_performed(3000, None) == 2999


def test_depth_numbers_quoted_in_spec() -> None:
    quoted = {100: 32, 300: 38, 600: 48, 1000: 62, 2000: 60}
    assert {n: depth_performed(n, 30) for n in quoted} == quoted
    assert {n: _depth_independent(n, 30) for n in quoted} == quoted


def test_measured_depth_on_real_inputs() -> None:
    model = tiny_model(double=False)
    for n in (4, 9, 24, 60):
        text = " ".join(expression(n, seed=n))
        ids, mask = model.encode_texts([text])[:2]
        _, out = model.forward_with_details(ids, mask, 0)
        trace = model.trace(text)
        assert out.depth == [_depth_independent(n, W)]
        assert trace.depth["performed"] == _depth_independent(n, W) == trace.depth["schedule"]
    wide = tiny_model(double=False, chunk_width=30)
    text = " ".join(expression(100, seed=0))
    assert wide.trace(text).depth["performed"] == 32  # SPEC 3's number for n = 100


# ------------------------------------------------------------------------------------------
# Config validation


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"hidden_size": 15}, "hidden_size"),
        ({"beam_size": 0}, "beam_size"),
        ({"beam_size": 2.5}, "beam_size"),
        ({"chunk_width": 1}, "chunk_width"),
        ({"alignment": "best"}, "alignment"),
        ({"model_type": "transformer"}, "model_type"),
        ({"dropout": 1.0}, "dropout"),
        ({"scorer_slice": 200}, "scorer_slice"),
        ({"s4d_state_size": 63}, "s4d_state_size"),
        ({"use_s4d": "yes"}, "use_s4d"),
    ],
)
def test_invalid_config_is_one_clear_sentence(changes: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        ModelConfig(**changes)
    message = str(info.value)
    assert field in message
    assert message.endswith(".") and "\n" not in message
    assert isinstance(info.value, ValueError)


def test_from_dict_round_trip_and_unknown_keys() -> None:
    config = tiny_config(alignment="kbest")
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert config.alignment is Alignment.KBEST
    with pytest.raises(ConfigError, match="unknown model config field.*beam_width"):
        ModelConfig.from_dict({**config.to_dict(), "beam_width": 4})
    with pytest.raises(ConfigError):
        ModelConfig.from_dict(["not", "a", "dict"])


def test_settings_overrides_are_validated() -> None:
    model = tiny_model(double=False)
    with pytest.raises(ValueError, match="beam size"):
        model.settings(beam_size=0)
    with pytest.raises(ValueError, match="alignment"):
        model.settings(alignment="best")


# ------------------------------------------------------------------------------------------
# bf16 autocast


@pytest.mark.parametrize("model_type", ["rir_ebt_grc", "bt_grc", "bbt_grc"])
def test_bf16_autocast_runs_on_cpu(model_type: str) -> None:
    model = tiny_model(model_type, double=False)
    ids, mask = batch([expression(n, seed=n) for n in (9, 17, 40)])
    fp32 = model(ids, mask, 0)
    bf16 = model(ids, mask, 0, amp=True)
    assert bf16.dtype == torch.float32 and torch.isfinite(bf16).all()
    torch.testing.assert_close(bf16, fp32, rtol=0.1, atol=0.1)


def test_amp_keeps_beam_scores_in_float32() -> None:
    """Beam scores are sums of hundreds of log-probabilities: bf16 cannot hold them.

    Fails while the scores start as ``leaves.new_zeros(...)`` (bf16 under autocast) and the CPU
    autocast log_softmax returns bf16: at a score near -700 the bf16 step is 4, so the beams of
    a 200-token EBT-GRC pass all tie (e.g. fp32 -703.81/-703.88/-703.88 -> bf16 -716 x3), the
    pooling weights turn uniform and the top-K choice degenerates to index order.
    """
    model = tiny_model("ebt_grc", double=False)
    ids, mask = batch([expression(40, seed=1)])
    _, out = model.forward_with_details(ids, mask, 0, amp=True)
    assert out.scores.dtype == torch.float32


@pytest.mark.parametrize("shape", [(896, 512), (3, 5, 7), (1,)])
def test_fast_dropout_drops_p_and_keeps_the_expectation(shape) -> None:
    from rir_core.cells import FastDropout, fast_dropout

    torch.manual_seed(0)
    x = torch.full(shape, 2.0)
    assert fast_dropout(x, 0.1, training=False) is x and fast_dropout(x, 0.0, True) is x
    y = fast_dropout(x, 0.1, training=True)
    assert y.shape == x.shape
    kept = torch.tensor(2.0) / 0.9  # in float32, as the layer computes it
    assert set(y.unique().tolist()) <= {0.0, kept.item()}
    if x.numel() >= 10_000:  # 458,752 draws: the drop rate is 0.1 within 5 standard errors
        rate = (y == 0).double().mean().item()
        assert abs(rate - 0.1) < 5 * math.sqrt(0.09 / x.numel())
        assert y.mean().item() == pytest.approx(2.0, rel=0.01)  # inverted dropout
        # Lanes of one 64-bit draw are independent: no two neighbours share their fate
        # more often than chance says.
        both = ((y.flatten()[:-1] == 0) & (y.flatten()[1:] == 0)).double().mean().item()
        assert abs(both - 0.01) < 0.002
    torch.manual_seed(1)
    a = fast_dropout(x, 0.5, True)
    torch.manual_seed(1)
    assert torch.equal(a, fast_dropout(x, 0.5, True))  # the global RNG fixes the mask
    layer = FastDropout(0.3).eval()
    assert layer(x) is x


# ------------------------------------------------------------------------------------------
# Inference in groups of chunks (bounded node pools)


@pytest.mark.parametrize("alignment", list(Alignment))
def test_chunk_groups_without_autograd_give_the_same_logits(
    alignment: Alignment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without autograd a level's chunks run in groups of bounded pool size, shortest first:
    the logits and the beams are those of one call per level (autograd on)."""
    from rir_core.outer import OuterRecursion

    model = tiny_model()
    toks = [expression(n, seed=n) for n in (4, 9, 17, 33, 61, 150)]
    seeds = torch.tensor([1, 2, 3, 4, 5, 6])
    ids, mask = batch(toks)
    expected = model(ids, mask, seeds, alignment=alignment).detach()  # one call per level
    calls: list[int] = []  # node-pool rows of each inner call
    search = model.encoder.inner.forward

    def counted(state, lengths, max_len, *rest):
        n, k = state.scores.shape
        copies = 1 if state.nodes.stride(1) == 0 else k  # level 0 shares its K copies
        calls.append(n * (max_len * copies + k * (max_len - 1)))
        return search(state, lengths, max_len, *rest)

    monkeypatch.setattr(model.encoder.inner, "forward", counted)
    monkeypatch.setattr(OuterRecursion, "pool_rows", 60)  # a few chunks of W = 5 per group
    with torch.no_grad():
        got = model(ids, mask, seeds, alignment=alignment)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)
    levels = len(schedule(150, W))
    assert len(calls) > levels  # grouped: more calls than levels, each of a few chunks
    assert max(calls) <= 60


# ------------------------------------------------------------------------------------------
# Candidate selection


def _sorted_top_k(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.sort(x, dim=-1, descending=True, stable=True).indices[:, :k]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_top_k_stable_is_a_stable_sort(dtype: torch.dtype) -> None:
    """Largest first, ties to the lower index, with -inf, -0.0 and tiny values among the keys."""
    from rir_core.inner import top_k_stable

    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        n, m = (int(v) for v in torch.randint(1, 300, (2,), generator=g))
        n = n % 40 + 1
        k = int(torch.randint(1, m + 1, (1,), generator=g))
        x = torch.randint(-4, 4, (n, m), generator=g).to(dtype) * 0.5  # many exact ties
        x[torch.rand(n, m, generator=g) < 0.2] = -torch.inf
        x[torch.rand(n, m, generator=g) < 0.1] = -0.0
        x[torch.rand(n, m, generator=g) < 0.1] = 1e-30
        x[torch.rand(n, m, generator=g) < 0.1] = -1e-30
        assert torch.equal(top_k_stable(x, k), _sorted_top_k(x, k))


@pytest.mark.parametrize("model_type", ["rir_ebt_grc", "ebt_grc", "bt_grc"])
def test_selection_breaks_exact_ties_like_a_stable_sort(model_type: str, monkeypatch) -> None:
    """Without S4D, repeated tokens give identical leaves and so exactly tied pair scores: the
    float32 search (topk on distinct integer keys) picks the merges a stable sort picks."""
    import rir_core.inner

    model = tiny_model(model_type, double=False, use_s4d=False, beam_size=4)
    texts = ["[MAX 2 2 2 2 2 2 2 2 2 2 2 2 2 ]", "[SM 1 1 [MIN 1 1 1 ] 1 1 1 1 1 1 1 ]"]
    fast = [model.trace(t, seed=3).to_dict() for t in texts]
    ties = sum(
        len(set(beam["pair_probs"])) < len(beam["pair_probs"])
        for lv in fast[0]["levels"]
        for detail in lv["chunk_details"]
        for step in detail["steps"]
        for beam in step["beams"]
    )
    assert ties > 0  # the inputs do tie
    monkeypatch.setattr(rir_core.inner, "top_k_stable", _sorted_top_k)
    assert [model.trace(t, seed=3).to_dict() for t in texts] == fast


def test_the_search_hashes_its_gumbel_stream_in_parts() -> None:
    """The training search hashes (seed, GUMBEL, level, chunk) once and extends it by step, beam
    and position: the same stream as :func:`rng.gumbel` on all coordinates, which is the stream
    of earlier versions, so that a resumed run draws what it drew.

    The stream is its 32-bit hashes: integer arithmetic, pinned exactly (the same on every CPU
    and on CUDA). The Gumbel values are ``-log(-log(u))`` of them, and ``log``'s last bit
    differs between CPU vector units (Intel and AMD give 0.45147919... and 0.45147931... for
    one of the values below), so the floats are checked to a stated tolerance only.
    """
    from rir_core import rng

    seeds = torch.tensor([0, 1, 2**40 + 7, 2**62 - 1])[:, None, None]
    chunk = torch.tensor([0, 3, 1, 2])[:, None, None]
    beam, pos = torch.arange(5)[None, :, None], torch.arange(9)[None, None, :]
    want = rng.hash_coords(seeds, rng.GUMBEL, 2, chunk, 7, beam, pos)  # (4, 5, 9) int64
    h = rng.hash_coords(seeds, rng.GUMBEL, 2, chunk)
    h = rng.extend_with_key(rng.extend(h, 7), rng.coord_key(beam))
    got = rng.extend_with_key(h, rng.coord_key(pos))
    assert torch.equal(got, want)  # integers: exact
    assert want[1, 2, :4].tolist() == [3987609252, 2482433280, 353203429, 2272222417]
    assert want[3, 4, -2:].tolist() == [480946972, 634751621]
    # The uniforms are exact too: a shift, a conversion of a 24-bit integer, one add and one
    # divide, each correctly rounded in IEEE float32 on any machine (numpy's float32 as oracle).
    u = rng.uniform_from_hash(want)
    top = np.array([3987609252, 2482433280, 353203429, 2272222417]) >> 8
    oracle = (top.astype(np.float32) + np.float32(0.5)) / np.float32(2**24)
    assert u[1, 2, :4].tolist() == oracle.tolist()
    # The Gumbel values: float32 through two logs, to within a few units in the last place.
    gumbel = rng.gumbel(seeds, rng.GUMBEL, 2, chunk, 7, beam, pos)
    torch.testing.assert_close(gumbel, rng.gumbel_from_hash(got), rtol=1e-6, atol=1e-6)
    pinned = [2.6002891063690186, 0.6011067032814026, -0.9155526161193848, 0.451479196548462]
    assert gumbel[1, 2, :4].tolist() == pytest.approx(pinned, rel=1e-6, abs=1e-6)
    assert gumbel[3, 4, -2:].tolist() == pytest.approx([-0.78364670, -0.64813179], abs=1e-6)


def test_the_batch_chunk_rule_cuts_short_tails_beside_long_rows() -> None:
    """SPEC 7.1: the authors' training code chunks by the batch's longest row, so a row of
    W + 2 nodes beside a row of 1.5 W or more becomes [W, 2]; alone, or under the per-example
    rule (SPEC 3, the default), it is one chunk."""
    from rir_core.outer import plan_level

    plan = plan_level({0: 2 * W, 1: W + 2, 2: W - 1}, W, batch_rule=True)
    assert [plan.length[r] for r in plan.chunks_of[1]] == [W, 2]
    assert [plan.length[r] for r in plan.chunks_of[2]] == [W - 1]
    assert [plan.length[r] for r in plan.chunks_of[0]] == [W, W]
    plan = plan_level({1: W + 2, 2: W - 1}, W, batch_rule=True)  # no long row: per example
    assert [plan.length[r] for r in plan.chunks_of[1]] == [W + 2]
    plan = plan_level({0: 2 * W, 1: W + 2}, W)
    assert [plan.length[r] for r in plan.chunks_of[1]] == [W + 2]

    model = tiny_model(double=False)
    ids, mask = batch([expression(n, seed=n) for n in (2 * W, W + 2, W - 1)])
    _, per_example = model.forward_with_details(ids, mask, 3)
    _, per_batch = model.forward_with_details(ids, mask, 3, batch_chunk_rule=True)
    assert per_example.depth == [W - 1 + 1, W + 1, W - 2]
    assert per_batch.depth == [W - 1 + 1, W - 1 + 1, W - 2]  # [W, 2], then 2 roots
    # Rows the rule does not change compute the same thing either way.
    torch.testing.assert_close(per_batch.pooled[[0, 2]], per_example.pooled[[0, 2]])
    assert not torch.allclose(per_batch.pooled[1], per_example.pooled[1])
