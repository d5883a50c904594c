#!/usr/bin/env python
"""Benchmark of the calcium rule (Graupner & Brunel 2012) kernel, stochastic (sigma > 0).

    python bench/bench_calcium.py [--seconds 60] [--repeat 3]

Workloads, 1000 synapses each, DP parameter set with its noise (sigma 2.8284), dt = 0.1 ms,
60 s of simulated time (600,000 steps: rho is integrated every step for every synapse):

  pairing   1 pre x 1000 clamped post neurons, 60 pre/post pairs at 1 Hz, delta_t = +10 ms
            (the stochastic STDP experiment; calcium above threshold ~2.3 % of the time)
  poisson   100 pre x 10 clamped post neurons, independent Poisson trains at 10 Hz
            (calcium above threshold often: many noise draws)

The kernel is compiled (or loaded from Numba's cache) first on a tiny run, so the numbers are
the simulation only, on one core (the kernel is single-threaded). Prints one line per workload
and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plastictool.core.net import make_net  # noqa: E402
from plastictool.protocol.inits import Init  # noqa: E402
from plastictool.rules import calcium  # noqa: E402
from plastictool.rules.base import BuildContext, block_mask  # noqa: E402

DT = 0.1


def dp_values():
    v = {p.name: p.default for p in calcium.SPEC.params}
    v.update(calcium.SPEC.presets["graupner2012_dp"].values)
    v["rho_init"] = Init("uniform", (0.0, 1.0))
    return v


def workload(name: str, seconds: float, seed: int = 1):
    n_steps = int(round(seconds * 1000.0 / DT))
    rng = np.random.default_rng(seed)
    if name == "pairing":
        n_pre, n_post = 1, 1000
        pairs = int(seconds)
        pre = np.arange(pairs) * 10000
        post = pre + 100
        pre_ev = (pre, np.zeros(pairs, np.int64))
        post_ev = (np.repeat(post, n_post), np.tile(np.arange(n_post), pairs))
    else:
        n_pre, n_post = 100, 10
        p = 10.0 * DT * 1e-3

        def trains(n):
            s, i = np.nonzero(rng.random((n_steps, n)) < p)
            return s.astype(np.int64), i.astype(np.int64)

        pre_ev, post_ev = trains(n_pre), trains(n_post)
    return n_pre, n_post, n_steps, pre_ev, post_ev


def run(n_pre, n_post, n_steps, pre_ev, post_ev, seed=1):
    net = make_net(n_pre, n_post, DT, pre=pre_ev, post=post_ev)
    ctx = BuildContext(n_pre, n_post, DT, np.zeros((n_pre, n_post)), -math.inf, math.inf,
                       np.random.default_rng(seed), {"NMDA": 0})
    pr, st = calcium.build(dp_values(), ctx)
    w = ctx.w.copy()
    mask = block_mask(calcium.SPEC, ())
    t0 = time.perf_counter()
    s = 0
    while s < n_steps:
        s = calcium.advance(w, net, st, pr, s, n_steps, mask)
    return time.perf_counter() - t0, st


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="simulated seconds (default 60)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per workload; the best is reported")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    run(*workload("pairing", 0.01))  # compile or load from cache
    compile_s = time.perf_counter() - t0
    print(f"compile/load: {compile_s:.2f} s")
    out = {"compile_s": round(compile_s, 3), "seconds_simulated": args.seconds, "dt_ms": DT}
    for name in ("pairing", "poisson"):
        wl = workload(name, args.seconds)
        n_syn = wl[0] * wl[1]
        times = []
        for _ in range(args.repeat):
            t, st = run(*wl)
            times.append(t)
        best = min(times)
        ns = best / (n_syn * wl[2]) * 1e9
        print(f"{name:8s} {n_syn} synapses, {args.seconds:g} s simulated: {best:.2f} s "
              f"(best of {args.repeat}; {ns:.2f} ns per synapse-step; mean rho {st.rho.mean():.4f})")
        out[name] = {"synapses": n_syn, "steps": wl[2], "best_s": round(best, 4), "all_s": [round(x, 4) for x in times],
                     "ns_per_synapse_step": round(ns, 3)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
