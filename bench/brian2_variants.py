#!/usr/bin/env python
"""Expected final weights of Brian2's STDP synapse on random imposed spike trains, with pre
(axonal) and post (dendritic) delays and same-step spikes (issue 20).

Run with the peers' environment (bench/PEERS.md), never with plastic's:

    /work/peers-venv/bin/python bench/brian2_variants.py > tests/data/brian2_variants.json

The synapse is Brian2's examples/synapses/STDP.py (additive, clip(w, 0, wmax)), all-to-all
(``apre += dApre``) and nearest (``apre = dApre``), between SpikeGeneratorGroups, numpy
target, dt 0.1 ms. ``S.pre.delay`` is plastic's ``synapses.delay.axonal``, ``S.post.delay``
its ``dendritic``. Brian2 runs ``on_pre`` before ``on_post`` in a time step, so a pre and a
post spike that reach a synapse in the same step pair with delta_t = 0 (plastic's
``same_step: pair``). The trains (ms, emission times) and the weights go into the JSON;
tests/test_stdp_variants.py runs plastic on them.
"""

from __future__ import annotations

import contextlib
import json
import sys

import numpy as np

DT = 0.1
SEED = 21
N_PRE, N_POST = 3, 3


def make_trains(rng, d_pre, d_post):
    """Poisson 25 Hz, 1 s; some post spikes placed to reach the synapses in the same step as a
    pre spike (emission + delay)."""
    def one(n):
        out = []
        for _ in range(n):
            k = rng.poisson(25.0)
            out.append(np.unique(rng.integers(10, 10000, size=k)))
        return out

    pre, post = one(N_PRE), one(N_POST)
    for j in range(N_POST):
        src = pre[j % N_PRE]
        pick = rng.choice(src, size=min(4, src.size), replace=False) + d_pre - d_post
        post[j] = np.unique(np.concatenate((post[j], pick[pick >= 0])))
    return pre, post


def run_brian(b2, nearest, d_pre, d_post, pre, post, w0, p):
    b2.start_scope()
    b2.defaultclock.dt = DT * b2.ms
    ms = b2.ms
    pi = np.concatenate([np.full(len(s), i) for i, s in enumerate(pre)])
    pt = np.concatenate([s for s in pre]) * DT
    qi = np.concatenate([np.full(len(s), j) for j, s in enumerate(post)])
    qt = np.concatenate([s for s in post]) * DT
    G = b2.SpikeGeneratorGroup(N_PRE, pi, pt * ms)
    H = b2.SpikeGeneratorGroup(N_POST, qi, qt * ms)
    op = "=" if nearest else "+="
    S = b2.Synapses(
        G, H,
        model="""w : 1
                 dapre/dt = -apre / taupre : 1 (event-driven)
                 dapost/dt = -apost / taupost : 1 (event-driven)""",
        on_pre=f"""apre {op} dApre
                   w = clip(w + apost, 0, wmax)""",
        on_post=f"""apost {op} dApost
                    w = clip(w + apre, 0, wmax)""",
        namespace={"taupre": p["taupre"] * ms, "taupost": p["taupost"] * ms, "dApre": p["dApre"], "dApost": p["dApost"], "wmax": p["wmax"]},
    )
    S.connect()
    S.w = np.array(w0).ravel()  # S.connect() orders the synapses by i, then j
    S.pre.delay = d_pre * DT * ms
    S.post.delay = d_post * DT * ms
    end = max(max(s.max() for s in pre) + d_pre, max(s.max() for s in post) + d_post) * DT + 5.0
    b2.run(end * ms)
    w = np.zeros((N_PRE, N_POST))
    w[np.asarray(S.i[:]), np.asarray(S.j[:])] = np.asarray(S.w[:])
    return w


def main():
    with contextlib.redirect_stdout(sys.stderr):
        import brian2 as b2

        b2.prefs.codegen.target = "numpy"
        b2.BrianLogger.log_level_error()
        rng = np.random.default_rng(SEED)
        p = {"taupre": 20.0, "taupost": 20.0, "dApre": 0.02, "dApost": -0.021, "wmax": 1.0}
        doc = {"simulator": f"brian2 {b2.__version__}", "dt": DT, "seed": SEED, "script": "bench/brian2_variants.py", "cases": []}
        for nearest, d_pre, d_post in ((False, 0, 0), (False, 15, 40), (True, 15, 40), (True, 0, 0)):
            pre, post = make_trains(rng, d_pre, d_post)
            w0 = rng.uniform(0.2, 0.8, size=(N_PRE, N_POST)).round(6)
            w = run_brian(b2, nearest, d_pre, d_post, pre, post, w0, p)
            doc["cases"].append({
                "name": f"brian2_stdp_{'nearest' if nearest else 'all_to_all'}_pre{d_pre * DT:g}ms_post{d_post * DT:g}ms",
                "brian2_params": {**p, "nearest": nearest, "pre_delay_ms": d_pre * DT, "post_delay_ms": d_post * DT},
                "synapses": {"w_min": 0.0, "w_max": p["wmax"], "delay": {"axonal": round(d_pre * DT, 1), "dendritic": round(d_post * DT, 1)}},
                "rule": {"kind": "stdp", "weight_dependence": "additive", "pairing": "nearest" if nearest else "all_to_all",
                         "a_plus": p["dApre"], "a_minus": -p["dApost"], "tau_plus": p["taupre"], "tau_minus": p["taupost"], "same_step": "pair"},
                "pre_ms": [[round(s * DT, 1) for s in q] for q in pre],
                "post_ms": [[round(s * DT, 1) for s in q] for q in post],
                "w0": w0.tolist(),
                "w_brian2": w.tolist(),
            })
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
