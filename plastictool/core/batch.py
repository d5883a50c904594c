"""Many small conditions in one kernel call.

A sweep of tiny networks (benchmark W1: 101 conditions of one synapse each) spent most of its
simulation time in Python, once per condition: the recording driver's call (unboxing a dozen
named tuples of arrays), its plan and buffers, the draining of its results. Here the conditions
of one worker that share their kernel types run in ONE call of a jitted batch driver, one per
rule (:func:`driver`), which loops over the conditions inside Numba and calls, for each, the
rule's own recording driver (``core.record.driver``: ``advance_block`` and ``sample_row``,
unchanged) on that condition's arrays. So every condition runs exactly the code, in exactly
the calls, of its own run, and its files are identical byte for byte.

Layout: the conditions' arrays are concatenated, field by field, into one flat array per field
with offsets (:func:`pack`), and each condition's ``Built`` is re-pointed at its views of them
(so the engine's Python code, the finite check and the summary see what the kernel writes).
A packed named tuple (``Net``, the rule's ``State`` and ``Params``) is an instance of the same
class whose fields hold, instead of an array, ``(flat, lo, hi)`` (1-d) or ``(flat, lo, hi,
shape_0, ..., shape_k)`` (k-d, one int64 array per axis; an array that all conditions share,
such as a decay table, is stored once), instead of a number ``(values,)`` (one per condition),
and None where every condition has None. Inside the kernel, :func:`take` (a Numba overload,
generated per type) turns that back into the condition's own named tuple of views:
``flat[lo[c]:hi[c]]`` (``.reshape(...)``), ``values[c]``; the
types are those of an unbatched call (contiguous views keep layout C), so the rule's kernels
are compiled for the same types. Parameters may differ between the conditions (a sweep over
``a_plus`` or ``tau_plus``): they are passed per condition. Recording buffers are stacked
(``rows[c]``, ``io[c]``).

What batches (``simulation.batches.batch_key``): conditions of a rule with ``advance_block``, spike inputs,
no ``synapses.release``, ``structure`` or ``inhibitory``, one thread block, recorded by the
kernels (``core.record.supported``), small (``simulation.batches.BATCH_SYNAPSES``), with the same argument
types, phases, block masks and recording plan. Everything else, and every condition when
``PLASTIC_BATCH=0`` or ``PLASTIC_RECORD=python``, runs one by one as before. A condition
whose values become non-finite stops (its status BAD) while the others go on; the engine then
raises the error of the first such condition in sweep order, as the unbatched run does.

Cost (W1D, 101 one-synapse conditions, 61 samples each): one kernel call of about 5 ms (one
network of 101 synapses with the same pairings, bench/workloads/w1_net101.yaml, simulates in
about 2 ms: it steps one network, not 101); the packing (joined along the first axis, without
a flattened copy of each array) and re-pointing about 20 us per condition. Conditions equal
but for their stimulus share what their build draws nothing for, their batch key and their
Recorder's plan, and their events and spike tables are made at once (``simulation.batches``).
"""

from __future__ import annotations

import types as _pytypes

import numpy as np

from . import record
from .jit import LazyIntrinsic, jit
from .record import BAD, DONE, FIRST, FULL, OUT


# ---------------------------------------------------------------------------- packing (Python)
def _scalar_dtype(x):
    if isinstance(x, bool):
        return np.bool_
    if isinstance(x, int):
        return np.int64
    if isinstance(x, float):
        return np.float64
    if isinstance(x, np.generic):
        return x.dtype
    return None


