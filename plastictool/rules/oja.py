"""Oja's rule: Hebbian learning with a built-in normalisation.

    dw_ij/dt = eta y_j (x_i - y_j w_ij),        y_j = activation(sum_i w_ij x_i)

For a linear unit and zero-mean inputs with covariance ``C``, ``w`` converges to the unit-norm
principal eigenvector of ``C`` (``|w| -> 1``), and the output variance to its eigenvalue
``lambda_1``: the unit extracts the first principal component. ``eta`` is a rate (1/s);
forward Euler at the step ``dt``. Use ``w_min: null`` so that weights may be negative.

Reference: Oja E (1982) A simplified neuron model as a principal component analyzer.
J Math Biol 15:267-273.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core.jit import jit
from ..core.net import rate_output
from ..core.structure import absent_to_zero
from .base import RATE, Param, RuleSpec

SPEC = RuleSpec(
    kind="oja",
    title="Oja's normalised Hebbian rule (principal component)",
    citation="Oja 1982, J Math Biol 15:267",
    params=(Param("eta", RATE, 1.0, "learning rate (1/s)", lo=0.0),),
    neurons=("rate",),
    inputs="rates",
)


class Params(NamedTuple):
    k_eta: float
    w_min: float
    w_max: float


class State(NamedTuple):
    dummy: np.ndarray


def build(values, ctx):
    return Params(values["eta"] * ctx.dt * 1e-3, ctx.w_min, ctx.w_max), State(np.zeros(1))


def probe(st, pr, name, step):  # pragma: no cover - oja has no state
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
        for j in range(n_post):
            y = ys[j]
            for i in range(n_pre):
                wij = w[i, j] + pr.k_eta * y * (xs[i] - y * w[i, j])
                w[i, j] = min(max(wij, pr.w_min), pr.w_max)
        if present is not None:  # structure hook (core/structure.py): absent synapses stay at 0
            absent_to_zero(w, present)
    return s1
