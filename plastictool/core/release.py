"""Transmitter release: short-term depression and facilitation (Tsodyks & Markram), for every spike rule.

The n-th presynaptic spike of a synapse releases the fraction ``r_n = u_n x_n`` of its
resources, where, with ``d`` the time since the previous spike of that synapse (first spike:
``u_1 = U``, ``x_1 = 1``)::

    u_n = U + (1 - U) u_(n-1) exp(-d / tau_fac)       (u_n = U when tau_fac = 0)
    x_n = 1 - (1 - x_(n-1) + r_(n-1)) exp(-d / tau_rec)

``x`` is the fraction of resources available (recovering with ``tau_rec``), ``u`` the fraction
of them a spike uses (facilitating with ``tau_fac``). The update is exact and event driven:
nothing is integrated between spikes. The postsynaptic effect of the spike is ``w r_n``: a LIF
neuron's conductance jumps by ``w r_n`` instead of ``w``; the rule itself keeps updating ``w``
as without release (it sees the spike as always).

Stochastic quantal release (``sites: N``; Fuhrmann, Segev, Markram & Tsodyks 2002): each of
``N`` release sites holds at most one vesicle. At a spike, every empty site has refilled with
probability ``1 - exp(-d / tau_rec)``, then every filled site releases its vesicle with
probability ``u_n`` (``u`` follows the deterministic recursion); the effect is
``w (released vesicles) / N``. Averaged over many synapses the expected filled fraction obeys the
``x`` recursion exactly, so the mean effect equals the deterministic ``w r_n``. The draws come
from a xoroshiro128+ generator seeded from the protocol's seed (``plastictool.core.rng``), in
spike order, then synapse order.

Expression of the rule's change (``rule.expression``): ``postsynaptic`` (default) transmits
``w r_n`` with the shared ``U``. ``presynaptic`` is the "redistribution of synaptic efficacy"
of Markram & Tsodyks 1996: the rule's ``w`` evolves as always, but the synapse transmits
``w_initial r_n`` with its own utilisation ``U_ij = min(1, U w_ij / w_initial_ij)`` (``w_ij`` at
the spike, before the rule's update; ``U`` where ``w_initial_ij`` is 0; never below 0): a
potentiated synapse releases more at the first spike of a train and depresses faster, so its
steady state at high frequency barely changes.

State (``record.state``): ``u`` and ``x``, per synapse, as the values the next presynaptic
spike would meet at the sampled time (``u_(n+1)`` and ``x_(n+1)`` of the recursion with ``d`` the
time since the last spike; ``U`` and 1 before the first spike). With ``sites``, ``x`` is the
expected filled fraction given the sites filled after the last spike.

Implementation: one state per presynaptic neuron when all its synapses share history and
parameters (postsynaptic expression, no sites), else one per synapse. The spike kernels of
``stdp``, ``triplet``, ``calcium`` and ``receptor`` call :func:`release_row` at each presynaptic
spike, before the rule's update of that row; it writes the transmitted amplitudes into
``Rel.amp`` and the responses of the recorded synapses into the out buffer (responses.csv).
Without ``release`` the kernels get ``None`` and Numba compiles them without this code.

References: Tsodyks & Markram 1997, PNAS 94:719; Tsodyks, Pawelzik & Markram 1998, Neural
Comput 10:821; Markram, Wang & Tsodyks 1998, PNAS 95:5323; Markram & Tsodyks 1996, Nature
382:807; Fuhrmann et al. 2002, J Neurophysiol 87:140. NEST's ``tsodyks2_synapse`` implements the
same recursion.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..rules.base import ONE, TIME, Param, Preset, RuleSpec, StateVar
from .jit import jit
from .rng import uniform

SPEC = RuleSpec(
    kind="release",
    title="transmitter release: short-term depression and facilitation (Tsodyks-Markram), synapses.release",
    citation="Tsodyks & Markram 1997, PNAS 94:719; Markram, Wang & Tsodyks 1998, PNAS 95:5323; "
    "Fuhrmann et al. 2002, J Neurophysiol 87:140; Markram & Tsodyks 1996, Nature 382:807",
    params=(
        Param("model", "choice", "tsodyks_markram", "release model", choices=("tsodyks_markram",)),
        Param("U", ONE, 0.5, "utilisation of a rested synapse (release probability), 0 < U <= 1", lo=0.0, hi=1.0, lo_open=True),
        Param("tau_rec", TIME, 800.0, "recovery of the resources x", lo=0.0, lo_open=True),
        Param("tau_fac", TIME, 0.0, "decay of the facilitation u; 0 = no facilitation (u = U at every spike)", lo=0.0),
        Param("sites", "int", None, "whole number: stochastic quantal release from that many sites (null: deterministic)", lo=1.0),
    ),
    state=(
        StateVar("u", "syn", "utilisation the next presynaptic spike would use"),
        StateVar("x", "syn", "fraction of resources (filled sites) the next presynaptic spike would find"),
    ),
    presets={
        "tsodyks1997_depressing": Preset(
            {"U": 0.5, "tau_rec": 800.0, "tau_fac": 0.0},
            "Tsodyks & Markram 1997, PNAS 94:719 (depressing pyramid-pyramid synapse; "
            "Tsodyks, Pawelzik & Markram 1998, Neural Comput 10:821; NEST tsodyks2_synapse defaults)",
        ),
        "markram1998_facilitating": Preset(
            {"U": 0.03, "tau_rec": 130.0, "tau_fac": 530.0},
            "Markram, Wang & Tsodyks 1998, PNAS 95:5323 (facilitating pyramid-interneuron synapse)",
        ),
    },
    neurons=("clamped", "lif"),
)

RULES = ("stdp", "triplet", "calcium", "receptor")  # the spike rules whose kernels call release_row
MAX_RESPONSES_DEFAULT = 1_000_000  # record.responses defaults to true up to this many rows


class Rel(NamedTuple):
    """Release parameters and state as plain arrays (what the kernels see)."""

    par: np.ndarray  # float64[4]: U, tau_rec, tau_fac, dt
    mode: np.ndarray  # int64[4]: per synapse (0/1), sites (0: deterministic), presynaptic (0/1), n_post
    u: np.ndarray  # float64[units]: u_n of the last spike
    x: np.ndarray  # float64[units]: x_n of the last spike (sites: filled fraction before it released)
    r: np.ndarray  # float64[units]: r_n of the last spike (sites: released fraction)
    t: np.ndarray  # int64[units]: step of the last spike, -1 before the first
    nf: np.ndarray  # int64[units]: sites filled after the last spike (sites only; else size 1)
    w0: np.ndarray  # float64[n_pre, n_post]: initial weights (presynaptic expression; else 1 x 1)
    amp: np.ndarray  # float64[n_post] scratch: amplitudes of the current spike
    rng: np.ndarray  # uint64[2]: xoroshiro128+ state (sites)
    rec_ptr: np.ndarray  # int64[n_pre + 1]: recorded synapses of pre neuron i are rec_j[rec_ptr[i]:rec_ptr[i+1]]
    rec_j: np.ndarray  # int64: their post neurons, ascending
    out_step: np.ndarray  # int64[cap]: responses: step ...
    out_i: np.ndarray  # ... pre, post, amplitude
    out_j: np.ndarray
    out_amp: np.ndarray
    out_n: np.ndarray  # int64[1]: responses written


def per_synapse(sites, presynaptic: bool) -> bool:
    return bool(sites) or presynaptic


def build(release, presynaptic: bool, n_pre: int, n_post: int, dt: float, w_initial, recorded, pre_idx, rng) -> Rel:
    """``Rel`` for a protocol's ``synapses.release`` (a :class:`plastictool.protocol.schema.Release`).

    ``recorded``: the [pre, post] pairs whose responses are recorded; ``pre_idx``: the neuron of
    every presynaptic spike of the run (sizes the out buffer exactly); ``rng``: a
    ``numpy.random.Generator`` derived from the protocol's seed."""
    from .rng import new_generator

    sites = int(release.sites or 0)
    per_syn = per_synapse(sites, presynaptic)
    units = n_pre * n_post if per_syn else n_pre
    pairs = sorted(set((int(i), int(j)) for i, j in recorded))
    counts = np.bincount(np.asarray(pre_idx, dtype=np.int64), minlength=n_pre) if len(pre_idx) else np.zeros(n_pre, np.int64)
    rec_ptr = np.zeros(n_pre + 1, dtype=np.int64)
    for i, _ in pairs:
        rec_ptr[i + 1] += 1
    rec_ptr = np.cumsum(rec_ptr)
    rec_j = np.array([j for _, j in pairs], dtype=np.int64)
    cap = int(sum(int(counts[i]) for i, _ in pairs))
    gen, _ = new_generator(rng)
    return Rel(
        par=np.array([float(release.U), float(release.tau_rec), float(release.tau_fac), float(dt)]),
        mode=np.array([int(per_syn), sites, int(presynaptic), n_post], dtype=np.int64),
        u=np.zeros(units),
        x=np.ones(units),
        r=np.zeros(units),
        t=np.full(units, -1, dtype=np.int64),
        nf=np.full(units if sites else 1, sites, dtype=np.int64),
        w0=np.ascontiguousarray(w_initial, dtype=np.float64).copy() if presynaptic else np.ones((1, 1)),
        amp=np.zeros(n_post),
        rng=gen,
        rec_ptr=rec_ptr,
        rec_j=rec_j,
        out_step=np.zeros(cap, dtype=np.int64),
        out_i=np.zeros(cap, dtype=np.int64),
        out_j=np.zeros(cap, dtype=np.int64),
        out_amp=np.zeros(cap),
        out_n=np.zeros(1, dtype=np.int64),
    )


