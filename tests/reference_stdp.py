"""Slow, obviously correct twin of the pair-STDP kernel: explicit sums over spike pairs.

Events are processed in time order. At a post spike at step s, every presynaptic spike at a
step strictly before s contributes exp(-(s - s_pre) dt / tau_plus) (all-to-all), or only the
most recent one does (nearest); symmetrically for pre spikes. Spikes in the same step do not
pair. No traces, no tables: the definition of the rule.
"""

from __future__ import annotations

import math


def stdp_reference(w0, pre, post, dt, a_plus, a_minus, tau_plus, tau_minus, w_min=0.0, w_max=1.0,
                   nearest=False, wdep="additive", mu_plus=0.5, mu_minus=0.5):
    """w0: list of lists (n_pre x n_post); pre/post: lists of (step, index). Returns the final w."""
    w = [list(row) for row in w0]
    n_pre, n_post = len(w), len(w[0])
    pre_hist = [[] for _ in range(n_pre)]
    post_hist = [[] for _ in range(n_post)]
    steps = sorted({s for s, _ in pre} | {s for s, _ in post})
    mu_p, mu_m = (1.0, 1.0) if wdep == "multiplicative" else (mu_plus, mu_minus)

    def f_plus(x):
        return 1.0 if wdep == "additive" else (w_max - x) ** mu_p

    def f_minus(x):
        return 1.0 if wdep == "additive" else (x - w_min) ** mu_m

    def trace(hist, s, tau):
        past = [t for t in hist if t < s]
        if not past:
            return 0.0
        if nearest:
            return math.exp(-(s - max(past)) * dt / tau)
        return sum(math.exp(-(s - t) * dt / tau) for t in past)

    for s in steps:
        pres = [i for t, i in pre if t == s]
        posts = [j for t, j in post if t == s]
        for i in pres:
            for j in range(n_post):
                y = trace(post_hist[j], s, tau_minus)
                w[i][j] = min(max(w[i][j] - a_minus * f_minus(w[i][j]) * y, w_min), w_max)
        for j in posts:
            for i in range(n_pre):
                x = trace(pre_hist[i], s, tau_plus)
                w[i][j] = min(max(w[i][j] + a_plus * f_plus(w[i][j]) * x, w_min), w_max)
        for i in pres:
            pre_hist[i].append(s)
        for j in posts:
            post_hist[j].append(s)
    return w


def lif_reference(v0, g_events, n_steps, dt, tau_m=10.0, v_rest=-74.0, v_thresh=-54.0, v_reset=-60.0,
                  t_ref=0.0, tau_syn=5.0, e_syn=0.0):
    """One LIF neuron; g_events: {step: conductance jump}. Returns its spike steps.

    The step of the kernel: integrate v exactly for the conductance held, decay g, threshold,
    then add this step's presynaptic jumps to g (they act from the next step).
    """
    v, g, ref_until, spikes = v0, 0.0, 0, []
    for s in range(n_steps):
        if s >= ref_until:
            v_inf = (v_rest + g * e_syn) / (1 + g)
            v = v_inf + (v - v_inf) * math.exp(-dt * (1 + g) / tau_m)
        g *= math.exp(-dt / tau_syn)
        if v >= v_thresh:
            v = v_reset
            ref_until = s + 1 + round(t_ref / dt)
            spikes.append(s)
        g += g_events.get(s, 0.0)
    return spikes
