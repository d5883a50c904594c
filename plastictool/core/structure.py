"""Synapse number: structural plasticity (``synapses.structure``, spec section 12).

The ``n_pre x n_post`` matrix is the set of *potential* synapses; ``present`` (uint8, same
shape) says which exist. This module is the whole mechanism, for every rule:

- :func:`transmit` is the one kernel helper the spike rules call (through a small hook where a
  presynaptic spike adds its row to the LIF conductance): absent synapses transmit nothing. The
  rules take ``present`` as their last argument; it is None without ``structure`` and the hooks
  test ``present is None``, so Numba compiles them away (``core.net.lif_arg``'s pattern): runs
  without ``structure`` compile the code they compiled before.
- :class:`StructureRun` draws the initial ``present`` from the seed, and at each chunk boundary
  (the engine ends chunks at recording samples and phase boundaries: at least once per
  ``record.interval``, at most once per step) makes the Poisson events of the interval
  ``dt_s`` since the last boundary:

  formation of each absent synapse with probability ``1 - exp(-formation_rate dt_s)``;
  elimination of each present synapse with probability ``1 - exp(-h(w) dt_s)``,
  ``h(w) = elimination_rate exp(-w / w_ref)`` (``w_ref`` null: ``h = elimination_rate``).

  The draws cost O(events), not O(synapses): the number of formations is one binomial draw
  over the absent synapses, and they are picked uniformly among them by rejection (uniform
  indices, kept when absent and new); eliminations are thinned from the largest hazard
  ``h_max = elimination_rate exp(-w_lo / w_ref)`` over the present weights (``w_lo`` the lower
  bound ``w_min``, or the smallest weight where the rule computes its weights): a binomial number
  of candidates, picked uniformly among the present synapses, each kept with probability
  ``(1 - exp(-h(w) dt_s)) / (1 - exp(-h_max dt_s))``. Every synapse is thus a candidate
  independently with the largest probability and eliminated with its own. Where a pick would
  need more uniform draws than an eighth of the matrix (dense events), the candidates are
  enumerated instead (``flatnonzero``) and drawn without replacement.

- Absent synapses hold weight 0 in ``w`` at every chunk boundary (what the recorder, the
  summary and the stats see). Rules whose weights are a readout of per-synapse state fix
  this themselves (``calcium``: the readout hook; ``receptor``: the synapse's scale ``w0`` is 0);
  the others may let an absent entry drift within a chunk (it neither transmits nor is read),
  and it is set back to 0 here.
- A new synapse starts at ``w_new`` with fresh rule state: a rule module with per-synapse state
  defines ``structure_changed(pr, st, w, formed, eliminated, w_new, step)`` (``calcium``:
  ``rho`` from ``w_new``; ``receptor``: a new spine at rest scaled to ``w_new``); the pair and
  triplet rules have per-neuron traces only, and the rate rules no synapse state.

The random draws come from their own stream of the condition's seed (``engine.build``), so
reruns are byte-identical and ``--jobs``/``--shard`` give the files of one run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .jit import jit

FORMED, ELIMINATED = 0, 1
EVENT_LABELS = ("formed", "eliminated")
PRESENT_CELLS = 1 << 20  # uniform draws of the initial present matrix at once (bounded temporaries)


@jit(inline=True)
def transmit(g, row, present_row):
    """``g[k] += row[k]`` for the present synapses of a row (absent ones add 0). Bit for bit
    the same sums as without ``structure`` where every synapse is present."""
    for k in range(g.shape[0]):
        g[k] += row[k] * present_row[k]


@dataclass
class StructureResult:
    """What a run's structure gives the output files."""

    present_initial: np.ndarray  # uint8, n_pre x n_post
    present_final: np.ndarray  # uint8
    ev_step: np.ndarray  # int64: the step of each event
    ev_syn: np.ndarray  # int64: flat synapse index i * n_post + j
    ev_kind: np.ndarray  # int8: FORMED or ELIMINATED

    @property
    def n_events(self) -> int:
        return int(self.ev_step.size)


