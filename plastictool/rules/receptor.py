"""Mechanistic LTP/LTD: AMPA receptors (GluA2) bound in the PSD, driven by PI3K-Akt-mTOR.

DRAFT: equations below; the docstring is completed with the calibrated defaults.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..core.jit import jit
from ..core.net import LIF, next_event_step, post_spikes, pre_spikes, room_for_post
from .base import ONE, RATE, TIME, Param, RuleSpec, StateVar

# indices into the ``blocked`` flags (SPEC.blockable order)
NMDA, PI3K, AKT, MTOR, SYNTHESIS, EXOCYTOSIS, ENDOCYTOSIS, PHOSPHATASE = range(8)

MIN = 60e3  # ms
HOUR = 3600e3

SPEC = RuleSpec(
    kind="receptor",
    title="AMPA receptor trafficking: PI3K-Akt-mTOR, GluA2 synthesis, exo/endocytosis, PSD slots",
    citation="composite model, see `plastic rules receptor` (Man et al. 2003; Sanna et al. 2002; "
    "Tang et al. 2002; Earnshaw & Bressloff 2006; Graupner & Brunel 2012)",
    params=(
        # calcium
        Param("tau_ca", TIME, 20.0, "decay of spine calcium", lo=0.0, lo_open=True),
        Param("c_pre", ONE, 1.0, "calcium per presynaptic spike at rest (NMDA at resting potential)", lo=0.0),
        Param("c_post", ONE, 1.0, "calcium per postsynaptic spike (back-propagating action potential)", lo=0.0),
        Param("nmda_gain", ONE, 3.0, "largest supralinear NMDA boost of c_pre", lo=0.0),
        Param("tau_nmda", TIME, 100.0, "decay of the depolarisation trace that relieves the Mg block", lo=0.0, lo_open=True),
        Param("nmda_half", ONE, 1.0, "depolarisation trace at half the boost", lo=0.0, lo_open=True),
        # PI3K
        Param("k_pi3k", RATE, 3.0, "activation rate of PI3K at saturating calcium", lo=0.0),
        Param("ca_pi3k", ONE, 3.0, "calcium at half-activation of PI3K", lo=0.0, lo_open=True),
        Param("n_pi3k", ONE, 4.0, "Hill exponent of PI3K activation by calcium", lo=0.0, lo_open=True),
        Param("tau_pi3k", TIME, 20 * MIN, "decay of PI3K/PIP3 activity", lo=0.0, lo_open=True),
        # Akt
        Param("k_akt", RATE, 1 / 60.0, "activation rate of Akt at saturating PI3K", lo=0.0),
        Param("pi3k_akt", ONE, 0.5, "PI3K activity at half-activation of Akt", lo=0.0, lo_open=True),
        Param("n_akt", ONE, 4.0, "Hill exponent of Akt activation by PI3K", lo=0.0, lo_open=True),
        Param("tau_akt", TIME, 20 * MIN, "decay of Akt activity", lo=0.0, lo_open=True),
        # mTOR
        Param("k_mtor", RATE, 1 / 300.0, "activation rate of mTOR at saturating Akt", lo=0.0),
        Param("akt_mtor", ONE, 0.5, "Akt activity at half-activation of mTOR", lo=0.0, lo_open=True),
        Param("n_mtor", ONE, 4.0, "Hill exponent of mTOR activation by Akt", lo=0.0, lo_open=True),
        Param("tau_mtor", TIME, 30 * MIN, "decay of mTOR activity", lo=0.0, lo_open=True),
        # phosphatase
        Param("k_pp", RATE, 0.1, "activation rate of the phosphatase (calcineurin/PP1) at saturating calcium", lo=0.0),
        Param("ca_pp", ONE, 1.0, "calcium at half-activation of the phosphatase", lo=0.0, lo_open=True),
        Param("n_pp", ONE, 1.0, "Hill exponent of phosphatase activation by calcium", lo=0.0, lo_open=True),
        Param("tau_pp", TIME, 5 * MIN, "decay of phosphatase activity", lo=0.0, lo_open=True),
        # receptors
        Param("synthesis", RATE, 0.118 / 60.0, "basal GluA2 synthesis into the pool (receptors per second)", lo=0.0),
        Param("syn_gain", ONE, 5.0, "mTOR-driven increase of synthesis (factor 1 + syn_gain * mtor)", lo=0.0),
        Param("tau_deg", TIME, 847 * MIN, "degradation time of pool receptors", lo=0.0, lo_open=True),
        Param("tau_exo", TIME, 20 * MIN, "basal exocytosis time of pool receptors", lo=0.0, lo_open=True),
        Param("exo_gain", ONE, 20.0, "PI3K-driven speed-up of exocytosis (1 + exo_gain * pi3k)", lo=0.0),
        Param("tau_endo", TIME, 4 * MIN, "basal endocytosis time of free surface receptors", lo=0.0, lo_open=True),
        Param("endo_gain", ONE, 5.0, "phosphatase-driven speed-up of endocytosis (1 + endo_gain * E(pp))", lo=0.0),
        Param("kd", ONE, 20.0, "dissociation constant of receptor-slot binding (free receptors)", lo=0.0, lo_open=True),
        Param("tau_off", TIME, 1 * MIN, "lifetime of a receptor bound to a slot", lo=0.0, lo_open=True),
        # slots
        Param("slots_rest", ONE, 100.0, "scaffold slots (PSD-95/Homer) at rest", lo=0.0, lo_open=True),
        Param("tau_slots", TIME, 10 * 60 * MIN, "relaxation of slots to slots_rest", lo=0.0, lo_open=True),
        Param("slot_growth", RATE, 0.5 / 3600.0, "mTOR-driven slot synthesis (fraction of slots_rest per second)", lo=0.0),
        Param("slot_removal", RATE, 0.5 / 3600.0, "phosphatase-driven slot removal (fraction per second at E(pp) = 1)", lo=0.0),
        Param("pp_half", ONE, 0.3, "phosphatase activity at half its effect E(pp) on endocytosis and slots", lo=0.0, lo_open=True),
        Param("n_pp_effect", ONE, 4.0, "Hill exponent of the phosphatase effect E(pp)", lo=0.0, lo_open=True),
        # numerics
        Param("substep", TIME, 1000.0, "longest internal step of the slow variables", lo=0.0, lo_open=True),
    ),
    state=(
        StateVar("ca", "syn", "spine calcium (dimensionless)"),
        StateVar("pi3k", "syn", "PI3K/PIP3 activity (0..1)"),
        StateVar("akt", "syn", "Akt activity (0..1)"),
        StateVar("mtor", "syn", "mTOR activity (0..1)"),
        StateVar("pool", "syn", "intracellular GluA2 pool (receptors)"),
        StateVar("free", "syn", "free surface receptors (receptors)"),
        StateVar("bound", "syn", "receptors bound to PSD slots (receptors); w = w_init * bound / bound_rest"),
        StateVar("slots", "syn", "PSD scaffold slots (PSD-95/Homer)"),
        StateVar("pp", "syn", "phosphatase (calcineurin/PP1) activity (0..1)"),
    ),
    blockable=("NMDA", "PI3K", "Akt", "mTOR", "synthesis", "exocytosis", "endocytosis", "phosphatase"),
    neurons=("clamped", "lif"),
    weight_from_state=True,
)

_RATES = ("k_pi3k", "k_akt", "k_mtor", "k_pp", "synthesis", "slot_growth", "slot_removal")


class Params(NamedTuple):
    dt: float
    tau_ca: float
    c_pre: float
    c_post: float
    nmda_gain: float
    tau_nmda: float
    nmda_half: float
    k_pi3k: float  # per ms
    ca_pi3k: float
    n_pi3k: float
    tau_pi3k: float
    k_akt: float
    pi3k_akt: float
    n_akt: float
    tau_akt: float
    k_mtor: float
    akt_mtor: float
    n_mtor: float
    tau_mtor: float
    k_pp: float
    ca_pp: float
    n_pp: float
    tau_pp: float
    syn0: float  # receptors per ms
    syn_gain: float
    k_deg: float  # per ms
    k_exo: float
    exo_gain: float
    k_endo: float
    endo_gain: float
    kd: float
    k_off: float
    k_on: float
    slots_rest: float
    k_slots: float
    slot_growth: float
    slot_removal: float
    pp_half: float
    n_pp_effect: float
    h_max: float
    pool_rest: float
    free_rest: float
    bound_rest: float
    w0: np.ndarray  # (n_pre, n_post) w_init


class State(NamedTuple):
    ca: np.ndarray  # (n_pre, n_post), value at step t
    pi3k: np.ndarray
    akt: np.ndarray
    mtor: np.ndarray
    pool: np.ndarray
    free: np.ndarray
    bound: np.ndarray
    slots: np.ndarray
    pp: np.ndarray
    t: np.ndarray  # int64 (n_pre, n_post): step the synapse was brought to
    u: np.ndarray  # (n_pre,) depolarisation trace right after the last pre spike
    t_u: np.ndarray  # int64 (n_pre,)


def resting_state(values):
    """The steady state without calcium: (pool, free, bound, slots); signals are zero."""
    syn0 = values["synthesis"] * 1e-3
    k_deg = 1.0 / values["tau_deg"]
    pool = syn0 / k_deg
    free = pool * values["tau_endo"] / values["tau_exo"]
    slots = float(values["slots_rest"])
    bound = slots * free / (free + values["kd"])
    return pool, free, bound, slots


def build(values, ctx):
    v = {p.name: (values[p.name] if p.name in values else p.default) for p in SPEC.params}
    pool, free, bound, slots = resting_state(v)
    k_off = 1.0 / v["tau_off"]
    pr = Params(
        dt=float(ctx.dt),
        tau_ca=float(v["tau_ca"]),
        c_pre=float(v["c_pre"]),
        c_post=float(v["c_post"]),
        nmda_gain=float(v["nmda_gain"]),
        tau_nmda=float(v["tau_nmda"]),
        nmda_half=float(v["nmda_half"]),
        k_pi3k=v["k_pi3k"] * 1e-3,
        ca_pi3k=float(v["ca_pi3k"]),
        n_pi3k=float(v["n_pi3k"]),
        tau_pi3k=float(v["tau_pi3k"]),
        k_akt=v["k_akt"] * 1e-3,
        pi3k_akt=float(v["pi3k_akt"]),
        n_akt=float(v["n_akt"]),
        tau_akt=float(v["tau_akt"]),
        k_mtor=v["k_mtor"] * 1e-3,
        akt_mtor=float(v["akt_mtor"]),
        n_mtor=float(v["n_mtor"]),
        tau_mtor=float(v["tau_mtor"]),
        k_pp=v["k_pp"] * 1e-3,
        ca_pp=float(v["ca_pp"]),
        n_pp=float(v["n_pp"]),
        tau_pp=float(v["tau_pp"]),
        syn0=v["synthesis"] * 1e-3,
        syn_gain=float(v["syn_gain"]),
        k_deg=1.0 / v["tau_deg"],
        k_exo=1.0 / v["tau_exo"],
        exo_gain=float(v["exo_gain"]),
        k_endo=1.0 / v["tau_endo"],
        endo_gain=float(v["endo_gain"]),
        kd=float(v["kd"]),
        k_off=k_off,
        k_on=k_off / v["kd"],
        slots_rest=float(v["slots_rest"]),
        k_slots=1.0 / v["tau_slots"],
        slot_growth=v["slot_growth"] * 1e-3,
        slot_removal=v["slot_removal"] * 1e-3,
        pp_half=float(v["pp_half"]),
        n_pp_effect=float(v["n_pp_effect"]),
        h_max=float(v["substep"]),
        pool_rest=pool,
        free_rest=free,
        bound_rest=bound,
        w0=np.array(ctx.w, dtype=np.float64, copy=True),
    )
    shape = (ctx.n_pre, ctx.n_post)
    st = State(
        ca=np.zeros(shape),
        pi3k=np.zeros(shape),
        akt=np.zeros(shape),
        mtor=np.zeros(shape),
        pool=np.full(shape, pool),
        free=np.full(shape, free),
        bound=np.full(shape, bound),
        slots=np.full(shape, slots),
        pp=np.zeros(shape),
        t=np.zeros(shape, dtype=np.int64),
        u=np.zeros(ctx.n_pre),
        t_u=np.zeros(ctx.n_pre, dtype=np.int64),
    )
    return pr, st


def probe(st, pr, name, step):
    if name == "ca":
        return st.ca * np.exp(-(step - st.t) * pr.dt / pr.tau_ca)
    return getattr(st, name).copy()


# ---------------------------------------------------------------------------------------------
# kernels


@jit
def hill(x, k, n):
    if x <= 0.0:
        return 0.0
    a = (x / k) ** n
    return a / (1.0 + a)


@jit
def hill_integral(c0, c1, k, n, tau):
    """Integral of hill(c(t), k, n) while c decays exponentially (tau) from c0 to c1."""
    if c0 <= 0.0:
        return 0.0
    a0 = (c0 / k) ** n
    a1 = (c1 / k) ** n
    return tau / n * math.log1p((a0 - a1) / (1.0 + a1))


@jit
def relax(x0, a, tau, h):
    """dx/dt = a (1 - x) - x / tau over h with constant a: (x(h), mean of x over h)."""
    lam = a + 1.0 / tau
    xi = a / lam
    z = lam * h
    x1 = xi + (x0 - xi) * math.exp(-z)
    if z > 1e-12:
        mean = xi + (x0 - xi) * (-math.expm1(-z)) / z
    else:
        mean = x0
    return x1, mean


@jit
def langmuir(f, b, s, k_on, k_off, h):
    """Exact solution of db/dt = k_on f (s - b) - k_off b with f + b conserved, over h."""
    tot = f + b
    if k_on <= 0.0:
        b1 = b * math.exp(-k_off * h)
        return tot - b1, b1
    kd = k_off / k_on
    d = tot - s
    disc = d * d + 2.0 * kd * (tot + s) + kd * kd
    sq = math.sqrt(disc)
    r = 2.0 * tot * s / (tot + s + kd + sq)  # the stable root (<= min(tot, s))
    y0 = b - r
    e = math.exp(-k_on * sq * h)
    y = y0 * sq * e / (sq - y0 * (1.0 - e))
    b1 = r + y
    if b1 < 0.0:
        b1 = 0.0
    if b1 > tot:
        b1 = tot
    return tot - b1, b1


@jit
def pool_step(p, f, sg, k_deg, e, n, h):
    """Synthesis/degradation of the pool, then exchange pool <-> surface, each exact, over h."""
    if k_deg > 0.0:
        ps = sg / k_deg
        p = ps + (p - ps) * math.exp(-k_deg * h)
    else:
        p = p + sg * h
    lam = e + n
    if lam > 0.0:
        tot = p + f
        peq = n * tot / lam
        p = peq + (p - peq) * math.exp(-lam * h)
        f = tot - p
    return p, f


@jit
def bring(st, pr, i, j, s, blocked):
    """Integrate synapse (i, j) from its step st.t[i, j] to step s."""
    t0 = st.t[i, j]
    if s <= t0:
        return
    span = (s - t0) * pr.dt
    npieces = int(math.ceil(span / pr.h_max - 1e-9))
    if npieces < 1:
        npieces = 1
    h = span / npieces
    dec_ca = math.exp(-h / pr.tau_ca)
    c = st.ca[i, j]
    x_p = st.pi3k[i, j]
    x_a = st.akt[i, j]
    x_m = st.mtor[i, j]
    x_n = st.pp[i, j]
    p = st.pool[i, j]
    f = st.free[i, j]
    b = st.bound[i, j]
    sl = st.slots[i, j]
    b_p = blocked[PI3K] != 0
    b_a = blocked[AKT] != 0
    b_m = blocked[MTOR] != 0
    b_syn = blocked[SYNTHESIS] != 0
    b_exo = blocked[EXOCYTOSIS] != 0
    b_endo = blocked[ENDOCYTOSIS] != 0
    b_n = blocked[PHOSPHATASE] != 0
    for _ in range(npieces):
        c1 = c * dec_ca
        # signals: fast activation by their input, slow decay
        if b_p:
            x_p = 0.0
            m_p = 0.0
        else:
            a = pr.k_pi3k * hill_integral(c, c1, pr.ca_pi3k, pr.n_pi3k, pr.tau_ca) / h
            x_p, m_p = relax(x_p, a, pr.tau_pi3k, h)
        if b_n:
            x_n = 0.0
            m_n = 0.0
        else:
            a = pr.k_pp * hill_integral(c, c1, pr.ca_pp, pr.n_pp, pr.tau_ca) / h
            x_n, m_n = relax(x_n, a, pr.tau_pp, h)
        if b_a:
            x_a = 0.0
            m_a = 0.0
        else:
            x_a, m_a = relax(x_a, pr.k_akt * hill(m_p, pr.pi3k_akt, pr.n_akt), pr.tau_akt, h)
        if b_m:
            x_m = 0.0
            m_m = 0.0
        else:
            x_m, m_m = relax(x_m, pr.k_mtor * hill(m_a, pr.akt_mtor, pr.n_mtor), pr.tau_mtor, h)
        c = c1
        # slots: relaxation to slots_rest, mTOR-driven synthesis, phosphatase-driven removal
        grow = pr.k_slots * pr.slots_rest
        if not b_syn:
            grow += pr.slot_growth * pr.slots_rest * m_m
        eff = hill(m_n, pr.pp_half, pr.n_pp_effect)
        loss = pr.k_slots + pr.slot_removal * eff
        s_inf = grow / loss
        z = loss * h
        s_mean = s_inf + (sl - s_inf) * (-math.expm1(-z)) / z
        sl = s_inf + (sl - s_inf) * math.exp(-z)
        # receptors (Strang splitting of exact sub-flows)
        sg = 0.0 if b_syn else pr.syn0 * (1.0 + pr.syn_gain * m_m)
        e = 0.0 if b_exo else pr.k_exo * (1.0 + pr.exo_gain * m_p)
        n = 0.0 if b_endo else pr.k_endo * (1.0 + pr.endo_gain * eff)
        p, f = pool_step(p, f, sg, pr.k_deg, e, n, 0.5 * h)
        f, b = langmuir(f, b, s_mean, pr.k_on, pr.k_off, h)
        p, f = pool_step(p, f, sg, pr.k_deg, e, n, 0.5 * h)
    st.ca[i, j] = c
    st.pi3k[i, j] = x_p
    st.akt[i, j] = x_a
    st.mtor[i, j] = x_m
    st.pp[i, j] = x_n
    st.pool[i, j] = p
    st.free[i, j] = f
    st.bound[i, j] = b
    st.slots[i, j] = sl
    st.t[i, j] = s


@jit
def sync(w, st, pr, s, blocked):
    n_pre, n_post = w.shape
    for i in range(n_pre):
        for j in range(n_post):
            bring(st, pr, i, j, s, blocked)
            w[i, j] = pr.w0[i, j] * st.bound[i, j] / pr.bound_rest


@jit
def advance(w, net, st, pr, s0, s1, blocked):
    n_pre, n_post = w.shape
    lif = net.model == LIF
    ca_on = blocked[NMDA] == 0
    s = s0
    while s < s1:
        if not lif:  # clamped neurons: jump to the next event
            s = next_event_step(net, s)
            if s >= s1:
                break
        if not room_for_post(net):
            sync(w, st, pr, s, blocked)
            return s
        npost = post_spikes(net, s)
        npre = pre_spikes(net, s)
        for a in range(npre):  # pre spike: NMDA-like calcium into every synapse of the row
            i = net.pre_now[a]
            u = st.u[i] * math.exp(-(s - st.t_u[i]) * pr.dt / pr.tau_nmda)
            dc = pr.c_pre * (1.0 + pr.nmda_gain * u / (u + pr.nmda_half)) if ca_on else 0.0
            for j in range(n_post):
                bring(st, pr, i, j, s, blocked)
                w[i, j] = pr.w0[i, j] * st.bound[i, j] / pr.bound_rest
                if lif:
                    net.g[j] += w[i, j]
                st.ca[i, j] += dc
            st.u[i] = u + 1.0
            st.t_u[i] = s
        for b in range(npost):  # post spike: back-propagating calcium into the column
            j = net.post_now[b]
            for i in range(n_pre):
                bring(st, pr, i, j, s, blocked)
                w[i, j] = pr.w0[i, j] * st.bound[i, j] / pr.bound_rest
                if ca_on:
                    st.ca[i, j] += pr.c_post
        s += 1
    if s > s1:
        s = s1
    sync(w, st, pr, s1, blocked)
    return s1
