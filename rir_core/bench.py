"""Throughput and peak memory of the four models: ``python -m rir_core.bench [--quick] --json OUT``.

Training: forward + backward + optimizer step over the train recipe's natural length mix
(<= 100 tokens, length-bucketed batches of 128). Inference: fixed-length inputs of 100, 500 and
1,000 tokens, 16 at a time (4 with ``--quick``), and one at a time at 1,000 tokens. Paper
sizes: D 128, K 7 (RIR-EBT-GRC) and K 5 (EBT-GRC, BT-GRC), W 30.

Each measurement runs in a fresh process, so its peak memory is its own: on CUDA
``torch.cuda.max_memory_allocated``; on CPU the growth of the peak resident set size (``ru_maxrss``)
over the process's size just before the measured work.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import random
import resource
import sys
import time

MODELS = ("rir_ebt_grc", "ebt_grc", "bt_grc", "bbt_grc")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _measure(job: dict, out: mp.Queue) -> None:
    import torch

    from rir_core.config import ModelConfig
    from rir_core.data import encode_batch
    from rir_core.generate import Recipe, generate
    from rir_core.model import build_model, loss_fn

    torch.manual_seed(0)
    torch.set_num_threads(job["threads"])
    device = torch.device(job["device"])
    model = build_model(ModelConfig.for_model(job["model"])).to(device)
    cuda = device.type == "cuda"
    if job["mode"] == "train":
        examples = generate(Recipe(2, job["length"]), job["n"], seed=11)
        from rir_core.data import bucket_batches

        batches = bucket_batches([len(e) for e in examples], job["batch"], random.Random(0))
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(0)
        data = []
        for b in batches:
            ids, mask = encode_batch([examples[i].tokens for i in b])
            labels = torch.tensor([examples[i].label for i in b])
            data.append(
                (ids.to(device), mask.to(device), labels.to(device), [len(examples[i]) for i in b])
            )

        def work(batches=data) -> int:
            for ids, mask, labels, lengths in batches:
                loss = loss_fn(model(ids, mask, generator=gen, lengths=lengths), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return sum(len(d[3]) for d in batches)
    else:
        examples = generate(Recipe(job["length"], job["length"]), job["batch"], seed=12)
        ids, mask = encode_batch([e.tokens for e in examples])
        ids, mask = ids.to(device), mask.to(device)
        lengths = [len(e) for e in examples]
        model.eval()

        def work() -> int:
            with torch.inference_mode():
                model(ids, mask, 0, lengths=lengths)
            return len(lengths)

    # Warm-up: first-call allocations and kernel selection are not measured (training: two
    # batches, then the steady state a long run sees).
    work() if job["mode"] == "infer" else work(data[:2])
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = _rss_mb()
    start = time.perf_counter()
    done = 0
    runs = 0
    while runs < job["min_runs"] or time.perf_counter() - start < job["min_seconds"]:
        done += work()
        runs += 1
        if cuda:
            torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else _peak_rss_mb() - base
    out.put(
        {
            "model": job["model"],
            "mode": job["mode"],
            "length": job["length"],
            "batch": job["batch"],
            "seq_per_s": done / elapsed,
            "peak_mem_mb": max(peak, 0.0),
            "seconds": elapsed,
        }
    )


def jobs(quick: bool, device: str, threads: int) -> list[dict]:
    out = []
    for model in MODELS:
        # BT-GRC composes every pair at every step: at batch 128 its activations for training
        # on 100-token inputs exceed 24 GiB, so it is measured at batch 16.
        batch = 16 if model == "bt_grc" else 128
        out.append(
            {
                "model": model,
                "mode": "train",
                "length": 100,
                "batch": batch,
                "n": (256 if quick else 2048) // (128 // batch),
                "min_runs": 1,
                "min_seconds": 0,
            }
        )
    for length in (100, 500, 1000):
        for model in MODELS:
            batch = 4 if quick else 16  # the same batch for every model, so memory compares
            out.append(
                {
                    "model": model,
                    "mode": "infer",
                    "length": length,
                    "batch": batch,
                    "min_runs": 1,
                    "min_seconds": 0 if quick else 3,
                }
            )
    if not quick:
        # One input at a time (what the app does): latency, where per-step overhead counts.
        for model in MODELS:
            out.append(
                {
                    "model": model,
                    "mode": "infer",
                    "length": 1000,
                    "batch": 1,
                    "min_runs": 1,
                    "min_seconds": 3,
                }
            )
    for j in out:
        j.update(device=device, threads=threads)
    return out


def machine_name() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def table(results: list[dict]) -> str:
    rows = ["| model | mode | length | batch | seq/s | peak MiB |", "|---|---|---|---|---|---|"]
    for r in results:
        rows.append(
            f"| {r['model']} | {r['mode']} | {r['length']} | {r['batch']} | "
            f"{r['seq_per_s']:.2f} | {r['peak_mem_mb']:.0f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rir_core.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small runs (< 5 min on 2 cores)")
    parser.add_argument("--json", required=True, help="write the results here")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--modes", default="train,infer", help="train, infer or both")
    args = parser.parse_args(argv)
    import os

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available.", file=sys.stderr)
        return 2
    wanted = set(args.models.split(","))
    unknown = wanted - set(MODELS)
    if unknown:
        print(f"error: unknown model(s): {', '.join(sorted(unknown))}.", file=sys.stderr)
        return 2
    threads = args.threads or os.cpu_count() or 1
    ctx = mp.get_context("spawn")
    results, failed = [], []
    for job in jobs(args.quick, device, threads):
        if job["model"] not in wanted or job["mode"] not in args.modes.split(","):
            continue
        q = ctx.Queue()
        p = ctx.Process(target=_measure, args=(job, q))
        p.start()
        p.join()
        if p.exitcode != 0:
            why = "killed, out of memory" if p.exitcode == -9 else f"exit code {p.exitcode}"
            print(
                f"{job['model']} {job['mode']} {job['length']} batch {job['batch']} failed "
                f"({why}).",
                file=sys.stderr,
            )
            failed.append({k: job[k] for k in ("model", "mode", "length", "batch")} | {"why": why})
            continue
        r = q.get()
        results.append(r)
        print(
            f"{r['model']:12s} {r['mode']:5s} len {r['length']:5d} batch {r['batch']:3d}: "
            f"{r['seq_per_s']:9.2f} seq/s, peak {r['peak_mem_mb']:8.1f} MiB",
            flush=True,
        )
    name = machine_name() if device == "cpu" else torch.cuda.get_device_name()
    report = {"machine": name, "device": device, "results": results, "failed": failed}
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print(table(results))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
