"""Slow, obviously correct twin of ``plastictool.rules.calcium`` (pure Python, no NumPy).

Calcium is event-driven: each neuron's part is (value after its last jump, time of that jump
in ms), read with ``math.exp``; the pre part jumps exactly ``delay`` after each presynaptic
spike (possibly within a step). Each step is cut at its jumps into pieces of pure decay, where
the time above a threshold is the crossing time ``tau_ca ln(c / theta)``. The efficacy takes one
Euler-Maruyama step per ``dt`` with the fractions of the step spent above each threshold; the
noise is a pure-Python xoroshiro128+ with Box-Muller, drawn in row-major synapse order, only
where calcium was above a threshold during the step. It also sums, per synapse, the time spent
above each threshold (ms).
"""

from __future__ import annotations

import math
from collections import defaultdict

MASK = (1 << 64) - 1


class Xoroshiro:
    """xoroshiro128+ (a=24, b=16, c=37) with Box-Muller normals, on Python ints."""

    def __init__(self, s0, s1):
        self.s0, self.s1 = int(s0), int(s1)
        self.spare = None

    def next(self):
        s0, s1 = self.s0, self.s1
        result = (s0 + s1) & MASK
        s1 ^= s0
        self.s0 = (((s0 << 24) | (s0 >> 40)) & MASK) ^ s1 ^ ((s1 << 16) & MASK)
        self.s1 = ((s1 << 37) | (s1 >> 27)) & MASK
        return result

    def uniform(self):
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)

    def normal(self):
        if self.spare is not None:
            z, self.spare = self.spare, None
            return z
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        r = math.sqrt(-2.0 * math.log(u1))
        a = 2.0 * math.pi * u2
        self.spare = r * math.sin(a)
        return r * math.cos(a)


def _time_above(c, theta, length, tau_ca):
    """Time calcium ``c`` (decaying with tau_ca, no jump) spends strictly above ``theta`` within
    ``length`` ms: the crossing time tau_ca ln(c / theta), at most ``length``."""
    if c <= theta:
        return 0.0
    return min(length, tau_ca * math.log(c / theta))


def simulate(pre, post, n_pre, n_post, p, rho0, n_steps, dt, gen=None, blocked=lambda s: False):
    """Run steps 0..n_steps-1. ``pre``/``post``: [(step, index)]; ``p``: parameter dict (ms);
    ``rho0``: n_pre x n_post lists; ``gen``: (s0, s1) generator state (needed when sigma > 0);
    ``blocked(step)``: NMDA blocked at that step (of the spike's arrival). Returns
    (rho, ca, time_above_d, time_above_p) with ca the calcium at time ``n_steps dt`` (after the
    jumps of earlier steps) and the times above each threshold in ms.

    Calcium is kept per neuron as (value, time in ms of its last jump). A pre transient arrives at
    ``t_pre + delay`` exactly (delay / dt within 1e-9 of a whole number counts as whole), a post
    transient at ``t_post``. Within the step [s dt, (s + 1) dt) the jumps cut the step into pieces;
    in each piece calcium only decays, and the time above a threshold is the crossing time. rho
    takes one Euler-Maruyama step per dt with the fractions of the step above each threshold."""
    x = p["delay"] / dt
    if abs(x - round(x)) <= 1e-9 * max(1.0, x):
        x = float(round(x))
    arrive = defaultdict(list)  # step -> [(time ms, kind, index)]
    for s, i in pre:
        t = (s + x) * dt
        arrive[int(math.floor(s + x))].append((t, 0, int(i), s + x))
    for s, j in post:
        arrive[int(s)].append((s * dt, 1, int(j), float(s)))
    rng = Xoroshiro(*gen) if gen is not None else None
    rho = [[float(v) for v in row] for row in rho0]
    above_d = [[0.0] * n_post for _ in range(n_pre)]
    above_p = [[0.0] * n_post for _ in range(n_pre)]
    cpre = [(0.0, 0.0)] * n_pre
    cpost = [(0.0, 0.0)] * n_post
    tau_ca = p["tau_ca"]
    k = dt / p["tau"]
    n1 = p["sigma"] * math.sqrt(dt / p["tau"])

    def at(trace, t):
        v, t0 = trace
        return v * math.exp(-(t - t0) / tau_ca)

    for s in range(n_steps):
        events = sorted(arrive.get(s, []), key=lambda e: e[3])
        cuts = sorted({e[3] for e in events} | {float(s)})  # piece starts, in steps
        fp = [[0.0] * n_post for _ in range(n_pre)]
        fd = [[0.0] * n_post for _ in range(n_pre)]
        for m, start in enumerate(cuts):
            end = cuts[m + 1] if m + 1 < len(cuts) else float(s + 1)
            t0 = start * dt
            if not blocked(s):
                for t, kind, idx, when in events:
                    if when == start:
                        if kind == 0:
                            cpre[idx] = (at(cpre[idx], t0) + p["c_pre"], t0)
                        else:
                            cpost[idx] = (at(cpost[idx], t0) + p["c_post"], t0)
            length = (end - start) * dt
            for i in range(n_pre):
                for j in range(n_post):
                    c = at(cpre[i], t0) + at(cpost[j], t0)
                    fp[i][j] += _time_above(c, p["theta_p"], length, tau_ca)
                    fd[i][j] += _time_above(c, p["theta_d"], length, tau_ca)
        for i in range(n_pre):
            for j in range(n_post):
                r = rho[i][j]
                hp, hd = fp[i][j] / dt, fd[i][j] / dt
                above_p[i][j] += fp[i][j]
                above_d[i][j] += fd[i][j]
                d = -r * (1.0 - r) * (p["rho_star"] - r) + p["gamma_p"] * (1.0 - r) * hp - p["gamma_d"] * r * hd
                r = r + k * d
                if p["sigma"] > 0 and hp + hd > 0:
                    r += n1 * math.sqrt(hp + hd) * rng.normal()
                rho[i][j] = r
    t = n_steps * dt
    ca = [[at(cpre[i], t) + at(cpost[j], t) for j in range(n_post)] for i in range(n_pre)]
    return rho, ca, above_d, above_p
