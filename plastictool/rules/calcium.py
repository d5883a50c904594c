"""Calcium-based plasticity with a bistable synaptic efficacy (Graupner & Brunel 2012).

Calcium at synapse ``(i, j)`` is the sum of a presynaptic and a postsynaptic part::

    dc/dt = -c / tau_ca + c_pre sum_k delta(t - t_pre_k - delay) + c_post sum_l delta(t - t_post_l)

(pre transients arrive ``delay`` after the presynaptic spike, post transients at the spike).
Calcium is linear, so ``c_ij = c_pre_part_i + c_post_part_j``: one array per presynaptic and
one per postsynaptic neuron. The efficacy ``rho`` of each synapse follows::

    tau drho/dt = -rho (1 - rho) (rho_star - rho)
                  + gamma_p (1 - rho) H(c - theta_p) - gamma_d rho H(c - theta_d)
                  + sigma sqrt(tau) sqrt(H(c - theta_p) + H(c - theta_d)) eta(t)

``H(x) = 1`` for ``x > 0`` (strictly above threshold), ``eta`` is unit Gaussian white noise, so
noise acts only while calcium is above a threshold. Without calcium ``rho`` relaxes to the
nearer of its stable states 0 (DOWN) and 1 (UP); ``rho_star`` (0.5) is the unstable point.
The weight is the readout ``w = w0 + rho (w1 - w0)``, written into ``w`` (so LIF neurons see
it); ``w_init``, ``w_min`` and ``w_max`` do not apply, ``rho_init`` sets the start (a number
or a distribution, like ``w_init``).

Numerics, per step ``s`` of ``dt`` (time ``s dt`` to ``(s + 1) dt``): calcium is exact. Each
neuron's part is kept as its value after its last jump and decays by
``exp(-(s - t) dt / tau_ca)``; post transients enter at the start of the step of the post spike,
pre transients exactly ``delay`` after the presynaptic spike, which is a fraction ``f`` of a step
into step ``s`` when ``delay / dt`` is not a whole number (``delay / dt`` within 1e-9 of a whole
number counts as whole). Between two jumps calcium decays exponentially, so the time ``T_d``,
``T_p`` it spends above each threshold within the step is computed exactly
(``tau_ca ln(c / theta)`` where it crosses), and ``rho`` makes one Euler-Maruyama step with the
fractions ``h_d = T_d / dt``, ``h_p = T_p / dt`` in place of the Heaviside functions:
``rho += dt/tau * (cubic + gamma_p (1 - rho) h_p - gamma_d rho h_d)
+ sigma sqrt(dt/tau) sqrt(h_p + h_d) N(0, 1)``. So ``rho`` is a continuous, piecewise smooth
function of ``theta_d``, ``theta_p``, ``c_pre``, ``c_post`` and ``delay`` (counting whole steps
above a threshold, as a plain Euler scheme does, adds about dt/2 per crossing: +0.014 in rho
for preset ``graupner2012_dpd_prime``, 60 pairs at 1 Hz, +15 ms, at dt 0.1 ms; now 0.038914,
against 0.038907 for the exact solution and 0.038954 from the authors' code at dt 0.001 ms,
mgraupe/CalciumBasedPlasticityModel numericalSimulation). Steps on which
no synapse can be above a threshold (checked on running upper bounds of the calcium) only apply
the cubic drift, with the same arithmetic. The normals come from a seeded xoroshiro128+
generator kept in the rule state (``plastictool.core.rng``), drawn in row-major synapse order,
one wherever calcium is above a threshold during the step: the same seed gives the same run,
however it is split into chunks. ``rho`` is not clipped (as in the authors' code).

Blocking ``NMDA`` removes the calcium of spikes (pre and post transients that would enter
while blocked); calcium already present decays and ``rho`` keeps evolving.

Presets: the parameter sets of the paper (DP, DPD, P, D, DPD', D'; the fits to cortical slices
(Sjostrom et al. 2001), hippocampal slices and hippocampal cultures). Times in ms (the paper
uses s: tau = 150 s is 150000 ms). The paper reads out two states with
``b = w1/w0`` and a fraction ``beta`` of synapses initially DOWN; the presets set ``w0 = 1``,
``w1 = b``; ``beta`` is a property of the population: start a fraction ``beta`` of the synapses at
``rho_init = 0`` and the rest at 1 (e.g. two conditions of a sweep over ``rule.rho_init``) and
weight the results. Right after a protocol ``rho`` is generally not yet 0 or 1; the two-state
outcome is ``rho > rho_star`` (the drift carries ``rho`` there within about an hour).

Reference: Graupner M & Brunel N (2012) Calcium-based plasticity model explains sensitivity of
synaptic changes to spike pattern, rate, and dendritic location. PNAS 109:3991-3996.
Parameter sets as in the authors' code (github.com/mgraupe/CalciumBasedPlasticityModel,
synapticChange.py choseParameterSet).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..core.jit import jit
from ..core.net import LIF, lif_step, post_events, pre_spikes, room_for_post
from ..core.release import release_row
from ..core.rng import new_generator, normal
from ..core.structure import absent_to_zero
from ..protocol.inits import Init
from .base import ONE, TIME, Param, Preset, RuleSpec, StateVar
from .traces import decay, decay_table, probe_trace

FLUSH = 1e-200  # calcium bounds below this are set to 0 (no subnormal arithmetic)

_CITE = "Graupner & Brunel 2012, PNAS 109:3991"
_CODE = "values from the authors' code mgraupe/CalciumBasedPlasticityModel synapticChange.py (choseParameterSet)"


def _set(tau_ca, c_pre, c_post, theta_p, gamma_d, gamma_p, sigma, tau, delay, b, theta_d=1.0):
    """A preset from the paper's table, times in ms (the paper gives them in s)."""
    return {
        "tau_ca": tau_ca,
        "c_pre": c_pre,
        "c_post": c_post,
        "delay": delay,
        "theta_d": theta_d,
        "theta_p": theta_p,
        "gamma_d": gamma_d,
        "gamma_p": gamma_p,
        "tau": tau,
        "rho_star": 0.5,
        "sigma": sigma,
        "w0": 1.0,
        "w1": b,
    }


