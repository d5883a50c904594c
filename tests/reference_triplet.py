"""Slow, obviously correct, event-driven twin of ``plastictool.rules.triplet`` (pure Python).

Spike times are numbers in units of ``dt`` milliseconds: integer steps with the run's ``dt``,
or exact times in ms with ``dt = 1.0`` (continuous time, no rounding to a grid). Traces are
kept as (value after the last spike, time of the last spike) and read with ``math.exp``.
Events at the same time (``same_step``): exclude = all depressions (pre spikes) first, then all
potentiations (post spikes), all with the traces before this time's increments, then the
increments; nest = the potentiations first; pair = depressions, the pre traces' increments,
potentiations (so that a pre and a post spike at one time pair), the post traces' increments.
Delays: shift the trains (``pre + axonal``, ``post + dendritic``) before calling.
"""

from __future__ import annotations

import math
from collections import defaultdict


def simulate(pre, post, n_pre, n_post, p, w0, w_min=-math.inf, w_max=math.inf, dt=1.0, same_step="exclude"):
    """Weights (list of lists) after the spike trains ``pre``/``post`` = [(time, index), ...].

    ``p``: dict with a2_plus, a3_plus, a2_minus, a3_minus, tau_plus, tau_minus, tau_x, tau_y,
    pairing ("all_to_all" | "nearest"). ``w0``: initial weight (number or n_pre x n_post lists).
    """
    nearest = p["pairing"] == "nearest"
    if isinstance(w0, (int, float)):
        w = [[float(w0)] * n_post for _ in range(n_pre)]
    else:
        w = [[float(x) for x in row] for row in w0]
    pre_at = defaultdict(list)
    post_at = defaultdict(list)
    for t, i in pre:
        pre_at[t].append(int(i))
    for t, j in post:
        post_at[t].append(int(j))
    # trace = (value right after the last spike, time of the last spike)
    r1 = [(0.0, 0.0)] * n_pre
    r2 = [(0.0, 0.0)] * n_pre
    o1 = [(0.0, 0.0)] * n_post
    o2 = [(0.0, 0.0)] * n_post

    def now(trace, t, tau):
        x, t_last = trace
        return x * math.exp(-(t - t_last) * dt / tau)

    def clip(x):
        return min(max(x, w_min), w_max)

    for t in sorted(set(pre_at) | set(post_at)):
        pres, posts = pre_at.get(t, []), post_at.get(t, [])

        def depress():
            for i in pres:
                r2_i = now(r2[i], t, p["tau_x"])
                for j in range(n_post):
                    o1_j = now(o1[j], t, p["tau_minus"])
                    w[i][j] = clip(w[i][j] - o1_j * (p["a2_minus"] + p["a3_minus"] * r2_i))

        def potentiate():
            for j in posts:
                o2_j = now(o2[j], t, p["tau_y"])
                for i in range(n_pre):
                    r1_i = now(r1[i], t, p["tau_plus"])
                    w[i][j] = clip(w[i][j] + r1_i * (p["a2_plus"] + p["a3_plus"] * o2_j))

        def pre_increments():
            for i in pres:
                a = now(r1[i], t, p["tau_plus"])
                b = now(r2[i], t, p["tau_x"])
                r1[i] = (1.0 if nearest else a + 1.0, t)
                r2[i] = (1.0 if nearest else b + 1.0, t)

        if same_step == "nest":
            potentiate()
            depress()
            pre_increments()
        elif same_step == "pair":
            depress()
            pre_increments()
            potentiate()
        else:
            depress()
            potentiate()
            pre_increments()
        for j in posts:
            a = now(o1[j], t, p["tau_minus"])
            b = now(o2[j], t, p["tau_y"])
            o1[j] = (1.0 if nearest else a + 1.0, t)
            o2[j] = (1.0 if nearest else b + 1.0, t)
    return w


def pairing_times(pairs, frequency, delta_t, start=0.0):
    """Spike times (ms) of a pairing protocol: pair k puts the earlier spike at
    ``start + k / frequency`` and the other ``|delta_t|`` later (``delta_t = t_post - t_pre``)."""
    period = 1000.0 / frequency
    pre, post = [], []
    for k in range(pairs):
        t0 = start + k * period
        if delta_t >= 0:
            pre.append(t0)
            post.append(t0 + delta_t)
        else:
            post.append(t0)
            pre.append(t0 - delta_t)
    return pre, post
