"""Recording inside the kernels: trace samples without a return to Python per sample.

``engine.simulate`` samples the traces every ``record.interval``. Done from Python, each sample
ends a kernel call (``Stepper._run``, ``Recorder.sample``): the STDP window sweep with its
default recording (101 conditions x 1201 samples) made 121,000 round trips for 0.2 ms of
kernel work each (56 us a sample, 6.8 s of 6.9 s). Here a jitted *driver*, one per rule module
(:func:`driver`), loops over the sample steps of a chunk itself: it calls the rule's one
stepping entry (:func:`step_entry`: its own ``advance_block``, unchanged, or for rules without
one, calcium and receptor, its ``advance_kernel`` over all post neurons; the rate rules'
``advance``) up to each sample
step, in exactly the calls the Python loop makes, then writes the sample into a preallocated
buffer: the chosen weights ``w[i,j]``, the statistics (``mean`` from NumPy's pairwise
summation, ``std``, ``min``, ``max``), the finite check, and state variables. A chunk returns
to Python only at a phase boundary, at the end, when the buffer is full, when the post-spike
out buffer of LIF neurons is full (Python drains it, as before), or at a non-finite value
(Python then raises the usual error). The samples are identical, bit for bit, to the Python
Recorder's (tests/test_record.py compares both on random protocols).

State variables (:func:`state_reads`): the kernel copies stored values (and the steps of
their last updates); NumPy then brings them to the sample step over the whole buffer, with
the same elementwise arithmetic as the rule's Python ``probe``. A rule declares its decaying
traces in ``RECORD_TRACES`` (``{name: (value field, step field, tau field of Params)}``: ``x
exp(-(step - t) dt / tau)``), or, for anything else, a ``record_state(st, pr, name)`` that
names the arrays to read and the arithmetic (calcium's ``ca``, a sum of a pre and a post part;
the receptor rule's columns of its state matrix; transmitter release's ``u`` and ``x``:
``core.release.record_state``); the neuron variables ``v``, ``g``, ``y`` are copied as they
are. Transmitter release (``rel``) and inhibitory inputs (``inh``) are the kernels' own
arguments: the driver passes them on.

Rate rules: Python fills a chunk of up to RATE_ROWS steps of rate input rows
(:class:`RateChunks`, with the values of the Python path's smaller chunks) and the driver
samples inside it (a phase without rate input has rows of zeros: ``engine.build``).

State recorded as a mean (no recorded weights and more than 16 elements): the kernel reads
every element at each sample (at most MEAN_READS values a sample, so that a buffer holds
enough samples) and NumPy takes the mean of each row after the probe's arithmetic: the same
pairwise sum as ``np.mean`` of the probed array where that array is 1-d or C-contiguous (u and
x of release per pre neuron are a broadcast array, whose mean NumPy adds in another order).
A read of the weights themselves (release's ``u`` with presynaptic expression) is a read of
``w`` in place (source WEIGHTS), whatever its type.

Where something has no kernel path (:func:`supported` says why not): a rule without a
stepping entry, several thread blocks (the weight statistics of a sample need every block at
the sample step: NumPy's pairwise sum of the whole matrix cannot be put together from sums per
block with the same bits, so the blocks must meet at every sample, which they do in
``simulation.threads.Stepper``. A driver with a ``prange`` over the blocks between two samples
would do it in the kernels, but Numba's parallel loops take no tuples of arrays such as ``Net``
or a rule's ``State``: their fields must be passed one by one, those private to a block stacked,
and the tuples rebuilt in the loop; not done yet), ``synapses.structure`` (it steps
from Python at every chunk end, which is every sample, with NumPy's random generator), more
than MEAN_READS state values a sample, a mean of a broadcast array: the engine keeps its per-sample Python path, so new mechanisms stay correct until
they add theirs.

Driver functions: the same code (:func:`_drive`) with the rule's stepping entry in its
globals, named ``drive_<rule>`` (its own Numba cache index and its own entry in the
ahead-of-time module of ``plastic warmup``).
"""

from __future__ import annotations

import types as _pytypes

import numpy as np

from .jit import jit
from .net import Net

