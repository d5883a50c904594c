"""Layer 2: a validated protocol becomes plain arrays, and the kernels advance them.

``build`` (nengo's builder) draws the initial weights and every spike time, sets up the
neuron arrays and asks the rule module for its ``Params`` and ``State``. ``simulate`` runs the
rule's ``advance`` kernel chunk by chunk (chunks end at recording samples and phase
boundaries, so blocks switch exactly there), samples the traces, checks that values stay
finite and returns a typed :class:`RunResult`. No Python runs per simulation step. Big
feed-forward networks of rules that allow it are advanced by threads, each over its own block
of post neurons (:mod:`.threads`), with results identical bit for bit.

The rest of the simulation layer, by responsibility: :mod:`.stimulus` (spike events), :mod:`.memory`
(what a run needs), :mod:`.threads` (blocks of post neurons), :mod:`.recorder` (Python samples),
:mod:`.batches` (many small conditions in one kernel call).
"""

from __future__ import annotations

import math
import os
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from .. import rules as rule_registry
from ..errors import SimulationError
from ..protocol.schema import Condition, Protocol
from ..rules.base import BuildContext, block_mask
from .memory import TRIM_MIN_SYNAPSES, check_memory, prefault, trim_heap
from .recorder import Recorder
from .stimulus import MAX_CHUNK_ROWS, RateInput, phase_steps, spike_events
from .threads import Stepper, plan_blocks

INITIAL_BLOCK = 1 << 17  # initial weights drawn this many at a time (rows of them) into the matrix
KEEP_INITIAL = 4096  # networks of at most this many synapses keep their initial weights (RunResult)


# ---------------------------------------------------------------------------- seeds
def condition_seed(seed: int, values: tuple) -> np.random.SeedSequence:
    """A condition's random stream depends only on ``seed`` and its own swept values."""
    if not values:
        return np.random.SeedSequence(seed)
    key = repr(tuple((k, float(v) if isinstance(v, (int, float)) else repr(v)) for k, v in values)).encode()
    return np.random.SeedSequence([seed, zlib.crc32(key), zlib.adler32(key)])


def child_seed(ss: np.random.SeedSequence, i: int) -> np.random.SeedSequence:
    """Child ``i`` of ``ss``, what ``ss.spawn(i + 1)[i]`` gives on a fresh ``ss`` (NumPy's spawn
    makes exactly this), without spawning: ``ss.n_children_spawned`` is unchanged."""
    return np.random.SeedSequence(ss.entropy, spawn_key=tuple(ss.spawn_key) + (i,), pool_size=ss.pool_size)


class LazyRng:
    """A ``np.random.Generator`` of the seed ``seed()`` (a SeedSequence, or a function that makes
    it), made on its first use: a sweep builds hundreds of tiny conditions whose weights,
    stimulus and rule draw nothing (W1D: 101 conditions, no draw at all), and a SeedSequence and
    a Generator cost about 20 us each. Its draws are the Generator's own."""

    __slots__ = ("_seed", "_gen")

    def __init__(self, seed):
        self._seed = seed
        self._gen = None

    def __getattr__(self, name):
        gen = self._gen
        if gen is None:
            seed = self._seed
            gen = self._gen = np.random.default_rng(seed() if callable(seed) else seed)
        return getattr(gen, name)


class ConditionSeeds:
    """The streams ``build`` uses for a condition, made only when used: ``ss`` is
    ``condition_seed(seed, values)`` after ``spawn(4)`` (weights, stimulus, rule, rates: children
    0-3), so that what mechanisms spawn after it (``synapses.release``: ``ss.spawn(5)[4]``, child
    8) is what it was when ``build`` spawned the four eagerly."""

    __slots__ = ("_args", "_ss", "_root")

    def __init__(self, seed: int, values: tuple):
        self._args = (seed, values)
        self._ss = None
        self._root = None

    def root(self) -> np.random.SeedSequence:
        if self._root is None:
            self._root = condition_seed(*self._args)
        return self._root

    def child(self, i: int) -> np.random.SeedSequence:
        return child_seed(self.root(), i)

    def rng(self, i: int) -> LazyRng:
        return LazyRng(lambda: self.child(i))

    @property
    def ss(self) -> np.random.SeedSequence:
        if self._ss is None:
            ss = self.root()
            ss.spawn(4)
            self._ss = ss
        return self._ss


