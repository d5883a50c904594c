"""Triplet STDP (Pfister & Gerstner 2006).

Each presynaptic neuron ``i`` keeps two traces, ``r1`` (time constant ``tau_plus``) and ``r2``
(``tau_x``); each postsynaptic neuron ``j`` keeps ``o1`` (``tau_minus``) and ``o2`` (``tau_y``).
Traces decay by exact exponentials between spikes. At a spike::

    pre spike of i:   w_ij -= o1_j (a2_minus + a3_minus r2_i)   for every j;  then r1_i, r2_i += 1
    post spike of j:  w_ij += r1_i (a2_plus  + a3_plus  o2_j)   for every i;  then o1_j, o2_j += 1

The triplet terms ``r2_i`` and ``o2_j`` are taken just before the spike's own increment
(``t - epsilon`` in the paper), and every update uses the traces before this step's
increments, so a pre and a post spike in the same step do not pair. ``pairing: all_to_all``
adds 1 to a trace at a spike; ``pairing: nearest`` sets it to 1 (the paper's nearest-spike
model). The weight is additive, clipped to ``[w_min, w_max]`` after each update; the fitted
amplitudes assume ``w0 = 1`` (so ``dw`` is a fractional change) and no bounds
(``w_min: null``, ``w_max: null``). With ``a3_plus = a3_minus = 0`` the rule is pair STDP
(``kind: stdp``, additive, ``a_plus = a2_plus``, ``a_minus = a2_minus``).

For independent Poisson firing (all-to-all) the mean drift is
``<dw/dt> = rx ry [a2_plus tau_plus - a2_minus tau_minus + a3_plus tau_plus tau_y ry
- a3_minus tau_minus tau_x rx]``: a BCM rule in the postsynaptic rate (for the minimal
visual-cortex set, LTD below and LTP above ry = 19.2 Hz).

Presets: the visual-cortex fits to Sjostrom et al. 2001 (all-to-all / nearest-spike, full /
minimal; tau_plus = 16.8 ms, tau_minus = 33.7 ms in all; in the minimal sets ``a2_plus = 0`` and
``a3_minus = 0``, so ``tau_x`` does not matter), and a hippocampal all-to-all minimal set whose
provenance is less certain (see its note). Blocking ``NMDA`` stops all weight changes (the
traces still follow the spikes).

Reference: Pfister J-P & Gerstner W (2006) Triplets of spikes in a model of spike timing-
dependent plasticity. J Neurosci 26:9673-9682. Data: Sjostrom PJ, Turrigiano GG & Nelson SB
(2001) Neuron 32:1149.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core.delay import dendritic_posts
from ..core.inhibit import lif_block_inh, open_row
from ..core.jit import jit
from ..core.net import lif_arg, lif_block, next_event_step, post_events_block, pre_spikes, room_for_post
from ..core.release import release_row
from .base import ONE, TIME, Param, Preset, RuleSpec, StateVar
from .stdp import NEST_ORDER, PAIR, SAME_STEP, SAME_STEP_PARAM
from .traces import decay, decay_table, probe_trace

_VISUAL = (
    "Pfister & Gerstner 2006, J Neurosci 26:9673, parameter table (visual cortex, fit to Sjostrom et al. 2001)"
)

SPEC = RuleSpec(
    kind="triplet",
    title="triplet STDP (Pfister & Gerstner 2006), all-to-all or nearest-spike",
    citation="Pfister & Gerstner 2006, J Neurosci 26:9673",
    params=(
        Param("a2_plus", ONE, 5e-10, "pair potentiation amplitude (per pre-post pair)", lo=0.0),
        Param("a3_plus", ONE, 6.2e-3, "triplet potentiation amplitude (post-pre-post), times o2", lo=0.0),
        Param("a2_minus", ONE, 7e-3, "pair depression amplitude (applied as -a2_minus)", lo=0.0),
        Param("a3_minus", ONE, 2.3e-4, "triplet depression amplitude (pre-post-pre), times r2", lo=0.0),
        Param("tau_plus", TIME, 16.8, "decay of the presynaptic pair trace r1", lo=0.0, lo_open=True),
        Param("tau_minus", TIME, 33.7, "decay of the postsynaptic pair trace o1", lo=0.0, lo_open=True),
        Param("tau_x", TIME, 101.0, "decay of the presynaptic triplet trace r2", lo=0.0, lo_open=True),
        Param("tau_y", TIME, 125.0, "decay of the postsynaptic triplet trace o2", lo=0.0, lo_open=True),
        Param(
            "pairing",
            "choice",
            "all_to_all",
            "all_to_all: a spike adds 1 to its traces; nearest: sets them to 1",
            choices=("all_to_all", "nearest"),
        ),
        SAME_STEP_PARAM,
    ),
    state=(
        StateVar("r1", "pre", "presynaptic pair trace (tau_plus)"),
        StateVar("r2", "pre", "presynaptic triplet trace (tau_x)"),
        StateVar("o1", "post", "postsynaptic pair trace (tau_minus)"),
        StateVar("o2", "post", "postsynaptic triplet trace (tau_y)"),
    ),
    presets={
        "pfister2006_visual_aa_full": Preset(
            {
                "a2_plus": 5e-10,
                "a3_plus": 6.2e-3,
                "a2_minus": 7e-3,
                "a3_minus": 2.3e-4,
                "tau_plus": 16.8,
                "tau_minus": 33.7,
                "tau_x": 101.0,
                "tau_y": 125.0,
                "pairing": "all_to_all",
            },
            _VISUAL + ", all-to-all, full model",
            "values as in russelljjarvis/SNNUtils src/learning/stdp.jl (pfister_visualcortex) and "
            "zifeo/nest-stdpmodule examples/PfisterGerstnerPairing.py; use w_init 1, no bounds",
        ),
        "pfister2006_visual_aa_min": Preset(
            {
                "a2_plus": 0.0,
                "a3_plus": 6.5e-3,
                "a2_minus": 7.1e-3,
                "a3_minus": 0.0,
                "tau_plus": 16.8,
                "tau_minus": 33.7,
                "tau_y": 114.0,
                "pairing": "all_to_all",
            },
            _VISUAL + ", all-to-all, minimal model",
            "tau_y = 114 ms as in fzenke/auryn TripletConnection.cpp and SpiNNaker PyNNExamples "
            "stdp_triplet.py (one secondary source lists 125 ms; 114 ms fits the data better); "
            "tau_x unused (a3_minus = 0)",
        ),
        "pfister2006_visual_nn_full": Preset(
            {
                "a2_plus": 8.8e-11,
                "a3_plus": 5.3e-2,
                "a2_minus": 6.6e-3,
                "a3_minus": 3.1e-3,
                "tau_plus": 16.8,
                "tau_minus": 33.7,
                "tau_x": 714.0,
                "tau_y": 40.0,
                "pairing": "nearest",
            },
            _VISUAL + ", nearest-spike, full model",
            "values as in russelljjarvis/SNNUtils src/learning/stdp.jl (pfister_visualcortex(false, true))",
        ),
        "pfister2006_visual_nn_min": Preset(
            {
                "a2_plus": 0.0,
                "a3_plus": 5.2e-2,
                "a2_minus": 8e-3,
                "a3_minus": 0.0,
                "tau_plus": 16.8,
                "tau_minus": 33.7,
                "tau_y": 40.0,
                "pairing": "nearest",
            },
            _VISUAL + ", nearest-spike, minimal model",
            "values as in russelljjarvis/SNNUtils src/learning/stdp.jl (pfister_visualcortex(false, false)); "
            "tau_x unused (a3_minus = 0)",
        ),
        "pfister2006_hippo_aa_min": Preset(
            {
                "a2_plus": 5.3e-3,
                "a3_plus": 8e-3,
                "a2_minus": 3.5e-3,
                "a3_minus": 0.0,
                "tau_plus": 16.8,
                "tau_minus": 33.7,
                "tau_y": 40.0,
                "pairing": "all_to_all",
            },
            "Pfister & Gerstner 2006, J Neurosci 26:9673, parameter table (hippocampal cultures, fit to "
            "Bi & Poo 1998 and Wang et al. 2005), all-to-all, minimal model",
            "PROVENANCE CAVEAT: taken from the defaults of fzenke/auryn MinimalTripletConnection.cpp, "
            "which does not name the data set; believed (not confirmed) to be the paper's "
            "hippocampal minimal row. tau_x unused (a3_minus = 0)",
        ),
    },
    blockable=("NMDA",),
    post_blocks=True,
)


class Params(NamedTuple):
    dt: float
    a2_plus: float
    a3_plus: float
    a2_minus: float
    a3_minus: float
    tau_plus: float
    tau_minus: float
    tau_x: float
    tau_y: float
    nearest: int
    w_min: float
    w_max: float
    dec_plus: np.ndarray
    dec_minus: np.ndarray
    dec_x: np.ndarray
    dec_y: np.ndarray
    same_step: int  # EXCLUDE | NEST_ORDER | PAIR (rules.stdp)


class State(NamedTuple):
    r1: np.ndarray  # values right after the last spike of the pre neuron (step t_pre)
    r2: np.ndarray
    t_pre: np.ndarray
    o1: np.ndarray  # values right after the last spike of the post neuron (step t_post)
    o2: np.ndarray
    t_post: np.ndarray


def build(values, ctx):
    dt = ctx.dt
    pr = Params(
        dt=dt,
        a2_plus=float(values["a2_plus"]),
        a3_plus=float(values["a3_plus"]),
        a2_minus=float(values["a2_minus"]),
        a3_minus=float(values["a3_minus"]),
        tau_plus=float(values["tau_plus"]),
        tau_minus=float(values["tau_minus"]),
        tau_x=float(values["tau_x"]),
        tau_y=float(values["tau_y"]),
        nearest=int(values["pairing"] == "nearest"),
        w_min=float(ctx.w_min),
        w_max=float(ctx.w_max),
        dec_plus=decay_table(values["tau_plus"], dt),
        dec_minus=decay_table(values["tau_minus"], dt),
        dec_x=decay_table(values["tau_x"], dt),
        dec_y=decay_table(values["tau_y"], dt),
        same_step=SAME_STEP[values.get("same_step", "exclude")],
    )
    st = State(
        r1=np.zeros(ctx.n_pre),
        r2=np.zeros(ctx.n_pre),
        t_pre=np.zeros(ctx.n_pre, dtype=np.int64),
        o1=np.zeros(ctx.n_post),
        o2=np.zeros(ctx.n_post),
        t_post=np.zeros(ctx.n_post, dtype=np.int64),
    )
    return pr, st


def block_state(st: State) -> State:
    """A State for another block of post neurons (``advance_block``): private pre traces, the
    post traces shared."""
    return st._replace(r1=st.r1.copy(), r2=st.r2.copy(), t_pre=st.t_pre.copy())


# the traces as stored (value, step of the last update, time constant in Params), for the
# kernels' own recording (core.record): they decay to the sample step as ``probe`` does
RECORD_TRACES = {
    "r1": ("r1", "t_pre", "tau_plus"),
    "r2": ("r2", "t_pre", "tau_x"),
    "o1": ("o1", "t_post", "tau_minus"),
    "o2": ("o2", "t_post", "tau_y"),
}


def probe(st, pr, name, step):
    if name == "r1":
        return probe_trace(st.r1, st.t_pre, step, pr.dt, pr.tau_plus)
    if name == "r2":
        return probe_trace(st.r2, st.t_pre, step, pr.dt, pr.tau_x)
    if name == "o1":
        return probe_trace(st.o1, st.t_post, step, pr.dt, pr.tau_minus)
    if name == "o2":
        return probe_trace(st.o2, st.t_post, step, pr.dt, pr.tau_y)
    raise KeyError(name)


@jit  # compiled once for its two call sites (first run -1 s; post spikes are too rare for the call to cost)
def post_walk(w, post_now, npost, s, r1s, t_pre, o2s, t_post, dec_plus, dec_y, dt, tau_plus, tau_y, a2_plus, a3_plus, w_min, w_max):
    """Post spikes of step ``s``: each walks its column, potentiating with r1 (and o2 before its
    own increment)."""
    n_pre = w.shape[0]
    for b in range(npost):
        j = post_now[b]
        o2 = o2s[j] * decay(dec_y, s - t_post[j], dt, tau_y)
        amp = a2_plus + a3_plus * o2
        for i in range(n_pre):
            if r1s[i] != 0.0:
                r1 = r1s[i] * decay(dec_plus, s - t_pre[i], dt, tau_plus)
                wij = w[i, j] + r1 * amp
                w[i, j] = min(max(wij, w_min), w_max)


@jit(inline=True)  # inlined at its three call sites: compiled apart, a W2 of triplet STDP simulated 12 % slower
def spike_traces(now, n, s, r1s, r2s, t_last, dec_plus, dec_x, dt, tau_plus, tau_x, nearest):
    """Increment the two traces of the neurons ``now[:n]`` spiking at step ``s``: r1 and r2 of
    pre neurons, or o1 and o2 of post neurons (with their time constants)."""
    for a in range(n):
        i = now[a]
        k = s - t_last[i]
        r1 = r1s[i] * decay(dec_plus, k, dt, tau_plus)
        r2 = r2s[i] * decay(dec_x, k, dt, tau_x)
        r1s[i] = 1.0 if nearest else r1 + 1.0
        r2s[i] = 1.0 if nearest else r2 + 1.0
        t_last[i] = s


def advance(w, net, st, pr, s0, s1, blocked, rel=None, present=None, inh=None):
    """Triplet STDP of every post neuron (``advance_block`` over all of them).

    Plain Python: ``advance_block``'s ``lif`` argument is an array or None by the neuron
    model, and Numba compiles each kind apart (``core.net.lif_arg``); ``rel`` likewise
    (``core.release``: None without transmitter release), ``present`` (``core.structure``: None
    without structural plasticity) and ``inh`` (``core.inhibit``: None without inhibitory
    inputs)."""
    return advance_block(w, net, st, pr, s0, s1, blocked, 0, w.shape[1], lif_arg(net), rel, present, inh)


@jit(entry=True)
def advance_block(w, net, st, pr, s0, s1, blocked, j0, j1, lif, rel, present, inh):
    """Triplet STDP of the post neurons ``j0 <= j < j1`` only (their columns of ``w``); blocks
    advanced separately give the results of one call over all of them, bit for bit."""
    n_pre = w.shape[0]
    dt, cursor = net.dt, net.cursor
    pre_step, pre_idx, pre_now = net.pre_step, net.pre_idx, net.pre_now
    post_step, post_idx, post_now = net.post_step, net.post_idx, net.post_now
    v, g, ref_until, out_step, out_idx = net.v, net.g, net.ref_until, net.out_step, net.out_idx
    r1s, r2s, t_pre, o1s, o2s, t_post = st.r1, st.r2, st.t_pre, st.o1, st.o2, st.t_post
    dec_plus, dec_minus, dec_x, dec_y = pr.dec_plus, pr.dec_minus, pr.dec_x, pr.dec_y
    tau_plus, tau_minus, tau_x, tau_y = pr.tau_plus, pr.tau_minus, pr.tau_x, pr.tau_y
    a2_plus, a3_plus, a2_minus, a3_minus = pr.a2_plus, pr.a3_plus, pr.a2_minus, pr.a3_minus
    w_min, w_max, nearest = pr.w_min, pr.w_max, pr.nearest == 1
    nest_order, pair = pr.same_step == NEST_ORDER, pr.same_step == PAIR
    dq_n, dq_idx = net.dq_n, net.dq_idx
    delayed = dq_n.shape[0] > 0  # a dendritic delay of the LIF post spikes (core.delay)
    is_lif = lif is not None  # the neuron model, from the one place that decides it (lif_arg)
    plastic = blocked[0] == 0
    gb, o1b, tpb = g[j0:j1], o1s[j0:j1], t_post[j0:j1]  # the block, indexed from 0 (no wraparound tests)
    nb = gb.shape[0]
    s = s0
    while s < s1:
        if not is_lif:  # clamped neurons: jump to the next event
            s = next_event_step(pre_step, post_step, cursor, s)
            if s >= s1:
                return s1
        if not room_for_post(cursor, post_now, out_step):
            return s
        if lif is None:  # (a test of the argument's type: Numba compiles only one branch)
            npost = post_events_block(post_step, post_idx, cursor, post_now, s, j0, j1)
        else:
            if inh is None:  # (likewise: None without inhibitory inputs, core.inhibit)
                npost = lif_block(v, g, ref_until, lif, out_step, out_idx, cursor, post_now, s, dt, j0, j1)
            else:  # a second, inhibitory conductance
                npost = lif_block_inh(v, g, inh, ref_until, lif, out_step, out_idx, cursor, post_now, s, dt, j0, j1)
            if delayed:  # the spikes that reach the synapses now: emitted D2 steps ago
                npost = dendritic_posts(dq_n, dq_idx, post_now, npost, s)
        npre = pre_spikes(pre_step, pre_idx, cursor, pre_now, s)
        if plastic and nest_order:  # same_step nest: potentiate before depressing
            post_walk(w, post_now, npost, s, r1s, t_pre, o2s, t_post, dec_plus, dec_y, dt, tau_plus, tau_y, a2_plus, a3_plus, w_min, w_max)
        for a in range(npre):  # pre spike: walk the row, depress with o1 (and r2)
            i = pre_now[a]
            amp = 0.0
            if plastic:
                r2 = r2s[i] * decay(dec_x, s - t_pre[i], dt, tau_x)
                amp = a2_minus + a3_minus * r2
            rb = w[i, j0:j1]
            if rel is not None:  # transmitter release (core.release): the LIF gets w r_n
                release_row(rel, w[i], i, s, j0, j1)
                ab = rel.amp[j0:j1]
            if inh is not None:  # an inhibitory neuron's weight (a magnitude) opens g_inh instead
                open_row(inh, i, rb, gb, j0, j1)
            for k in range(nb):
                if is_lif and inh is None:
                    if rel is None:
                        if present is None:
                            gb[k] += rb[k]
                        else:  # structure hook (core/structure.py): absent synapses transmit nothing
                            gb[k] += rb[k] * present[i, j0 + k]
                    elif present is None:
                        gb[k] += ab[k]
                    else:  # structure hook (core/structure.py): absent synapses transmit nothing
                        gb[k] += ab[k] * present[i, j0 + k]
                if plastic and o1b[k] != 0.0:
                    o1 = o1b[k] * decay(dec_minus, s - tpb[k], dt, tau_minus)
                    wij = rb[k] - o1 * amp
                    rb[k] = min(max(wij, w_min), w_max)
        if pair:  # same_step pair: the pre traces first, so that this step's post spikes pair with them
            spike_traces(pre_now, npre, s, r1s, r2s, t_pre, dec_plus, dec_x, dt, tau_plus, tau_x, nearest)
        if plastic and not nest_order:  # post spike: walk the column, potentiate with r1 (and o2)
            post_walk(w, post_now, npost, s, r1s, t_pre, o2s, t_post, dec_plus, dec_y, dt, tau_plus, tau_y, a2_plus, a3_plus, w_min, w_max)
        if not pair:  # then the traces of the neurons that spiked
            spike_traces(pre_now, npre, s, r1s, r2s, t_pre, dec_plus, dec_x, dt, tau_plus, tau_x, nearest)
        spike_traces(post_now, npost, s, o1s, o2s, t_post, dec_minus, dec_y, dt, tau_minus, tau_y, nearest)
        s += 1
    return s1