DONE, FULL, OUT, BAD = 0, 1, 2, 3  # why a driver call returned (io[2])
FIRST = 4  # (io[2] on the way in: sample the starting step too)
MEAN, STD, MIN, MAX = 0, 1, 2, 3
STAT_CODES = {"mean": MEAN, "std": STD, "min": MIN, "max": MAX}
BUFFER_ROWS = 4096  # samples kept in the kernel's buffer between two returns to Python ...
BUFFER_BYTES = 4 << 20  # ... and at most this many bytes of them (runs that record many weights)
NEURON_VARS = ("v", "g", "y")
MEAN_READS = 8192  # state values read at each sample at most (a mean reads every element), so a buffer holds >= 16 samples
SOURCES = 8  # state arrays a driver reads (v, g, y and a rule's traces)
WEIGHTS = -1  # the source of a read of the weights themselves (Plan.cols)


# ---------------------------------------------------------------------------- kernels
# Compile time (a first run compiles its rule's driver and all it calls): the helpers here are
# compiled on their own, each once, with one signature whatever the rule (so the drivers of all
# rules share them, in one process and in Numba's cache): no literal arguments (Numba compiles a
# function once per literal value it is called with: pairwise_sum with the constants 0 and 1 was
# compiled twice and _leaf four times, 2.3 s of a 10 s first STDP run), and ``sample_row`` takes
# ``v`` and ``y``, not the rule's Net.
@jit
def _leaf(a, lo, n, mode, m):
    """``pairwise_sum`` of at most 128 elements (1 <= n). The main loop indexes with unsigned
    integers: a signed index makes Numba test it for a negative value (wraparound) at every
    load, which keeps LLVM from vectorizing the eight accumulators (then 2x slower than np.sum)."""
    if n < 8:
        res = a[lo] - a[lo]  # +0 in the array's type
        for i in range(lo, lo + n):
            x = a[i]
            if mode == 1:
                x = (x - m) * (x - m)
            res += x
        return res
    u0, u1, u2, u3 = np.uint64(0), np.uint64(1), np.uint64(2), np.uint64(3)
    u4, u5, u6, u7, u8 = np.uint64(4), np.uint64(5), np.uint64(6), np.uint64(7), np.uint64(8)
    k = np.uint64(lo)
    r0, r1, r2, r3 = a[k], a[k + u1], a[k + u2], a[k + u3]
    r4, r5, r6, r7 = a[k + u4], a[k + u5], a[k + u6], a[k + u7]
    stop = np.uint64(lo + n - n % 8)
    k += u8
    if mode == 1:
        r0, r1, r2, r3 = (r0 - m) * (r0 - m), (r1 - m) * (r1 - m), (r2 - m) * (r2 - m), (r3 - m) * (r3 - m)
        r4, r5, r6, r7 = (r4 - m) * (r4 - m), (r5 - m) * (r5 - m), (r6 - m) * (r6 - m), (r7 - m) * (r7 - m)
        while k < stop:
            x0, x1, x2, x3 = a[k] - m, a[k + u1] - m, a[k + u2] - m, a[k + u3] - m
            x4, x5, x6, x7 = a[k + u4] - m, a[k + u5] - m, a[k + u6] - m, a[k + u7] - m
            r0 += x0 * x0
            r1 += x1 * x1
            r2 += x2 * x2
            r3 += x3 * x3
            r4 += x4 * x4
            r5 += x5 * x5
            r6 += x6 * x6
            r7 += x7 * x7
            k += u8
    else:
        while k < stop:
            r0 += a[k + u0]
            r1 += a[k + u1]
            r2 += a[k + u2]
            r3 += a[k + u3]
            r4 += a[k + u4]
            r5 += a[k + u5]
            r6 += a[k + u6]
            r7 += a[k + u7]
            k += u8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for i in range(lo + n - n % 8, lo + n):
        x = a[i]
        if mode == 1:
            x = (x - m) * (x - m)
        res += x
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
def _extreme_scan(a, big):
    """The smallest (``big``: largest) element of ``a``, the first of equal ones in order."""
    x = a[0]
    for q in range(1, a.shape[0]):
        if (a[q] > x) if big else (a[q] < x):
            x = a[q]
    return x