def initial_present(cfg, shape, rng: np.random.Generator) -> np.ndarray:
    """The present matrix at the start: the given 0/1 matrix, or each synapse present with
    probability ``present`` (row-major draws, in blocks of rows)."""
    if isinstance(cfg.present, tuple):
        return np.array(cfg.present, dtype=np.uint8).reshape(shape)
    out = np.empty(shape, dtype=np.uint8)
    frac = float(cfg.present)
    if frac >= 1.0:
        out[...] = 1
        return out
    if frac <= 0.0:
        out[...] = 0
        return out
    rows = max(1, PRESENT_CELLS // max(1, shape[1]))  # (the stream is the same for any block size)
    for a in range(0, shape[0], rows):
        b = min(shape[0], a + rows)
        out[a:b] = rng.random((b - a, shape[1])) < frac
    return out


def pick(rng: np.random.Generator, flat: np.ndarray, want: int, count: int, n_candidates: int) -> np.ndarray:
    """``count`` distinct flat indices drawn uniformly among the ``n_candidates`` entries of
    ``flat`` equal to ``want``, sorted. O(count N / n_candidates) draws by rejection, or one
    pass over ``flat`` where that would be more."""
    if count <= 0 or n_candidates <= 0:
        return np.zeros(0, np.int64)
    n = flat.size
    count = min(count, n_candidates)
    if 2 * count > n_candidates or 1.5 * count * n / n_candidates > n / 8:
        pool = np.flatnonzero(flat == want)
        return np.sort(rng.choice(pool, size=count, replace=False).astype(np.int64))
    chosen = np.zeros(0, np.int64)
    while chosen.size < count:
        need = count - chosen.size
        m = int(math.ceil(1.5 * need * n / n_candidates)) + 8
        c = rng.integers(0, n, size=m, dtype=np.int64)
        c = c[flat[c] == want]
        allc = np.concatenate([chosen, c])
        _, first = np.unique(allc, return_index=True)
        first.sort()  # keep the first occurrence of each, in draw order
        chosen = allc[first][:count]
    return np.sort(chosen)


class StructureRun:
    """The present matrix of one run and its events, advanced by :meth:`step` at chunk ends."""

    def __init__(self, p, module, w: np.ndarray, params, state, rng: np.random.Generator):
        cfg = p.synapses.structure
        self.cfg = cfg
        self.module = module
        self.rng = rng
        self.dt = p.dt
        self.w_min, self.w_max = p.synapses.w_min, p.synapses.w_max
        self.from_state = module.SPEC.weight_from_state
        self.present = initial_present(cfg, w.shape, rng)
        self.present_initial = self.present.copy()
        self.n_present = int(np.count_nonzero(self.present))
        self.last = 0
        self.steps: list = []
        self.syns: list = []
        self.kinds: list = []
        absent = self.present.reshape(-1) == 0  # a mask (1 byte a synapse, not an index array)
        self._apply(w, params, state, np.zeros(0, np.int64), absent, np.zeros(0), 0)

    # -- the rule side of an event
    def _apply(self, w, params, state, formed, eliminated, w_new, step) -> None:
        """``formed``: flat indices; ``eliminated``: flat indices, or a boolean mask (at the start)."""
        hook = getattr(self.module, "structure_changed", None)
        if hook is not None:
            hook(params, state, w, formed, eliminated, w_new, step)
        flat = w.reshape(-1)
        flat[eliminated] = 0.0
        flat[formed] = w_new

    def _w_new(self, formed: np.ndarray) -> np.ndarray:
        init = self.cfg.w_new
        k = formed.size
        if init.kind == "constant":
            x = np.full(k, float(init.args[0]))
        elif init.kind == "uniform":
            x = self.rng.uniform(init.args[0], init.args[1], size=k)
        elif init.kind == "normal":
            x = self.rng.normal(init.args[0], init.args[1], size=k)
        else:
            x = np.asarray(init.args[0], dtype=float).reshape(-1)[formed]
        if not self.from_state:
            np.clip(x, self.w_min, self.w_max, out=x)
        return x

    def step(self, w: np.ndarray, params, state, s: int) -> None:
        """The events of the steps since the last call, at step ``s`` (all chunks are done)."""
        dt_s = (s - self.last) * self.dt * 1e-3
        self.last = s
        cfg = self.cfg
        pres = self.present.reshape(-1)
        flat_w = w.reshape(-1)
        if not self.from_state:  # absent entries may have drifted within the chunk
            np.multiply(w, self.present, out=w, casting="unsafe")
        if dt_s <= 0.0:
            return
        n = pres.size
        rng = self.rng
        # eliminations: thinned from the largest hazard over the present weights
        elim = np.zeros(0, np.int64)
        if cfg.elimination_rate > 0.0 and self.n_present:
            if cfg.w_ref is None:
                h_max = cfg.elimination_rate
            else:
                lo = self.w_min
                if self.from_state or not math.isfinite(lo):
                    lo = float(np.min(w))
                h_max = cfg.elimination_rate * math.exp(min(700.0, -lo / cfg.w_ref))
            q_max = -math.expm1(-h_max * dt_s)
            k = int(rng.binomial(self.n_present, q_max))
            cand = pick(rng, pres, 1, k, self.n_present)
            if cfg.w_ref is not None and cand.size:
                q = -np.expm1(-cfg.elimination_rate * np.exp(-flat_w[cand].astype(np.float64) / cfg.w_ref) * dt_s)
                cand = cand[rng.random(cand.size) * q_max < q]
            elim = cand
        # formations, among the synapses absent at the start of the interval
        formed = np.zeros(0, np.int64)
        n_absent = n - self.n_present
        if cfg.formation_rate > 0.0 and n_absent:
            k = int(rng.binomial(n_absent, -math.expm1(-cfg.formation_rate * dt_s)))
            formed = pick(rng, pres, 0, k, n_absent)
        if not (elim.size or formed.size):
            return
        w_new = self._w_new(formed)
        pres[elim] = 0
        pres[formed] = 1
        self.n_present += formed.size - elim.size
        self._apply(w, params, state, formed, elim, w_new, s)
        syn = np.concatenate([formed, elim])
        kind = np.concatenate([np.full(formed.size, FORMED, np.int8), np.full(elim.size, ELIMINATED, np.int8)])
        order = np.argsort(syn, kind="stable")
        self.steps.append(np.full(syn.size, s, np.int64))
        self.syns.append(syn[order])
        self.kinds.append(kind[order])

    def result(self) -> StructureResult:
        cat = lambda xs, dt: np.concatenate(xs) if xs else np.zeros(0, dt)  # noqa: E731
        return StructureResult(self.present_initial, self.present.copy(), cat(self.steps, np.int64), cat(self.syns, np.int64), cat(self.kinds, np.int8))


@jit
def absent_to_zero(w, present):
    """Set the weights of absent synapses to 0 (the rate rules' hook, once a step: their weights
    feed the next step's rates)."""
    n_pre, n_post = w.shape
    for i in range(n_pre):
        for j in range(n_post):
            if present[i, j] == 0:
                w[i, j] = 0.0


STRUCTURE_SPAWN_KEY = 4  # engine.build spawns keys 0-3; release (core.release) draws from key 8


def structure_seed(ss: np.random.SeedSequence) -> np.random.SeedSequence:
    """The structure stream of a condition: the fixed child ``STRUCTURE_SPAWN_KEY`` of its
    SeedSequence ``ss`` (what ``SeedSequence(seed).spawn(5)[4]`` gives), whatever the engine and
    other mechanisms spawn: the streams of runs without structure are unchanged."""
    return np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (STRUCTURE_SPAWN_KEY,), pool_size=ss.pool_size)