def responses(rel: Rel, dt: float):
    """The recorded responses: ``(t_ms, pre, post, amplitude)`` arrays in time, pre, post order."""
    n = int(rel.out_n[0])
    return rel.out_step[:n] * dt, rel.out_i[:n].copy(), rel.out_j[:n].copy(), rel.out_amp[:n].copy()


def utilisation(U: float, presynaptic: bool, w_initial, w):
    """``U_ij`` of every synapse for weights ``w``: ``min(1, U w / w_initial)`` with presynaptic
    expression (``U`` where ``w_initial`` is 0, never below 0), else ``U``."""
    w = np.asarray(w, dtype=np.float64)
    if not presynaptic:
        return np.full(w.shape, float(U))
    w0 = np.asarray(w_initial, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(w0 != 0.0, U * w / np.where(w0 != 0.0, w0, 1.0), U)
    return np.clip(q, 0.0, 1.0)


def probe(rel: Rel, name: str, step: int, w=None) -> np.ndarray:
    """``u`` or ``x`` of every synapse, shape (n_pre, n_post): what a spike at ``step`` would meet."""
    U, tau_rec, tau_fac, dt = (float(v) for v in rel.par)
    per_syn, sites, presyn, n_post = (int(v) for v in rel.mode)
    units = rel.u.shape[0]
    n_pre = units // n_post if per_syn else units
    first = rel.t < 0
    d = np.where(first, 0.0, (step - rel.t) * dt)
    if name == "u":
        if presyn and w is not None:
            Uu = utilisation(U, True, rel.w0, w).reshape(-1)
        else:
            Uu = np.full(units, U)
        fac = np.exp(-d / tau_fac) if tau_fac > 0 else np.zeros(units)
        val = np.where(first, Uu, Uu + (1.0 - Uu) * rel.u * fac)
    elif name == "x":
        rem = (1.0 - rel.nf / sites) if sites else (1.0 - rel.x + rel.r)
        val = np.where(first, 1.0, 1.0 - rem * np.exp(-d / tau_rec))
    else:
        raise KeyError(name)
    if per_syn:
        return val.reshape(n_pre, n_post)
    return np.broadcast_to(val[:, None], (n_pre, n_post))


def record_state(rel: Rel, name: str, w):
    """For the kernels' own recording (``core.record.state_reads``): ``u`` or ``x`` as the arrays
    read at each sample and :func:`probe`'s arithmetic over the samples (the same values, bit
    for bit). With presynaptic expression ``u`` reads the weights too (``w.reshape(-1)``: the
    kernels read them in place, whatever their type)."""
    U, tau_rec, tau_fac, dt = (float(v) for v in rel.par)
    per_syn, sites, presyn, n_post = (int(v) for v in rel.mode)
    kind = "syn" if per_syn else "pre"
    if name == "u":
        reads = ((rel.u, rel.t, kind, 1, 0),)
        if presyn:
            reads += ((rel.w0.reshape(-1), None, "syn", 1, 0), (w.reshape(-1), None, "syn", 1, 0))

        def u(F, T, steps, dt_):
            first = T[0] < 0
            d = np.where(first, 0.0, (steps - T[0]) * dt)
            Uu = utilisation(U, True, F[1], F[2]) if presyn else np.full(first.shape, U)
            fac = np.exp(-d / tau_fac) if tau_fac > 0 else np.zeros(first.shape)
            return np.where(first, Uu, Uu + (1.0 - Uu) * F[0] * fac)

        return reads, u
    if name == "x":
        reads = ((rel.x, rel.t, kind, 1, 0), (rel.r, rel.nf if sites else None, kind, 1, 0))

        def x(F, T, steps, dt_):
            first = T[0] < 0
            d = np.where(first, 0.0, (steps - T[0]) * dt)
            rem = (1.0 - T[1] / sites) if sites else (1.0 - F[0] + F[1])
            return np.where(first, 1.0, 1.0 - rem * np.exp(-d / tau_rec))

        return reads, x
    return None


@jit(inline=True)
def advance_unit(u, x, r, t, k, s, U, tau_rec, tau_fac, dt):
    """The recursion for unit ``k`` (a pre neuron or a synapse) at a spike at step ``s``; r_n."""
    tk = t[k]
    if tk < 0:
        un = U
        xn = 1.0
    else:
        d = (s - tk) * dt
        un = U + (1.0 - U) * u[k] * math.exp(-d / tau_fac) if tau_fac > 0.0 else U
        xn = 1.0 - (1.0 - x[k] + r[k]) * math.exp(-d / tau_rec)
    rn = un * xn
    u[k] = un
    x[k] = xn
    r[k] = rn
    t[k] = s
    return rn


@jit(inline=True)
def advance_sites(u, x, r, t, nf, rng, k, s, U, tau_rec, tau_fac, dt, sites):
    """Quantal release from ``sites`` sites for synapse ``k``; the released fraction."""
    tk = t[k]
    filled = nf[k]
    if tk < 0:
        un = U
    else:
        d = (s - tk) * dt
        un = U + (1.0 - U) * u[k] * math.exp(-d / tau_fac) if tau_fac > 0.0 else U
        p_fill = 1.0 - math.exp(-d / tau_rec)
        for _ in range(sites - filled):  # each empty site has refilled with probability p_fill
            if uniform(rng) < p_fill:
                filled += 1
    released = 0
    for _ in range(filled):  # each filled site releases with probability u_n
        if uniform(rng) < un:
            released += 1
    nf[k] = filled - released
    u[k] = un
    x[k] = filled / sites
    r[k] = released / sites
    t[k] = s
    return released / sites


@jit
def release_row(rel, row, i, s, j0, j1):
    """A presynaptic spike of ``i`` at step ``s``, before the rule updates ``row`` (= w[i]):
    advances the release state of its synapses ``j0 <= j < j1``, writes their transmitted
    amplitudes into ``rel.amp[j]`` (``w_ij r_n``, or ``w_initial_ij r_n`` with presynaptic
    expression) and appends the recorded synapses' responses to the out buffer."""
    par, mode, amp = rel.par, rel.mode, rel.amp
    U, tau_rec, tau_fac, dt = par[0], par[1], par[2], par[3]
    per_syn, sites, presyn, n_post = mode[0], mode[1], mode[2], mode[3]
    u, x, r, t = rel.u, rel.x, rel.r, rel.t
    if per_syn == 0:
        rn = advance_unit(u, x, r, t, i, s, U, tau_rec, tau_fac, dt)
        for j in range(j0, j1):
            amp[j] = row[j] * rn
    else:
        w0, nf, rng = rel.w0, rel.nf, rel.rng
        for j in range(j0, j1):
            k = i * n_post + j
            if presyn == 1:
                base = w0[i, j]
                uij = U
                if base != 0.0:
                    uij = min(1.0, max(0.0, U * row[j] / base))
            else:
                base = row[j]
                uij = U
            if sites > 0:
                rn = advance_sites(u, x, r, t, nf, rng, k, s, uij, tau_rec, tau_fac, dt, sites)
            else:
                rn = advance_unit(u, x, r, t, k, s, uij, tau_rec, tau_fac, dt)
            amp[j] = base * rn
    rec_ptr, rec_j = rel.rec_ptr, rel.rec_j
    out_n = rel.out_n
    cap = rel.out_step.shape[0]
    for m in range(rec_ptr[i], rec_ptr[i + 1]):
        j = rec_j[m]
        o = out_n[0]
        if j0 <= j and j < j1 and o < cap:
            rel.out_step[o] = s
            rel.out_i[o] = i
            rel.out_j[o] = j
            rel.out_amp[o] = amp[j]
            out_n[0] = o + 1
