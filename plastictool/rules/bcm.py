"""BCM rule with a sliding modification threshold.

    dw_ij/dt = eta x_i y_j (y_j - theta_j)
    tau_theta dtheta_j/dt = y_j^2 / y0 - theta_j,        y_j = activation(sum_i w_ij x_i)

Below the threshold ``theta`` activity depresses, above it potentiates; ``theta`` follows the
recent mean of ``y^2`` so that the neuron becomes selective. For K linearly independent
patterns shown with probabilities ``p_k``, the stable fixed points are maximally selective:
``y = 1/p_j`` for one pattern ``j`` and 0 for the others (``theta = 1/p_j``). ``eta`` is a rate
(1/s); ``y0`` (dimensionless, default 1) scales the threshold; forward Euler at ``dt``.

References: Bienenstock EL, Cooper LN & Munro PW (1982) J Neurosci 2:32-48.
Intrator N & Cooper LN (1992) Neural Networks 5:3-17. Dayan & Abbott 2001, ch. 8.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core.jit import jit
from ..core.net import rate_output
from ..core.structure import absent_to_zero
from .base import ONE, RATE, TIME, Param, RuleSpec, StateVar

SPEC = RuleSpec(
    kind="bcm",
    title="BCM rule with a sliding threshold",
    citation="Bienenstock, Cooper & Munro 1982, J Neurosci 2:32; Intrator & Cooper 1992",
    params=(
        Param("eta", RATE, 1.0, "learning rate (1/s)", lo=0.0),
        Param("tau_theta", TIME, 100.0, "time constant of the sliding threshold", lo=0.0, lo_open=True),
        Param("theta_init", ONE, 0.0, "initial threshold", lo=0.0),
        Param("y0", ONE, 1.0, "threshold scale: theta -> <y^2>/y0", lo=0.0, lo_open=True),
    ),
    state=(StateVar("theta", "post", "sliding modification threshold"),),
    neurons=("rate",),
    inputs="rates",
)


class Params(NamedTuple):
    k_eta: float
    k_theta: float  # dt / tau_theta
    y0: float
    w_min: float
    w_max: float


class State(NamedTuple):
    theta: np.ndarray


def build(values, ctx):
    pr = Params(values["eta"] * ctx.dt * 1e-3, ctx.dt / values["tau_theta"], values["y0"], ctx.w_min, ctx.w_max)
    return pr, State(np.full(ctx.n_post, float(values["theta_init"])))


def probe(st, pr, name, step):
    return st.theta.copy()


def record_state(st, pr, name):
    """For the kernels' own recording (``core.record.state_reads``): ``theta`` as it is."""
    return ((st.theta, None, "post", 1, 0),), _as_read


def _as_read(F, T, steps, dt):
    return F[0]


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
            th = st.theta[j]
            for i in range(n_pre):
                wij = w[i, j] + pr.k_eta * xs[i] * y * (y - th)
                w[i, j] = min(max(wij, pr.w_min), pr.w_max)
            st.theta[j] = th + pr.k_theta * (y * y / pr.y0 - th)
        if present is not None:  # structure hook (core/structure.py): absent synapses stay at 0
            absent_to_zero(w, present)
    return s1
