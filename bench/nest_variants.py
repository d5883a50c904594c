#!/usr/bin/env python
"""Expected final weights of NEST's STDP variants on random imposed spike trains (issue 20).

Run with the peers' environment (bench/PEERS.md), never with plastic's:

    /work/peers-venv/bin/python bench/nest_variants.py > tests/data/nest_variants.json

It prints one JSON document: the NEST version, and per case the NEST model and parameters,
the plastic protocol fragment that should reproduce it (``synapses`` and ``rule``), the spike
trains (ms, as they reach the synapse: presynaptic emission times, postsynaptic emission
times; the NEST dendritic delay is in ``synapses.delay.dendritic``), the initial and NEST's
final weights. tests/test_stdp_variants.py runs plastic on the same trains and compares.

How the NEST network is set up (as bench/peers.py W1): every pre and post neuron is a
parrot_neuron fed by its own spike_generator (delay T_IN); the plastic connections go from each
pre parrot to each post parrot (n_pre x n_post, all of them), into receptor 1 of the post
parrot, so that the post parrots repeat only their own generator's spikes. NEST's connection
``delay`` d is dendritic for STDP: the rule sees t_post + d - t_pre. Each pre neuron ends with
one extra spike long after every other (at T_FLUSH): NEST updates a weight only at pre spikes,
so this spike applies the last post spikes (its own depression is below 1e-20).

Two quirks of NEST that the trains avoid: a synapse starts with t_lastspike = 0, so
stdp_nn_symm_synapse and stdp_nn_restr_synapse treat post spikes before the first pre spike as
if a pre spike had come at t = 0 (here every pre neuron spikes first, before any post spike
arrives); NEST's minimum delay is one step, so d >= dt.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import numpy as np

DT = 0.1  # ms
T_IN = 1.0  # ms, spike_generator -> parrot delay
SEED = 20
N_PRE, N_POST = 3, 3


def trains(rng, rate_hz, t0, t1, n):
    """Per neuron: sorted distinct spike steps, Poisson at rate_hz in [t0, t1) ms."""
    out = []
    for _ in range(n):
        k = rng.poisson(rate_hz * (t1 - t0) / 1000.0)
        steps = np.unique(rng.integers(int(round(t0 / DT)), int(round(t1 / DT)), size=k))
        out.append(steps)
    return out


def make_trains(rng, d_steps, coincide=4):
    """Pre and post spike steps (at emission); every pre neuron spikes first, at 2-3 ms, no post
    spike reaches a synapse before 5 ms; ``coincide`` post spikes per post neuron are placed to
    reach the synapses in the same step as a pre spike (same_step matters there)."""
    pre = trains(rng, 20.0, 5.0, 1000.0, N_PRE)
    pre = [np.concatenate(([20 + i * 3], p)) for i, p in enumerate(pre)]
    post = trains(rng, 20.0, 5.0, 1000.0, N_POST)
    for j in range(N_POST):
        src = pre[j % N_PRE][1:]
        pick = rng.choice(src, size=min(coincide, src.size), replace=False) - d_steps
        post[j] = np.unique(np.concatenate((post[j], pick[pick * DT + d_steps * DT >= 5.0])))
    flush = max(int(p.max()) for p in pre + post) + d_steps + 20000  # 2 s after everything
    pre = [np.concatenate((p, [flush])) for p in pre]
    return pre, post


def run_nest(nest, model, syn_params, hom, tau_minus, d, pre, post, w0):
    nest.ResetKernel()
    nest.set(resolution=DT, print_time=False)
    gen_pre = nest.Create("spike_generator", N_PRE)
    gen_post = nest.Create("spike_generator", N_POST)
    for i in range(N_PRE):
        gen_pre[i].spike_times = [round(s * DT - T_IN, 1) for s in pre[i]]
    for j in range(N_POST):
        gen_post[j].spike_times = [round(s * DT - T_IN, 1) for s in post[j]]
    par_pre = nest.Create("parrot_neuron", N_PRE)
    post_params = tau_minus if isinstance(tau_minus, dict) else {"tau_minus": tau_minus}
    par_post = nest.Create("parrot_neuron", N_POST, params=post_params)
    nest.Connect(gen_pre, par_pre, "one_to_one", {"delay": T_IN})
    nest.Connect(gen_post, par_post, "one_to_one", {"delay": T_IN})
    if hom:
        nest.CopyModel(model, "plastic_case", syn_params)
    else:
        nest.CopyModel(model, "plastic_case")
    for i in range(N_PRE):
        for j in range(N_POST):
            spec = {"synapse_model": "plastic_case", "weight": float(w0[i][j]), "delay": d, "receptor_type": 1}
            if not hom:
                spec.update(syn_params)
            nest.Connect(par_pre[i], par_post[j], "one_to_one", spec)
    t_end = max(max(p) for p in pre) * DT + d + 10.0
    nest.Simulate(t_end)
    w = np.zeros((N_PRE, N_POST))
    conns = nest.GetConnections(par_pre, par_post, synapse_model="plastic_case").get(["source", "target", "weight"])
    for s, t, wt in zip(*(np.atleast_1d(conns[k]) for k in ("source", "target", "weight"))):
        w[s - par_pre[0].global_id, t - par_post[0].global_id] = wt
    return w


def cases():
    """(name, NEST model, NEST synapse params, hom, tau_minus, delay d, plastic rule, plastic
    synapse bounds, w0 range, coincidences)."""
    lam, alpha, tp, tm = 0.05, 1.2, 16.8, 33.7
    base = {"tau_plus": tp, "lambda": lam, "alpha": alpha}
    out = []
    # stdp_synapse with a dendritic delay (multiplicative: mu = 1), Wmax 2.5
    wmax = 2.5
    out.append(("stdp_synapse_delay_multiplicative", "stdp_synapse", {**base, "mu_plus": 1.0, "mu_minus": 1.0, "Wmax": wmax}, False, tm, 3.7,
                {"kind": "stdp", "weight_dependence": "multiplicative", "a_plus": lam, "a_minus": alpha * lam, "tau_plus": tp, "tau_minus": tm},
                {"w_min": 0.0, "w_max": wmax}, (0.3, 2.2)))
    # additive (mu = 0): a = lambda Wmax, clipped at [0, Wmax]
    out.append(("stdp_synapse_delay_additive", "stdp_synapse", {**base, "mu_plus": 0.0, "mu_minus": 0.0, "Wmax": wmax}, False, tm, 2.0,
                {"kind": "stdp", "weight_dependence": "additive", "a_plus": lam * wmax, "a_minus": alpha * lam * wmax, "tau_plus": tp, "tau_minus": tm},
                {"w_min": 0.0, "w_max": wmax}, (0.3, 2.2)))
    # Gutig mu 1.5 (NEST applies mu to w / Wmax: a = lambda Wmax^(1 - mu))
    mu = 1.5
    out.append(("stdp_synapse_gutig_mu1.5", "stdp_synapse", {**base, "mu_plus": mu, "mu_minus": mu, "Wmax": wmax}, False, tm, 1.0,
                {"kind": "stdp", "weight_dependence": "gutig", "mu_plus": mu, "mu_minus": mu, "a_plus": lam * wmax ** (1 - mu),
                 "a_minus": alpha * lam * wmax ** (1 - mu), "tau_plus": tp, "tau_minus": tm},
                {"w_min": 0.0, "w_max": wmax}, (0.3, 2.2)))
    # the three nearest-neighbour schemes, Gutig mu 0.4 (and mu 1 for one)
    for model, pairing, mu in (("stdp_nn_symm_synapse", "nearest", 0.4), ("stdp_nn_pre_centered_synapse", "presynaptic_centered", 0.4),
                               ("stdp_nn_restr_synapse", "restricted", 0.4), ("stdp_nn_restr_synapse", "restricted", 1.0)):
        out.append((f"{model}_mu{mu:g}", model, {**base, "mu_plus": mu, "mu_minus": mu, "Wmax": wmax}, False, tm, 1.0,
                    {"kind": "stdp", "pairing": pairing, "weight_dependence": "gutig", "mu_plus": mu, "mu_minus": mu,
                     "a_plus": lam * wmax ** (1 - mu), "a_minus": alpha * lam * wmax ** (1 - mu), "tau_plus": tp, "tau_minus": tm},
                    {"w_min": 0.0, "w_max": wmax}, (0.3, 2.2)))
    # power law (stdp_pl_synapse_hom), mu 0.4: dw+ = lambda w^mu x, dw- = -alpha lambda w y, no upper bound
    lam_pl, alpha_pl, tau_pl = 0.1, 1.1, 20.0
    out.append(("stdp_pl_synapse_hom_mu0.4", "stdp_pl_synapse_hom", {"tau_plus": tau_pl, "lambda": lam_pl, "alpha": alpha_pl, "mu": 0.4}, True, tau_pl, 1.5,
                {"kind": "stdp", "weight_dependence": "power_law", "mu_plus": 0.4, "a_plus": lam_pl, "a_minus": alpha_pl * lam_pl,
                 "tau_plus": tau_pl, "tau_minus": tau_pl},
                {"w_min": 0.0, "w_max": None}, (0.5, 3.0)))
    # triplet STDP (stdp_triplet_synapse, all-to-all), Wmax 3, dendritic delay 2 ms
    tri = {"tau_plus": 16.8, "tau_plus_triplet": 101.0, "Aplus": 5e-3, "Aminus": 7e-3, "Aplus_triplet": 6.2e-3, "Aminus_triplet": 2.3e-4, "Wmax": 3.0}
    out.append(("stdp_triplet_synapse", "stdp_triplet_synapse", tri, False, {"tau_minus": 33.7, "tau_minus_triplet": 125.0}, 2.0,
                {"kind": "triplet", "a2_plus": 5e-3, "a3_plus": 6.2e-3, "a2_minus": 7e-3, "a3_minus": 2.3e-4, "tau_plus": 16.8,
                 "tau_x": 101.0, "tau_minus": 33.7, "tau_y": 125.0},
                {"w_min": 0.0, "w_max": 3.0}, (0.5, 2.5)))
    return out


def minimal_case(nest):
    """The issue's minimal case: pre 10, 14, 100 ms; post 12, 14 ms (at the synapse); stdp_synapse
    multiplicative, lambda 0.5, alpha 1, tau 20 ms, Wmax 1, w0 0.5."""
    d = DT
    pre = [np.array([100, 140, 1000])]
    post = [np.array([120 - 1, 140 - 1])]  # emitted one step earlier: they reach the synapse at 12, 14 ms
    global N_PRE, N_POST
    N_PRE, N_POST = 1, 1
    try:
        w = run_nest(nest, "stdp_synapse", {"tau_plus": 20.0, "lambda": 0.5, "alpha": 1.0, "mu_plus": 1.0, "mu_minus": 1.0, "Wmax": 1.0},
                     False, 20.0, d, pre, post, [[0.5]])
    finally:
        N_PRE, N_POST = 3, 3
    return {
        "name": "issue20_minimal_same_step",
        "nest_model": "stdp_synapse",
        "nest_params": {"tau_plus": 20.0, "lambda": 0.5, "alpha": 1.0, "mu_plus": 1.0, "mu_minus": 1.0, "Wmax": 1.0, "tau_minus": 20.0, "delay": d},
        "synapses": {"w_min": 0.0, "w_max": 1.0, "delay": {"axonal": 0.0, "dendritic": d}},
        "rule": {"kind": "stdp", "weight_dependence": "multiplicative", "a_plus": 0.5, "a_minus": 0.5, "tau_plus": 20.0, "tau_minus": 20.0},
        "pre_ms": [[round(s * DT, 1) for s in pre[0]]],
        "post_ms": [[round(s * DT, 1) for s in post[0]]],
        "w0": [[0.5]],
        "w_nest": w.tolist(),
    }


def main():
    with contextlib.redirect_stdout(sys.stderr):
        os.environ.setdefault("PYNEST_QUIET", "1")
        import nest

        if hasattr(nest, "VerbosityLevel"):
            nest.verbosity = nest.VerbosityLevel.ERROR
        rng = np.random.default_rng(SEED)
        doc = {"simulator": f"nest {nest.__version__}", "dt": DT, "seed": SEED, "script": "bench/nest_variants.py", "cases": []}
        for name, model, params, hom, tau_minus, d, rule, bounds, wr in cases():
            d_steps = int(round(d / DT))
            pre, post = make_trains(rng, d_steps)
            w0 = rng.uniform(wr[0], wr[1], size=(N_PRE, N_POST)).round(6)
            w = run_nest(nest, model, params, hom, tau_minus, d, pre, post, w0)
            doc["cases"].append({
                "name": name,
                "nest_model": model,
                "nest_params": {**params, **(tau_minus if isinstance(tau_minus, dict) else {"tau_minus": tau_minus}), "delay": d},
                "synapses": {**bounds, "delay": {"axonal": 0.0, "dendritic": d}},
                "rule": {**rule, "same_step": "nest"},
                "pre_ms": [[round(s * DT, 1) for s in p] for p in pre],
                "post_ms": [[round(s * DT, 1) for s in p] for p in post],
                "w0": w0.tolist(),
                "w_nest": w.tolist(),
            })
        doc["cases"].append(minimal_case(nest))
    json.dump(doc, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