@jit
def extreme(a, big):
    """:func:`_extreme_scan` of finite values in eight lanes (unsigned indices, as ``_leaf``: the
    lanes vectorize; about 2x faster). Equal values have equal bits except 0.0 and -0.0: where the
    result is a zero, the scan picks the first one, as before."""
    n = a.shape[0]
    if n < 16:
        return _extreme_scan(a, big)
    u1, u2, u3, u4, u5, u6, u7, u8 = np.uint64(1), np.uint64(2), np.uint64(3), np.uint64(4), np.uint64(5), np.uint64(6), np.uint64(7), np.uint64(8)
    x0, x1, x2, x3, x4, x5, x6, x7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    k = u8
    stop = np.uint64(n - n % 8)
    if big:
        while k < stop:
            y0, y1, y2, y3, y4, y5, y6, y7 = a[k], a[k + u1], a[k + u2], a[k + u3], a[k + u4], a[k + u5], a[k + u6], a[k + u7]
            x0 = y0 if y0 > x0 else x0
            x1 = y1 if y1 > x1 else x1
            x2 = y2 if y2 > x2 else x2
            x3 = y3 if y3 > x3 else x3
            x4 = y4 if y4 > x4 else x4
            x5 = y5 if y5 > x5 else x5
            x6 = y6 if y6 > x6 else x6
            x7 = y7 if y7 > x7 else x7
            k += u8
        x = max(max(max(x0, x1), max(x2, x3)), max(max(x4, x5), max(x6, x7)))
        for q in range(n - n % 8, n):
            x = a[q] if a[q] > x else x
    else:
        while k < stop:
            y0, y1, y2, y3, y4, y5, y6, y7 = a[k], a[k + u1], a[k + u2], a[k + u3], a[k + u4], a[k + u5], a[k + u6], a[k + u7]
            x0 = y0 if y0 < x0 else x0
            x1 = y1 if y1 < x1 else x1
            x2 = y2 if y2 < x2 else x2
            x3 = y3 if y3 < x3 else x3
            x4 = y4 if y4 < x4 else x4
            x5 = y5 if y5 < x5 else x5
            x6 = y6 if y6 < x6 else x6
            x7 = y7 if y7 < x7 else x7
            k += u8
        x = min(min(min(x0, x1), min(x2, x3)), min(min(x4, x5), min(x6, x7)))
        for q in range(n - n % 8, n):
            x = a[q] if a[q] < x else x
    if x == 0:
        return _extreme_scan(a, big)
    return x


@jit
def _all_finite(a):
    for k in range(a.shape[0]):
        if not np.isfinite(a[k]):
            return False
    return True


