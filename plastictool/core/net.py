"""The network arrays every kernel sees, and the shared neuron and event kernels.

``Net`` is a NamedTuple of plain arrays and numbers (norse-style state), built once by
``plastictool.build`` and advanced in place by a rule's ``advance`` kernel.

Kernels unpack the arrays they need from ``Net`` into local variables once, at the top of
``advance``, and pass arrays to the helpers below: reading a field of the tuple inside the
step loop (or passing the whole tuple to a helper) costs hundreds of nanoseconds a step in
reference counting.

Per step ``s`` (time ``s * dt``), every spike rule follows the same order
(Brian2's: state update -> threshold -> on_pre -> on_post -> reset):

1. post spikes: clamped neurons take the imposed spikes of step ``s`` (``post_events``); LIF
   neurons integrate ``v`` and ``g`` over one step (``lif_step``), spike at threshold, reset and
   become refractory. The spiking post indices are in ``post_now[:n]``. (Call the two
   explicitly under ``if model == LIF``: a helper that dispatches between them defeats
   Numba's optimisation of the step loop, ~10x slower.)
2. ``pre_spikes``: the presynaptic spikes of step ``s`` into ``pre_now[:n]``.
3. The rule updates weights: each pre spike walks its row (and adds ``w`` to the LIF
   conductance ``g`` of each post neuron, before the weight changes), each post spike walks its
   column, both using the other side's traces *before* this step's increments.
4. The rule increments the traces of the neurons that spiked.

Post blocks: post neurons do not interact (the network is feed-forward), so a rule may advance
only the post neurons ``j0 <= j < j1`` (``lif_block``, ``post_events_block``), and the engine
runs several blocks of one network on threads (the kernels release the GIL). Each block needs
its own ``cursor``, scratch and out buffer (``block_net``); the per-post arrays ``v``, ``g``,
``ref_until`` are shared, each block writing its own range.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .delay import ring
from .expfn import exp_core, exp_core_ok
from .jit import jit, prefetch

CLAMPED, LIF, RATE = 0, 1, 2
NEURON_MODELS = {"clamped": CLAMPED, "lif": LIF, "rate": RATE}
LINEAR, RELU, SIGMOID, TANH = 0, 1, 2, 3
ACTIVATIONS = {"linear": LINEAR, "relu": RELU, "sigmoid": SIGMOID, "tanh": TANH}

LIF_CHUNK = 64  # neurons updated by one vectorised loop in lif_block

# indices into Net.cursor
PRE_CUR, POST_CUR, OUT_N = 0, 1, 2


class Net(NamedTuple):
    dt: float  # ms
    model: int  # CLAMPED | LIF | RATE
    pre_step: np.ndarray  # int64, sorted presynaptic spike steps (whole run)
    pre_idx: np.ndarray  # int64, their presynaptic neuron
    post_step: np.ndarray  # int64, imposed postsynaptic spike steps (clamped)
    post_idx: np.ndarray  # int64
    cursor: np.ndarray  # int64[3]: next pre event, next post event, post spikes in out buffer
    pre_now: np.ndarray  # int64 scratch: pre neurons spiking this step (busiest step's size)
    post_now: np.ndarray  # int64 scratch: post neurons spiking this step (>= n_post)
    out_step: np.ndarray  # int64[cap] post spikes emitted by LIF neurons (drained by the driver)
    out_idx: np.ndarray  # int64[cap]
    v: np.ndarray  # float64[n_post] membrane potential (mV)
    g: np.ndarray  # float64[n_post] synaptic conductance (units of the leak conductance)
    ref_until: np.ndarray  # int64[n_post] first step after the refractory period
    lif: np.ndarray  # float64[7]: tau_m, v_rest, v_thresh, v_reset, t_ref, tau_syn, e_syn
    x: np.ndarray  # float64[chunk, n_pre] presynaptic rates for steps s0.. (rate model)
    y: np.ndarray  # float64[n_post] postsynaptic rate output (rate model)
    act: np.ndarray  # float64[3]: activation id, gain, threshold
    dq_n: np.ndarray  # int64[D2]: dendritic delay ring of LIF post spikes (core.delay); empty: no delay
    dq_idx: np.ndarray  # int64[D2 + 1, n_post]


def lif_arg(net: Net):
    """What a rule's ``advance_block`` takes as its ``lif`` argument: the LIF parameters
    (``net.lif``), or None for other neuron models. The kernel tests ``lif is None`` to choose
    between ``lif_block`` and the imposed post spikes; Numba drops the branch that an argument of
    that type cannot take before it compiles, so a run compiles only its neuron model's code
    (a first run of clamped neurons about 1 s shorter)."""
    return net.lif if net.model == LIF else None


@jit(inline=True)
def pre_spikes(pre_step, pre_idx, cursor, pre_now, s):
    """Put the presynaptic neurons spiking at step ``s`` into ``pre_now``; return how many.

    ``pre_now`` is sized by the builder for the busiest step, so a neuron listed twice in one
    step (two spikes rounded to the same step) spikes twice.
    """
    return events_at(pre_step, pre_idx, cursor, PRE_CUR, pre_now, s)


@jit(inline=True)
def prefetch_rows(w, pre_step, pre_idx, cursor, j0, j1):
    """Ask the CPU to load the columns j0 <= j < j1 of the weight rows of the next step with
    pre spikes (after ``pre_spikes``), so that their walks do not wait for memory. A hint: no
    effect on results."""
    k = cursor[PRE_CUR]
    if k >= pre_step.shape[0]:
        return
    s = pre_step[k]
    line = max(1, 64 // w.itemsize)
    while k < pre_step.shape[0] and pre_step[k] == s:
        i = pre_idx[k]
        for c in range(j0, j1, line):
            prefetch(w, i, c)
        k += 1


@jit(inline=True)
def events_at(steps, idx, cursor, which, now, s):
    """Copy the events of step ``s`` into ``now``, advancing ``cursor[which]``; return how many."""
    k = cursor[which]
    while k < steps.shape[0] and steps[k] < s:
        k += 1
    n = 0
    while k < steps.shape[0] and steps[k] == s:
        now[n] = idx[k]
        n += 1
        k += 1
    cursor[which] = k
    return n


@jit(inline=True)
def next_event_step(pre_step, post_step, cursor, s):
    """The first step >= s with a pre or an imposed post event (2**62 when there is none)."""
    return max(s, min(next_step(pre_step, cursor[PRE_CUR], s), next_step(post_step, cursor[POST_CUR], s)))


@jit(inline=True)
def next_step(steps, k, s):
    while k < steps.shape[0] and steps[k] < s:
        k += 1
    if k < steps.shape[0]:
        return steps[k]
    return np.int64(1) << 62


@jit(inline=True)
def room_for_post(cursor, post_now, out_step):
    """False when the out buffer cannot take one more step of post spikes."""
    return cursor[OUT_N] + post_now.shape[0] <= out_step.shape[0]


@jit(inline=True)
def post_events(post_step, post_idx, cursor, post_now, s):
    """Clamped neurons: the imposed post spikes of step ``s`` into ``post_now``; how many."""
    return events_at(post_step, post_idx, cursor, POST_CUR, post_now, s)


@jit(inline=True)
def post_events_block(post_step, post_idx, cursor, post_now, s, j0, j1):
    """``post_events`` for the post neurons ``j0 <= j < j1`` only (in the same order)."""
    k = cursor[POST_CUR]
    while k < post_step.shape[0] and post_step[k] < s:
        k += 1
    n = 0
    while k < post_step.shape[0] and post_step[k] == s:
        j = post_idx[k]
        if j0 <= j < j1:
            post_now[n] = j
            n += 1
        k += 1
    cursor[POST_CUR] = k
    return n


@jit(inline=True)  # (one call site per rule: no module of its own to compile)
def lif_step(v, g, ref_until, lif, out_step, out_idx, cursor, post_now, s, dt):
    """One step of every LIF neuron (``lif_block`` over all of them)."""
    return lif_block(v, g, ref_until, lif, out_step, out_idx, cursor, post_now, s, dt, 0, v.shape[0])


@jit
def lif_block(v, g, ref_until, lif, out_step, out_idx, cursor, post_now, s, dt, j0, j1):
    """One step of the LIF neurons ``j0 <= j < j1``; the spiking indices go into ``post_now``
    (and the out buffer), in increasing order; returns how many spiked.

    ``tau_m dv/dt = (v_rest - v) + g (e_syn - v)``, ``tau_syn dg/dt = -g``: ``v`` relaxes
    exactly (exponentially) towards ``(v_rest + g e_syn) / (1 + g)`` for the conductance held at
    its start-of-step value, then ``g`` decays exactly. A spike when ``v >= v_thresh``, then
    ``v = v_reset`` and no integration for ``t_ref``.

    The neurons go in chunks of ``LIF_CHUNK``. A first loop, without branches, updates ``v`` and
    ``g`` of the whole chunk (the compiler vectorises it, ``exp`` included: ``exp_core``) and
    notes whether any neuron reached threshold or needs the C library's ``exp`` (an argument
    outside ``exp_core``'s range, or NaN: those neurons are left as they were). Only then does a
    second loop walk the chunk, one neuron at a time, to finish those and emit the spikes. Each
    neuron gets the operations of the one-loop version, in the same order, so the results are
    identical to it, bit for bit; it takes about 4 instead of 7-9 ns a neuron and step.

    The loops run over views from index 0: indices that are provably non-negative need no
    wraparound test, so the loops compile as tightly as over whole arrays.
    """
    n = 0
    tau_m = lif[0]
    v_rest = lif[1]
    v_thresh = lif[2]
    v_reset = lif[3]
    tau_syn = lif[5]
    e_syn = lif[6]
    dec_g = np.exp(-dt / tau_syn)
    ref_steps = np.int64(np.rint(lif[4] / dt))
    o = cursor[OUT_N]
    for c0 in range(j0, j1, LIF_CHUNK):
        c1 = min(c0 + LIF_CHUNK, j1)
        vb, gb, rb = v[c0:c1], g[c0:c1], ref_until[c0:c1]
        look = False
        for k in range(vb.shape[0]):  # vectorised: no branches, no calls
            gj = gb[k]
            vk = vb[k]
            a = -dt * (1.0 + gj) / tau_m
            ok = exp_core_ok(a)
            v_inf = (v_rest + gj * e_syn) / (1.0 + gj)
            vn = v_inf + (vk - v_inf) * exp_core(a)
            vn = vn if (s >= rb[k]) & ok else vk
            vb[k] = vn
            gb[k] = gj * dec_g if ok else gj
            look |= (not ok) | (vn >= v_thresh)
        if look:
            for k in range(vb.shape[0]):
                gj = gb[k]
                if not exp_core_ok(-dt * (1.0 + gj) / tau_m):  # left as it was above
                    if s >= rb[k]:
                        v_inf = (v_rest + gj * e_syn) / (1.0 + gj)
                        vb[k] = v_inf + (vb[k] - v_inf) * np.exp(-dt * (1.0 + gj) / tau_m)
                    gb[k] = gj * dec_g
                if vb[k] >= v_thresh:
                    vb[k] = v_reset
                    rb[k] = s + 1 + ref_steps
                    post_now[n] = c0 + k
                    n += 1
                    out_step[o] = s
                    out_idx[o] = c0 + k
                    o += 1
    cursor[OUT_N] = o
    return n


@jit(inline=True)
def activation(u, act):
    """Rate-neuron activation: linear, relu, sigmoid (gain, threshold) or tanh (gain)."""
    kind = int(act[0])
    if kind == LINEAR:
        return u
    if kind == RELU:
        return u if u > 0.0 else 0.0
    if kind == SIGMOID:
        return 1.0 / (1.0 + np.exp(-act[1] * (u - act[2])))
    return np.tanh(act[1] * u)


@jit
def rate_output(act, y, w, xs):
    """``y_j = activation(sum_i w_ij x_i)`` for one step's input row ``xs``."""
    n_pre, n_post = w.shape
    for j in range(n_post):
        u = 0.0
        for i in range(n_pre):
            u += w[i, j] * xs[i]
        y[j] = activation(u, act)


