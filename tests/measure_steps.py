"""Where one 1,000-token input's inference time goes, RIR-EBT-GRC against EBT-GRC (not a test).

    python tests/measure_steps.py [--repeat 15] [--threads 0]

Both models at the paper's sizes (D 128; K 7 and W 30 for RIR, K 5 for EBT), random weights,
eval mode, one input of 1,000 tokens (the benchmark's input), the minimum over ``--repeat``
timed passes after a warm-up (the
fastest pass, with its own per-search times). Prints:

* the whole forward pass of each model;
* each inner beam search (one per outer level): its chunks, steps and time, so the cost of one
  step is the search's time over its steps;
* the matrix products of RIR's level 0 alone: the GRC's two ``Linear`` layers on that level's
  ``chunks x K`` rows, once per step, which no implementation of the search can avoid;
* what that means for the ratio (docs/benchmarks.md, "Speed against EBT-GRC").
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from rir_core import inner as inner_mod  # noqa: E402
from rir_core.config import ModelConfig  # noqa: E402
from rir_core.data import encode_batch  # noqa: E402
from rir_core.generate import Recipe, generate  # noqa: E402
from rir_core.model import build_model  # noqa: E402


def best_of(repeat: int, fn) -> float:
    """Minimum wall time of ``fn()`` in ms over ``repeat`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    example = generate(Recipe(1000, 1000), 1, seed=12)[0]
    ids, mask = encode_batch([example.tokens])
    lengths = [len(example)]

    searches: list[tuple[int, int, int, float]] = []  # (level, chunks, steps, ms) of last pass
    forward = inner_mod.BeamSearch.forward

    def timed(self, state, lens, max_len, keys, recorder=None):  # noqa: ANN001
        start = time.perf_counter()
        out = forward(self, state, lens, max_len, keys, recorder)
        ms = (time.perf_counter() - start) * 1e3
        searches.append((keys.level, state.scores.shape[0], max_len - 1, ms))
        return out

    totals, levels = {}, {}
    with torch.inference_mode():
        for name in ("rir_ebt_grc", "ebt_grc"):
            torch.manual_seed(0)
            model = build_model(ModelConfig.for_model(name)).eval()
            inner_mod.BeamSearch.forward = timed
            model(ids, mask, 0, lengths=lengths)  # warm-up
            best = None  # the fastest pass: its total and its searches
            for _ in range(args.repeat):
                searches.clear()
                start = time.perf_counter()
                model(ids, mask, 0, lengths=lengths)
                ms = (time.perf_counter() - start) * 1e3
                if best is None or ms < best[0]:
                    best = (ms, list(searches))
            totals[name] = best[0]
            per_level = {level: [chunks, steps, ms] for level, chunks, steps, ms in best[1]}
            inner_mod.BeamSearch.forward = forward
            levels[name] = per_level
            if name == "rir_ebt_grc":
                cell = model.encoder.inner.cell
                chunks, steps, _ = per_level[0]
                rows = chunks * model.config.beam_size
                d = model.config.hidden_size
                x1 = torch.randn(rows, 2 * d)
                x2 = torch.randn(rows, cell.w1.out_features)

                def products(cell=cell, x1=x1, x2=x2, steps=steps) -> None:
                    for _ in range(steps):
                        cell.w1(x1)
                        cell.w2(x2)

                matmul_ms = best_of(args.repeat, products)

    print(f"threads {torch.get_num_threads()}, input of {lengths[0]} tokens, batch 1")
    for name in ("rir_ebt_grc", "ebt_grc"):
        print(f"{name}: forward {totals[name]:.1f} ms")
        for level, (chunks, steps, ms) in sorted(levels[name].items()):
            print(
                f"  level {level}: {chunks} chunk(s), {steps} steps, {ms:.1f} ms "
                f"= {ms / max(steps, 1):.3f} ms a step"
            )
    rir, ebt = totals["rir_ebt_grc"], totals["ebt_grc"]
    chunks0, steps0, _ = levels["rir_ebt_grc"][0]
    print(
        f"rir level 0: the GRC's matrix products alone ({chunks0} x K rows, {steps0} steps): "
        f"{matmul_ms:.1f} ms"
    )
    ebt_steps, ebt_inner = levels["ebt_grc"][0][1], levels["ebt_grc"][0][2]
    c_ebt = ebt_inner / ebt_steps
    ebt_rest = ebt - ebt_inner  # embedding, leaf transform, pooling, head
    rir_levels = levels["rir_ebt_grc"].values()
    rir_steps = sum(steps for _, steps, _ in rir_levels)
    rir_rest = rir - sum(ms for _, _, ms in rir_levels)  # also S4D and the beam alignment
    c_small = min(ms / steps for _, steps, ms in rir_levels)  # RIR's cheapest step
    print(f"ratio {ebt / rir:.2f}x; EBT-GRC: {ebt_steps} steps at {c_ebt:.3f} ms")
    print(f"outside the searches: RIR {rir_rest:.1f} ms (S4D, alignment...), EBT {ebt_rest:.1f} ms")
    # A lower bound on RIR: every step costs at least its cheapest step, plus level 0's matrix
    # products and what runs outside the searches.
    floor = rir_steps * c_small + matmul_ms + rir_rest
    print(
        f"upper bound: RIR takes at least {rir_steps} x {c_small:.3f} + {matmul_ms:.1f} + "
        f"{rir_rest:.1f} = {floor:.1f} ms, so the ratio is at most {ebt / floor:.2f}x"
    )
    # The shared step cost c scales both; RIR's steps cost rho * c (smaller tensors).
    rho = c_small / c_ebt
    need = (10 * (matmul_ms + rir_rest) - ebt_rest) / (ebt_steps - 10 * rir_steps * rho)
    print(f"10x needs a step cost of at least {need:.3f} ms (EBT-GRC's now: {c_ebt:.3f} ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