# ---------------------------------------------------------------------------- build
@dataclass
class Built:
    protocol: Protocol
    module: object
    net: object
    w: np.ndarray
    w_initial: np.ndarray | None  # None: drawn again from the seed when needed
    params: object
    state: object
    phases: list  # (first step, end step, block mask, RateInput | None)
    pre_events: tuple
    post_events: tuple
    rel: object = None  # core.release.Rel with synapses.release, else None (a kernel argument)
    structure: object = None  # core.structure.StructureRun with synapses.structure, else None
    inh: object = None  # core.inhibit.Inh with synapses.inhibitory, else None (the kernels' last argument)

    @property
    def present(self):
        """The kernels' ``present`` argument: the 0/1 matrix, or None without structure."""
        return None if self.structure is None else self.structure.present


def stimulus_events(p: Protocol, values: tuple = ()):
    """The (pre, post) spike events ``build`` draws for this protocol and condition: they depend
    only on the stimulus, the seed and the condition's values, so a fit draws them once and
    passes them to every evaluation (``build(..., events=)``)."""
    return spike_events(p, np.random.default_rng(condition_seed(p.seed, values).spawn(4)[1]))


def build(p: Protocol, values: tuple = (), events=None, shared: dict | None = None) -> Built:
    """``events``: the result of ``stimulus_events(p, values)`` (read only), else drawn here.

    ``shared``: a dict that the builds of conditions equal but for their stimulus (phases,
    duration; ``simulation.batches``) share, all built before any of them runs: initial weights
    that draw nothing are made once and copied, and so is the rule's ``Params`` and ``State``
    where its build drew nothing either (:func:`_rule_build`): the same values as built one by
    one."""
    from ..core import delay
    from ..core.net import ACTIVATIONS, LIF, NEURON_MODELS, make_net

    check_memory(p)
    module = rule_registry.module(p.rule.kind)
    spec = module.SPEC
    seeds = ConditionSeeds(p.seed, values)  # weights 0, stimulus 1, rule 2, rates 3: made when drawn from
    n_pre, n_post = p.synapses.n_pre, p.synapses.n_post
    # the spike trains first: their temporaries are freed before the weight matrix exists
    # (independent seeds: the order changes no value)
    pre, post = spike_events(p, seeds.rng(1)) if events is None else events
    if shared is not None and p.synapses.w_init.kind in ("constant", "matrix"):  # no draw: the same weights
        if "w" not in shared:
            shared["w"] = _initial(p, spec, lambda: seeds.child(0))
        w0 = shared["w"]
        w = aligned_empty(w0.shape, w0.dtype)
        w[...] = w0
    else:
        w = _initial(p, spec, lambda: seeds.child(0))
    model = NEURON_MODELS[p.neuron.model]
    q = p.neuron.params
    lif = np.array([q["tau_m"], q["v_rest"], q["v_thresh"], q["v_reset"], q["t_ref"], q["tau_syn"], q["e_syn"]]) if model == LIF else None
    act = np.array([float(ACTIVATIONS[q["activation"]]), q["gain"], q["threshold"]]) if p.neuron.model == "rate" else None
    # synaptic delays shift the event lists the kernels read; pre/post keep the emitted spikes
    k_ax, k_den = delay.steps_of(p.synapses.delay_axonal, p.dt), delay.steps_of(p.synapses.delay_dendritic, p.dt)
    net = make_net(n_pre, n_post, p.dt, model, delay.shift(pre, k_ax), delay.shift(post, k_den), lif=lif, act=act,
                   out_capacity=max(4096, 64 * n_post), dendritic=k_den)
    if spec.inputs == "rates":
        rows = max(1, min(MAX_CHUNK_ROWS, int(round(p.record.interval / p.dt))))
        net = net._replace(x=np.zeros((rows, n_pre)))
    ctx = BuildContext(n_pre, n_post, p.dt, w, p.synapses.w_min, p.synapses.w_max, seeds.rng(2))
    params, state, w = _rule_build(module, p, ctx, shared if shared is not None and "w" in shared else None)
    rates_rng = None  # (made only for rate inputs: a sweep builds hundreds of tiny conditions)
    phases = []
    # a rate rule's phase without rate input (and its rest after the phases) has input 0: rows of
    # zeros (the kernels read rows of input at every step; None left them those of the last chunk)
    rest = RateInput((), n_pre, p.dt, 0.0, None) if spec.inputs == "rates" else None
    for ph, (a, b) in zip(p.phases, phase_steps(p)):
        blocked = block_mask(spec, tuple(p.block) + tuple(ph.block))
        rate = None
        trains = [t for t in ph.pre if t.kind in ("patterns", "gaussian")]
        if trains:
            if rates_rng is None:
                rates_rng = seeds.rng(3)
            rate = RateInput(trains, n_pre, p.dt, ph.duration, rates_rng)
        phases.append((a, b, blocked, rate if rate is not None and rate.parts else rest))
    end = phases[-1][1] if phases else 0
    if end < p.n_steps:  # duration beyond the last phase: rest
        phases.append((end, p.n_steps, block_mask(spec, p.block), rest))
    # the initial weights are kept only where a rule computes them; otherwise they are drawn
    # again from the same seed when the summary is written (no second O(n_pre n_post) array)
    w_initial = w.copy() if spec.weight_from_state else None
    rel = None
    if p.synapses.release is not None:  # its own stream: the four above are those of runs without release
        from ..core import release

        w0 = w_initial if w_initial is not None else w
        recorded = p.record.weights if p.record.responses else ()
        rel = release.build(p.synapses.release, p.rule.expression == "presynaptic", n_pre, n_post, p.dt, w0, recorded, pre[1], np.random.default_rng(seeds.ss.spawn(5)[4]))
    structure = None
    if p.synapses.structure is not None:  # its own stream: a fixed child of the condition's seed
        from ..core.structure import StructureRun, structure_seed

        structure = StructureRun(p, module, w, params, state, np.random.default_rng(structure_seed(seeds.ss)))
    inh = None
    if p.synapses.inhibitory:  # core.inhibit: lif neurons, stdp and triplet (protocol validation)
        from ..core import inhibit

        inh = inhibit.build(p.synapses.inhibitory, n_pre, n_post, q["tau_syn_inh"], q["e_syn_inh"])
    return Built(p, module, net, w, w_initial, params, state, phases, pre, post, rel, structure, inh)