_DP = _set(20.0, 1.0, 2.0, 1.3, 200.0, 321.808, 2.8284, 150000.0, 13.7, 5.0)

SPEC = RuleSpec(
    kind="calcium",
    title="calcium-based rule with bistable efficacy (Graupner & Brunel 2012)",
    citation=_CITE,
    params=(
        Param("tau_ca", TIME, _DP["tau_ca"], "calcium decay time constant", lo=0.0, lo_open=True),
        Param("c_pre", ONE, _DP["c_pre"], "calcium jump of a presynaptic spike (after the delay)", lo=0.0),
        Param("c_post", ONE, _DP["c_post"], "calcium jump of a postsynaptic spike", lo=0.0),
        Param("delay", TIME, _DP["delay"], "delay of the presynaptic calcium transient (exact, not rounded to dt)", lo=0.0),
        Param("theta_d", ONE, _DP["theta_d"], "depression threshold", lo=0.0),
        Param("theta_p", ONE, _DP["theta_p"], "potentiation threshold", lo=0.0),
        Param("gamma_d", ONE, _DP["gamma_d"], "depression rate (in units of 1/tau)", lo=0.0),
        Param("gamma_p", ONE, _DP["gamma_p"], "potentiation rate (in units of 1/tau)", lo=0.0),
        Param("tau", TIME, _DP["tau"], "time constant of the efficacy rho (150 s)", lo=0.0, lo_open=True),
        Param("rho_star", ONE, 0.5, "unstable fixed point between DOWN (0) and UP (1)", lo=0.0, hi=1.0),
        Param("sigma", ONE, _DP["sigma"], "noise amplitude (0: deterministic)", lo=0.0),
        Param("rho_init", "init", Init("constant", (0.0,)), "initial efficacy: number or distribution"),
        Param("w0", ONE, 1.0, "weight of the DOWN state (rho = 0)"),
        Param("w1", ONE, 5.0, "weight of the UP state (rho = 1); b = w1 / w0 in the paper"),
    ),
    state=(
        StateVar("ca", "syn", "calcium c_ij = pre part + post part"),
        StateVar("rho", "syn", "synaptic efficacy (0 DOWN, 1 UP)"),
    ),
    presets={
        "graupner2012_dp": Preset(
            _DP,
            _CITE + ", parameter set DP",
            _CODE + "; b = 5, beta = 0.5 in the paper. c_pre equals theta_d: a presynaptic transient "
            "alone does not cross theta_d (the threshold is strict)",
        ),
        "graupner2012_dpd": Preset(
            _set(20.0, 0.9, 0.9, 1.3, 250.0, 550.0, 2.8284, 150000.0, 4.6, 5.0),
            _CITE + ", parameter set DPD",
            _CODE + "; b = 5, beta = 0.5",
        ),
        "graupner2012_dpd_prime": Preset(
            _set(20.0, 1.0, 2.0, 2.5, 50.0, 600.0, 2.8284, 150000.0, 2.2, 5.0),
            _CITE + ", parameter set DPD'",
            _CODE + "; b = 5, beta = 0.5",
        ),
        "graupner2012_p": Preset(
            _set(20.0, 2.0, 2.0, 1.3, 160.0, 257.447, 2.8284, 150000.0, 0.0, 5.0),
            _CITE + ", parameter set P",
            _CODE + "; b = 5, beta = 0.5",
        ),
        "graupner2012_d": Preset(
            _set(20.0, 0.6, 0.6, 1.3, 500.0, 550.0, 5.6568, 150000.0, 0.0, 5.0),
            _CITE + ", parameter set D",
            _CODE + "; b = 5, beta = 0.5",
        ),
        "graupner2012_d_prime": Preset(
            _set(20.0, 1.0, 2.0, 3.5, 60.0, 600.0, 2.8284, 150000.0, 0.0, 5.0),
            _CITE + ", parameter set D'",
            _CODE + "; b = 5, beta = 0.5",
        ),
        "graupner2012_cortical": Preset(
            _set(22.6936, 0.5617539, 1.23964, 1.3, 331.909, 725.085, 3.3501, 346361.5, 4.6098, 5.40988),
            _CITE + ", fit to cortical slices (Sjostrom et al. 2001 data; Fig. 4B)",
            _CODE + "; b = 5.40988, beta = 0.5",
        ),
        "graupner2012_hippocampal_slices": Preset(
            _set(48.8373, 1.0, 0.275865, 1.3, 313.0965, 1645.59, 9.1844, 688355.0, 18.8008, 5.28145),
            _CITE + ", fit to hippocampal slices",
            _CODE + "; b = 5.28145, beta = 0.7",
        ),
        "graupner2012_hippocampal_cultures": Preset(
            _set(11.9536, 0.58156, 1.76444, 1.3, 61.141, 113.6545, 2.5654, 33759.6, 10.0, 36.0263),
            _CITE + ", fit to hippocampal cultures",
            _CODE + "; b = 36.0263, beta = 0.5",
        ),
    },
    blockable=("NMDA",),
    weight_from_state=True,
)