def pack_arrays(arrs) -> tuple:
    """``(flat, lo, hi)`` or ``(flat, lo, hi, shape_0, ...)`` of arrays of one dtype and ndim:
    condition ``c``'s elements are ``flat[lo[c]:hi[c]]``. Their elements concatenated (a copy),
    or, where every condition has the same array object (a table shared by the conditions, such
    as ``rules.traces.decay_table``, which kernels only read), that array once."""
    a0 = arrs[0]
    n = len(arrs)
    if all(a is a0 for a in arrs):
        flat = a0.reshape(-1) if a0.flags.c_contiguous else np.ascontiguousarray(a0).reshape(-1)
        lo = np.zeros(n, np.int64)
        hi = np.full(n, flat.size, np.int64)
        shapes = [np.full(n, d, np.int64) for d in a0.shape]
    else:
        s0 = a0.shape
        if a0.ndim == 1:  # (lengths by len(), a C call, rather than a shape tuple per array)
            sizes = list(map(len, arrs))
            same = sizes.count(sizes[0]) == n
        else:
            same = all(a.shape == s0 for a in arrs)
        # arrays of one shape joined along their first axis are their elements joined in C
        # order, as axis=None gives them, without a flattened copy of each (a third of the cost)
        flat = np.concatenate(arrs).reshape(-1) if same and a0.ndim else np.concatenate(arrs, axis=None)
        if same:  # (the common case: no per-array sizes to gather)
            lo = np.arange(0, n * a0.size, max(1, a0.size), dtype=np.int64)[:n] if a0.size else np.zeros(n, np.int64)
            hi = lo + a0.size
            shapes = [np.full(n, d, np.int64) for d in s0]
        else:
            off = np.zeros(n + 1, np.int64)
            np.cumsum([a.size for a in arrs], out=off[1:])
            lo, hi = off[:-1], off[1:]
            if a0.ndim != 1:
                sh = np.array([a.shape for a in arrs], np.int64).reshape(n, a0.ndim)
                shapes = [np.ascontiguousarray(sh[:, d]) for d in range(a0.ndim)]
    if a0.ndim == 1:
        return (flat, lo, hi)
    return (flat, lo, hi) + tuple(shapes)


def pack(values):
    """The packed form of one value (array, number, None, tuple or named tuple) of every
    condition; see the module docstring. Values of one field must have one type (``batch_key``)."""
    v0 = values[0]
    if v0 is None:
        return None
    if hasattr(v0, "_fields"):
        return type(v0)._make([pack(col) for col in zip(*values)])
    if isinstance(v0, np.ndarray):
        return pack_arrays(values)
    if isinstance(v0, tuple):
        return tuple(pack(col) for col in zip(*values))
    dtype = _scalar_dtype(v0)
    if dtype is None:
        raise TypeError(f"cannot pack {type(v0).__name__}")
    return (np.array(values, dtype=dtype),)


_NUMBERS = (bool, int, float, type(None))


def signature(x):
    """What must be equal for values of conditions to be packed together (and for the kernels
    to see the types of an unbatched call): array dtypes and dimensions, number types, None,
    field by field."""
    if isinstance(x, np.ndarray):
        return (x.dtype.char, x.ndim)
    if isinstance(x, tuple):
        nd = np.ndarray
        return (type(x),) + tuple((v.dtype.char, v.ndim) if type(v) is nd else type(v) if type(v) in _NUMBERS else signature(v) for v in x)
    if x is None or isinstance(x, (bool, int, float, np.generic)):
        return type(x)
    raise TypeError(f"cannot pack {type(x).__name__}")


def view(packed: tuple, c: int) -> np.ndarray:
    """Condition ``c``'s view of a packed array."""
    a = packed[0][packed[1][c] : packed[2][c]]
    return a if len(packed) == 3 else a.reshape(tuple(int(s[c]) for s in packed[3:]))


def views(packed: tuple) -> list:
    """Every condition's view of a packed array (:func:`view`), made at once."""
    flat, lo, hi = packed[0], packed[1], packed[2]
    n = lo.size
    size = int(hi[0] - lo[0]) if n else 0
    shape = (size,) if len(packed) == 3 else tuple(int(s[0]) for s in packed[3:])
    if n and lo[0] == 0 and (hi - lo == size).all() and (size == 0 or (lo[1:] == hi[:-1]).all()) and all((s == s[0]).all() for s in packed[3:]):
        return list(flat[: n * size].reshape((n,) + shape))  # rows of one array: n views at C speed
    return [view(packed, c) for c in range(n)]