def block_net(net: Net) -> Net:
    """A ``Net`` for another block of post neurons of the same network: its own cursor,
    scratch and out buffer (the per-call state), the same event lists and neuron arrays."""
    return net._replace(
        cursor=net.cursor.copy(),
        pre_now=np.zeros_like(net.pre_now),
        post_now=np.zeros_like(net.post_now),
        out_step=np.zeros_like(net.out_step),
        out_idx=np.zeros_like(net.out_idx),
        dq_n=np.zeros_like(net.dq_n),
        dq_idx=np.zeros_like(net.dq_idx),
    )


def make_net(
    n_pre: int,
    n_post: int,
    dt: float,
    model: int = CLAMPED,
    pre: tuple[np.ndarray, np.ndarray] | None = None,
    post: tuple[np.ndarray, np.ndarray] | None = None,
    lif: np.ndarray | None = None,
    act: np.ndarray | None = None,
    out_capacity: int = 4096,
    dendritic: int = 0,
) -> Net:
    """A ``Net`` from event lists ``(steps, indices)`` (sorted here by step if they are not).

    ``dendritic``: the dendritic delay in steps of the post spikes that LIF neurons emit
    (``core.delay``; imposed post spikes are shifted by the caller)."""

    def events(ev):
        if ev is None:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
        steps = np.asarray(ev[0], dtype=np.int64)
        idx = np.asarray(ev[1], dtype=np.int64)
        if steps.size > 1:
            least = (steps[1:] - steps[:-1]).min()
            if least > 0:  # sorted, one event per step (a pairing's): a sweep builds hundreds
                return steps, idx, 1
            if least < 0:
                order = np.lexsort((idx, steps))
                steps, idx = steps[order], idx[order]
        if not steps.size:
            return steps, idx, 0
        edges = np.flatnonzero(np.diff(steps)) + 1  # first event of each distinct step
        busiest = int(np.diff(np.concatenate(([0], edges, [steps.size]))).max())
        return steps, idx, busiest

    pre_step, pre_idx, pre_busy = events(pre)
    post_step, post_idx, post_busy = events(post)
    lif = np.array([10.0, -74.0, -54.0, -60.0, 0.0, 5.0, 0.0]) if lif is None else np.asarray(lif, float)
    act = np.array([float(LINEAR), 1.0, 0.0]) if act is None else np.asarray(act, float)
    post_now = np.zeros(max(n_post, post_busy, 1), dtype=np.int64)
    # LIF spikes go to the out buffer; clamped neurons never use it, but room_for_post holds
    cap = max(out_capacity, 2 * post_now.size) if model == LIF else post_now.size
    dq = ring(dendritic if model == LIF else 0, n_post)
    return Net(
        dt=float(dt),
        model=int(model),
        pre_step=pre_step,
        pre_idx=pre_idx,
        post_step=post_step,
        post_idx=post_idx,
        cursor=np.zeros(3, dtype=np.int64),
        pre_now=np.zeros(max(1, pre_busy), dtype=np.int64),
        post_now=post_now,
        out_step=np.zeros(cap, dtype=np.int64),
        out_idx=np.zeros(cap, dtype=np.int64),
        v=np.full(n_post, lif[1]),
        g=np.zeros(n_post),
        ref_until=np.zeros(n_post, dtype=np.int64),
        lif=lif,
        x=np.zeros((1, n_pre)),
        y=np.zeros(n_post),
        act=act,
        dq_n=dq[0],
        dq_idx=dq[1],
    )
