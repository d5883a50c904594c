"""Slow, obviously correct twin of the pair-STDP kernel: explicit sums over spike pairs.

Events are processed in time order (after the synaptic delays: a pre spike at step s reaches
the synapse at s + axonal, a post spike at s + dendritic). At a post spike at step s, the
presynaptic spikes already seen contribute exp(-(s - s_pre) dt / tau_plus): all of them
(all_to_all), the most recent one (nearest), those not yet used by a post spike of this
synapse (presynaptic_centered), or the most recent one if it came after the last post spike
(restricted); symmetrically for pre spikes (nearest for every scheme but all_to_all; restricted
only if the post spike came after the last pre spike). Within a step (same_step): exclude =
pre spikes depress, post spikes potentiate, then both are "seen"; nest = post spikes potentiate
first; pair = pre spikes depress and are seen before post spikes potentiate (delta_t = 0
pairs). For restricted, a pre and a post spike of one step count as post before pre (NEST's
order), or pre before post with pair: a pre spike then depresses (with the post spike before)
if its post neuron spiked since its last pre spike, this step included.
No traces, no tables: the definition of the rule.
"""

from __future__ import annotations

import math


def stdp_reference(w0, pre, post, dt, a_plus, a_minus, tau_plus, tau_minus, w_min=0.0, w_max=1.0,
                   nearest=False, wdep="additive", mu_plus=0.5, mu_minus=0.5, pairing=None,
                   same_step="exclude", axonal=0, dendritic=0):
    """w0: list of lists (n_pre x n_post); pre/post: lists of (step, index); delays in steps.
    Returns the final w."""
    pairing = pairing or ("nearest" if nearest else "all_to_all")
    pre = [(s + axonal, i) for s, i in pre]
    post = [(s + dendritic, j) for s, j in post]
    w = [list(row) for row in w0]
    n_pre, n_post = len(w), len(w[0])
    pre_hist = [[] for _ in range(n_pre)]  # steps of the pre spikes seen
    post_hist = [[] for _ in range(n_post)]
    unused = [[[] for _ in range(n_post)] for _ in range(n_pre)]  # presynaptic_centered
    steps = sorted({s for s, _ in pre} | {s for s, _ in post})
    mu_p, mu_m = (1.0, 1.0) if wdep == "multiplicative" else (mu_plus, mu_minus)

    def f_plus(x):
        if wdep == "additive":
            return 1.0
        return x**mu_plus if wdep == "power_law" else (w_max - x) ** mu_p

    def f_minus(x):
        return 1.0 if wdep == "additive" else (x if wdep == "power_law" else (x - w_min) ** mu_m)

    def pre_after_post(t_i, t_j):  # restricted: was the pre spike at t_i after the post spike at t_j?
        # a pre and a post spike of one step: post first (NEST's order), pre first with pair
        return t_j is None or t_i > t_j or (t_i == t_j and same_step != "pair")

    def pot_trace(i, j, s):
        hist = pre_hist[i]
        if not hist:
            return 0.0
        if pairing == "all_to_all":
            return sum(math.exp(-(s - t) * dt / tau_plus) for t in hist)
        if pairing == "presynaptic_centered":
            x = sum(math.exp(-(s - t) * dt / tau_plus) for t in unused[i][j])
            unused[i][j] = []
            return x
        if pairing == "restricted" and not pre_after_post(hist[-1], post_hist[j][-1] if post_hist[j] else None):
            return 0.0  # not the first post spike since the last pre spike
        return math.exp(-(s - hist[-1]) * dt / tau_plus)

    def dep_trace(i, j, s, posts):
        hist = post_hist[j]
        if pairing == "restricted":  # only if j spiked since the last pre spike of i (this step's too, unless pair)
            t_j = s if (j in posts and same_step != "pair") else (hist[-1] if hist else None)
            if t_j is None or (pre_hist[i] and pre_after_post(pre_hist[i][-1], t_j)):
                return 0.0
        if not hist:
            return 0.0
        if pairing == "all_to_all":
            return sum(math.exp(-(s - t) * dt / tau_minus) for t in hist)
        return math.exp(-(s - hist[-1]) * dt / tau_minus)  # the nearest post spike before this step

    def depress(pres, s, posts):
        for i in pres:
            for j in range(n_post):
                y = dep_trace(i, j, s, posts)
                w[i][j] = min(max(w[i][j] - a_minus * f_minus(w[i][j]) * y, w_min), w_max)

    def potentiate(posts, s):
        for j in posts:
            for i in range(n_pre):
                x = pot_trace(i, j, s)
                w[i][j] = min(max(w[i][j] + a_plus * f_plus(w[i][j]) * x, w_min), w_max)

    def see(pop, ids, s):
        for k in ids:
            (pre_hist if pop == "pre" else post_hist)[k].append(s)
            if pop == "pre":
                for j in range(n_post):
                    unused[k][j].append(s)

    for s in steps:
        pres = [i for t, i in pre if t == s]
        posts = [j for t, j in post if t == s]
        if same_step == "pair":  # the pre spikes count as before this step's post spikes
            depress(pres, s, posts)
            see("pre", pres, s)
            potentiate(posts, s)
            see("post", posts, s)
            continue
        if same_step == "nest":
            potentiate(posts, s)
            depress(pres, s, posts)
        else:
            depress(pres, s, posts)
            potentiate(posts, s)
        see("pre", pres, s)
        see("post", posts, s)
    return w


def lif_reference(v0, g_events, n_steps, dt, tau_m=10.0, v_rest=-74.0, v_thresh=-54.0, v_reset=-60.0,
                  t_ref=0.0, tau_syn=5.0, e_syn=0.0, gi_events=None, tau_syn_inh=10.0, e_syn_inh=-80.0):
    """One LIF neuron; g_events: {step: conductance jump} (excitatory), gi_events: the same for
    the inhibitory conductance. Returns its spike steps.

    The step of the kernel: integrate v exactly for the conductances held, decay them,
    threshold, then add this step's presynaptic jumps (they act from the next step).
    """
    v, g, gi, ref_until, spikes = v0, 0.0, 0.0, 0, []
    gi_events = gi_events or {}
    for s in range(n_steps):
        if s >= ref_until:
            v_inf = (v_rest + g * e_syn + gi * e_syn_inh) / (1 + g + gi)
            v = v_inf + (v - v_inf) * math.exp(-dt * (1 + g + gi) / tau_m)
        g *= math.exp(-dt / tau_syn)
        gi *= math.exp(-dt / tau_syn_inh)
        if v >= v_thresh:
            v = v_reset
            ref_until = s + 1 + round(t_ref / dt)
            spikes.append(s)
        g += g_events.get(s, 0.0)
        gi += gi_events.get(s, 0.0)
    return spikes
