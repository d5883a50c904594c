"""Recording inside the kernels: trace samples without a return to Python per sample.

``engine.simulate`` samples the traces every ``record.interval``. Done from Python, each sample
ends a kernel call (``Stepper._run``, ``Recorder.sample``): the STDP window sweep with its
default recording (101 conditions x 61 samples) made 6,000 round trips for 0.2 ms of kernel
work each. Here a jitted *driver*, one per rule module (:func:`driver`), loops over the sample
steps of a chunk itself: it calls the rule's own ``advance_block`` (unchanged) up to each sample
step, in exactly the calls the Python loop makes, then writes the sample into a preallocated
buffer: the chosen weights ``w[i,j]``, the statistics (``mean`` from NumPy's pairwise
summation, ``std``, ``min``, ``max``), the finite check, and state variables. A chunk returns
to Python only at a phase boundary, at the end, when the buffer is full, when the post-spike
out buffer of LIF neurons is full (Python drains it, as before), or at a non-finite value
(Python then raises the usual error). The samples are identical, bit for bit, to the Python
Recorder's (tests/test_record.py compares both on random protocols).

State variables: the kernel copies the stored value (and the step of its last update, for
event-driven traces); the decay to the sample step, ``x exp(-(step - t) dt / tau)``, is
applied by NumPy afterwards over the whole buffer, the same elementwise arithmetic as the
rule's Python ``probe``. A rule declares its decaying traces in ``RECORD_TRACES``
(``{name: (value field, step field, tau field of Params)}``); the neuron variables ``v``, ``g``,
``y`` are copied as they are.

Where something has no kernel path (:func:`supported` says why not): a rule without
``advance_block``, rate inputs, several thread blocks, a recorded variable without a
``RECORD_TRACES`` entry, the mean of a big state array, ``std`` of ``float32`` weights, the
engine keeps its per-sample Python path, so new mechanisms stay correct until they add theirs.

Driver functions: the same code (:func:`_drive`) with the rule's ``advance_block`` in its
globals, named ``drive_<rule>`` (its own Numba cache index and its own entry in the
ahead-of-time module of ``plastic warmup``).
"""

from __future__ import annotations

import types as _pytypes

import numpy as np

from .jit import jit

DONE, FULL, OUT, BAD = 0, 1, 2, 3  # why a driver call returned (io[2])
FIRST = 4  # (io[2] on the way in: sample the starting step too)
MEAN, STD, MIN, MAX = 0, 1, 2, 3
STAT_CODES = {"mean": MEAN, "std": STD, "min": MIN, "max": MAX}
BUFFER_ROWS = 4096  # samples kept in the kernel's buffer between two returns to Python ...
BUFFER_BYTES = 4 << 20  # ... and at most this many bytes of them (runs that record many weights)
NEURON_VARS = ("v", "g", "y")
SOURCES = 8  # state arrays a driver reads (v, g, y and a rule's traces)