@jit
def sample_row(w, v, y, step, dt, row, trow, wi, wj, stats, check_neurons, src, srct, cols, frames, left):
    """Write the sample of ``step`` into ``row`` (and the last-update steps of decaying state
    into ``trow``), as ``simulation.recorder.Recorder.sample`` after ``engine._check_finite`` computes it.
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
        elif code == STD:  # np.std: the mean, the squares and their sum in the weights' type
            # (``left[0]`` rounds to it), each quotient in float64 and rounded to that type
            left[0] = np.float64(w_sum) / np.float64(size)
            m = left[0]
            left[0] = np.float64(pairwise_into(flat, zero, np.int64(size), np.int64(1), m, frames, left)) / np.float64(size)
            row[c] = np.sqrt(left[0])
        else:
            row[c] = extreme(flat, code == MAX)
        c += 1
    for k in range(cols.shape[0]):
        a, e = cols[k, 0], cols[k, 1]
        if a == WEIGHTS:  # the weights themselves, in their own type (release's u with presynaptic expression)
            row[c] = flat[e]
            trow[k] = 0
        else:
            row[c] = src[a][e]
            trow[k] = srct[a][e]
        c += 1
    return True


def _drive(w, net, st, pr, blocked, j0, j1, lif, rel, end, every, rows, trows, io, wi, wj, stats, check_neurons, src, srct, cols, inh):
    """Advance from step ``io[0]`` to ``end`` and sample at each multiple of ``every`` (and at
    ``io[0]`` itself where ``io[2]`` is FIRST), into ``rows[io[1]:]``. Rate rules: ``net.x``
    holds the input rows from step ``io[3]`` on (``rows_from``). Calls ``advance_block``
    exactly as ``simulation.threads.Stepper`` does (up to each sample step). Sets ``io[0]`` to the step reached, ``io[1]`` to the rows written, ``io[2]``
    to DONE, FULL (buffer full), OUT (out buffer of post spikes full: drain it) or BAD (not
    finite at step ``io[0]``; not sampled). (One call of ``sample_row``, which is inlined.)"""
    s = io[0]
    n = io[1]
    x0 = io[3] if io.shape[0] > 3 else s  # rate rules: the step of the input row net.x[0]
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
        reached = advance_block(w, rows_from(net, s - x0), st, pr, s, nxt, blocked, j0, j1, lif, rel, None, inh)  # noqa: F821 (the rule's, in the globals)
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


def _whole(w, net, st, pr, s0, s1, blocked, j0, j1, lif, rel, present, inh):
    """The stepping entry of a rule without ``advance_block`` (calcium, receptor), with
    ``advance_block``'s arguments: its ``advance_kernel`` over all post neurons (``j0``, ``j1``,
    ``lif`` and ``inh`` are not its arguments: one block, the LIF parameters in ``net``, and
    inhibitory inputs for stdp and triplet only). (Compiled apart: inlined, with ``rows_from``,
    the ahead-of-time compiler failed to type the driver.)"""
    return advance_kernel(w, net, st, pr, s0, s1, blocked, rel, present)  # noqa: F821 (the rule's, in the globals)


@jit  # (not inlined: see _whole)
def _net_as_is(net, k):
    """``rows_from`` of the spike rules: the net as it is."""
    return net


@jit
def _rows_from(net, k):
    """``rows_from`` of the rate rules: ``net`` with its input rows from row ``k`` on (a rate
    rule's ``advance(..., s0, s1, ...)`` reads the row of step ``s`` at ``x[s - s0]``)."""
    return Net(net.dt, net.model, net.pre_step, net.pre_idx, net.post_step, net.post_idx, net.cursor, net.pre_now, net.post_now, net.out_step, net.out_idx,
               net.v, net.g, net.ref_until, net.lif, net.x[k:], net.y, net.act, net.dq_n, net.dq_idx)


_DRIVERS: dict = {}
_STEPS: dict = {}


def _function(template, g: dict, name: str):
    """``template``'s code with the globals ``g``, named ``name`` (its own Numba cache index)."""
    f = _pytypes.FunctionType(template.__code__, g, name)
    f.__qualname__ = name
    f.__module__ = __name__
    f.__doc__ = template.__doc__
    return f


def has_driver(module) -> bool:
    """Whether a rule module has a stepping entry that the driver can call: ``advance_block``
    (rules with ``SPEC.post_blocks``) or ``advance_kernel`` (over all post neurons)."""
    return bool(module.SPEC.post_blocks and hasattr(module, "advance_block")) or hasattr(module, "advance_kernel") or module.SPEC.inputs == "rates"


def step_entry(module):
    """The one stepping entry the driver calls, with ``advance_block``'s arguments: the rule's
    ``advance_block``, else :func:`_whole` over its ``advance_kernel`` or, for the rate rules,
    over their (jitted) ``advance`` (made once per module)."""
    if module.SPEC.post_blocks and hasattr(module, "advance_block"):
        return module.advance_block
    kind = module.SPEC.kind
    f = _STEPS.get(kind)
    if f is None:
        kernel = module.advance_kernel if hasattr(module, "advance_kernel") else module.advance
        f = _STEPS[kind] = jit(_function(_whole, {"advance_kernel": kernel}, f"step_{kind}_{_sources()}"))
    return f


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
    """The driver kernel of a rule module (:func:`has_driver`; made once per module): the one
    code of :func:`_drive` calling the rule's :func:`step_entry`."""
    kind = module.SPEC.kind
    d = _DRIVERS.get(kind)
    if d is None:
        g = dict(globals())  # this module's kernels (or, before Numba loads, their stand-ins)
        g["advance_block"] = step_entry(module)
        g["rows_from"] = _rows_from if module.SPEC.inputs == "rates" else _net_as_is
        d = _DRIVERS[kind] = jit(_function(_drive, g, f"drive_{kind}_{_sources()}"), entry=True)
    return d


# ---------------------------------------------------------------------------- planning
def _same(F, T, steps, dt):
    return F[0]


def _is_weights(x, t, w) -> bool:
    """Whether a read of :func:`state_reads` is the weights (``w.reshape(-1)``): the kernels then
    read ``w`` itself (source WEIGHTS), in its own type, not a float64 copy made once."""
    return t is None and isinstance(x, np.ndarray) and x.ndim == 1 and x.size == w.size and np.shares_memory(x, w)


def state_reads(b, name):
    """How the kernels record the state variable ``name`` of the built run ``b``: ``(reads,
    finish)``, or None where they cannot. ``reads``: a tuple of ``(values, steps, kind, stride,
    offset)``: a float64 array and an int64 array (either None) read at the same element each
    sample, ``kind*stride + offset``, where ``kind`` is "pre", "post" or "syn" (``i``, ``j`` or
    ``i * n_post + j`` of the recorded synapse or neuron). ``finish(F, T, steps, dt)``: the
    probed values from the read values ``F[r]`` and steps ``T[r]`` (one column each, over the
    samples) and the sample steps, with the same NumPy arithmetic as the rule's ``probe`` (so
    the same bits). Neuron variables are copied; a rule's ``RECORD_TRACES`` (a value and the
    step of its last update, decaying with a time constant of Params) decay to the sample step;
    other variables come from the rule's ``record_state(st, pr, name)`` (same result, or None)."""
    if getattr(b, "rel", None) is not None and name in ("u", "x"):  # (the Recorder's order)
        from .release import record_state

        return record_state(b.rel, name, b.w)
    if name in NEURON_VARS:
        return ((getattr(b.net, name), None, "post", 1, 0),), _same
    traces = getattr(b.module, "RECORD_TRACES", {})
    if name in traces:
        xf, tf, tauf = traces[name]
        tau = float(getattr(b.params, tauf))

        def decayed(F, T, steps, dt):
            return F[0] * np.exp(-(steps - T[0]) * dt / tau)

        return ((getattr(b.state, xf), getattr(b.state, tf), b.module.SPEC.state_var(name).shape, 1, 0),), decayed
    f = getattr(b.module, "record_state", None)
    return None if f is None else f(b.state, b.params, name)


class Plan:
    """What the kernel writes per sample, in the Recorder's column order: the weights and
    statistics, then the raw reads of the state variables (:func:`state_reads`), which
    :meth:`finish` turns into the recorded columns."""

    def __init__(self, b, rec):
        p = b.protocol
        self.stats = np.array([STAT_CODES[s] for s in p.record.stats], dtype=np.int64)
        self.wi, self.wj = rec.wi, rec.wj
        n_post = b.w.shape[1]
        src, srct, keys, cols, n_cols = [], [], {}, [], 0
        self.origins = []  # per source: ("net" | "state", value field, step field or None, tau field of Params or None), None for others (core.batch)
        self.vars = []  # (finish, read positions (elements x reads of the variable), whether its mean is recorded)
        traces = getattr(b.module, "RECORD_TRACES", {})
        for name, shape, sel in rec.state:
            reads, finish = state_reads(b, name)
            origin = ("net", name, None, None) if name in NEURON_VARS else ("state", *traces[name]) if name in traces else None
            where = []
            for x, t, kind, stride, offset in reads:
                if _is_weights(x, t, b.w):
                    where.append((WEIGHTS, kind, stride, offset))
                    continue
                key = (id(x), id(t))
                if key not in keys:
                    xs = np.zeros(t.size) if x is None else np.ascontiguousarray(x, dtype=np.float64)
                    ts = np.zeros(xs.size, np.int64) if t is None else t
                    keys[key] = len(src)
                    src.append(xs)
                    srct.append(ts)
                    self.origins.append(origin if len(reads) == 1 else None)
                where.append((keys[key], kind, stride, offset))
            if sel is None:  # the mean over every element (all of them read at each sample)
                n_pre = b.w.shape[0]
                ii, jj = (np.divmod(np.arange(n_pre * n_post), n_post) if shape == "syn" else (np.arange(n_pre if shape == "pre" else n_post),) * 2)
            else:
                ii, jj = (np.asarray(sel[0]), np.asarray(sel[1])) if shape == "syn" else (np.asarray(sel),) * 2
            ii, jj = ii.astype(np.int64), jj.astype(np.int64)
            pos = (n_cols + np.arange(ii.size * len(where), dtype=np.int64)).reshape(ii.size, len(where))
            block = np.empty((ii.size, len(where), 2), np.int64)  # (element, read): (source, element of it)
            for r, (a, kind, stride, offset) in enumerate(where):
                base = ii if kind == "pre" else jj if kind == "post" else ii * n_post + jj
                block[:, r, 0] = a
                block[:, r, 1] = base * stride + offset
            cols.append(block.reshape(-1, 2))
            n_cols += block.shape[0] * block.shape[1]
            self.vars.append((finish, pos, sel is None))
        self.n_sources = len(src)
        # always SOURCES arrays (unused ones empty): one kernel signature for any recorded state,
        # so the one that plastic warmup compiles ahead of time serves every run
        src += [np.zeros(1)] * max(0, SOURCES - len(src))
        srct += [np.zeros(1, np.int64)] * max(0, SOURCES - len(srct))
        self.src, self.srct = tuple(src), tuple(srct)
        self.cols = np.concatenate(cols) if cols else np.zeros((0, 2), np.int64)
        self.first_state_col = 1 + len(self.wi) + len(self.stats)
        self.width = self.first_state_col + len(self.cols)  # of a row the kernel writes (>= the columns)
        self.check_neurons = b.net.model != 0
        self.dt = p.dt

    def finish(self, rows, trows, steps, dt):
        """Turn the raw reads of the kernel's rows (``rows[:, first_state_col:]``, ``trows``) into
        the recorded state columns, in place: afterwards ``rows[:, :len(columns)]`` are the
        Recorder's rows. ``steps``: the sample steps (a column)."""
        if not self.vars:
            return
        steps = steps[:, 0] if steps.ndim == 2 else steps
        c0 = self.first_state_col
        out = []
        for finish, pos, mean in self.vars:
            if mean:  # every element's values (samples x elements, in the probe's C order), then
                # the mean of each row: the same pairwise sum as np.mean of the probed array
                F = [rows[:, c0 + pos[:, r]] for r in range(pos.shape[1])]
                T = [trows[:, pos[:, r]] for r in range(pos.shape[1])]
                out.append(np.mean(np.ascontiguousarray(finish(F, T, steps[:, None], dt), dtype=np.float64), axis=1))
                continue
            for k in range(pos.shape[0]):
                F = [rows[:, c0 + q] for q in pos[k]]
                T = [trows[:, q] for q in pos[k]]
                out.append(finish(F, T, steps, dt))
        rows[:, c0 : c0 + len(out)] = np.array(out).T


# What this module knows of a protocol, a built run and its phases. Something new there (a
# mechanism that needs Python at chunk boundaries, say) sends the run to the Python path until
# this module learns of it: merges of new mechanisms stay correct without touching this file.
KNOWN_PROTOCOL = frozenset("name description seed dt duration synapses neuron phases rule block record file resolved".split())
KNOWN_BUILT = frozenset("protocol module net w w_initial params state phases pre_events post_events rel inh".split())
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
    if not has_driver(b.module):
        return "rule without advance_block or advance_kernel"
    if spec.inputs == "rates" and any(ph[3] is None for ph in b.phases):
        return "a rate rule's phase without rate input (its kernel reads the rows of the last one)"
    if spec.inputs != "rates" and any(ph[3] is not None for ph in b.phases):
        return "rate input to a spike rule"
    if stepper.threads > 1:
        return "several thread blocks"
    sources = set()
    reads = 0
    n_pre, n_post = b.w.shape
    for name, shape, sel in rec.state:
        if name in NEURON_VARS and getattr(b.net, name).dtype != np.float64:
            return f"state {name}: dtype"
        how = state_reads(b, name)
        if how is None:
            return f"state {name}: not readable by the kernels (no RECORD_TRACES entry, or record_state gives None)"
        sources |= {(id(x), id(t)) for x, t, *_ in how[0] if not _is_weights(x, t, b.w)}
        if sel is None:  # a mean: every element is read at each sample, and NumPy's mean of them
            # must add in the order np.mean of the probed array adds (C order: 1-d or C-contiguous)
            values = rec._probe(name, 0)
            if values.ndim != 1 and not values.flags.c_contiguous:
                return f"state {name}: mean of an array that is not C-contiguous"
            reads += (n_pre * n_post if shape == "syn" else n_pre if shape == "pre" else n_post) * len(how[0])
        else:
            reads += (len(sel[0]) if shape == "syn" else len(sel)) * len(how[0])
    if len(sources) > SOURCES:
        return "more state arrays than SOURCES"
    if reads > MEAN_READS:
        return f"state: {reads} values read at each sample (more than {MEAN_READS})"
    if not b.w.flags.c_contiguous or b.w.size == 0:
        return "weights layout"
    return None


RATE_ROWS = 4096  # steps of rate input rows in a chunk (simulation.stimulus.MAX_CHUNK_ROWS)


class RateChunks:
    """The rate input rows of a rate rule's run, a chunk of up to MAX_CHUNK_ROWS steps (at most
    about BUFFER_BYTES of them) at a time, filled with the blocks the Python path fills (one per
    call of the kernel: up to the next sample, phase end or its own row count), so with the same
    values; the kernels then sample inside the chunk."""

    def __init__(self, b, every):
        self.every = every
        self.rows_py = b.net.x.shape[0]  # the Python path's chunk of rows
        n_pre = b.net.x.shape[1]
        self.rows = max(self.rows_py, min(RATE_ROWS, BUFFER_BYTES // (8 * max(1, n_pre))))
        if self.rows > self.rows_py:
            b.net = b.net._replace(x=np.zeros((self.rows, n_pre)))
        self.x = b.net.x

    def fill(self, rate, a, s, end) -> int:
        """Fill the rows of steps ``s ..`` of the phase that starts at ``a``; returns the step after them."""
        sizes = []
        t = s
        while t < end:
            nxt = min(end, (t // self.every + 1) * self.every, t + self.rows_py)
            if nxt - s > self.rows:
                break
            sizes.append(nxt - t)
            t = nxt
        rate.fill_blocks(self.x, s - a, sizes)
        return t


def run(b, rec, stepper, progress, check_finite) -> None:
    """Advance every phase of ``b``, the kernels sampling into ``rec`` (empty: the sample of step
    0 is theirs too). ``check_finite(b, step, rec)``: the engine's check, which raises."""
    from .net import OUT_N, lif_arg

    p = b.protocol
    plan = Plan(b, rec)
    every = rec.every
    cap = max(1, min(BUFFER_ROWS, rec.rows.shape[0], BUFFER_BYTES // (8 * (plan.width + len(plan.cols) + 1))))
    rows = np.empty((cap, plan.width))
    trows = np.zeros((cap, len(plan.cols) + 1), np.int64)  # last column: the sample's step
    io = np.zeros(4, np.int64)
    chunk = RateChunks(b, every) if b.module.SPEC.inputs == "rates" else None
    stepper.nets[0] = b.net  # (RateChunks: a net with more rows of rate input)
    drive = driver(b.module)
    steps_out, idx_out = stepper.spikes[0]
    n_post = b.w.shape[1]

    def flush(n):
        if n:
            r = rows[:n]
            plan.finish(r, trows[:n], trows[:n, -1:], p.dt)
            rec.rows[rec.n : rec.n + n] = r[:, : len(rec.columns)]
            rec.n += n

    # the sample of step 0 comes with the first call (the Recorder's sample does not check that
    # values are finite: where an initial value is not, the Recorder takes that sample itself)
    first = bool(b.phases) and b.phases[0][0] == 0
    if not first:
        rec.sample(0)
    for a, end, blocked, rate in b.phases:
        io[0] = a
        io[2] = DONE
        stop = end if chunk is None else a  # (rate rules: the rows of a chunk first)
        while io[0] < end or first:
            s = int(io[0])
            io[1] = 0
            if first:
                io[2] = FIRST
            if chunk is not None and s >= stop:  # the next chunk of rate input rows
                stop = chunk.fill(rate, a, s, end)
                io[3] = s
            net = b.net
            drive(b.w, net, b.state, b.params, blocked, 0, n_post, lif_arg(net), b.rel, stop, every, rows, trows, io, plan.wi, plan.wj, plan.stats, plan.check_neurons, plan.src, plan.srct, plan.cols, b.inh)
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