def repoint(objs: list, packed) -> list:
    """The named tuples ``objs`` (one per condition) with their array fields replaced by their
    views of ``packed`` (their packed form); numbers and None stay as they are."""
    o0 = objs[0]
    cls = type(o0)
    fields = [f if isinstance(getattr(o0, f), np.ndarray) else None for f in o0._fields]
    vs = {f: views(getattr(packed, f)) for f in fields if f is not None}
    return [cls._make([vs[f][k] if f is not None else x for f, x in zip(fields, o)]) for k, o in enumerate(objs)]


def sources_ok(b, rec) -> bool:
    """Whether the state that ``rec`` records is what the kernels sample in place (1-d float64
    values, int64 steps: ``record.Plan`` then uses the arrays themselves), so that the packed
    fields can be the batch's sources."""
    traces = getattr(b.module, "RECORD_TRACES", {})
    for name, _shape, sel in rec.state:
        if sel is None:  # (a mean over all elements: record.Plan's, not the batch's _finish_rows)
            return False
        if name in record.NEURON_VARS:
            pairs = ((getattr(b.net, name), np.float64),)
        else:
            xf, tf, _tau = traces[name]
            pairs = ((getattr(b.state, xf), np.float64), (getattr(b.state, tf), np.int64))
        for x, dtype in pairs:
            if not isinstance(x, np.ndarray) or x.dtype != dtype or x.ndim != 1:
                return False
    return True


# ---------------------------------------------------------------------------- take (Numba)
def _expr(t, path: str, names: dict) -> str:
    """Source of the expression that takes condition ``c`` from ``path`` of Numba type ``t``."""
    from numba.core import types

    if isinstance(t, types.NoneType):
        return "None"
    if isinstance(t, types.BaseNamedTuple):
        name = f"cls{len(names)}"
        names[name] = t.instance_class
        return f"{name}(" + ", ".join(_expr(ft, f"{path}[{k}]", names) for k, ft in enumerate(t.types)) + ")"
    if isinstance(t, types.BaseTuple):
        items = list(t.types)
        if items and isinstance(items[0], types.Array):  # a packed number or array
            if len(items) == 1:
                return f"{path}[0][c]"
            part = f"{path}[0][{path}[1][c]:{path}[2][c]]"
            if len(items) == 3:
                return part
            return f"{part}.reshape((" + ", ".join(f"{path}[{k}][c]" for k in range(3, len(items))) + ",))"
        return "(" + "".join(_expr(ft, f"{path}[{k}]", names) + ", " for k, ft in enumerate(items)) + ")"
    raise TypeError(f"take: cannot unpack {t}")


@LazyIntrinsic
def take():
    """``take(x, c)``: condition ``c``'s value of the packed ``x`` (see the module docstring), a
    Numba overload generated for each packed type."""
    from numba.extending import overload

    def take(x, c):  # pragma: no cover - a stand-in that Numba resolves to the overload
        raise NotImplementedError

    @overload(take, inline="always")
    def _take(x, c):
        names: dict = {}
        body = _expr(x, "x", names)
        src = f"def impl(x, c):\n    return {body}\n"
        glb = dict(names)
        exec(compile(src, "<plastic.core.batch.take>", "exec"), glb)  # noqa: S102 (source made above from a type)
        return glb["impl"]

    return take


# ---------------------------------------------------------------------------- the driver
def _drive_batch(W, NET, ST, PR, LIF, blocked, end, every, ROWS, TROWS, IO, wi, wj, stats, check_neurons, SRC, SRCT, cols):
    """Run every condition ``c`` of the batch (``IO[c]``, ``ROWS[c]``, ``TROWS[c]`` as one
    recording driver's ``io``, ``rows``, ``trows``) from step ``IO[c, 0]`` to ``end`` through the
    rule's recording driver, one after the other. Skips conditions that are BAD (stopped at a
    non-finite value) or already at ``end``. Returns the number of conditions run."""
    zero = np.int64(0)  # (not the literal 0: one signature of the rule's driver)
    ran = 0
    for c in range(IO.shape[0]):
        io = IO[c]
        if io[2] == BAD or (io[0] >= end and io[2] != FIRST):
            continue
        w = take(W, c)  # noqa: F821 (in the globals)
        drive(w, take(NET, c), take(ST, c), take(PR, c), blocked, zero, w.shape[1], take(LIF, c), None, end, every,  # noqa: F821
              ROWS[c], TROWS[c], io, wi, wj, stats, check_neurons, take(SRC, c), take(SRCT, c), cols, None)  # noqa: F821 (inh None: batch_key)
        ran += 1
    return ran