# ---------------------------------------------------------------------------- kernels
# Compile time (a first run compiles its rule's driver and all it calls): the helpers here are
# compiled on their own, each once, with one signature whatever the rule (so the drivers of all
# rules share them, in one process and in Numba's cache): no literal arguments (Numba compiles a
# function once per literal value it is called with: pairwise_sum with the constants 0 and 1 was
# compiled twice and _leaf four times, 2.3 s of a 10 s first STDP run), and ``sample_row`` takes
# ``v`` and ``y``, not the rule's Net.
@jit
def _leaf(a, lo, n, mode, m):
    """``pairwise_sum`` of at most 128 elements (1 <= n)."""
    if n < 8:
        res = a[lo] - a[lo]  # +0 in the array's type
        for i in range(lo, lo + n):
            x = a[i]
            if mode == 1:
                x = (x - m) * (x - m)
            res += x
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    if mode == 1:
        r0, r1, r2, r3 = (r0 - m) * (r0 - m), (r1 - m) * (r1 - m), (r2 - m) * (r2 - m), (r3 - m) * (r3 - m)
        r4, r5, r6, r7 = (r4 - m) * (r4 - m), (r5 - m) * (r5 - m), (r6 - m) * (r6 - m), (r7 - m) * (r7 - m)
    i = 8
    stop = n - n % 8
    while i < stop:
        k = lo + i
        if mode == 1:
            r0 += (a[k] - m) * (a[k] - m)
            r1 += (a[k + 1] - m) * (a[k + 1] - m)
            r2 += (a[k + 2] - m) * (a[k + 2] - m)
            r3 += (a[k + 3] - m) * (a[k + 3] - m)
            r4 += (a[k + 4] - m) * (a[k + 4] - m)
            r5 += (a[k + 5] - m) * (a[k + 5] - m)
            r6 += (a[k + 6] - m) * (a[k + 6] - m)
            r7 += (a[k + 7] - m) * (a[k + 7] - m)
        else:
            r0 += a[k]
            r1 += a[k + 1]
            r2 += a[k + 2]
            r3 += a[k + 3]
            r4 += a[k + 4]
            r5 += a[k + 5]
            r6 += a[k + 6]
            r7 += a[k + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        x = a[lo + i]
        if mode == 1:
            x = (x - m) * (x - m)
        res += x
        i += 1
    return res


@jit
def pairwise_into(a, lo, n, mode, m, frames, left):
    """:func:`pairwise_sum` with its stack given: ``frames`` (``(3, 64)`` int64) and ``left``
    (64 elements of ``a``'s type), so that a sample allocates nothing."""
    top = 0  # the frames: first element, length, stage (0 new, 1 left half pending, 2 right
    frames[0, 0], frames[1, 0], frames[2, 0] = lo, n, 0  # half pending); left: the left half's sum
    while True:
        if frames[1, top] <= 128:
            r = _leaf(a, frames[0, top], frames[1, top], mode, m)
            while True:  # return r to the frames below
                top -= 1
                if top < 0:
                    return r
                if frames[2, top] == 1:  # the left half is done: the right half next
                    left[top] = r
                    frames[2, top] = 2
                    n2 = frames[1, top] // 2
                    n2 -= n2 % 8
                    frames[0, top + 1], frames[1, top + 1], frames[2, top + 1] = frames[0, top] + n2, frames[1, top] - n2, 0
                    top += 1
                    break
                r = left[top] + r
        else:
            frames[2, top] = 1
            n2 = frames[1, top] // 2
            n2 -= n2 % 8
            frames[0, top + 1], frames[1, top + 1], frames[2, top + 1] = frames[0, top], n2, 0
            top += 1


@jit
def pairwise_sum(a, lo, n, mode, m):
    """NumPy's pairwise summation (``np.sum`` of a contiguous array, numpy/_core/src/umath/
    loops_utils.h.src) of ``a[lo:lo+n]`` (mode 0) or of ``(a[k] - m)**2`` (mode 1, the sum of
    ``np.var``), in the array's precision: the same additions in the same order, so the same
    bits. Blocks of up to 128 elements: eight accumulators (``_leaf``); longer: the sum of two
    halves (the first a multiple of 8 long), NumPy's recursion written as a loop over a stack
    (n >= 1)."""
    return pairwise_into(a, lo, n, mode, m, np.empty((3, 64), np.int64), np.empty(64, a.dtype))


@jit
def _all_finite(a):
    for k in range(a.shape[0]):
        if not np.isfinite(a[k]):
            return False
    return True


@jit
def sample_row(w, v, y, step, dt, row, trow, wi, wj, stats, check_neurons, src, srct, cols, frames, left):
    """Write the sample of ``step`` into ``row`` (and the last-update steps of decaying state
    into ``trow``), as ``engine.Recorder.sample`` after ``engine._check_finite`` computes it.
    Returns False, writing nothing, where a weight (or a neuron's v or y) is not finite.
    ``frames``, ``left``: :func:`pairwise_into`'s stack (``left`` also rounds the mean to the
    weights' type)."""
    flat = w.ravel()
    size = flat.shape[0]
    zero = np.int64(0)  # (not the literal 0: see above)
    w_sum = pairwise_into(flat, zero, np.int64(size), zero, flat[0], frames, left)
    if not np.isfinite(w_sum) and not _all_finite(flat):
        return False
    if check_neurons and not (_all_finite(v) and _all_finite(y)):
        return False
    row[0] = step * dt
    c = 1
    for k in range(wi.shape[0]):
        row[c] = w[wi[k], wj[k]]
        c += 1
    for k in range(stats.shape[0]):
        code = stats[k]
        if code == MEAN:  # the quotient in float64, rounded to the weights' type (Recorder.sample)
            left[0] = np.float64(w_sum) / np.float64(size)
            row[c] = left[0]
        elif code == STD:
            m = w_sum / size
            row[c] = np.sqrt(pairwise_into(flat, zero, np.int64(size), np.int64(1), m, frames, left) / size)
        elif code == MIN:
            x = flat[0]
            for q in range(1, size):
                if flat[q] < x:
                    x = flat[q]
            row[c] = x
        else:
            x = flat[0]
            for q in range(1, size):
                if flat[q] > x:
                    x = flat[q]
            row[c] = x
        c += 1
    for k in range(cols.shape[0]):
        a, e = cols[k, 0], cols[k, 1]
        row[c] = src[a][e]
        trow[k] = srct[a][e]
        c += 1
    return True


def _drive(w, net, st, pr, blocked, j0, j1, lif, rel, end, every, rows, trows, io, wi, wj, stats, check_neurons, src, srct, cols):
    """Advance from step ``io[0]`` to ``end`` and sample at each multiple of ``every`` (and at
    ``io[0]`` itself where ``io[2]`` is FIRST), into ``rows[io[1]:]``. Calls ``advance_block``
    exactly as ``engine.Stepper`` does (up to each sample step). Sets ``io[0]`` to the step reached, ``io[1]`` to the rows written, ``io[2]``
    to DONE, FULL (buffer full), OUT (out buffer of post spikes full: drain it) or BAD (not
    finite at step ``io[0]``; not sampled). (One call of ``sample_row``, which is inlined.)"""
    s = io[0]
    n = io[1]
    cap = rows.shape[0]
    dt = net.dt
    frames = np.empty((3, 64), np.int64)  # pairwise_into's stack
    left = np.empty(64, w.dtype)
    status = DONE
    take = io[2] == FIRST  # the sample of the starting step first
    while True:
        if take:
            if not sample_row(w, net.v, net.y, s, dt, rows[n], trows[n], wi, wj, stats, check_neurons, src, srct, cols, frames, left):
                status = BAD
                break
            trows[n, trows.shape[1] - 1] = s
            n += 1
        if s >= end:
            break
        nxt = min(end, (s // every + 1) * every)
        if nxt % every == 0 and n >= cap:
            status = FULL
            break
        reached = advance_block(w, net, st, pr, s, nxt, blocked, j0, j1, lif, rel, None, None)  # noqa: F821 (the rule's, in the globals; inh None: Built.inh sends a run to the Python path)
        if reached < nxt:
            s = reached
            status = OUT
            break
        s = nxt
        take = s % every == 0
    io[0] = s
    io[1] = n
    io[2] = status
    return s


_DRIVERS: dict = {}


def _sources() -> str:
    """A hash of the kernel sources: part of a driver's name, so that Numba's cache (which
    watches only this file) never serves a driver compiled with another version of the rule."""
    global _SOURCES
    if _SOURCES is None:
        import hashlib

        from .native import kernel_sources

        h = hashlib.sha256()
        for f in kernel_sources():
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
        _SOURCES = h.hexdigest()[:12]
    return _SOURCES


_SOURCES = None


def driver(module):
    """The driver kernel of a rule module with ``advance_block`` (made once per module)."""
    kind = module.SPEC.kind
    d = _DRIVERS.get(kind)
    if d is None:
        g = dict(globals())  # this module's kernels (or, before Numba loads, their stand-ins)
        g["advance_block"] = module.advance_block
        name = f"drive_{kind}_{_sources()}"
        f = _pytypes.FunctionType(_drive.__code__, g, name)
        f.__qualname__ = name
        f.__module__ = __name__
        f.__doc__ = _drive.__doc__
        d = _DRIVERS[kind] = jit(f, entry=True)
    return d


# ---------------------------------------------------------------------------- planning
class Plan:
    """What the kernel writes per sample, in the Recorder's column order."""

    def __init__(self, b, rec):
        p = b.protocol
        self.stats = np.array([STAT_CODES[s] for s in p.record.stats], dtype=np.int64)
        self.wi, self.wj = rec.wi, rec.wj
        src, srct, cols, decay = [], [], [], []
        self.origins = []  # per source: ("net" | "state", value field, step field or None, tau field of Params or None)
        traces = getattr(b.module, "RECORD_TRACES", {})
        dummy_t = np.zeros(1, np.int64)
        for name, shape, sel in rec.state:
            if name in NEURON_VARS:
                x, t, tau = getattr(b.net, name), dummy_t, None
                self.origins.append(("net", name, None, None))
            else:
                xf, tf, tauf = traces[name]
                x, t, tau = getattr(b.state, xf), getattr(b.state, tf), float(getattr(b.params, tauf))
                self.origins.append(("state", xf, tf, tauf))
            src.append(np.ascontiguousarray(x, dtype=np.float64))
            srct.append(t)
            for e in np.asarray(sel, dtype=np.int64):
                cols.append((len(src) - 1, int(e)))
                decay.append(tau)
        # always SOURCES arrays (unused ones empty): one kernel signature for any recorded state,
        # so the one that plastic warmup compiles ahead of time serves every run
        src += [np.zeros(1)] * (SOURCES - len(src))
        srct += [dummy_t] * (SOURCES - len(srct))
        self.src, self.srct = tuple(src), tuple(srct)
        self.cols = np.array(cols, dtype=np.int64).reshape(-1, 2)
        self.decay = decay
        self.first_state_col = 1 + len(self.wi) + len(self.stats)
        self.check_neurons = b.net.model != 0

    def finish(self, rows, trows, steps, dt):
        """Bring the decaying state columns to their sample step (the rules' ``probe_trace``)."""
        for k, tau in enumerate(self.decay):
            if tau is not None:
                c = self.first_state_col + k
                rows[:, c] = rows[:, c] * np.exp(-(steps[:, 0] - trows[:, k]) * dt / tau)


# What this module knows of a protocol, a built run and its phases. Something new there (a
# mechanism that needs Python at chunk boundaries, say) sends the run to the Python path until
# this module learns of it: merges of new mechanisms stay correct without touching this file.
KNOWN_PROTOCOL = frozenset("name description seed dt duration synapses neuron phases rule block record file resolved".split())
KNOWN_BUILT = frozenset("protocol module net w w_initial params state phases pre_events post_events".split())  # (rel: not yet)
KNOWN_NET = frozenset("dt model pre_step pre_idx post_step post_idx cursor pre_now post_now out_step out_idx v g ref_until lif x y act dq_n dq_idx".split())


def _unknown(obj, known) -> list[str]:
    """The fields of ``obj`` not in ``known`` that hold something (not None, empty, 0 or False)."""
    import dataclasses

    names = [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else list(obj._fields)
    out = []
    for n in names:
        v = getattr(obj, n)
        if n in known or v is None:
            continue
        if isinstance(v, np.ndarray) and v.size == 0 or not isinstance(v, np.ndarray) and isinstance(v, (tuple, list, dict, bool, int, float)) and not v:
            continue
        out.append(n)
    return out


def supported(b, rec, stepper) -> str | None:
    """None where the kernels can record this run themselves, else why not (the engine then
    samples from Python)."""
    for what, obj, known in (("protocol", b.protocol, KNOWN_PROTOCOL), ("build", b, KNOWN_BUILT), ("net", b.net, KNOWN_NET)):
        new = _unknown(obj, known)
        if new:
            return f"{what} has {', '.join(new)}: not known to the kernels' recording"
    if any(len(ph) != 4 for ph in b.phases):
        return "phases with more than (first step, end step, block mask, rate input)"
    spec = b.module.SPEC
    if not spec.post_blocks or not hasattr(b.module, "advance_block"):
        return "rule without advance_block"
    if spec.inputs != "spikes" or any(ph[3] is not None for ph in b.phases):
        return "rate input"
    if stepper.threads > 1:
        return "several thread blocks"
    traces = getattr(b.module, "RECORD_TRACES", {})
    if len(rec.state) > SOURCES:
        return "more state variables than SOURCES"
    for name, shape, sel in rec.state:
        if sel is None or shape == "syn":
            return f"state {name}: mean or synapse-shaped"
        if name in NEURON_VARS:
            if getattr(b.net, name).dtype != np.float64:
                return f"state {name}: dtype"
        elif name not in traces:
            return f"state {name}: no RECORD_TRACES entry"
    if "std" in b.protocol.record.stats and b.w.dtype != np.float64:
        return "std of float32 weights"
    if not b.w.flags.c_contiguous or b.w.size == 0:
        return "weights layout"
    return None


def run(b, rec, stepper, progress, check_finite) -> None:
    """Advance every phase of ``b``, the kernels sampling into ``rec`` (empty: the sample of step
    0 is theirs too). ``check_finite(b, step, rec)``: the engine's check, which raises."""
    from .net import OUT_N, lif_arg

    p = b.protocol
    plan = Plan(b, rec)
    every = rec.every
    cap = max(1, min(BUFFER_ROWS, rec.rows.shape[0], BUFFER_BYTES // (8 * (len(rec.columns) + len(plan.cols) + 1))))
    rows = np.empty((cap, len(rec.columns)))
    trows = np.zeros((cap, len(plan.cols) + 1), np.int64)  # last column: the sample's step
    io = np.zeros(3, np.int64)
    drive = driver(b.module)
    steps_out, idx_out = stepper.spikes[0]
    n_post = b.w.shape[1]

    def flush(n):
        if n:
            r = rows[:n]
            plan.finish(r, trows[:n], trows[:n, -1:], p.dt)
            rec.rows[rec.n : rec.n + n] = r
            rec.n += n

    # the sample of step 0 comes with the first call (the Recorder's sample does not check that
    # values are finite: where an initial value is not, the Recorder takes that sample itself)
    first = bool(b.phases) and b.phases[0][0] == 0
    if not first:
        rec.sample(0)
    for a, end, blocked, _rate in b.phases:
        io[0] = a
        io[2] = DONE
        while io[0] < end or first:
            s = int(io[0])
            io[1] = 0
            if first:
                io[2] = FIRST
            net = b.net
            drive(b.w, net, b.state, b.params, blocked, 0, n_post, lif_arg(net), b.rel, end, every, rows, trows, io, plan.wi, plan.wj, plan.stats, plan.check_neurons, plan.src, plan.srct, plan.cols)
            if first:
                first = False
                if io[2] == BAD and rec.n == 0 and int(io[1]) == 0 and int(io[0]) == s:
                    rec.sample(s)
                    io[2] = DONE
                    continue
            if stepper.compiled_at is None:
                import time

                stepper.compiled_at = time.perf_counter()
            flush(int(io[1]))
            n = net.cursor[OUT_N]
            if n:
                steps_out.append(net.out_step[:n].copy())
                idx_out.append(net.out_idx[:n].copy())
                net.cursor[OUT_N] = 0
            status = int(io[2])
            if status == BAD:
                check_finite(b, int(io[0]), rec)
                raise AssertionError("the kernel found a non-finite value that the check did not")  # pragma: no cover
            if status == OUT and int(io[0]) == s:  # out buffer too small for one step
                b.net = net._replace(out_step=np.zeros(2 * net.out_step.size, np.int64), out_idx=np.zeros(2 * net.out_idx.size, np.int64))
                stepper.nets[0] = b.net  # (the same v, g, y arrays: the plan still holds)
            if progress is not None:
                progress(int(io[0]))
