"""Layer 2: a validated protocol becomes plain arrays, and the kernels advance them.

``build`` (nengo's builder) draws the initial weights and every spike time, sets up the
neuron arrays and asks the rule module for its ``Params`` and ``State``. ``simulate`` runs the
rule's ``advance`` kernel chunk by chunk (chunks end at recording samples and phase
boundaries, so blocks switch exactly there), samples the traces, checks that values stay
finite and returns a typed :class:`RunResult`. No Python runs per simulation step. Big
feed-forward networks of rules that allow it are advanced by threads, each over its own block
of post neurons (:func:`plan_blocks`, :class:`Stepper`), with results identical bit for bit.

Many small conditions (a sweep of tiny networks) run in batches (:func:`run_conditions`):
the conditions of a worker that share their kernel types (:func:`batch_key`: rule, neuron
model, dtype, argument types, phases, block masks, recording plan) are built, then run in one
kernel call (:mod:`plastictool.core.batch`), with the results, and errors, of one by one;
``PLASTIC_BATCH=0`` runs each on its own.
"""

from __future__ import annotations

import math
import os
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from .. import rules as rule_registry
from ..errors import PlasticError, ProtocolError, SimulationError
from ..protocol.schema import Condition, Protocol, Train, expected_spikes
from ..rules.base import BuildContext, block_mask

PRE, POST = 0, 1
MAX_CHUNK_ROWS = 4096  # rows of rate input generated at once
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


# ---------------------------------------------------------------------------- memory
def memory_limit() -> int:
    env = os.environ.get("PLASTIC_MAX_MEMORY")
    if env:
        return int(float(env))
    return int(0.8 * _physical_memory())


_PHYS = None


def _physical_memory() -> int:
    """Bytes of physical memory, asked once per process (every condition of a sweep checks its
    estimate twice: validation and build)."""
    global _PHYS
    if _PHYS is None:
        try:
            _PHYS = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # pragma: no cover
            _PHYS = 8 * 2**30
    return _PHYS


def estimate_memory(p: Protocol) -> dict:
    """Bytes a run needs, by item (weights, rule state, spikes, traces)."""
    n_syn = p.synapses.n_pre * p.synapses.n_post
    spec = rule_registry.spec(p.rule.kind)
    syn_state = sum(1 for s in spec.state if s.shape == "syn")
    if p.rule.values.get("pairing") == "presynaptic_centered":  # stdp keeps a trace per synapse
        syn_state += 1
    spikes = expected_spikes(p.phases, p.synapses)
    rows = p.duration / p.record.interval + 2
    cols = 1 + len(p.record.weights) + len(p.record.stats) + 16 * max(1, len(p.record.state))
    # the current weights, and a copy of the initial ones only for rules whose weight is computed
    # from their state (others draw them again from the seed when the summary is written); the
    # two uint8 present matrices of synapses.structure
    copies = 2 if spec.weight_from_state else 1
    est = {
        "weights": (copies * (4 if p.synapses.dtype == "float32" else 8) + (2 if p.synapses.structure is not None else 0)) * n_syn,
        "rule state": 8 * syn_state * n_syn + 16 * (p.synapses.n_pre + p.synapses.n_post),
        "spikes": 16 * 3 * spikes * (2 if p.record.spikes else 1),
        "traces": 8 * rows * cols,
    }
    rel = p.synapses.release
    if rel is not None:  # core.release: u, x, r, last step (and filled sites) per unit; w_initial
        per_syn = bool(rel.sites) or p.rule.expression == "presynaptic"
        units = n_syn if per_syn else p.synapses.n_pre
        est["rule state"] += 8 * (4 + bool(rel.sites)) * units + (8 * n_syn if p.rule.expression == "presynaptic" else 0)
    est["total"] = sum(est.values())
    return est


def check_memory(p: Protocol) -> None:
    est = estimate_memory(p)
    limit = memory_limit()
    if est["total"] > limit:
        parts = ", ".join(f"{k} {_gib(v)}" for k, v in est.items() if k != "total")
        big = max((k for k in est if k != "total"), key=est.get)
        fieldname = {"weights": "synapses.n_pre", "rule state": "synapses.n_pre", "spikes": "phases", "traces": "record.interval"}[big]
        raise ProtocolError(
            f"this run needs about {_gib(est['total'])} of memory ({parts}), more than the {_gib(limit)} "
            f"available (set PLASTIC_MAX_MEMORY to change the limit)",
            fieldname,
            p.file,
            None,
        )


