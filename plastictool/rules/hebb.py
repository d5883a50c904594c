"""Plain Hebbian learning for rate units: "fire together, wire together".

    dw_ij/dt = eta x_i y_j - decay w_ij,        y_j = activation(sum_i w_ij x_i)

``x`` are the presynaptic rates, ``y`` the postsynaptic outputs of a ``rate`` neuron; ``eta`` and
``decay`` are rates (per second). Integrated with forward Euler at the step ``dt``; weights are
clipped to ``[w_min, w_max]``. Without decay or bounds the weights grow without limit
(exponentially, along the leading eigenvector of the input correlation matrix for a linear
unit): this is the instability that Oja's and BCM's rules fix.

Reference: Hebb DO (1949) The Organization of Behavior. Wiley. Dayan P & Abbott LF (2001)
Theoretical Neuroscience, ch. 8.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core.jit import jit
from ..core.net import rate_output
from ..core.structure import absent_to_zero
from .base import RATE, Param, RuleSpec

SPEC = RuleSpec(
    kind="hebb",
    title="Hebbian rate rule with optional weight decay",
    citation="Hebb 1949; Dayan & Abbott 2001, Theoretical Neuroscience, ch. 8",
    params=(
        Param("eta", RATE, 1.0, "learning rate (1/s)", lo=0.0),
        Param("decay", RATE, 0.0, "passive weight decay (1/s)", lo=0.0),
    ),
    neurons=("rate",),
    inputs="rates",
)


class Params(NamedTuple):
    k_eta: float  # eta * dt (dimensionless)
    k_decay: float
    w_min: float
    w_max: float


class State(NamedTuple):
    dummy: np.ndarray


def build(values, ctx):
    dt_s = ctx.dt * 1e-3
    pr = Params(values["eta"] * dt_s, values["decay"] * dt_s, ctx.w_min, ctx.w_max)
    return pr, State(np.zeros(1))


def probe(st, pr, name, step):  # pragma: no cover - hebb has no state
    raise KeyError(name)


@jit(entry=True)
def advance(w, net, st, pr, s0, s1, blocked, rel=None, present=None):  # (rel: no release for rate rules)
    n_pre, n_post = w.shape
    x = net.x
    ys = net.y
    act = net.act
    for s in range(s0, s1):
        xs = x[s - s0]
        rate_output(act, ys, w, xs)
        for i in range(n_pre):
            for j in range(n_post):
                wij = w[i, j] + pr.k_eta * xs[i] * ys[j] - pr.k_decay * w[i, j]
                w[i, j] = min(max(wij, pr.w_min), pr.w_max)
        if present is not None:  # structure hook (core/structure.py): absent synapses stay at 0
            absent_to_zero(w, present)
    return s1