def _rule_build(module, p: Protocol, ctx: BuildContext, shared: dict | None):
    """``module.build(p.rule.values, ctx)`` as ``(params, state, w)``. ``shared`` (see
    :func:`build`; only where the initial weights drew nothing, so that every condition passes
    the same ones): the first build is noted there as it is (its condition's own arrays, not yet
    run); the second condition decides once whether it may be shared (it drew nothing from
    ``ctx.rng`` and its arrays share no memory: :func:`_separate`), and then it and every later
    condition get the same ``Params`` (the kernels only read it) and copies of its ``State`` and
    weights. A window of one condition per template pays nothing for this."""
    if shared is not None:
        hit = shared.get("rule")
        if hit is None and "first" in shared:
            params, state, w, replaced, drew = shared.pop("first")
            ok = not drew and _separate(state, params, w)
            hit = shared["rule"] = (params, _copied(state), w.copy() if replaced else None) if ok else False
        if hit:
            params, state, w_after = hit
            if w_after is not None:
                ctx.w = aligned_empty(w_after.shape, w_after.dtype)
                ctx.w[...] = w_after
            return params, _copied(state), ctx.w
    w_in = ctx.w
    params, state = module.build(p.rule.values, ctx)
    if shared is not None and "rule" not in shared:
        shared["first"] = (params, state, ctx.w, ctx.w is not w_in, ctx.rng._gen is not None)
    return params, state, ctx.w


def _copied(state):
    """A State with a copy of each of its arrays."""
    return type(state)._make([x.copy() if isinstance(x, np.ndarray) else x for x in state])


