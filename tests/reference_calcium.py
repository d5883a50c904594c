"""Slow, obviously correct twin of ``plastictool.rules.calcium`` (pure Python, no NumPy).

Calcium is event-driven: each neuron's part is (value after its last jump, step of that jump),
read with ``math.exp``; the pre part jumps ``delay_steps`` after each presynaptic spike. The
efficacy takes one Euler-Maruyama step per ``dt`` with the calcium of the step (after its
jumps); the noise is a pure-Python xoroshiro128+ with Box-Muller, drawn in row-major synapse
order, only where calcium is above a threshold. It also counts, per synapse, the steps spent
above each threshold.
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


def simulate(pre, post, n_pre, n_post, p, rho0, n_steps, dt, gen=None, blocked=lambda s: False):
    """Run steps 0..n_steps-1. ``pre``/``post``: [(step, index)]; ``p``: parameter dict (ms);
    ``rho0``: n_pre x n_post lists; ``gen``: (s0, s1) generator state (needed when sigma > 0);
    ``blocked(step)``: NMDA blocked at that step. Returns (rho, ca, steps_above_d, steps_above_p)
    with ca the calcium of the last step (after its jumps)."""
    delay = int(round(p["delay"] / dt))
    arrive = defaultdict(list)
    for s, i in pre:
        arrive[s + delay].append(int(i))
    post_at = defaultdict(list)
    for s, j in post:
        post_at[s].append(int(j))
    rng = Xoroshiro(*gen) if gen is not None else None
    rho = [[float(x) for x in row] for row in rho0]
    above_d = [[0] * n_post for _ in range(n_pre)]
    above_p = [[0] * n_post for _ in range(n_pre)]
    cpre = [(0.0, 0)] * n_pre
    cpost = [(0.0, 0)] * n_post
    k = dt / p["tau"]
    n1 = p["sigma"] * math.sqrt(dt / p["tau"])
    n2 = p["sigma"] * math.sqrt(2.0 * dt / p["tau"])

    def now(trace, s):
        x, t = trace
        return x * math.exp(-(s - t) * dt / p["tau_ca"])

    ca = None
    for s in range(n_steps):
        if not blocked(s):
            for i in arrive.get(s, []):
                cpre[i] = (now(cpre[i], s) + p["c_pre"], s)
            for j in post_at.get(s, []):
                cpost[j] = (now(cpost[j], s) + p["c_post"], s)
        a = [now(cpre[i], s) for i in range(n_pre)]
        b = [now(cpost[j], s) for j in range(n_post)]
        ca = [[a[i] + b[j] for j in range(n_post)] for i in range(n_pre)]
        for i in range(n_pre):
            for j in range(n_post):
                c, r = ca[i][j], rho[i][j]
                d = -r * (1.0 - r) * (p["rho_star"] - r)
                h = 0
                if c > p["theta_p"]:
                    d += p["gamma_p"] * (1.0 - r)
                    h += 1
                    above_p[i][j] += 1
                if c > p["theta_d"]:
                    d -= p["gamma_d"] * r
                    h += 1
                    above_d[i][j] += 1
                r = r + k * d
                if p["sigma"] > 0 and h > 0:
                    r += (n1 if h == 1 else n2) * rng.normal()
                rho[i][j] = r
    return rho, ca, above_d, above_p