class Params(NamedTuple):
    dt: float
    tau_ca: float
    dec_ca: float  # exp(-dt / tau_ca)
    dec_table: np.ndarray  # exp(-k dt / tau_ca), k = 0, 1, ... (plastictool.rules.traces)
    c_pre: float
    c_post: float
    delay_steps: int  # whole steps of the delay ...
    delay_frac: float  # ... and the fraction of a step after them (0 <= f < 1)
    e_frac: float  # exp(-f dt / tau_ca)
    e_rest: float  # exp(-(1 - f) dt / tau_ca)
    tau_steps: float  # tau_ca / dt
    theta_d: float
    theta_p: float
    theta_min: float
    theta_skip: float  # theta_min (1 - 1e-6): below it no synapse can be above a threshold
    gamma_d: float
    gamma_p: float
    k: float  # dt / tau
    rho_star: float
    noise1: float  # sigma sqrt(dt / tau): one threshold crossed
    stochastic: int
    w0: float
    w1: float


class State(NamedTuple):
    rho: np.ndarray  # float64[n_pre * n_post], row-major (synapse i, j at i * n_post + j)
    ca_pre: np.ndarray  # float64[n_pre]: presynaptic calcium right after its last jump ...
    t_pre: np.ndarray  # int64[n_pre]: ... at this step
    ca_post: np.ndarray  # float64[n_post]
    t_post: np.ndarray  # int64[n_post]
    ca_max: np.ndarray  # float64[2]: upper bounds of the pre and post calcium (clock-decayed)
    ca_now: np.ndarray  # float64[n_post] scratch: post calcium of the current step
    cur: np.ndarray  # int64[1]: next delayed pre event to arrive
    rng: np.ndarray  # uint64[2] xoroshiro128+ state
    spare: np.ndarray  # float64[2] Box-Muller spare
    ca_a: np.ndarray  # float64[n_pre]: pre calcium at the start of the step of its last arrival ...
    ca_b: np.ndarray  # float64[n_pre]: ... and right after that arrival's jump (delay_frac > 0)