def _separate(state, params, w) -> bool:
    """Whether ``state`` and ``params`` are named tuples of arrays, numbers and None, and no
    array of ``state`` (its own, not a view) is, or shares memory with, another of its arrays,
    an array of ``params`` or ``w``, and none of ``params`` with ``w``: then copies of the state
    array by array, and of the weights, behave as the originals beside a shared ``params``
    (whose arrays may be one object twice: a decay table of equal time constants)."""
    own, read = [], []
    for obj, out in ((state, own), (params, read)):
        if not (isinstance(obj, tuple) and hasattr(obj, "_fields")):
            return False
        for x in obj:
            if isinstance(x, np.ndarray):
                if obj is state and x.base is not None:
                    return False
                out.append(x)
            elif not (x is None or isinstance(x, (bool, int, float, np.generic))):
                return False
    for i, a in enumerate(own):
        for b in own[i + 1 :] + read + [w]:
            if a is b or np.may_share_memory(a, b):
                return False
    return not any(b is w or np.may_share_memory(b, w) for b in read)


def _initial(p: Protocol, spec, seed, rows: int | None = None):
    """The initial weights drawn from ``seed`` (a SeedSequence, or a function that makes it: see
    ``LazyRng``): clipped to [w_min, w_max] unless the rule computes
    them, float32 where the protocol asks. With ``rows``: an iterator of (first row, block of up
    to ``rows`` rows) giving the same values, without the whole matrix ever in memory."""
    shape = (p.synapses.n_pre, p.synapses.n_post)
    dtype = np.float32 if p.synapses.dtype == "float32" else np.float64

    def finish(w):
        if not spec.weight_from_state:
            np.clip(w, p.synapses.w_min, p.synapses.w_max, out=w)
        return np.ascontiguousarray(w, dtype=dtype)

    rng = LazyRng(seed)  # a constant or matrix w_init draws nothing
    if rows is not None:
        return ((a, finish(w)) for a, w in p.synapses.w_init.sample_rows(shape, rng, rows))
    # the whole matrix, filled in place a block of rows at a time (the same draws as one call):
    # no float64 matrix drawn and then cast (a float32 run peaked at 3x its matrix)
    w = aligned_empty(shape, dtype)
    prefault(w)  # (a big matrix: its pages faulted in by two threads)
    for a, block in p.synapses.w_init.sample_rows(shape, rng, max(1, INITIAL_BLOCK // max(1, shape[1]))):
        w[a : a + block.shape[0]] = finish(block)
    return w


ALIGN = 64  # bytes: a cache line


def aligned_empty(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)`` starting at a cache line (NumPy's big arrays start 16 bytes
    into one): rows of a multiple of 64 bytes then start on lines too, so vector loads do not
    straddle two lines, and threads writing the two sides of a block bound share no line."""
    dtype = np.dtype(dtype)
    n = math.prod(shape)
    raw = np.empty(n * dtype.itemsize + ALIGN, dtype=np.uint8)
    skip = -raw.__array_interface__["data"][0] % ALIGN  # (the address; .ctypes costs a ctypes object)
    return raw[skip : skip + n * dtype.itemsize].view(dtype).reshape(shape)


def initial_weights(p: Protocol, values: tuple = ()) -> np.ndarray:
    """The initial weights of a run, drawn again from its seed (as ``build`` drew them)."""
    return _initial(p, rule_registry.spec(p.rule.kind), condition_seed(p.seed, values).spawn(4)[0])


def initial_weight_rows(p: Protocol, values: tuple = (), rows: int = 64):
    """``initial_weights`` in blocks of ``rows`` rows, drawn as needed: yields (first row, block)."""
    return _initial(p, rule_registry.spec(p.rule.kind), condition_seed(p.seed, values).spawn(4)[0], rows)


# ---------------------------------------------------------------------------- results
@dataclass
class RunResult:
    protocol: Protocol
    condition: tuple  # (path, value) pairs of a sweep condition
    w_initial_stored: np.ndarray | None  # computed by the rule, or kept by a small network (KEEP_INITIAL); None: drawn again from the seed (initial_weights)
    w_final: np.ndarray
    columns: list[str]
    traces: np.ndarray  # rows x columns, first column t_ms
    spikes: tuple[np.ndarray, np.ndarray, np.ndarray]  # t_ms, population (0 pre, 1 post), index
    counts: dict
    timings: dict = field(default_factory=dict)
    index: int | None = None  # the condition's index in its experiment (set by run_condition)
    responses: tuple | None = None  # with synapses.release: t_ms, pre, post, amplitude (responses.csv)
    structure: object = None  # core.structure.StructureResult with synapses.structure, else None

    @property
    def w_initial(self) -> np.ndarray:
        if self.w_initial_stored is not None:
            return self.w_initial_stored
        return initial_weights(self.protocol, self.condition)

    def w_initial_rows(self, rows: int):
        """``(first row, block of rows)`` of the initial weights, ``rows`` rows at a time: slices of
        the stored ones, else drawn again from the seed (no second n_pre x n_post array)."""
        if self.w_initial_stored is None:
            return initial_weight_rows(self.protocol, self.condition, rows)
        stored = self.w_initial_stored
        return ((a, stored[a : a + rows]) for a in range(0, stored.shape[0], rows))


def simulate(p: Protocol, values: tuple = (), progress=None, threads: int | None = None, events=None) -> RunResult:
    """Build and run one condition; ``progress(steps_done)`` is called after each chunk.

    ``threads``: at most this many threads, over blocks of post neurons (``plan_blocks``; None:
    ``$PLASTIC_THREADS`` or automatic); the results are identical, bit for bit, whatever it is.
    ``events``: the spike events of ``stimulus_events(p, values)``, drawn once by the caller."""
    t0 = time.perf_counter()
    b = build(p, values, events)
    return simulate_built(b, values, time.perf_counter() - t0, progress, threads)


def simulate_built(b: Built, values: tuple, t_build: float, progress=None, threads: int | None = None) -> RunResult:
    """Run one built condition (:func:`simulate` after ``build``)."""
    from ..core import record

    w_initial, rec = _prepare(b)
    every = rec.every
    t1 = time.perf_counter()
    stepper = Stepper(b, plan_blocks(b, threads))
    try:
        if record.supported(b, rec, stepper) is None and os.environ.get("PLASTIC_RECORD") != "python":
            record.run(b, rec, stepper, progress, _check_finite)  # the kernels sample (no Python per sample)
            phases = ()
        else:
            rec.sample(0)
            phases = b.phases
        for a, end, blocked, rate in phases:
            s = a
            while s < end:
                nxt = min(end, (s // every + 1) * every)
                if rate is not None:
                    nxt = min(nxt, s + b.net.x.shape[0])
                    rate.fill(b.net.x, s - a, nxt - s)
                stepper.run(s, nxt, blocked)
                s = nxt
                if b.structure is not None:  # formation and elimination at chunk ends
                    b.structure.step(b.w, b.params, b.state, s)
                if s % every == 0:
                    rec.sample(s, _check_finite(b, s, rec))
                if progress is not None:
                    progress(s)
    finally:
        stepper.close()
    return _finish(b, values, w_initial, rec, stepper, t_build, t1, stepper.compiled_at)


def _prepare(b: Built, like: Recorder | None = None):
    """The initial weights a small network keeps, and the run's Recorder (``like.like(b)``
    where the caller has the Recorder of a condition equal to ``b``'s but for its stimulus)."""
    # a small network keeps a copy of its initial weights: the summary then need not draw them
    # again from the seed, which costs more than the copy in a sweep of tiny networks
    w_initial = b.w_initial
    if w_initial is None and b.w.size <= KEEP_INITIAL and b.structure is None and b.rel is None:
        w_initial = b.w.copy()
    return w_initial, Recorder(b) if like is None else like.like(b)


def _finish(b: Built, values: tuple, w_initial, rec: Recorder, stepper: Stepper, t_build: float, t1: float, compiled_at, t_sim: float | None = None, events=None, table=None) -> RunResult:
    """The RunResult of a condition whose phases have run (the last sample, counts, spikes).
    ``t1``: when its simulation began; ``t_sim``: its simulation time, where the caller knows it
    (a batch shares its time among its conditions). ``events``: ``run_events(b, stepper)``, and
    ``table``: the ``spike_table`` of its recorded part, where the caller made them (a batch
    makes the tables of all its conditions at once: ``spike_tables``)."""
    p = b.protocol
    if rec.rows[rec.n - 1, 0] != p.n_steps * p.dt:
        rec.sample(p.n_steps, _check_finite(b, p.n_steps, rec))
    _check_stats(b, rec)
    if t_sim is None:
        t_sim = time.perf_counter() - t1
    pre, post = run_events(b, stepper) if events is None else events
    n_pre, n_post = b.w.shape
    spec = b.module.SPEC
    n_pre_spk = int(pre[0].size)
    n_post_spk = int(post[0].size)
    if spec.inputs == "rates" or spec.weight_from_state:
        updates = n_pre * n_post * p.n_steps
    else:
        updates = n_pre_spk * n_post + n_post_spk * n_pre
    counts = {"steps": p.n_steps, "pre_spikes": n_pre_spk, "post_spikes": n_post_spk, "synaptic_updates": int(updates)}
    if table is not None:
        spikes = table
    elif p.record.spikes:
        spikes = spike_table(*recorded_events(p, pre, post), p.dt)
    else:
        spikes = (np.zeros(0), np.zeros(0, np.int8), np.zeros(0, np.int64))
    compile_s = (compiled_at - t1) if compiled_at is not None else 0.0
    timings = {"build_s": t_build, "simulate_s": t_sim, "first_call_s": compile_s, "threads": stepper.threads}
    responses = None
    if b.rel is not None:
        from ..core.release import responses as release_responses

        responses = release_responses(b.rel, p.dt)
    structure = None
    if b.structure is not None:
        structure = b.structure.result()
        counts["synapses_formed"] = int(np.count_nonzero(structure.ev_kind == 0))
        counts["synapses_eliminated"] = int(np.count_nonzero(structure.ev_kind == 1))
    return RunResult(p, values, w_initial, b.w, rec.columns, rec.rows[: rec.n].copy(), spikes, counts, timings, responses=responses, structure=structure)


def run_events(b: Built, stepper: Stepper) -> tuple:
    """The (steps, indices) events of a run's pre and post neurons: the emitted ones (clamped
    post neurons: imposed; LIF: fired, ``stepper.post_spikes()``, to be called once)."""
    from ..core.net import CLAMPED

    return b.pre_events, (b.post_events if b.net.model == CLAMPED else stepper.post_spikes())


def recorded_events(p: Protocol, pre: tuple, post: tuple) -> tuple:
    """``(pre, post)`` with the population that ``record.spikes`` leaves out emptied (``p.record.spikes`` true)."""
    if p.record.spikes == "pre":
        post = (post[0][:0], post[1][:0])
    elif p.record.spikes == "post":
        pre = (pre[0][:0], pre[1][:0])
    return pre, post


def spike_tables(runs: list) -> list:
    """``[spike_table(pre, post, dt) for pre, post, dt in runs]``, the same arrays (values,
    dtypes, order), made at once: every run's rows joined with the run as the first key, one
    stable sort (none where they are in order already: every run's own rows are, in runs of one
    population or one neuron of each), then split (views of the joined arrays). A batch of tiny
    conditions (W1D: 101 runs of 120 spikes) makes one table instead of one each."""
    if len(runs) < 2:
        return [spike_table(pre, post, dt) for pre, post, dt in runs]
    steps, pops, idx, dts, counts = [], [], [], [], []
    for pre, post, dt in runs:
        steps += (pre[0], post[0])
        idx += (pre[1], post[1])
        pops += (pre[0].size, post[0].size)
        counts.append(pre[0].size + post[0].size)
        dts.append(dt)
    n = np.array(counts, np.int64)
    sizes = np.array(pops, np.int64)
    # t = steps * dt as spike_table computes it (the int64 steps as float64, times the float dt)
    t = np.concatenate(steps).astype(np.float64) * np.repeat(np.array(dts, np.float64), n)
    pop = np.repeat(np.tile(np.array([0, 1], np.int8), len(runs)), sizes)
    ix = np.concatenate(idx).astype(np.int64, copy=False)
    run = np.repeat(np.arange(len(runs)), n)
    if not _lex_sorted(run, t, pop, ix):
        order = np.lexsort((ix, pop, t, run))
        t, pop, ix = t[order], pop[order], ix[order]
    ends = np.cumsum(n)
    starts = ends - n
    return [(t[a:e], pop[a:e], ix[a:e]) for a, e in zip(starts.tolist(), ends.tolist())]


def spike_table(pre: tuple, post: tuple, dt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of spikes.csv from the (steps, indices) events of each population: ``t_ms``,
    population (0 pre, 1 post) and index, in time, population, index order. One population's
    events are in that order already: then no sort and no permuted copies (the table is made
    at the end of the run, beside the weight matrix: W4's 750,000 post spikes)."""
    t = (np.concatenate([pre[0], post[0]]) if pre[0].size and post[0].size else pre[0] if pre[0].size else post[0]) * dt
    pop = np.concatenate([np.zeros(pre[0].size, np.int8), np.ones(post[0].size, np.int8)])
    idx = np.concatenate([pre[1], post[1]])
    if not _lex_sorted(t, pop, idx):
        order = np.lexsort((idx, pop, t))
        t, pop, idx = t[order], pop[order], idx[order]
    return t, pop, idx


def _lex_sorted(*keys) -> bool:
    """Whether the rows of ``keys`` (primary key first) are in non-decreasing lexicographic
    order, so that a stable sort (``np.lexsort``) would leave them as they are."""
    undecided = None
    for k in keys:
        a, b = k[:-1], k[1:]
        if undecided is None:
            if np.any(a > b):
                return False
            undecided = a == b
        else:
            if np.any(undecided & (a > b)):
                return False
            undecided &= a == b
    return True


def _check_finite(b: Built, step: int, rec: Recorder):
    """Raise SimulationError where a weight or neuron value is NaN or infinite; returns
    ``np.sum(b.w)`` (the check's one pass over the weights), for the Recorder's mean."""
    p = b.protocol
    w_sum = np.sum(b.w)
    if not np.isfinite(w_sum) and not np.all(np.isfinite(b.w)):  # (a finite sum can overflow)
        bad = np.argwhere(~np.isfinite(b.w))[0]
        last = rec.rows[rec.n - 1, 0] if rec.n else 0.0
        raise SimulationError(
            f"w[{bad[0]},{bad[1]}] became {b.w[bad[0], bad[1]]} between t = {last:g} ms and t = {step * p.dt:g} ms",
            step * p.dt,
            f"w[{bad[0]},{bad[1]}]",
        )
    if b.net.model != 0 and not (np.all(np.isfinite(b.net.v)) and np.all(np.isfinite(b.net.y))):
        last = rec.rows[rec.n - 1, 0] if rec.n else 0.0
        var = "v" if not np.isfinite(np.sum(b.net.v)) else "y"
        bad = int(np.argwhere(~np.isfinite(getattr(b.net, var)))[0][0])
        raise SimulationError(f"{var}[{bad}] became non-finite between t = {last:g} ms and t = {step * p.dt:g} ms", step * p.dt, f"{var}[{bad}]")
    return w_sum


def _check_stats(b: Built, rec: Recorder) -> None:
    """Raise SimulationError (exit 3) where a recorded statistic (``w_mean``, ``w_std``, ...) is
    NaN or infinite although every weight is finite (_check_finite checked them): the sum of
    weights near the largest float overflows. A researcher gets the variable and the time, not
    inf in traces.csv. One pass over the recorded columns, after the run."""
    stats = b.protocol.record.stats
    if not stats or not rec.n:
        return
    k0 = 1 + len(b.protocol.record.weights)
    block = rec.rows[: rec.n, k0 : k0 + len(stats)]
    bad = ~np.isfinite(block)
    if not bad.any():
        return
    r, c = (int(x) for x in np.argwhere(bad)[0])
    t, name = float(rec.rows[r, 0]), f"w_{stats[c]}"
    raise SimulationError(
        f"{name} became {block[r, c]} at t = {t:g} ms: every weight is finite, but their {stats[c]} "
        f"overflows {b.w.dtype} (largest about {float(np.finfo(b.w.dtype).max):.3g}) on the way",
        t,
        name,
    )


def _named(cond: Condition, exc: SimulationError) -> SimulationError:
    """``exc`` naming its sweep condition (:func:`run_condition`)."""
    if cond.values:
        where = ", ".join(f"{k} = {v!r}" for k, v in cond.values)
        return SimulationError(f"sweep condition {cond.index} ({where}): {exc}", exc.t_ms, exc.variable)
    return exc


def run_condition(cond: Condition, progress=None, threads: int | None = None) -> RunResult:
    try:
        with np.errstate(all="ignore"):  # overflows end as inf/nan: _check_finite reports them (exit 3)
            result = simulate(cond.protocol, cond.values, progress, threads)
        if result.w_final.size >= TRIM_MIN_SYNAPSES:  # the run's temporaries, before the writing
            trim_heap()
        result.index = cond.index
        return result
    except SimulationError as exc:
        if cond.values:
            raise _named(cond, exc) from None
        raise