_DRIVERS: dict = {}


def driver(module):
    """The batch driver kernel of a rule module with ``advance_block`` (made once per module):
    :func:`_drive_batch` with the rule's recording driver in its globals, named
    ``drive_batch_<rule>_<sources>`` (its own Numba cache index and ahead-of-time entry)."""
    kind = module.SPEC.kind
    d = _DRIVERS.get(kind)
    if d is None:
        g = dict(globals())
        g["drive"] = record.driver(module)
        name = f"drive_batch_{kind}_{record._sources()}"
        f = _pytypes.FunctionType(_drive_batch.__code__, g, name)
        f.__qualname__ = name
        f.__module__ = __name__
        f.__doc__ = _drive_batch.__doc__
        d = _DRIVERS[kind] = jit(f, entry=True)
    return d


# ---------------------------------------------------------------------------- running a batch
def run(bs: list, recs: list, steppers: list) -> list:
    """Run the built conditions ``bs`` (one batch: ``simulation.batches.batch_key`` equal) with the kernels
    sampling straight into their Recorders ``recs`` (empty; their rows become views of one
    array); LIF post spikes go to each ``steppers[k].spikes[0]``. Re-points each ``Built`` at its
    views of the packed arrays. Returns, per condition, None or the step at which a value became
    non-finite (the engine raises its error); sets ``steppers[k].compiled_at``."""
    import time

    from .net import LIF, OUT_N

    n = len(bs)
    b0, rec0 = bs[0], recs[0]
    plan = record.Plan(b0, rec0)  # condition 0's: the columns and selection of all (batch_key)
    W = pack([b.w for b in bs])
    NET = pack([b.net for b in bs])
    ST = pack([b.state for b in bs])
    PR = pack([b.params for b in bs])
    ws, nets, states = views(W), repoint([b.net for b in bs], NET), repoint([b.state for b in bs], ST)
    for k, b in enumerate(bs):
        b.w, b.net, b.state = ws[k], nets[k], states[k]
        steppers[k].nets[0] = b.net
        steppers[k].states[0] = b.state
    # the recorded sources are the packed fields themselves (the kernels write them in place)
    dummy = pack_arrays([np.zeros(1)] * n)  # the unused sources: one shared array
    dummy_t = pack_arrays([np.zeros(1, np.int64)] * n)
    src, srct, taus = [], [], []
    for kind, xf, tf, tauf in plan.origins:
        packed = NET if kind == "net" else ST
        src.append(getattr(packed, xf))
        srct.append(getattr(packed, tf) if tf is not None else dummy_t)
        taus.append(None if tauf is None else np.array([float(getattr(b.params, tauf)) for b in bs]))
    src += [dummy] * (record.SOURCES - len(src))
    srct += [dummy_t] * (record.SOURCES - len(srct))
    SRC, SRCT = tuple(src), tuple(srct)
    decay = [(k, taus[int(plan.cols[k, 0])]) for k in range(plan.cols.shape[0]) if taus[int(plan.cols[k, 0])] is not None]
    # the samples go straight into the Recorders' rows (sized for the whole run: never full)
    rows = np.empty((n,) + rec0.rows.shape)
    trows = np.zeros((n, rec0.rows.shape[0], plan.cols.shape[0] + 1), np.int64)
    for k, rec in enumerate(recs):
        rec.rows = rows[k]
    LIFB = NET.lif if b0.net.model == LIF else None
    cursor = NET.cursor[0].reshape(n, -1)
    io = np.zeros((n, 3), np.int64)
    drive = driver(b0.module)
    bad = np.zeros(n, bool)
    bad_step = [None] * n
    dt = b0.protocol.dt
    first = bool(b0.phases) and b0.phases[0][0] == 0
    if not first:
        for rec in recs:
            rec.sample(0)
    compiled_at = None
    for a, end, blocked, _rate in b0.phases:
        io[:, 0] = a
        io[:, 2] = np.where(bad, BAD, DONE)
        while True:
            if first:
                io[:, 2] = FIRST
            lo = np.array([rec.n for rec in recs], np.int64)
            io[:, 1] = lo
            start = io[:, 0].copy()
            drive(W, NET, ST, PR, LIFB, blocked, end, rec0.every, rows, trows, io, plan.wi, plan.wj, plan.stats, plan.check_neurons, SRC, SRCT, plan.cols)
            if compiled_at is None:
                compiled_at = time.perf_counter()
            status = io[:, 2]
            hi = io[:, 1].copy()
            _finish_rows(rows, trows, lo, hi, decay, plan.first_state_col, dt)
            for k, rec in enumerate(recs):
                rec.n = int(hi[k])
            if first:  # a non-finite initial value: the Recorder takes that sample itself (record.run)
                for k in np.flatnonzero((status == BAD) & (hi == 0) & (io[:, 0] == start)).tolist():
                    recs[k].sample(int(start[k]))
                    status[k] = FULL  # (not BAD: it runs on)
            for k in np.flatnonzero(cursor[:, OUT_N]).tolist():  # LIF post spikes: drain them
                net = bs[k].net
                m = net.cursor[OUT_N]
                steps_out, idx_out = steppers[k].spikes[0]
                steps_out.append(net.out_step[:m].copy())
                idx_out.append(net.out_idx[:m].copy())
                net.cursor[OUT_N] = 0
            for k in np.flatnonzero((status == BAD) & ~bad).tolist():
                bad[k] = True
                bad_step[k] = int(io[k, 0])
            for k in np.flatnonzero((status == OUT) & (io[:, 0] == start)).tolist():  # out buffer too small for one step
                NET = _grow_out(bs, steppers, NET, k)
            first = False
            more = ~bad & ((io[:, 0] < end) | (status == FULL))
            if not more.any():
                break
            io[:, 2] = np.where(bad, BAD, DONE)
    for st in steppers:
        st.compiled_at = compiled_at
    return bad_step