def build(values, ctx):
    dt = float(ctx.dt)
    tau = float(values["tau"])
    tau_ca = float(values["tau_ca"])
    sigma = float(values["sigma"])
    theta_d, theta_p = float(values["theta_d"]), float(values["theta_p"])
    w0, w1 = float(values["w0"]), float(values["w1"])
    delay_steps, frac = split_delay(float(values["delay"]), dt)
    pr = Params(
        dt=dt,
        tau_ca=tau_ca,
        dec_ca=math.exp(-dt / tau_ca),
        dec_table=decay_table(tau_ca, dt),
        c_pre=float(values["c_pre"]),
        c_post=float(values["c_post"]),
        delay_steps=delay_steps,
        delay_frac=frac,
        e_frac=math.exp(-frac * dt / tau_ca),
        e_rest=math.exp(-(1.0 - frac) * dt / tau_ca),
        tau_steps=tau_ca / dt,
        theta_d=theta_d,
        theta_p=theta_p,
        theta_min=min(theta_d, theta_p),
        theta_skip=min(theta_d, theta_p) * (1.0 - 1e-6),
        gamma_d=float(values["gamma_d"]),
        gamma_p=float(values["gamma_p"]),
        k=dt / tau,
        rho_star=float(values["rho_star"]),
        noise1=sigma * math.sqrt(dt / tau),
        stochastic=int(sigma > 0.0),
        w0=w0,
        w1=w1,
    )
    init = values["rho_init"]
    shape = (ctx.n_pre, ctx.n_post)
    if isinstance(init, Init):
        rho = init.sample(shape, ctx.rng)  # drawn first, then the noise seed
    else:
        rho = np.broadcast_to(np.asarray(init, dtype=float), shape).copy()
    gen, spare = new_generator(ctx.rng)
    ctx.w[...] = w0 + rho * (w1 - w0)
    st = State(
        rho=np.ascontiguousarray(rho, dtype=float).reshape(-1).copy(),
        ca_pre=np.zeros(ctx.n_pre),
        t_pre=np.zeros(ctx.n_pre, dtype=np.int64),
        ca_post=np.zeros(ctx.n_post),
        t_post=np.zeros(ctx.n_post, dtype=np.int64),
        ca_max=np.zeros(2),
        ca_now=np.zeros(ctx.n_post),
        cur=np.zeros(1, dtype=np.int64),
        rng=gen,
        spare=spare,
        ca_a=np.zeros(ctx.n_pre),
        ca_b=np.zeros(ctx.n_pre),
    )
    return pr, st


