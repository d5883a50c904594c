"""Pair-based spike-timing-dependent plasticity (STDP).

Each synapse ``(i, j)`` changes with the time difference ``delta_t = t_post - t_pre`` of pairs
of pre and post spikes (Bi & Poo 1998; Song, Miller & Abbott 2000)::

    delta_t > 0 (pre before post):  dw = +a_plus  f_+(w) exp(-delta_t / tau_plus)
    delta_t < 0 (post before pre):  dw = -a_minus f_-(w) exp( delta_t / tau_minus)

computed with a presynaptic trace ``x_pre`` (time constant ``tau_plus``) and a postsynaptic
trace ``x_post`` (``tau_minus``) that decay by exact exponentials::

    on a pre spike of i:   w_ij -= a_minus f_-(w_ij) x_post_j   for every j;  then x_pre_i += 1
    on a post spike of j:  w_ij += a_plus  f_+(w_ij) x_pre_i    for every i;  then x_post_j += 1

Which pairs count (``pairing``; Morrison, Diesmann & Gerstner 2008, Fig. 7)::

    all_to_all            every pair (traces add 1)
    nearest               each spike pairs with the nearest earlier spike of the other side
                          (traces set to 1; NEST's symmetric scheme, stdp_nn_symm_synapse)
    presynaptic_centered  each pre spike pairs with the last post spike before it and the first
                          post spike after it (stdp_nn_pre_centered_synapse)
    restricted            only neighbouring spikes pair: a pre spike with the post spike just
                          before it if no pre spike came in between, a post spike with the pre
                          spike just before it if no post spike came in between (stdp_nn_restr_synapse)

Weight dependence::

    additive:        f_+ = 1,                     f_- = 1
    multiplicative:  f_+ = (w_max - w),           f_- = (w - w_min)
    gutig:           f_+ = (w_max - w)^mu_plus,   f_- = (w - w_min)^mu_minus   (mu >= 0, also above 1)
    power_law:       f_+ = w^mu_plus,             f_- = w                      (needs w_max: null)

and the weight is clipped to ``[w_min, w_max]`` after each update. Amplitudes are per spike
pair. With ``n`` pairings at low frequency the additive rule gives
``dw = n a_plus exp(-delta_t/tau_plus)`` (``delta_t > 0``) and the multiplicative rule
``w_max - w_n = (w_max - w_0)(1 - a_plus exp(-delta_t/tau_plus))^n``.

A pre and a post spike in the same step (``same_step``): ``exclude`` (default) depresses, then
potentiates, and does not pair them (each update uses the other side's trace before this step's
increments); ``nest`` potentiates first, as NEST does (it applies the post spikes up to t_pre
before the pre spike's depression), and does not pair them; ``pair`` pairs them with
delta_t = 0 as potentiation (Brian2's on_pre-then-on_post order). Delays:
``synapses.delay: {axonal, dendritic}`` (``core.delay``); the rule sees
``delta_t = (t_post + dendritic) - (t_pre + axonal)``.

Other simulators' models in plastic's terms (docs/stdp-variants.md has the details; NEST
applies mu to w/Wmax, hence a = lambda Wmax^(1 - mu); NEST's lower bound is 0)::

    NEST stdp_synapse (lambda, alpha, mu_plus, mu_minus, Wmax, tau_plus; tau_minus of the post neuron; delay d)
        pairing all_to_all; mu 0: additive, a_plus = lambda Wmax, a_minus = alpha lambda Wmax;
        mu 1: multiplicative, a_plus = lambda, a_minus = alpha lambda; other mu: gutig,
        a_plus = lambda Wmax^(1 - mu_plus), a_minus = alpha lambda Wmax^(1 - mu_minus);
        w_min 0, w_max Wmax; synapses.delay.dendritic d; same_step nest
    NEST stdp_synapse_hom                 the same, parameters shared by all synapses
    NEST stdp_nn_symm_synapse             as stdp_synapse, pairing nearest
    NEST stdp_nn_pre_centered_synapse     as stdp_synapse, pairing presynaptic_centered
    NEST stdp_nn_restr_synapse            as stdp_synapse, pairing restricted
    NEST stdp_pl_synapse_hom (lambda, alpha, mu, tau_plus)
        weight_dependence power_law, a_plus = lambda, a_minus = alpha lambda, mu_plus = mu,
        w_min 0, w_max null; delay and same_step as above
    NEST stdp_triplet_synapse             kind: triplet (Aplus -> a2_plus, Aplus_triplet -> a3_plus,
        Aminus -> a2_minus, Aminus_triplet -> a3_minus, tau_plus, tau_plus_triplet -> tau_x;
        tau_minus, tau_minus_triplet -> tau_y of the post neuron); w_min 0, w_max Wmax
    Brian2 (examples/synapses/STDP.py: apre += dApre on_pre, apost += dApost on_post)
        a_plus = dApre, a_minus = -dApost (both as fractions of the weight's unit), tau_plus =
        taupre, tau_minus = taupost; clip(w, 0, gmax): additive, w_min 0, w_max gmax;
        apre = dApre instead of += : pairing nearest; same_step pair;
        S.pre.delay -> synapses.delay.axonal, S.post.delay -> synapses.delay.dendritic

References: Bi G-Q & Poo M-M (1998) J Neurosci 18:10464. Song S, Miller KD & Abbott LF (2000)
Nat Neurosci 3:919. van Rossum MCW, Bi G-Q & Turrigiano GG (2000) J Neurosci 20:8812
(multiplicative). Gutig R, Aharonov R, Rotter S & Sompolinsky H (2003) J Neurosci 23:3697.
Morrison A, Diesmann M & Gerstner W (2008) Biol Cybern 98:459 (nearest-spike schemes, power law).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..core.delay import dendritic_posts
from ..core.inhibit import lif_block_inh, open_row
from ..core.jit import jit
from ..core.net import lif_arg, lif_block, next_event_step, post_events_block, pre_spikes, prefetch_rows, room_for_post
from ..core.release import release_row
from ..core.structure import transmit
from .base import ONE, TIME, Param, Preset, RuleSpec, StateVar
from .traces import decay, decay_table, probe_trace

ADDITIVE, MULTIPLICATIVE, GUTIG, POWER_LAW = 0, 1, 2, 3
WEIGHT_DEPENDENCE = {"additive": ADDITIVE, "multiplicative": MULTIPLICATIVE, "gutig": GUTIG, "power_law": POWER_LAW}
# pairing schemes: the first two queue the post spikes per row; the others walk columns
ALL_TO_ALL, NEAREST, PRE_CENTERED, RESTRICTED = 0, 1, 2, 3
PAIRING = {"all_to_all": ALL_TO_ALL, "nearest": NEAREST, "presynaptic_centered": PRE_CENTERED, "restricted": RESTRICTED}
# same_step: what a pre and a post spike in the same step do
EXCLUDE, NEST_ORDER, PAIR = SAME_STEP_CODES = (0, 1, 2)
SAME_STEP = {"exclude": EXCLUDE, "nest": NEST_ORDER, "pair": PAIR}
SAME_STEP_PARAM = Param(  # shared with triplet
    "same_step",
    "choice",
    "exclude",
    "a pre and a post spike in one step: exclude (depress, then potentiate, no pair), "
    "nest (potentiate, then depress, no pair), pair (Brian2: they pair, delta_t = 0)",
    choices=tuple(SAME_STEP),
)

SPEC = RuleSpec(
    kind="stdp",
    title="pair-based STDP (additive, multiplicative, Gutig or power-law; all-to-all or three nearest-spike schemes)",
    citation="Bi & Poo 1998, J Neurosci 18:10464; Song, Miller & Abbott 2000, Nat Neurosci 3:919; "
    "Gutig et al. 2003, J Neurosci 23:3697",
    params=(
        Param("a_plus", ONE, 0.01, "potentiation per pre-before-post pair", lo=0.0),
        Param("a_minus", ONE, 0.0105, "depression per post-before-pre pair (applied as -a_minus)", lo=0.0),
        Param("tau_plus", TIME, 16.8, "decay of the presynaptic trace (Bi & Poo 1998 fit)", lo=0.0, lo_open=True),
        Param("tau_minus", TIME, 33.7, "decay of the postsynaptic trace (Bi & Poo 1998 fit)", lo=0.0, lo_open=True),
        Param(
            "pairing",
            "choice",
            "all_to_all",
            "which spike pairs count (Morrison et al. 2008; nearest = NEST's symmetric scheme)",
            choices=tuple(PAIRING),
        ),
        Param(
            "weight_dependence",
            "choice",
            "additive",
            "how the update scales with the weight",
            choices=tuple(WEIGHT_DEPENDENCE),
        ),
        Param("mu_plus", ONE, 0.5, "exponent of (w_max - w) for gutig, of w for power_law", lo=0.0),
        Param("mu_minus", ONE, 0.5, "exponent of (w - w_min) for gutig", lo=0.0),
        SAME_STEP_PARAM,
    ),
    state=(
        StateVar("x_pre", "pre", "presynaptic trace (tau_plus)"),
        StateVar("x_post", "post", "postsynaptic trace (tau_minus)"),
    ),
    presets={
        "bi_poo_1998": Preset(
            {"tau_plus": 16.8, "tau_minus": 33.7},
            "Bi & Poo 1998, J Neurosci 18:10464: time constants of the exponential fit "
            "(as used by NEST, Auryn and Pfister & Gerstner 2006)",
        ),
        "song2000_brian2": Preset(
            {"a_plus": 1e-4, "a_minus": 1.05e-4, "tau_plus": 20.0, "tau_minus": 20.0},
            "Song, Miller & Abbott 2000, Nat Neurosci 3:919, as in Brian2 examples/synapses/STDP.py "
            "(dApre = 0.01 gmax, dApost = -1.05 dApre) for w_max = gmax = 0.01",
        ),
    },
    blockable=("NMDA",),
    post_blocks=True,
)


class Params(NamedTuple):
    dt: float
    a_plus: float
    a_minus: float
    tau_plus: float
    tau_minus: float
    mu_plus: float
    mu_minus: float
    nearest: int  # a pre spike sets x_pre to 1 (nearest, restricted) instead of adding 1
    wdep: int
    w_min: float
    w_max: float
    dec_plus: np.ndarray
    dec_minus: np.ndarray
    nearest_post: int  # a post spike sets x_post to 1 (every scheme but all_to_all)
    scheme: int  # ALL_TO_ALL | NEAREST | PRE_CENTERED | RESTRICTED
    same_step: int  # EXCLUDE | NEST_ORDER | PAIR


class State(NamedTuple):
    x_pre: np.ndarray  # value right after the last spike, at step t_pre
    t_pre: np.ndarray
    x_post: np.ndarray
    t_post: np.ndarray
    xm_pre: np.ndarray  # x_pre just before the increment at step t_pre (after it, same_step pair)
    yd: np.ndarray  # scratch: x_post decayed to the current step (n_post)
    q_j: np.ndarray  # post spikes not yet applied to every row, in time order: post neuron | (its step - q_step[0]) << 32
    q_step: np.ndarray  # per queued step (a step with post spikes): the step ...
    q_end: np.ndarray  # ... and where its post neurons end in q_j
    qn: np.ndarray  # [queued post spikes, queued steps]
    qptr: np.ndarray  # per row: queued steps already applied to it
    kp: np.ndarray  # presynaptic_centered: per synapse, the pre trace since the last post spike (at t_pre); else 0 x 0
    t_seen: np.ndarray  # restricted: the last post spike, this step's included (n_post); else empty


QUEUE = 1 << 16  # queued steps at most (a full queue is flushed into every row) ...
QUEUE_MIN = 1 << 10  # ... and at least: small networks, whose flushes are cheap, get small ones
LOW32, SHIFT32 = np.uint64(0xFFFFFFFF), np.uint64(32)  # q_j: post neuron | (step - first queued step) << 32
PREFETCH_MIN = 64  # post neurons in a block from which the next rows are prefetched


def build(values, ctx):
    # a flush walks every row: size the queue by the network (sweeps build hundreds of tiny ones)
    queue = min(QUEUE, max(QUEUE_MIN, ctx.n_pre * ctx.n_post))
    wdep = WEIGHT_DEPENDENCE[values["weight_dependence"]]
    scheme = PAIRING[values["pairing"]]
    pr = Params(
        dt=ctx.dt,
        a_plus=float(values["a_plus"]),
        a_minus=float(values["a_minus"]),
        tau_plus=float(values["tau_plus"]),
        tau_minus=float(values["tau_minus"]),
        mu_plus=1.0 if wdep == MULTIPLICATIVE else float(values["mu_plus"]),
        mu_minus=1.0 if wdep == MULTIPLICATIVE else float(values["mu_minus"]),
        nearest=int(scheme in (NEAREST, RESTRICTED)),
        wdep=wdep,
        w_min=ctx.w_min,
        w_max=ctx.w_max,
        dec_plus=decay_table(values["tau_plus"], ctx.dt),
        dec_minus=decay_table(values["tau_minus"], ctx.dt),
        nearest_post=int(scheme != ALL_TO_ALL),
        scheme=scheme,
        same_step=SAME_STEP[values.get("same_step", "exclude")],
    )
    # restricted compares spike steps: "never spiked" must be earlier than every step
    never = -1 if scheme == RESTRICTED else 0
    st = State(
        x_pre=np.zeros(ctx.n_pre),
        t_pre=np.full(ctx.n_pre, never, dtype=np.int64),
        x_post=np.zeros(ctx.n_post),
        t_post=np.full(ctx.n_post, never, dtype=np.int64),
        xm_pre=np.zeros(ctx.n_pre),
        yd=np.zeros(ctx.n_post),
        q_j=np.zeros(max(queue, ctx.n_post), dtype=np.int64),  # one step's post spikes always fit
        q_step=np.zeros(queue, dtype=np.int64),
        q_end=np.zeros(queue, dtype=np.int64),
        qn=np.zeros(2, dtype=np.int64),
        qptr=np.zeros(ctx.n_pre, dtype=np.int64),
        kp=np.zeros((ctx.n_pre, ctx.n_post) if scheme == PRE_CENTERED else (0, 0)),
        t_seen=np.full(ctx.n_post if scheme == RESTRICTED else 0, never, dtype=np.int64),
    )
    return pr, st


def structure_changed(pr, st, w, formed, eliminated, w_new, step):
    """``synapses.structure`` (core/structure.py): a new synapse has seen no pre spike yet, so its
    presynaptic_centered trace ``kp`` starts at 0; the other schemes keep per-neuron traces only."""
    if st.kp.size and len(formed):
        st.kp.reshape(-1)[formed] = 0.0


def block_state(st: State) -> State:
    """A State for another block of post neurons (``advance_block``): private copies of what is
    written per pre neuron or per call (pre traces, queue), the per-post arrays shared (and
    ``kp``, whose columns each block writes apart)."""
    return st._replace(
        x_pre=st.x_pre.copy(),
        t_pre=st.t_pre.copy(),
        xm_pre=st.xm_pre.copy(),
        q_j=np.zeros_like(st.q_j),
        q_step=np.zeros_like(st.q_step),
        q_end=np.zeros_like(st.q_end),
        qn=st.qn.copy(),
        qptr=st.qptr.copy(),
    )


# the traces as stored (value, step of the last update, time constant in Params), for the
# kernels' own recording (core.record): they decay to the sample step as ``probe`` does
RECORD_TRACES = {"x_pre": ("x_pre", "t_pre", "tau_plus"), "x_post": ("x_post", "t_post", "tau_minus")}


def probe(st, pr, name, step):
    if name == "x_pre":
        return probe_trace(st.x_pre, st.t_pre, step, pr.dt, pr.tau_plus)
    return probe_trace(st.x_post, st.t_post, step, pr.dt, pr.tau_minus)


@jit(inline=True)
def potentiate(w, x, a_plus, mu_plus, wdep, w_min, w_max):
    """w after a post spike, given the pre trace x."""
    if wdep == ADDITIVE:
        w = w + a_plus * x
    elif wdep == POWER_LAW:
        w = w + a_plus * w**mu_plus * x
    else:
        w = w + a_plus * (w_max - w) ** mu_plus * x
    return min(max(w, w_min), w_max)


@jit(inline=True)
def depress(w, y, a_minus, mu_minus, wdep, w_min, w_max):
    """w after a pre spike, given the post trace y."""
    if wdep == ADDITIVE:
        w = w - a_minus * y
    elif wdep == POWER_LAW:
        w = w - a_minus * w * y
    else:
        w = w - a_minus * (w - w_min) ** mu_minus * y
    return min(max(w, w_min), w_max)


@jit
def decayed(x, t, table, s, dt, tau, out, k0, k1):
    """out[k] = x[k] exp(-(s - t[k]) dt / tau) for k0 <= k < k1: the traces brought to step s.

    (Views from index 0, as in ``lif_block``: no wraparound tests in the loop.) A first loop
    without branches takes every decay from the table (an age past it reads the table's last
    entry, and the loop notes that it did); only then, where an age was past the table (a
    negative one wraps round to a huge unsigned age), a second loop gives those traces
    ``decay``'s value. The same products as one loop with ``decay``, so the same bits; W3's
    post traces are nearly always within the table (about 1.5x faster there).
    """
    xb, tb, ob = x[k0:k1], t[k0:k1], out[k0:k1]
    n = np.uint64(table.shape[0])
    last = n - np.uint64(1)
    far = False
    for k in range(xb.shape[0]):
        age = np.uint64(s - tb[k])
        near = age < n
        v = xb[k] * table[age if near else last]
        ob[k] = v if xb[k] != 0.0 else 0.0
        far |= not near
    if far:
        for k in range(xb.shape[0]):
            if xb[k] != 0.0 and np.uint64(s - tb[k]) >= n:
                ob[k] = xb[k] * decay(table, s - tb[k], dt, tau)


@jit
def sync_row(i, row, x_pre, t_pre, xm_pre, q_j, q_step, q_end, qn, qptr, dec_plus, dt, tau_plus, a_plus, mu_plus, wdep, w_min, w_max):
    """Apply to row i the queued post spikes it has not seen, in time order.

    A post spike of j at step t potentiates w_ij with the pre trace at t before that step's
    increments: x_pre_i decayed from t_pre_i if t > t_pre_i, or xm_pre_i if t == t_pre_i (a
    row is synced at each of its pre spikes, so t < t_pre_i cannot be pending; only the first
    pending step can be t_pre_i's). The arithmetic is the column walk's, so results are
    identical to it bit for bit.

    The queue holds the post spikes step by step (``q_j``: the post neuron in the low 32 bits,
    its step less the first queued step, ``q_step[0]``, above). The pending steps up to t_pre_i
    go first, with xm_pre_i. Then, with the additive rule and every pending decay in the table
    (nearly every sync), one flat loop walks the post spikes, the trace computed per spike from
    the step in ``q_j`` itself: the same products, so the same bits, no branch on each step's
    number of spikes, which the processor cannot predict, and no load of the step from
    ``q_step`` (W3's simulation: about 15 % less CPU time on two threads than the loop per step;
    the step in ``q_j`` and no same-step test in the loop, about 12 % less time a sync than the
    step's place in ``q_step``). Otherwise the trace (and ``a_plus`` times it) is computed
    once per step, then added for each post spike of that step, and ``np.exp`` computes decays
    past the table (a call in the flat loop would make the compiler keep its loop-invariant
    values on the stack, about 35 % slower). (Keep the control flow this simple, loops one
    after the other and one way out, and take no views: Numba then prunes the reference
    counting of the array arguments, otherwise two atomic operations each per call. The loops
    index with unsigned integers: Numba tests every signed index for a negative value, three
    instructions per array access, which made this loop about 15 % slower.)
    """
    g, g1 = qptr[i], qn[1]
    x0 = x_pre[i]
    tp = t_pre[i]
    xm = xm_pre[i]
    n_table = dec_plus.shape[0]
    e = q_end[g - 1] if g > 0 else 0  # the first pending post spike in q_j
    while g < g1 and q_step[g] <= tp:  # the step of the last pre spike: its trace before it
        end = q_end[g]
        if xm != 0.0:
            for q in range(np.uint64(e), np.uint64(end)):
                j = np.uint64(q_j[q]) & LOW32
                row[j] = potentiate(row[j], xm, a_plus, mu_plus, wdep, w_min, w_max)
        e = end
        g += 1
    # additive, every decay from the table (the last pending step is the farthest): one flat
    # loop over the post spikes; every pending step is now later than tp (k >= 1), and the pre
    # trace decayed by any of them is not 0 (its smallest decay is not): no test in the loop
    flat = wdep == ADDITIVE and g < g1 and q_step[g1 - 1] - tp < n_table and x0 * dec_plus[n_table - 1] > 0.0
    e_flat = q_end[g1 - 1] if flat else e
    rel = np.uint64(tp - q_step[0])  # k = (t - q_step[0]) - (tp - q_step[0]), modulo 2**64: in [1, n_table)
    for q in range(np.uint64(e), np.uint64(e_flat)):
        pk = np.uint64(q_j[q])
        j = pk & LOW32
        row[j] = min(max(row[j] + a_plus * (x0 * dec_plus[(pk >> SHIFT32) - rel]), w_min), w_max)
    for h in range(np.uint64(g1 if flat else g), np.uint64(g1)):
        end = q_end[h]
        k = q_step[h] - tp
        x = x0 * (dec_plus[np.uint64(k)] if k < n_table else np.exp(-k * dt / tau_plus))
        if x != 0.0:
            if wdep == ADDITIVE:
                ax = a_plus * x
                for q in range(np.uint64(e), np.uint64(end)):
                    j = np.uint64(q_j[q]) & LOW32
                    row[j] = min(max(row[j] + ax, w_min), w_max)
            else:
                for q in range(np.uint64(e), np.uint64(end)):
                    j = np.uint64(q_j[q]) & LOW32
                    row[j] = potentiate(row[j], x, a_plus, mu_plus, wdep, w_min, w_max)
        e = end
    qptr[i] = g1


@jit
def flush(w, x_pre, t_pre, xm_pre, q_j, q_step, q_end, qn, qptr, dec_plus, dt, tau_plus, a_plus, mu_plus, wdep, w_min, w_max):
    """Apply every queued post spike to every row, then empty the queue."""
    if qn[1] == 0:
        return
    for i in range(w.shape[0]):
        if qptr[i] < qn[1]:
            sync_row(i, w[i], x_pre, t_pre, xm_pre, q_j, q_step, q_end, qn, qptr, dec_plus, dt, tau_plus, a_plus, mu_plus, wdep, w_min, w_max)
        qptr[i] = 0
    qn[0] = 0
    qn[1] = 0


@jit
def walk_columns(w, post_now, npost, s, centered, pair, x_pre, t_pre, kp, t_post, dec_plus, dt, tau_plus, a_plus, mu_plus, wdep, w_min, w_max):
    """Potentiation by the post spikes ``post_now[:npost]`` of step ``s``, one column walk each,
    for the schemes whose pre trace depends on the synapse (Morrison et al. 2008; NEST's
    ``stdp_nn_pre_centered_synapse`` and ``stdp_nn_restr_synapse``):

    presynaptic_centered (``centered``)
        the pre trace of synapse ij sums the pre spikes of i since the last post spike of j
        (``kp``, stored at step t_pre_i); the post spike uses it, then sets it to 0: each pre
        spike potentiates with the first post spike after it only.
    restricted
        a post spike of j potentiates w_ij only if it is the first post spike of j since the
        last pre spike of i, with ``exp(-(t - t_pre_i) dt / tau_plus)``: only pairs of
        neighbouring spikes count. A pre and a post spike of one step count as post before pre
        (NEST's order), or pre before post with same_step pair.

    Called before this step's post traces are incremented (``t_post`` holds the previous post
    spike); the pre traces are before this step's increments, or after them for same_step pair.
    """
    n_pre = w.shape[0]
    for b in range(npost):
        j = post_now[b]
        tj = t_post[j]
        for i in range(n_pre):
            if centered:
                x = kp[i, j]
                if x != 0.0:
                    x *= decay(dec_plus, s - t_pre[i], dt, tau_plus)
                kp[i, j] = 0.0
            elif t_pre[i] > tj or (t_pre[i] == tj and not pair):
                x = x_pre[i] * decay(dec_plus, s - t_pre[i], dt, tau_plus)
            else:
                x = 0.0
            if x != 0.0:
                w[i, j] = potentiate(w[i, j], x, a_plus, mu_plus, wdep, w_min, w_max)


@jit(inline=True)  # inlined at both call sites: compiled apart, W2 simulated 7 % slower
def pre_traces(pre_now, npre, s, x_pre, t_pre, xm_pre, kp, dec_plus, dt, tau_plus, nearest, pair, centered, j0, j1):
    """Increment the pre traces of the neurons spiking at step ``s`` (and, for
    presynaptic_centered, their synapses' ``kp`` in the block's columns)."""
    for a in range(npre):
        i = pre_now[a]
        d = decay(dec_plus, s - t_pre[i], dt, tau_plus)
        x = x_pre[i] * d
        if t_pre[i] != s:  # the first spike of i in this step: keep the trace before it
            xm_pre[i] = x
        x_pre[i] = 1.0 if nearest else x + 1.0
        if pair:  # a post spike of this step pairs with this pre spike (delta_t = 0)
            xm_pre[i] = x_pre[i]
        if centered:
            for j in range(j0, j1):
                kp[i, j] = kp[i, j] * d + 1.0
        t_pre[i] = s


@jit  # compiled once for its two call sites (first run -0.5 s; post spikes are too rare for the call to cost)
def post_part(w, post_now, npost, s, queued, centered, pair, x_pre, t_pre, xm_pre, kp, t_post, q_j, q_step, q_end, qn, qptr, dec_plus, dt, tau_plus, a_plus, mu_plus, wdep, w_min, w_max):
    """The post spikes of step ``s`` potentiate: queued for the rows (all_to_all, nearest), or
    column walks (presynaptic_centered, restricted)."""
    if queued:
        # full, or this step more than 2**32 - 1 steps after the first queued one: apply them
        if qn[0] + npost > q_j.shape[0] or qn[1] == q_step.shape[0] or (qn[1] > 0 and s - q_step[0] > 0xFFFFFFFF):
            flush(w, x_pre, t_pre, xm_pre, q_j, q_step, q_end, qn, qptr, dec_plus, dt, tau_plus, a_plus, mu_plus, wdep, w_min, w_max)
        off = (s - q_step[0] if qn[1] > 0 else 0) << 32
        for b in range(npost):
            q_j[qn[0]] = post_now[b] | off  # the post neuron, and its step less the first queued step
            qn[0] += 1
        q_step[qn[1]] = s
        q_end[qn[1]] = qn[0]
        qn[1] += 1
    else:
        walk_columns(w, post_now, npost, s, centered, pair, x_pre, t_pre, kp, t_post, dec_plus, dt, tau_plus, a_plus, mu_plus, wdep, w_min, w_max)


def advance(w, net, st, pr, s0, s1, blocked, rel=None, present=None, inh=None):
    """Event-driven pair STDP of every post neuron (``advance_block`` over all of them).

    Plain Python: ``advance_block``'s ``lif`` argument is an array or None by the neuron
    model, and Numba compiles each kind apart (``core.net.lif_arg``); ``rel`` likewise
    (``core.release``: None without transmitter release), ``present`` (``core.structure``: None
    without structural plasticity) and ``inh`` (``core.inhibit``: None without inhibitory
    inputs)."""
    return advance_block(w, net, st, pr, s0, s1, blocked, 0, w.shape[1], lif_arg(net), rel, present, inh)


@jit(entry=True)
def advance_block(w, net, st, pr, s0, s1, blocked, j0, j1, lif, rel, present, inh):
    """Event-driven pair STDP of the post neurons ``j0 <= j < j1`` (all columns of ``w`` are
    there; only these are read and written).

    A pre spike walks its row (contiguous). A post spike does not walk its column (strided,
    a cache miss per synapse): it is queued, and each row applies the queued post spikes it
    has not seen just before its next pre spike, and all rows at the end of the call. Every
    weight receives the same operations in the same order as with immediate column walks, so
    the result is identical, bit for bit, whatever the chunking. (presynaptic_centered and
    restricted walk the columns: ``walk_columns``.)

    Within a step: pre spikes walk their rows (depression), then post spikes potentiate, then
    the traces are incremented; same_step nest potentiates first, same_step pair increments
    the pre traces before the post spikes potentiate.

    Blocks: the post neurons of a block see only their own inputs' effects, so disjoint blocks
    advanced separately (by threads, each with its own ``block_net``/``block_state``) give the
    weights, neuron and post-trace values of one call over all of them, bit for bit; their
    pre traces are identical. Post spikes are queued per block and only reach that block's
    columns.
    """
    dt, cursor = net.dt, net.cursor
    pre_step, pre_idx, pre_now = net.pre_step, net.pre_idx, net.pre_now
    post_step, post_idx, post_now = net.post_step, net.post_idx, net.post_now
    v, g, ref_until, out_step, out_idx = net.v, net.g, net.ref_until, net.out_step, net.out_idx
    dq_n, dq_idx = net.dq_n, net.dq_idx
    x_pre, t_pre, x_post, t_post, xm_pre, yd = st.x_pre, st.t_pre, st.x_post, st.t_post, st.xm_pre, st.yd
    q_j, q_step, q_end, qn, qptr, kp, t_seen = st.q_j, st.q_step, st.q_end, st.qn, st.qptr, st.kp, st.t_seen
    dec_plus, dec_minus, tau_plus, tau_minus = pr.dec_plus, pr.dec_minus, pr.tau_plus, pr.tau_minus
    a_plus, a_minus, mu_plus, mu_minus = pr.a_plus, pr.a_minus, pr.mu_plus, pr.mu_minus
    w_min, w_max, nearest, nearest_post, wdep = pr.w_min, pr.w_max, pr.nearest == 1, pr.nearest_post == 1, pr.wdep
    additive = wdep == ADDITIVE
    queued, centered, restricted = pr.scheme <= NEAREST, pr.scheme == PRE_CENTERED, pr.scheme == RESTRICTED
    nest_order, pair = pr.same_step == NEST_ORDER, pr.same_step == PAIR
    delayed = dq_n.shape[0] > 0  # a dendritic delay of the LIF post spikes (core.delay)
    is_lif = lif is not None  # the neuron model, from the one place that decides it (lif_arg)
    plastic = blocked[0] == 0
    # restricted: a pre spike depresses w_ij if j spiked since i's last pre spike: this step's post
    # spikes count as earlier (NEST's order), except with same_step pair
    gate = t_post if pair else t_seen
    gb, ydb, tgb = g[j0:j1], yd[j0:j1], gate[j0:j1]  # the block's columns, indexed from 0 (no wraparound tests)
    nb = gb.shape[0]
    s = s0
    while s < s1:
        if not is_lif:  # clamped neurons: jump to the next event
            s = next_event_step(pre_step, post_step, cursor, s)
            if s >= s1:
                s = s1
                break
        if not room_for_post(cursor, post_now, out_step):
            break
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
        if j1 - j0 >= PREFETCH_MIN:  # rows of a few cache lines at least
            prefetch_rows(w, pre_step, pre_idx, cursor, j0, j1)
        if npost and plastic and nest_order:  # same_step nest: potentiate before depressing
            post_part(w, post_now, npost, s, queued, centered, pair, x_pre, t_pre, xm_pre, kp, t_post, q_j, q_step, q_end, qn, qptr, dec_plus, dt, tau_plus, a_plus, mu_plus, wdep, w_min, w_max)
        if restricted and not pair:
            for b in range(npost):
                t_seen[post_now[b]] = s
        if npre:  # pre spikes walk their rows, with the post traces of this step (before increments)
            if plastic:
                decayed(x_post, t_post, dec_minus, s, dt, tau_minus, yd, j0, j1)
            for a in range(npre):
                i = pre_now[a]
                row = w[i]
                if qptr[i] < qn[1]:
                    sync_row(i, row, x_pre, t_pre, xm_pre, q_j, q_step, q_end, qn, qptr, dec_plus, dt, tau_plus, a_plus, mu_plus, wdep, w_min, w_max)
                rb = row[j0:j1]
                if rel is not None:  # transmitter release (core.release): the LIF gets w r_n
                    release_row(rel, row, i, s, j0, j1)
                    if is_lif:
                        ab = rel.amp[j0:j1]
                        if present is None:
                            for k in range(nb):
                                gb[k] += ab[k]
                        else:  # structure hook (core/structure.py): absent synapses transmit nothing
                            transmit(gb, ab, present[i, j0:j1])
                elif is_lif:
                    if inh is not None:  # an inhibitory neuron's weight (a magnitude) opens g_inh instead
                        open_row(inh, i, rb, gb, j0, j1)
                    elif present is None:
                        for k in range(nb):
                            gb[k] += rb[k]
                    else:  # structure hook (core/structure.py): absent synapses transmit nothing
                        transmit(gb, rb, present[i, j0:j1])
                if plastic:
                    if restricted:  # only the first pre spike since a post spike depresses
                        tpi = t_pre[i]
                        for k in range(nb):
                            if tgb[k] > tpi or (pair and tgb[k] == tpi):
                                rb[k] = depress(rb[k], ydb[k], a_minus, mu_minus, wdep, w_min, w_max)
                    elif additive:
                        for k in range(nb):
                            rb[k] = min(max(rb[k] - a_minus * ydb[k], w_min), w_max)
                    else:
                        for k in range(nb):
                            rb[k] = depress(rb[k], ydb[k], a_minus, mu_minus, wdep, w_min, w_max)
        if pair:  # same_step pair: the pre traces first, so that this step's post spikes pair with them
            pre_traces(pre_now, npre, s, x_pre, t_pre, xm_pre, kp, dec_plus, dt, tau_plus, nearest, pair, centered, j0, j1)
        if npost and plastic and not nest_order:
            post_part(w, post_now, npost, s, queued, centered, pair, x_pre, t_pre, xm_pre, kp, t_post, q_j, q_step, q_end, qn, qptr, dec_plus, dt, tau_plus, a_plus, mu_plus, wdep, w_min, w_max)
        if not pair:
            pre_traces(pre_now, npre, s, x_pre, t_pre, xm_pre, kp, dec_plus, dt, tau_plus, nearest, pair, centered, j0, j1)
        for b in range(npost):
            j = post_now[b]
            y = x_post[j] * decay(dec_minus, s - t_post[j], dt, tau_minus)
            x_post[j] = 1.0 if nearest_post else y + 1.0
            t_post[j] = s
        s += 1
    flush(w, x_pre, t_pre, xm_pre, q_j, q_step, q_end, qn, qptr, dec_plus, dt, tau_plus, a_plus, mu_plus, wdep, w_min, w_max)
    return min(s, s1)