def _finish_rows(rows, trows, lo, hi, decay, first_col, dt) -> None:
    """Bring the decaying state columns of the new samples ``rows[k, lo[k]:hi[k]]`` to their
    sample step (``record.Plan.finish``, the same elementwise arithmetic), over all conditions at
    once where they all wrote the same rows."""
    if not decay:
        return
    if (lo == lo[0]).all() and (hi == hi[0]).all():
        spans = [(slice(None), int(lo[0]), int(hi[0]))]
    else:
        spans = [(k, int(lo[k]), int(hi[k])) for k in range(lo.size) if hi[k] > lo[k]]
    for sel, a, b in spans:
        if b <= a:
            continue
        for k, tau in decay:
            c = first_col + k
            t = tau[sel]
            if isinstance(sel, slice):
                t = t[:, None]
            rows[sel, a:b, c] = rows[sel, a:b, c] * np.exp(-(trows[sel, a:b, -1] - trows[sel, a:b, k]) * dt / t)


def _grow_out(bs, steppers, NET, k):
    """Double condition ``k``'s out buffer of post spikes (the others' are empty, drained)."""
    sizes = [b.net.out_step.size for b in bs]
    sizes[k] *= 2
    NET = NET._replace(out_step=pack_arrays([np.zeros(m, np.int64) for m in sizes]), out_idx=pack_arrays([np.zeros(m, np.int64) for m in sizes]))
    steps, idx = views(NET.out_step), views(NET.out_idx)
    for j, b in enumerate(bs):
        b.net = b.net._replace(out_step=steps[j], out_idx=idx[j])
        steppers[j].nets[0] = b.net
    return NET