def split_delay(delay: float, dt: float) -> tuple[int, float]:
    """``delay / dt`` as whole steps and the fraction of a step after them; within 1e-9 of a whole
    number (``13.7 / 0.1`` is 136.99999999999997) it is that number."""
    x = delay / dt
    n = float(np.rint(x))
    if abs(x - n) <= 1e-9 * max(1.0, x):
        return int(n), 0.0
    n = math.floor(x)
    return int(n), x - n


def probe(st, pr, name, step):
    """``rho`` after the steps integrated so far; ``ca`` at time ``step dt`` (after the jumps at
    that time when ``step`` has been integrated, else before them)."""
    n_pre, n_post = st.ca_pre.shape[0], st.ca_post.shape[0]
    if name == "rho":
        return st.rho.reshape(n_pre, n_post).copy()
    if name == "ca":
        # a pre transient that arrived within step ``step`` (its value is kept at step + 1):
        # the calcium at the start of that step
        a = np.where(st.t_pre > step, st.ca_a, probe_trace(st.ca_pre, np.minimum(st.t_pre, step), step, pr.dt, pr.tau_ca))
        b = probe_trace(st.ca_post, st.t_post, step, pr.dt, pr.tau_ca)
        return a[:, None] + b[None, :]
    raise KeyError(name)


def record_state(st, pr, name):
    """For the kernels' own recording (``core.record.state_reads``): the arrays read at each
    sample and ``probe``'s arithmetic over the samples (the same values, bit for bit)."""
    if name == "rho":
        return ((st.rho, None, "syn", 1, 0),), _rho
    if name == "ca":

        def ca(F, T, steps, dt):
            a = np.where(T[0] > steps, F[1], probe_trace(F[0], np.minimum(T[0], steps), steps, pr.dt, pr.tau_ca))
            return a + probe_trace(F[2], T[2], steps, pr.dt, pr.tau_ca)

        return ((st.ca_pre, st.t_pre, "pre", 1, 0), (st.ca_a, st.t_pre, "pre", 1, 0), (st.ca_post, st.t_post, "post", 1, 0)), ca
    return None


def _rho(F, T, steps, dt):
    return F[0]


@jit
def readout(w, rho, w0, w1, present=None):
    n_pre, n_post = w.shape
    dw = w1 - w0
    for i in range(n_pre):
        for j in range(n_post):
            w[i, j] = w0 + rho[i * n_post + j] * dw
    if present is not None:  # structure hook (core/structure.py): absent synapses weigh 0
        absent_to_zero(w, present)


def structure_changed(pr, st, w, formed, eliminated, w_new, step):
    """``synapses.structure``: a new synapse (flat indices ``formed``) starts with the efficacy
    that reads out as ``w_new``, ``rho = (w_new - w0) / (w1 - w0)``; an eliminated one keeps its
    ``rho`` (it is absent: read out as 0, reset when it forms again)."""
    if formed.size:
        st.rho[formed] = (w_new - pr.w0) / (pr.w1 - pr.w0) if pr.w1 != pr.w0 else 0.0


@jit(inline=True)  # (compiled apart, above and euler made the calcium kernel 20 % slower)
def above(c, theta, length, e_len, tau_steps):
    """Time (in steps) that calcium ``c``, decaying with ``tau_ca = tau_steps`` steps and no jump,
    spends strictly above ``theta`` within a piece of ``length`` steps (``e_len`` its decay)."""
    if c <= theta:
        return 0.0
    if c * e_len > theta:
        return length
    return min(length, tau_steps * math.log(c / theta))


