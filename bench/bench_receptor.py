#!/usr/bin/env python
"""Benchmark of the receptor rule kernel (issue 4, item 6).

    python bench/bench_receptor.py [--hours 4] [--repeat 3] [--sizes 1,10,100,1000] [--lif]

Workload: the HFS experiment of protocols/receptor_hfs.yaml, 4 h of simulated time at
dt = 0.5 ms (28.8 million steps): test pulses at 0.05 Hz throughout and three 1 s tetani at
100 Hz, 10 min apart, starting at 10 min. ``n`` presynaptic neurons onto one clamped neuron
(``n`` synapses), all receiving the same train. ``advance`` is called in 1000 chunks, as the
driver does for recording. ``--lif``: the same onto one LIF neuron (every step integrates the
membrane), with w_init 0.05 so that the neuron fires during the tetani.

The kernel is compiled (or loaded from Numba's cache) first on a tiny run, so the numbers are
the simulation only, on one core. Prints one line per size (best of ``--repeat``, wall and CPU
seconds, microseconds per synapse and simulated hour) and a final JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from plastictool.core.net import CLAMPED, LIF, OUT_N, make_net  # noqa: E402
from plastictool.rules import receptor  # noqa: E402
from plastictool.rules.base import BuildContext, block_mask  # noqa: E402

DT = 0.5
MIN = 60e3


def spike_steps(hours: float) -> np.ndarray:
    end = hours * 3600e3
    test = np.arange(0.0, end, 20e3)
    tet = np.concatenate([10 * MIN + k * 10 * MIN + np.arange(100) * 10.0 for k in range(3)])
    t = np.sort(np.concatenate([test, tet[tet < end]]))
    return np.rint(t / DT).astype(np.int64)


def run(n: int, hours: float, model: int, chunks: int = 1000):
    steps = spike_steps(hours)
    net = make_net(n, 1, DT, model, pre=(np.repeat(steps, n), np.tile(np.arange(n, dtype=np.int64), steps.size)))
    w0 = 0.05 if model == LIF else 0.5
    ctx = BuildContext(n, 1, DT, np.full((n, 1), w0), 0.0, 1.0, np.random.default_rng(0))
    pr, st = receptor.build({}, ctx)
    w = ctx.w.copy()
    mask = block_mask(receptor.SPEC, ())
    n_steps = int(round(hours * 3600e3 / DT))
    every = max(1, n_steps // chunks)
    t0, c0 = time.perf_counter(), time.process_time()
    s = 0
    while s < n_steps:
        nxt = min(n_steps, s + every)
        while s < nxt:
            s = receptor.advance(w, net, st, pr, s, nxt, mask)
            net.cursor[OUT_N] = 0
    return time.perf_counter() - t0, time.process_time() - c0, n_steps, float(w.mean())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sizes", default="1,10,100,1000")
    ap.add_argument("--lif", action="store_true", help="LIF neuron instead of clamped")
    args = ap.parse_args(argv)
    model = LIF if args.lif else CLAMPED
    t = time.perf_counter()
    run(2, 0.01, model)  # compile or load from cache
    compile_s = time.perf_counter() - t
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        best = min((run(n, args.hours, model) for _ in range(args.repeat)), key=lambda r: r[0])
        wall, cpu, n_steps, w_mean = best
        per = 1e6 * cpu / (n * args.hours)
        rows.append({"synapses": n, "wall_s": round(wall, 4), "cpu_s": round(cpu, 4), "steps": n_steps,
                     "us_per_synapse_hour": round(per, 1), "w_mean": round(w_mean, 6)})
        print(f"{'lif' if args.lif else 'clamped':8s} synapses={n:6d} steps={n_steps} wall={wall:8.3f}s "
              f"cpu={cpu:8.3f}s  {per:9.1f} us/(synapse h)  w_mean={w_mean:.4f}", flush=True)
    print(json.dumps({"bench": "receptor", "model": "lif" if args.lif else "clamped", "hours": args.hours,
                      "dt_ms": DT, "compile_or_load_s": round(compile_s, 2), "results": rows}))


if __name__ == "__main__":
    main()