def _gib(x: float) -> str:
    return f"{x / 2**30:.2f} GiB" if x >= 2**28 else f"{x / 2**20:.1f} MiB"


# ---------------------------------------------------------------------------- stimulus
def train_times(t: Train, duration: float, n: int, rng: np.random.Generator):
    """Spike times (ms from the phase start) and neuron indices of one train."""
    q = t.params
    neurons = np.arange(n) if t.neurons is None else np.asarray(t.neurons, dtype=np.int64)
    if t.kind == "times":
        if "all" in q:
            base = np.asarray(q["all"], dtype=float)
            return np.tile(base, neurons.size), np.repeat(neurons, base.size)
        ts, ix = [], []
        for i, lst in q["per"].items():
            ts.append(np.asarray(lst, dtype=float))
            ix.append(np.full(len(lst), i, dtype=np.int64))
        return np.concatenate(ts), np.concatenate(ix)
    if t.kind == "poisson":
        stop = duration if q["stop"] is None else min(q["stop"], duration)
        span = max(0.0, stop - q["start"])
        counts = rng.poisson(q["rate"] * span / 1000.0, size=neurons.size)
        idx = np.repeat(neurons, counts)
        times = q["start"] + rng.random(idx.size) * span
        return times, idx
    if t.kind == "regular":
        period = 1000.0 / q["frequency"]
        if q["pulses"] is not None:
            k = np.arange(q["pulses"])
        else:
            stop = duration if q["stop"] is None else min(q["stop"], duration)
            k = np.arange(max(0, int(math.ceil((stop - q["start"]) / period - 1e-9))))
        base = q["start"] + k * period
    elif t.kind == "tetanus":
        period = 1000.0 / q["frequency"]
        pulses = int(round(q["duration"] / period))
        base = (q["start"] + np.arange(q["trains"])[:, None] * q["interval"] + np.arange(pulses)[None, :] * period).ravel()
    elif t.kind == "theta_burst":
        period = 1000.0 / q["frequency"]
        base = (
            q["start"]
            + np.arange(q["trains"])[:, None, None] * q["train_interval"]
            + np.arange(q["bursts"])[None, :, None] * q["burst_interval"]
            + np.arange(q["pulses"])[None, None, :] * period
        ).ravel()
    else:  # pragma: no cover - rate trains have no spikes
        raise AssertionError(t.kind)
    return np.tile(base, neurons.size), np.repeat(neurons, base.size)


def pairing_times(p: dict, n_pre: int, n_post: int):
    """Pair k puts the earlier spike at start + k/frequency and the other |delta_t| later."""
    k = np.arange(p["pairs"])
    base = p["start"] + k * 1000.0 / p["frequency"]
    d = p["delta_t"]
    t_pre = base + (0.0 if d >= 0 else -d)
    t_post = base + (d if d >= 0 else 0.0)
    pre = (t_pre[:, None] + np.arange(p["pre_spikes"])[None, :] * 1000.0 / p["pre_frequency"]).ravel()
    post = (t_post[:, None] + np.arange(p["post_spikes"])[None, :] * 1000.0 / p["post_frequency"]).ravel()
    return (
        (np.tile(pre, n_pre), np.repeat(np.arange(n_pre), pre.size)),
        (np.tile(post, n_post), np.repeat(np.arange(n_post), post.size)),
    )


def phase_steps(p: Protocol) -> list[tuple[int, int]]:
    """First and end step of each phase, clipped to the run's duration."""
    n = p.n_steps
    out = []
    for ph in p.phases:
        a = min(n, int(round(ph.start / p.dt)))
        b = min(n, int(round((ph.start + ph.duration) / p.dt)))
        out.append((a, b))
    return out


def spike_events(p: Protocol, rng: np.random.Generator):
    """All pre and post events as sorted (steps, indices) arrays; spikes past a phase's end are dropped.

    Each train becomes steps right after it is drawn, in place where it can, so that runs with
    millions of input spikes need less memory at the peak (benchmark W2, 1.5 million spikes:
    97 instead of 132 MiB for the whole process)."""
    pre_s, pre_i, post_s, post_i = [], [], [], []

    def add(pop, times, idx, a, b):
        x = np.divide(times, p.dt)  # the step of each spike: rint(t / dt), as integers, + a
        del times
        np.rint(x, out=x)
        steps = x.astype(np.int64)
        del x
        steps += a
        idx = np.asarray(idx, dtype=np.int64)
        if steps.size and steps.max() >= b:
            keep = steps < b
            steps, idx = steps[keep], idx[keep]
        (pre_s if pop == PRE else post_s).append(steps)
        (pre_i if pop == PRE else post_i).append(idx)

    for ph, (a, b) in zip(p.phases, phase_steps(p)):
        for t in ph.pre:
            if t.kind in ("patterns", "gaussian"):
                continue
            add(PRE, *train_times(t, ph.duration, p.synapses.n_pre, rng), a, b)
        for t in ph.post:
            add(POST, *train_times(t, ph.duration, p.synapses.n_post, rng), a, b)
        if ph.pairing:
            (tp, ip), (tq, iq) = pairing_times(ph.pairing, p.synapses.n_pre, p.synapses.n_post)
            add(PRE, tp, ip, a, b)
            add(POST, tq, iq, a, b)

    return sort_events(pre_s, pre_i, p.synapses.n_pre), sort_events(post_s, post_i, p.synapses.n_post)