@jit(inline=True)
def euler(r, fp, fd, rs, gamma_p, gamma_d, k, stochastic, noise1, gen, spare):
    """One Euler-Maruyama step of rho with fractions ``fp``, ``fd`` of the step above theta_p, theta_d."""
    d = -r * (1.0 - r) * (rs - r)
    if fp > 0.0:
        d += gamma_p * (1.0 - r) * fp
    if fd > 0.0:
        d -= gamma_d * r * fd
    r = r + k * d
    if stochastic and fp + fd > 0.0:
        r += noise1 * math.sqrt(fp + fd) * normal(gen, spare)
    return r


def advance(w, net, st, pr, s0, s1, blocked, rel=None, present=None):
    """Advance steps ``s0 <= s < s1`` (``advance_kernel``); ``rel``: the transmitter release
    arrays (``core.release``) or None, so that Numba compiles the kernel without release code;
    ``present`` likewise (``core.structure``: None without synapses.structure)."""
    return advance_kernel(w, net, st, pr, s0, s1, blocked, rel, present)


@jit(entry=True)
def advance_kernel(w, net, st, pr, s0, s1, blocked, rel, present):
    n_pre, n_post = w.shape
    model, dt, cursor = net.model, net.dt, net.cursor
    pre_step, pre_idx, pre_now = net.pre_step, net.pre_idx, net.pre_now
    post_step, post_idx, post_now = net.post_step, net.post_idx, net.post_now
    v, g, ref_until, lif, out_step, out_idx = net.v, net.g, net.ref_until, net.lif, net.out_step, net.out_idx
    rho, gen, spare, cur = st.rho, st.rng, st.spare, st.cur
    cp, tp, cq, tq, cmax, cq_now = st.ca_pre, st.t_pre, st.ca_post, st.t_post, st.ca_max, st.ca_now
    ca_a, ca_b = st.ca_a, st.ca_b
    dec, table, tau_ca, c_pre, c_post, delay = pr.dec_ca, pr.dec_table, pr.tau_ca, pr.c_pre, pr.c_post, pr.delay_steps
    frac, e_frac, e_rest, ts = pr.delay_frac, pr.e_frac, pr.e_rest, pr.tau_steps
    rest = 1.0 - frac
    grow = 1.0 / e_frac  # a pre bound kept at s + f, valid at s + 1 after one decay by dec
    theta_d, theta_p, theta_min, theta_skip = pr.theta_d, pr.theta_p, pr.theta_min, pr.theta_skip
    gamma_d, gamma_p, k, rs = pr.gamma_d, pr.gamma_p, pr.k, pr.rho_star
    noise1, stochastic = pr.noise1, pr.stochastic == 1
    w0, w1 = pr.w0, pr.w1
    dw = w1 - w0
    is_lif = model == LIF
    active = blocked[0] == 0
    n_ev = pre_step.shape[0]
    n_syn = n_pre * n_post
    mp, mq = cmax[0], cmax[1]  # upper bounds of max_i c_pre_i and max_j c_post_j at step s - 1
    for s in range(s0, s1):
        if not room_for_post(cursor, post_now, out_step):
            cmax[0], cmax[1] = mp, mq
            readout(w, rho, w0, w1, present)
            return s
        if is_lif:
            npost = lif_step(v, g, ref_until, lif, out_step, out_idx, cursor, post_now, s, dt)
        else:
            npost = post_events(post_step, post_idx, cursor, post_now, s)
        npre = pre_spikes(pre_step, pre_idx, cursor, pre_now, s)
        if rel is not None:  # transmitter release (core.release): the LIF gets w r_n
            for a in range(npre):
                i = pre_now[a]
                for j in range(n_post):
                    w[i, j] = w0 + rho[i * n_post + j] * dw
                    if present is not None:  # structure hook (core/structure.py): absent synapses transmit nothing
                        w[i, j] *= present[i, j]
                release_row(rel, w[i], i, s, 0, n_post)
                if is_lif:
                    amp = rel.amp
                    for j in range(n_post):
                        g[j] += amp[j]
        elif is_lif:
            for a in range(npre):  # the weight (readout of rho now) drives the conductance
                i = pre_now[a]
                for j in range(n_post):
                    w[i, j] = w0 + rho[i * n_post + j] * dw
                    if present is not None:  # structure hook (core/structure.py): absent synapses transmit nothing
                        w[i, j] *= present[i, j]
                    g[j] += w[i, j]
        # calcium of step s: the bounds decay by one step, then this step's jumps
        mp *= dec
        mq *= dec
        if mp < FLUSH:
            mp = 0.0
        if mq < FLUSH:
            mq = 0.0
        e = cur[0]
        while e < n_ev and pre_step[e] + delay < s:
            e += 1
        while e < n_ev and pre_step[e] + delay == s:
            if active:
                i = pre_idx[e]
                if frac == 0.0:  # at the start of step s
                    c = cp[i] * decay(table, s - tp[i], dt, tau_ca) + c_pre
                    cp[i] = c
                    tp[i] = s
                    mp = max(mp, c)
                else:  # at s + f: kept as its value at s + 1, with those at s and s + f
                    if tp[i] <= s:
                        ca_a[i] = cp[i] * decay(table, s - tp[i], dt, tau_ca) if cp[i] != 0.0 else 0.0
                        ca_b[i] = ca_a[i] * e_frac + c_pre
                    else:
                        ca_b[i] += c_pre
                    cp[i] = ca_b[i] * e_rest
                    tp[i] = s + 1
                    mp = max(mp, ca_b[i] * grow)
            e += 1
        cur[0] = e
        if active:
            for b in range(npost):
                j = post_now[b]
                c = cq[j] * decay(table, s - tq[j], dt, tau_ca) + c_post
                cq[j] = c
                tq[j] = s
                mq = max(mq, c)
        # efficacy: one Euler-Maruyama step with the time above each threshold within step s
        if mp + mq > theta_skip:  # some synapse may be above a threshold: exact calcium
            mq = 0.0
            for j in range(n_post):
                c = cq[j] * decay(table, s - tq[j], dt, tau_ca) if cq[j] != 0.0 else 0.0
                cq_now[j] = c
                mq = max(mq, c)
            mp = 0.0
            for i in range(n_pre):
                base = i * n_post
                if tp[i] > s:  # a pre transient arrived at s + f: two pieces of decay
                    a1, a2 = ca_a[i], ca_b[i]
                    mp = max(mp, a2 * grow)
                    if max(a1, a2) + mq > theta_min:
                        for j in range(n_post):
                            q = cq_now[j]
                            c0, c1 = a1 + q, a2 + q * e_frac
                            fp = above(c0, theta_p, frac, e_frac, ts) + above(c1, theta_p, rest, e_rest, ts)
                            fd = above(c0, theta_d, frac, e_frac, ts) + above(c1, theta_d, rest, e_rest, ts)
                            rho[base + j] = euler(rho[base + j], fp, fd, rs, gamma_p, gamma_d, k, stochastic, noise1, gen, spare)
                        continue
                else:
                    ci = cp[i] * decay(table, s - tp[i], dt, tau_ca) if cp[i] != 0.0 else 0.0
                    mp = max(mp, ci)
                    if ci + mq > theta_min:
                        for j in range(n_post):
                            c = ci + cq_now[j]
                            fp = above(c, theta_p, 1.0, dec, ts)
                            fd = above(c, theta_d, 1.0, dec, ts)
                            rho[base + j] = euler(rho[base + j], fp, fd, rs, gamma_p, gamma_d, k, stochastic, noise1, gen, spare)
                        continue
                for j in range(n_post):
                    r = rho[base + j]
                    rho[base + j] = r + k * (-r * (1.0 - r) * (rs - r))
        else:
            for m in range(n_syn):
                r = rho[m]
                rho[m] = r + k * (-r * (1.0 - r) * (rs - r))
    cmax[0], cmax[1] = mp, mq
    readout(w, rho, w0, w1, present)
    return s1
