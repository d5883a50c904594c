"""Slow, obviously correct twin of the structure step (plastictool/core/structure.py).

Each potential synapse is visited in turn: a present one is eliminated with probability
``1 - exp(-h(w) dt_s)``, ``h(w) = elimination_rate exp(-w / w_ref)`` (constant where ``w_ref``
is None), an absent one forms with probability ``1 - exp(-formation_rate dt_s)``, both judged on
the state at the start of the interval. The kernel draws its events differently (binomial
counts, uniform picks, thinning), so the two agree in distribution, not draw by draw: the tests
compare them statistically.
"""

from __future__ import annotations

import math

import numpy as np


def structure_step(present, w, rng, dt_s, formation_rate, elimination_rate, w_ref, w_new):
    """One interval of ``dt_s`` seconds, in place; returns (formed, eliminated) flat indices."""
    formed, eliminated = [], []
    flat_p = present.reshape(-1)
    flat_w = w.reshape(-1)
    before = flat_p.copy()
    for k in range(flat_p.size):
        if before[k]:
            h = elimination_rate if w_ref is None else elimination_rate * math.exp(-flat_w[k] / w_ref)
            if rng.random() < 1.0 - math.exp(-h * dt_s):
                flat_p[k] = 0
                flat_w[k] = 0.0
                eliminated.append(k)
        else:
            if rng.random() < 1.0 - math.exp(-formation_rate * dt_s):
                flat_p[k] = 1
                flat_w[k] = w_new
                formed.append(k)
    return formed, eliminated