def sort_events(steps: list, idx: list, n: int):
    """Concatenate event chunks and sort them by step, then neuron (one integer sort). Empties
    the lists (their arrays are reused in place)."""
    if not steps:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    key = steps[0] if len(steps) == 1 else np.concatenate(steps)
    steps.clear()
    key *= np.int64(n)
    key += idx[0] if len(idx) == 1 else np.concatenate(idx)
    idx.clear()
    if key.size > 1 << 16 and 0 <= key.min() and key.max() < 1 << 32:
        # the same sorted integers from a sort of 32-bit keys: 1.6x faster (benchmark W2: 1.5
        # million events, 80 -> 50 ms)
        k32 = key.astype(np.uint32)
        k32.sort()
        key[...] = k32
        del k32
    else:
        key.sort()
    neuron = key % n
    key //= n
    return key, neuron


class RateInput:
    """Presynaptic rates of one phase, generated in chunks identically to one draw."""

    def __init__(self, trains, n_pre: int, dt: float, duration: float, rng: np.random.Generator):
        self.parts = []
        self.n_pre = n_pre
        self.dt = dt
        for t in trains:
            q = t.params
            if t.kind == "patterns":
                vecs = np.asarray(q["vectors"], dtype=float)
                n_pres = int(math.ceil(duration / q["presentation"] - 1e-9)) + 1
                if q["order"] == "cyclic":
                    seq = np.arange(n_pres) % len(vecs)
                else:
                    probs = None if q["probabilities"] is None else np.asarray(q["probabilities"])
                    seq = rng.choice(len(vecs), size=n_pres, p=probs)
                self.parts.append(("patterns", vecs, seq, q["presentation"]))
            elif t.kind == "gaussian":
                mean = np.asarray(q["mean"], dtype=float)
                cov = np.asarray(q["cov"], dtype=float)
                vals, vecs = np.linalg.eigh(cov)
                root = vecs * np.sqrt(np.clip(vals, 0.0, None))
                self.parts.append(("gaussian", mean, root, np.random.Generator(np.random.PCG64(rng.integers(2**63)))))

    def fill(self, out: np.ndarray, k0: int, n: int) -> None:
        """Rows for phase-local steps k0 .. k0+n-1 into out[:n]."""
        self.fill_blocks(out, k0, (n,))

    def fill_blocks(self, out: np.ndarray, k0: int, sizes) -> None:
        """``fill(out[o:], k0 + o, m)`` for consecutive blocks of ``m`` rows in ``sizes``, with the
        same values (the kernels' own recording fills a chunk of several samples at once with the
        fills the Python path makes, sample by sample): the Gaussian draws of one call are those
        of the blocks' calls, but a matrix product's rounding depends on its number of rows, so
        it is made block by block."""
        n = int(sum(sizes))
        out[:n] = 0.0
        for part in self.parts:
            if part[0] == "patterns":
                _, vecs, seq, pres = part
                k = np.arange(k0, k0 + n)
                which = np.minimum((k * self.dt / pres + 1e-9).astype(np.int64), seq.size - 1)
                out[:n] += vecs[seq[which]]
            else:
                _, mean, root, gen = part
                z = gen.standard_normal((n, self.n_pre))
                o = 0
                for m in sizes:
                    out[o : o + m] += mean + z[o : o + m] @ root.T
                    o += m


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


def build(p: Protocol, values: tuple = (), events=None) -> Built:
    """``events``: the result of ``stimulus_events(p, values)`` (read only), else drawn here."""
    from ..core import delay
    from ..core.net import ACTIVATIONS, NEURON_MODELS, LIF, make_net

    check_memory(p)
    module = rule_registry.module(p.rule.kind)
    spec = module.SPEC
    seeds = ConditionSeeds(p.seed, values)  # weights 0, stimulus 1, rule 2, rates 3: made when drawn from
    n_pre, n_post = p.synapses.n_pre, p.synapses.n_post
    # the spike trains first: their temporaries are freed before the weight matrix exists
    # (independent seeds: the order changes no value)
    pre, post = spike_events(p, seeds.rng(1)) if events is None else events
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
    params, state = module.build(p.rule.values, ctx)
    w = ctx.w
    rates_rng = None  # (made only for rate inputs: a sweep builds hundreds of tiny conditions)
    phases = []
    for ph, (a, b) in zip(p.phases, phase_steps(p)):
        blocked = block_mask(spec, tuple(p.block) + tuple(ph.block))
        rate = None
        trains = [t for t in ph.pre if t.kind in ("patterns", "gaussian")]
        if trains:
            if rates_rng is None:
                rates_rng = seeds.rng(3)
            rate = RateInput(trains, n_pre, p.dt, ph.duration, rates_rng)
        phases.append((a, b, blocked, rate if rate is not None and rate.parts else None))
    end = phases[-1][1] if phases else 0
    if end < p.n_steps:  # duration beyond the last phase: rest
        phases.append((end, p.n_steps, block_mask(spec, p.block), None))
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
    for a, block in p.synapses.w_init.sample_rows(shape, rng, max(1, INITIAL_BLOCK // max(1, shape[1]))):
        w[a : a + block.shape[0]] = finish(block)
    return w


ALIGN = 64  # bytes: a cache line


def aligned_empty(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)`` starting at a cache line (NumPy's big arrays start 16 bytes
    into one): rows of a multiple of 64 bytes then start on lines too, so vector loads do not
    straddle two lines, and threads writing the two sides of a block bound share no line."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    raw = np.empty(n * dtype.itemsize + ALIGN, dtype=np.uint8)
    skip = -raw.ctypes.data % ALIGN
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


class Recorder:
    """Samples the traces at ``record.interval`` (the only per-sample Python work)."""

    def __init__(self, b: Built):
        p = b.protocol
        rec = p.record
        self.b = b
        n_pre, n_post = b.w.shape
        spec = b.module.SPEC
        pairs = list(rec.weights)
        self.wi = np.array([i for i, _ in pairs], dtype=np.int64)
        self.wj = np.array([j for _, j in pairs], dtype=np.int64)
        cols = ["t_ms"] + [f"w[{i},{j}]" for i, j in pairs] + [f"w_{s}" for s in rec.stats]
        self.state = []  # (name, kind, index arrays or None for the mean)
        neuron_vars = {"v": "post", "g": "post", "y": "post", "u": "syn", "x": "syn"} if b.rel is not None else {"v": "post", "g": "post", "y": "post"}
        for name in rec.state:
            shape = neuron_vars.get(name) or spec.state_var(name).shape
            if shape == "syn":
                if pairs:
                    sel = (self.wi, self.wj)
                    cols += [f"{name}[{i},{j}]" for i, j in pairs]
                elif n_pre * n_post <= 16:
                    ii, jj = np.indices((n_pre, n_post))
                    sel = (ii.ravel(), jj.ravel())
                    cols += [f"{name}[{i},{j}]" for i, j in zip(*sel)]
                else:
                    sel = None
                    cols.append(f"{name}_mean")
            else:
                n = n_pre if shape == "pre" else n_post
                picked = self.wi if shape == "pre" else self.wj
                if n <= 16:
                    sel = np.arange(n)
                elif pairs:
                    sel = np.unique(picked)
                else:
                    sel = None
                if sel is None:
                    cols.append(f"{name}_mean")
                else:
                    cols += [f"{name}[{k}]" for k in sel]
            self.state.append((name, shape, sel))
        if b.structure is not None:
            cols.append("n_synapses")
        self.columns = cols
        self.every = max(1, int(round(rec.interval / p.dt)))
        n_rows = p.n_steps // self.every + 2
        self.rows = np.empty((n_rows, len(cols)))
        self.n = 0

    def sample(self, step: int, w_sum=None) -> None:
        """Append the row of ``step``. ``w_sum``: ``np.sum(w)`` where the caller has it (the mean
        is then that sum over the count, as ``np.mean`` computes it: no second pass)."""
        b = self.b
        w = b.w
        row = [step * b.protocol.dt]
        row += list(w[self.wi, self.wj])
        stats = b.protocol.record.stats
        for s in stats:
            if s == "mean" and w_sum is not None:
                row.append(float(w_sum.dtype.type(w_sum / np.intp(w.size))))
            else:
                row.append(float({"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}[s](w)))
        for name, shape, sel in self.state:
            values = self._probe(name, step)
            if sel is None:
                row.append(float(np.mean(values)))
            elif shape == "syn":
                row += list(values[sel[0], sel[1]])
            else:
                row += list(values[sel])
        if b.structure is not None:
            row.append(b.structure.n_present)
        if self.n and self.rows[self.n - 1, 0] == row[0]:
            self.n -= 1
        self.rows[self.n] = row
        self.n += 1

    def _probe(self, name, step):
        b = self.b
        if name in ("v", "g", "y"):
            return getattr(b.net, name).copy()
        if b.rel is not None and name in ("u", "x"):
            from ..core.release import probe

            return probe(b.rel, name, step, b.w)
        return np.asarray(b.module.probe(b.state, b.params, name, step))


# ---------------------------------------------------------------------------- threads
THREADS_ENV = "PLASTIC_THREADS"
SPLIT_MIN_SYNAPSES = 100_000  # automatic threads only for networks this big ...
SPLIT_MIN_POSTS = 64  # ... with this many post neurons per block at least ...
SPLIT_MIN_CHUNK_S = 2e-3  # ... and this much estimated work between two samples (a chunk)
BLOCK_ALIGN = 8  # block bounds are multiples of 8 post neurons (a 64-byte cache line of float64)


def run_threads(threads: int | None = None) -> tuple[int, bool]:
    """How many threads one run may use, and whether that was asked for explicitly.

    ``threads`` (``plastic run --threads``), else ``$PLASTIC_THREADS``; 0 or neither: automatic,
    the cores this process may use, but 1 in a worker process (``--jobs``, Dask), whose
    siblings already use the cores."""
    if threads is None:
        env = os.environ.get(THREADS_ENV, "").strip()
        if env:
            try:
                threads = int(env)
            except ValueError:
                threads = -1
            if threads < 0:
                raise PlasticError(f"{THREADS_ENV}={env!r}: expected a number of threads (0: automatic)")
    if threads:
        return max(1, int(threads)), True
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        return 1, False
    from .parallel import default_jobs

    return default_jobs(), False


def block_bounds(n_post: int, blocks: int) -> list[tuple[int, int]]:
    """Post neurons ``0..n_post`` as at most ``blocks`` contiguous ranges ``(j0, j1)`` of equal
    size rounded up to a multiple of BLOCK_ALIGN (the last one takes the rest)."""
    size = -(-n_post // max(1, blocks))
    size = max(BLOCK_ALIGN, -(-size // BLOCK_ALIGN) * BLOCK_ALIGN)
    return [(j, min(j + size, n_post)) for j in range(0, n_post, size)] or [(0, n_post)]


def plan_blocks(b: Built, threads: int | None = None) -> list[tuple[int, int]]:
    """The blocks of post neurons that threads advance separately (one block: one thread).

    Only rules with ``SPEC.post_blocks`` and spiking neurons (clamped, LIF) are split. With an
    explicit thread count (``threads`` or ``$PLASTIC_THREADS``) always, into that many blocks
    (fewer when there are not 8 post neurons for each); automatically only networks of at least
    SPLIT_MIN_SYNAPSES synapses, SPLIT_MIN_POSTS post neurons a block and SPLIT_MIN_CHUNK_S of
    estimated work between two samples, where threads pay for their synchronisation."""
    from ..core.net import CLAMPED, LIF

    p = b.protocol
    n_pre, n_post = b.w.shape
    if not b.module.SPEC.post_blocks or b.net.model not in (CLAMPED, LIF) or n_post < 2 or b.rel is not None:
        return [(0, n_post)]  # (before run_threads: a sweep of small networks asks nothing more)
    n, explicit = run_threads(threads)
    if n <= 1:
        return [(0, n_post)]
    if not explicit:
        n = min(n, n_post // SPLIT_MIN_POSTS)
        if n <= 1 or n_pre * n_post < SPLIT_MIN_SYNAPSES:
            return [(0, n_post)]
        from .parallel import estimate_seconds

        every = max(1, int(round(p.record.interval / p.dt)))
        if estimate_seconds(p) * min(every, p.n_steps) / max(1, p.n_steps) < SPLIT_MIN_CHUNK_S:
            return [(0, n_post)]
    return block_bounds(n_post, n)


class Stepper:
    """Advances a built network over chunks of steps: one call of the rule's kernel (for rules
    with blocks, ``advance_block`` over all post neurons: the kernel that threads call too, so a
    first run compiles one entry kernel, not two), or blocks of post neurons (``plan_blocks``) by
    threads, each with its own ``block_net`` and ``block_state`` and each draining its own out
    buffer of LIF post spikes. Block 0 runs on the calling thread with ``b.net`` and ``b.state``
    themselves; every block computes the same pre traces, so ``b.state`` is complete for the
    Recorder after each chunk. The weights, neuron arrays and post traces are shared, each block
    writing its own columns."""

    def __init__(self, b: Built, bounds: list[tuple[int, int]]):
        from ..core.net import block_net

        self.b = b
        self.bounds = bounds
        self.spikes = [([], []) for _ in bounds]  # per block: LIF post spike steps, indices
        self.compiled_at = None
        self.pool = None
        self.nets = [b.net]
        self.states = [b.state]
        if len(bounds) > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.nets += [block_net(b.net) for _ in bounds[1:]]
            self.states += [b.module.block_state(b.state) for _ in bounds[1:]]
            self.pool = ThreadPoolExecutor(len(bounds) - 1, thread_name_prefix="plastic-block")

    @property
    def threads(self) -> int:
        return len(self.bounds)

    def run(self, s: int, nxt: int, blocked) -> None:
        """Advance every block from step ``s`` to ``nxt``."""
        if self.pool is None:
            self._run(0, s, nxt, blocked)
            return
        if self.compiled_at is None:  # compile (or load) on this thread, before the others call it
            from ..core.net import lif_arg

            b = self.b
            b.module.advance_block(b.w, b.net, b.state, b.params, s, s, blocked, 0, 0, lif_arg(b.net), b.rel, b.present, b.inh)
            self.compiled_at = time.perf_counter()
        from concurrent.futures import wait

        futures = [self.pool.submit(self._run, k, s, nxt, blocked) for k in range(1, len(self.bounds))]
        try:
            self._run(0, s, nxt, blocked)
        finally:
            wait(futures)  # the other blocks write shared arrays: never leave them running
        for f in futures:
            f.result()

    def _run(self, k: int, s: int, nxt: int, blocked) -> None:
        from ..core.net import OUT_N, lif_arg

        b = self.b
        net, st = self.nets[k], self.states[k]
        j0, j1 = self.bounds[k]
        steps, idx = self.spikes[k]
        whole = self.pool is None
        # a rule with blocks runs one block like many: one kernel (and signature) to compile
        blocks = b.module.SPEC.post_blocks
        while s < nxt:
            if blocks:
                reached = b.module.advance_block(b.w, net, st, b.params, s, nxt, blocked, j0, j1, lif_arg(net), b.rel, b.present, b.inh)
            else:  # rel and present explicit (None: compiled away), one signature for the AOT build
                reached = b.module.advance(b.w, net, st, b.params, s, nxt, blocked, b.rel, b.present)
            if whole and self.compiled_at is None:
                self.compiled_at = time.perf_counter()
            n = net.cursor[OUT_N]
            if n:
                steps.append(net.out_step[:n].copy())
                idx.append(net.out_idx[:n].copy())
                net.cursor[OUT_N] = 0
            if reached < s:  # pragma: no cover - defensive
                raise SimulationError(f"kernel went backwards at step {s}")
            if reached == s and reached < nxt:  # out buffer too small for one step
                net = net._replace(out_step=np.zeros(2 * net.out_step.size, np.int64), out_idx=np.zeros(2 * net.out_idx.size, np.int64))
                self.nets[k] = net
                if k == 0:
                    b.net = net
            s = reached

    def post_spikes(self) -> tuple[np.ndarray, np.ndarray]:
        """The LIF post spikes in (step, index) order, as one call gives them. Empties the
        per-block lists as it goes (no second copy of every spike at the peak)."""
        steps = [x for blk in self.spikes for x in blk[0]]
        idx = [x for blk in self.spikes for x in blk[1]]
        for blk in self.spikes:
            blk[0].clear()
            blk[1].clear()
        if len(self.bounds) > 1:  # blocks in index order, each in time order: by step, then index
            return sort_events(steps, idx, self.b.w.shape[1])
        if not steps:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        out = np.concatenate(steps)
        steps.clear()
        return out, np.concatenate(idx)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


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

    p = b.protocol
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


def _prepare(b: Built):
    """The initial weights a small network keeps, and the run's Recorder."""
    # a small network keeps a copy of its initial weights: the summary then need not draw them
    # again from the seed, which costs more than the copy in a sweep of tiny networks
    w_initial = b.w_initial
    if w_initial is None and b.w.size <= KEEP_INITIAL and b.structure is None and b.rel is None:
        w_initial = b.w.copy()
    return w_initial, Recorder(b)


def _finish(b: Built, values: tuple, w_initial, rec: Recorder, stepper: Stepper, t_build: float, t1: float, compiled_at, t_sim: float | None = None) -> RunResult:
    """The RunResult of a condition whose phases have run (the last sample, counts, spikes).
    ``t1``: when its simulation began; ``t_sim``: its simulation time, where the caller knows it
    (a batch shares its time among its conditions)."""
    from ..core.net import CLAMPED

    p = b.protocol
    if rec.rows[rec.n - 1, 0] != p.n_steps * p.dt:
        rec.sample(p.n_steps, _check_finite(b, p.n_steps, rec))
    _check_stats(b, rec)
    if t_sim is None:
        t_sim = time.perf_counter() - t1
    post = b.post_events if b.net.model == CLAMPED else stepper.post_spikes()
    pre = b.pre_events
    n_pre, n_post = b.w.shape
    spec = b.module.SPEC
    n_pre_spk = int(pre[0].size)
    n_post_spk = int(post[0].size)
    if spec.inputs == "rates" or spec.weight_from_state:
        updates = n_pre * n_post * p.n_steps
    else:
        updates = n_pre_spk * n_post + n_post_spk * n_pre
    counts = {"steps": p.n_steps, "pre_spikes": n_pre_spk, "post_spikes": n_post_spk, "synaptic_updates": int(updates)}
    if p.record.spikes:
        if p.record.spikes == "pre":
            post = (post[0][:0], post[1][:0])
        elif p.record.spikes == "post":
            pre = (pre[0][:0], pre[1][:0])
        spikes = spike_table(pre, post, p.dt)
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


TRIM_MIN_SYNAPSES = 1 << 20  # networks this big give their freed heap back (trim_heap)
_TRIM = None


def trim_heap() -> None:
    """Give the free memory of the C heap back to the system (glibc's ``malloc_trim``; nothing
    elsewhere). NumPy's temporaries below glibc's mmap threshold (which grows to 32 MiB as
    arrays are freed) return to the heap when freed, and stay resident beside a big weight
    matrix: W4's process holds 20 MiB less while its tables are written (460 -> 440 MiB), room
    for the writers' buffers below the peak at the end of the run."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL(None).malloc_trim
            _TRIM.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):  # not glibc
            _TRIM = False
    if _TRIM:
        _TRIM(0)


# ---------------------------------------------------------------------------- batches
BATCH_ENV = "PLASTIC_BATCH"  # 0: every condition on its own (the twin of the batched runs)
BATCH_SYNAPSES = 4096  # conditions of at most this many synapses are batched ...
BATCH_BYTES = 256 << 20  # ... and at most this much estimated memory of them built at once
BATCH_MAX = 4096  # ... and at most this many conditions


def batching() -> bool:
    """Whether the conditions of a worker may run in batches (``core.batch``): not with
    ``PLASTIC_BATCH=0`` nor ``PLASTIC_RECORD=python``."""
    return os.environ.get(BATCH_ENV, "1").strip().lower() not in ("0", "false", "no", "off") and os.environ.get("PLASTIC_RECORD") != "python"


def batchable(p: Protocol) -> bool:
    """Whether a condition may join a batch, from its protocol alone (before it is built)."""
    spec = rule_registry.spec(p.rule.kind)
    s = p.synapses
    return (
        spec.post_blocks
        and spec.inputs == "spikes"
        and s.n_pre * s.n_post <= BATCH_SYNAPSES
        and s.release is None
        and s.structure is None
        and not s.inhibitory
        and not any(t.kind in ("patterns", "gaussian") for ph in p.phases for t in ph.pre)
    )


def batch_key(b: Built, rec: Recorder, stepper: Stepper):
    """What conditions must share to run in one batch (``core.batch``), or None where this one
    cannot: the kernels' argument types, the phases and block masks, the recording plan."""
    from ..core import batch, record

    if not hasattr(b.module, "advance_block") or b.rel is not None or b.structure is not None or b.inh is not None:
        return None
    if record.supported(b, rec, stepper) is not None or not batch.sources_ok(b, rec):
        return None
    p = b.protocol
    phases = tuple((a, e, bl.tobytes()) for a, e, bl, rate in b.phases if rate is None)
    if len(phases) != len(b.phases):
        return None
    try:
        types = batch.signature((b.w, b.net, b.state, b.params))
    except TypeError:  # a value the batch cannot pack
        return None
    sel = tuple((name, shape, None if x is None else np.asarray(x).tobytes()) for name, shape, x in rec.state)
    return (b.module.SPEC.kind, types, phases, p.n_steps, rec.every, tuple(rec.columns), rec.rows.shape[0], rec.wi.tobytes(), rec.wj.tobytes(), sel, p.record.stats)


def run_conditions(conds, progress=None, threads: int | None = None):
    """Run conditions in order, small ones of equal kernel types in batches (``core.batch``):
    returns ``(results, error)``, the results before the first failing condition and its error
    (a ``PlasticError``, as :func:`run_condition` raises it) or None. The results, and the
    error, are those of :func:`run_condition` one by one. ``progress(condition, step, total)``."""
    conds = list(conds)
    out: list = []
    more = {} if threads is None else {"threads": threads}
    if not batching() or len(conds) < 2:
        for cond in conds:
            try:
                out.append(run_condition(cond, _progress_of(progress, cond), **more))
            except PlasticError as exc:
                return out, exc
        return out, None
    k = 0
    while k < len(conds):
        window = []
        size = 0
        while k < len(conds) and len(window) < BATCH_MAX:
            p = conds[k].protocol
            if not batchable(p):
                break
            size += estimate_memory(p)["total"]
            if window and size > BATCH_BYTES:
                break
            window.append(conds[k])
            k += 1
        if not window:
            try:
                out.append(run_condition(conds[k], _progress_of(progress, conds[k]), **more))
            except PlasticError as exc:
                return out, exc
            k += 1
            continue
        got, err = _run_window(window, progress, threads)
        out += got
        if err is not None:
            return out, err
    return out, None


def _progress_of(progress, cond):
    if progress is None:
        return None

    def cb(step):
        progress(cond.index, step, cond.protocol.n_steps)

    return cb


def _run_window(conds, progress, threads):
    """Build ``conds`` (all ``batchable``), run those with equal ``batch_key`` together and the
    rest one by one; ``(results in order, first error)``."""
    from ..core import batch

    built, keys, errors = {}, {}, {}
    groups: dict = {}
    with np.errstate(all="ignore"):
        for cond in conds:
            t0 = time.perf_counter()
            try:
                b = build(cond.protocol, cond.values)
            except PlasticError as exc:
                errors[cond.index] = exc
                continue
            t1 = time.perf_counter()
            w_initial, rec = _prepare(b)
            stepper = Stepper(b, plan_blocks(b, threads))
            key = batch_key(b, rec, stepper)
            # (build_s: the build alone; the batch's own Python per condition counts as simulation)
            built[cond.index] = (b, w_initial, rec, stepper, t1 - t0, time.perf_counter() - t1)
            keys[cond.index] = key
            if key is not None:
                groups.setdefault(key, []).append(cond.index)
        results: dict = {}
        by_index = {c.index: c for c in conds}
        for key, members in groups.items():
            if len(members) < 2:
                continue
            parts = [built[i] for i in members]
            t1 = time.perf_counter()
            bad = batch.run([x[0] for x in parts], [x[2] for x in parts], [x[3] for x in parts])
            t_sim = (time.perf_counter() - t1) / len(members)
            for i, x, step in zip(members, parts, bad):
                b, w_initial, rec, stepper, t_build, t_prep = x
                cond = by_index[i]
                try:
                    if step is not None:
                        _check_finite(b, step, rec)
                        raise AssertionError("the kernel found a non-finite value that the check did not")  # pragma: no cover
                    r = _finish(b, cond.values, w_initial, rec, stepper, t_build, t1, stepper.compiled_at, t_sim + t_prep)
                    r.index = i
                    results[i] = r
                    if progress is not None:
                        progress(i, cond.protocol.n_steps, cond.protocol.n_steps)
                except SimulationError as exc:
                    errors[i] = _named(cond, exc)
                built[i] = None  # (its arrays live on in the result)
    out = []
    for cond in conds:
        i = cond.index
        if i in errors:
            return out, errors[i]
        if i not in results:  # not batched: on its own, as run_condition does, with what build made
            b, w_initial, rec, stepper, t_build, _ = built[i]
            built[i] = None
            try:
                with np.errstate(all="ignore"):
                    stepper.close()
                    r = simulate_built(b, cond.values, t_build, _progress_of(progress, cond), threads)
                r.index = i
                results[i] = r
            except SimulationError as exc:
                return out, _named(cond, exc)
            except PlasticError as exc:
                return out, exc
        out.append(results.pop(i))
    return out, None


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
