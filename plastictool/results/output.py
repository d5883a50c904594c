"""The one module that writes result files (spec section 9).

Files are written into a temporary sibling folder and renamed into place, so a crash or
Ctrl-C never leaves a half-written result; an existing folder is replaced only with
``force``. Numbers use one fixed, locale-independent format (``%.12g``), so the same
protocol, seed and versions give byte-identical CSV files.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np

from .. import __version__
from ..simulation.engine import RunResult
from ..errors import ProtocolError
from .folders import write_folder

FLOAT = "%.12g"


def fmt(x: float) -> str:
    return FLOAT % x


def csv_field(name: str) -> str:
    """A header cell, quoted as CSV requires when it holds a comma (``"w[0,1]"``)."""
    return f'"{name}"' if "," in name or '"' in name else name


CHUNK = 16_384  # rows formatted at a time: memory stays bounded for huge tables (and in cache)
THREADS = 2  # formatting threads (the kernels release the GIL)


def _writer(fh):
    """``fh.write`` for bytes-like parts: a binary file takes them as they are, a text file
    (ASCII) as text."""
    import io

    if isinstance(fh, io.TextIOBase):
        return lambda part: fh.write(bytes(part).decode("ascii"))
    return fh.write


def _write_ordered(fh, tasks, threaded: bool = True) -> None:
    """Run ``tasks`` on THREADS threads and write what they give in order.

    A task is a callable ``task(scratch) -> (scratch, parts)``: ``scratch`` holds the buffers of
    an earlier task to reuse (None at first), ``parts`` are bytes-like (views into them). Tasks
    are taken from the iterator on this thread, a few at a time (memory stays bounded; the
    summary draws its initial weights there, in order), and a task's buffers are reused once
    its parts are written."""
    import itertools

    write = _writer(fh)
    tasks = _coalesced(iter(tasks))
    first = next(tasks, None)
    if first is None:
        return
    second = next(tasks, None)
    if getattr(first, "python", False) and getattr(second, "python", False):
        threaded = False  # Python formats them (small tables): threads would only wait on the GIL
    if second is None or not threaded:  # one task, or small ones: no threads
        scratch = None
        for task in itertools.chain([first], [] if second is None else [second], tasks):
            scratch, parts = task(scratch)
            for part in parts:
                write(part)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    free: list = []
    pending: deque = deque()

    def write_oldest():
        scratch, parts = pending.popleft().result()
        for part in parts:
            write(part)
        free.append(scratch)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for task in itertools.chain([first, second], tasks):
            pending.append(pool.submit(task, free.pop() if free else None))
            if len(pending) > THREADS:
                write_oldest()
        while pending:
            write_oldest()


# Tables (chunks) of at most this many cells are formatted with Python's own "%.12g", which
# the kernels reproduce byte for byte: a small run then never compiles (or loads) the big
# formatting kernel, the largest part of a first run's compilation. Set to 0 to use the kernels
# for every table (the tests of the kernels do).
PYTHON_CELLS = 20_000


REPEATS_MIN_ROWS = 256  # tables of this many rows format each distinct value of a column once


def _python_table(values: np.ndarray, kinds, labels=()) -> bytes:
    """Rows of ``values`` as CSV lines with Python's ``%`` (FLOAT, INT, LABEL, FLOAT_OR_EMPTY):
    one ``%`` over the whole table with a line format repeated per row (the cells are the same
    strings as ``"%.12g" % x``, ``"%d" % int(x)``, ``labels[int(x)]``, and ``""`` for a NaN of
    FLOAT_OR_EMPTY), about 5 times faster than a call per cell. In tables of REPEATS_MIN_ROWS
    rows or more, a column of many repeated values (a sweep's ``t_ms`` and ``condition``, its
    traces sampled at the same times) has each distinct value (bit pattern: ``-0.0`` is not
    ``0.0``) formatted once, and a column equal to an earlier one (``w[0,0]`` and ``w_mean`` of
    one synapse) takes its strings: the same strings, fewer formattings."""
    from ..core.fmt import FLOAT_OR_EMPTY, INT, LABEL

    kinds = [int(k) for k in kinds]
    n = values.shape[0]
    if not n:
        return b""
    texts: dict = {}  # column -> its cells as an object array of str
    for c, k in enumerate(kinds):
        if k == LABEL:
            texts[c] = np.asarray(labels, dtype=object)[values[:, c].astype(np.intp)]
        elif k == FLOAT_OR_EMPTY:
            texts[c] = np.array(["" if x != x else FLOAT % x for x in values[:, c].tolist()] or [""], dtype=object)[:n]
    if n >= REPEATS_MIN_ROWS:
        _repeated_texts(values, kinds, texts)
    line = ",".join("%s" if c in texts else "%d" if k == INT else FLOAT for c, k in enumerate(kinds)) + "\n"
    if not texts:
        return ((line * n) % tuple(values.ravel().tolist())).encode("ascii")
    if len(texts) == len(kinds):
        cells = np.empty(values.shape, dtype=object)
    else:
        cells = values.astype(object)
    for c, t in texts.items():
        cells[:, c] = t
    return ((line * n) % tuple(cells.ravel().tolist())).encode("ascii")


def _repeated_texts(values: np.ndarray, kinds, texts: dict) -> None:
    """Add to ``texts`` the FLOAT and INT columns of ``values`` that repeat values (each distinct
    bit pattern formatted once) or equal an earlier column (bit for bit)."""
    from ..core.fmt import INT

    n = values.shape[0]
    done: list = []  # (bits, column) of the columns seen
    for c, k in enumerate(kinds):
        if c in texts:
            continue
        bits = np.ascontiguousarray(values[:, c], dtype=np.float64).view(np.int64)
        twin = next((d for b, d in done if kinds[d] == k and np.array_equal(b, bits)), None)
        if twin is not None:
            if twin not in texts:
                texts[twin] = np.array([("%d" if k == INT else FLOAT) % x for x in values[:, twin].tolist()], dtype=object)
            texts[c] = texts[twin]
            continue
        done.append((bits, c))
        uniq, inverse = np.unique(bits, return_inverse=True)
        if 4 * uniq.size > 3 * n:  # mostly distinct: formatted by the one % (as before)
            continue
        form = "%d" if k == INT else FLOAT
        texts[c] = np.array([form % x for x in uniq.view(np.float64).tolist()], dtype=object)[inverse.reshape(-1)]


_COMPILED = None  # (the native table asked, the answer): asked again when it changes (jit.use_native)


def compiled_tables() -> bool:
    """Whether the ahead-of-time module (``core.native``) has the table formatter
    (``fmt.format_table``) for the float64 tables ``format_csv_bytes`` passes it: then small
    tables are formatted by it too (about 3x faster than Python's ``%``, the same bytes), with no
    compilation (without the module, or with ``PLASTIC_NATIVE=0``, Python formats them as before:
    the JIT is never started for a small table)."""
    global _COMPILED
    from ..core.jit import native_table

    table = native_table()
    memo = _COMPILED
    if memo is None or memo[0] is not table:
        from ..core import fmt
        from ..core.native import argkey

        kernel = fmt.format_table
        py = getattr(kernel, "py_func", None)
        keys = table.get(f"{kernel.__module__}.{py.__qualname__}") if py is not None else None
        probe = (np.zeros((1, 1)), np.zeros(1, np.uint8), fmt.label_array(("pre",)), np.zeros(1, np.uint8), np.zeros(1, np.int64), np.zeros(1))
        memo = _COMPILED = (table, bool(keys) and tuple(argkey(a) for a in probe) in keys)
    return memo[1]


def _table_task(values: np.ndarray, kinds, labels):
    small = values.size <= PYTHON_CELLS
    if small and not compiled_tables():
        task = lambda scratch: (scratch, [_python_table(values, kinds, labels)])  # noqa: E731
        task.python = True  # formatted holding the GIL: threads would only add their cost
        task.table = (values, tuple(int(k) for k in kinds), tuple(labels))
        return task

    def task(scratch):
        from ..core.fmt import format_csv_bytes

        return format_csv_bytes(values, kinds, labels, scratch)

    if small:  # by the compiled module: joined with its neighbours as Python's, on this thread
        task.python = True
        task.table = (values, tuple(int(k) for k in kinds), tuple(labels))
    return task


def _coalesced(tasks):
    """``tasks`` with runs of consecutive small tables of the same columns (``_table_task`` with
    Python's ``%``: a sweep's conditions, one table each) joined into one table of up to
    PYTHON_CELLS cells: one ``%`` for many conditions instead of one each (the same bytes: every
    row is formatted alone)."""
    run: list = []
    cells = 0
    for task in tasks:
        table = getattr(task, "table", None)
        if run and (table is None or table[1:] != run[0][1:] or table[0].dtype != run[0][0].dtype or cells + table[0].size > PYTHON_CELLS):
            yield _joined(run)
            run, cells = [], 0
        if table is None:
            yield task
        else:
            run.append(table)
            cells += table[0].size
    if run:
        yield _joined(run)


def _joined(tables):
    if len(tables) == 1:
        values, kinds, labels = tables[0]
    else:
        values, kinds, labels = np.concatenate([t[0] for t in tables]), tables[0][1], tables[0][2]
    return _table_task(values, kinds, labels)


def _write_table(fh, values: np.ndarray, kinds, labels=()) -> None:
    _write_ordered(fh, _table_tasks(values, kinds, labels))


def _table_tasks(values: np.ndarray, kinds, labels=()):
    return (_table_task(values[a : a + CHUNK], kinds, labels) for a in range(0, values.shape[0], CHUNK))


def _column_tasks(cols, kinds, labels=()):
    """``_table_tasks`` of ``np.column_stack(cols)`` as float64, each chunk of rows stacked as
    the writer reaches it: no float64 copy of the whole table (W4's 750,000 post spikes: 36 MB
    at the peak of the run)."""
    n = cols[0].shape[0]
    for a in range(0, n, CHUNK):
        yield _table_task(np.column_stack([c[a : a + CHUNK] for c in cols]).astype(np.float64, copy=False), kinds, labels)


def _small_runs(items, cells):
    """``items`` in order, as ``(True, [items])`` for each run of consecutive small ones (``cells(item)``
    cells, at most PYTHON_CELLS together) and ``(False, item)`` for each other one (``cells`` None
    or above PYTHON_CELLS): the small tables of a sweep formatted as one (W1D's 101 conditions)."""
    group: list = []
    total = 0
    for item in items:
        c = cells(item)
        if c is None or c > PYTHON_CELLS:
            if group:
                yield True, group
                group, total = [], 0
            yield False, item
            continue
        if group and total + c > PYTHON_CELLS:
            yield True, group
            group, total = [], 0
        group.append(item)
        total += c
    if group:
        yield True, group


def _sweep_tasks(results, parts, tasks, width: int, kinds, labels=()):
    """The tasks of a sweep's table (traces.csv, spikes.csv): each condition's columns
    ``parts(k, r)`` (a 2-D block, or 1-D columns) and its ``condition`` column last. Runs of
    consecutive conditions whose tables are small (at most PYTHON_CELLS cells together) become
    one table each, stacked by one ``np.concatenate`` per column: the tables ``_coalesced`` made
    of the conditions' own tables (the same groups where every condition's table is small),
    without a table, a task and a copy per condition (a sweep of tiny networks: W1D's 101
    conditions). A condition with a bigger table gets ``tasks(k, r)`` (its own chunks). Every
    row is formatted alone, by Python's ``%`` or the kernels, which write the same bytes: the
    file is the same whatever the grouping (tests/test_sweep_overhead.py)."""

    def stacked(group):
        n = sum(cols[0].shape[0] for _, _, cols in group)
        values = np.empty((n, width))
        p0 = group[0][2]
        if len(p0) == 1:  # a 2-D block of all but the condition column
            values[:, : width - 1] = np.concatenate([g[2][0] for g in group]) if len(group) > 1 else p0[0]
        else:
            for c in range(len(p0)):
                values[:, c] = np.concatenate([g[2][c] for g in group]) if len(group) > 1 else p0[c]
        values[:, width - 1] = np.repeat(np.array([condition_index(r, k) for k, r, _ in group], np.int64), [cols[0].shape[0] for _, _, cols in group])
        return _table_task(values, kinds, labels)

    conds = ((k, r, parts(k, r)) for k, r in enumerate(results))
    for small, x in _small_runs((c for c in conds if c[2][0].shape[0]), lambda c: c[2][0].shape[0] * width):
        if small:
            yield stacked(x)
        else:
            yield from tasks(x[0], x[1])


def _summary_chunk(w0, w1, start, n_post, thr, kinds, labels, scratch):
    """Rows ``start ..`` of summary.csv (``format_summary``), in ``scratch`` when it is large enough."""
    from ..core.fmt import format_summary, patch, summary_bytes

    n = w0.size
    size = summary_bytes(n, labels)
    if scratch is None or scratch[0].size < size or scratch[1].size < 4 * n:
        scratch = (np.empty(size, dtype=np.uint8), np.empty(4 * n, dtype=np.int64), np.empty(4 * n))
    buf, badpos, badval = scratch
    length, nb = format_summary(w0, w1, start, n_post, thr, kinds, labels, buf, badpos, badval)
    return scratch, patch(buf, length, badpos, badval, nb)


def _summary_python(w0, w1, start, n_post, thr, lead, scratch, release=None):
    """Rows ``start ..`` of summary.csv with Python's ``%`` (what ``format_summary`` writes).

    ``release``: ``(U, presynaptic)`` of ``synapses.release``: the rows end with ``U_initial`` and
    ``U_final`` (``core.release.utilisation``)."""
    if release is not None:
        from ..core.release import utilisation

        U, presyn = release
        u1 = utilisation(U, presyn, w0, w1).tolist()
    lines = []
    for k, (a, b) in enumerate(zip(w0.astype(np.float64).tolist(), w1.astype(np.float64).tolist())):
        i, j = divmod(start + k, n_post)
        dw = b - a
        pct = 100.0 * dw / abs(a) if a != 0.0 else float("nan")
        if pct != pct:
            outcome, cell = ("LTP" if dw > 0 else "LTD" if dw < 0 else "none"), ""
        else:
            outcome, cell = ("LTP" if pct > thr else "LTD" if pct < -thr else "none"), FLOAT % pct
        extra = "" if release is None else f",{FLOAT % release[0]},{FLOAT % u1[k]}"
        lines.append(f"{lead}{i},{j},{FLOAT % a},{FLOAT % b},{FLOAT % dw},{cell},{outcome}{extra}\n")
    return scratch, ["".join(lines).encode("ascii")]


def _summary_tasks(r: RunResult, kinds: np.ndarray, labels: np.ndarray, lead: str = ""):
    """The tasks that write ``r``'s rows of summary.csv, CHUNK rows each, straight from the flat
    weights. The initial weights are drawn again from the seed a block of rows at a time, as
    the iteration reaches them (no second n_pre x n_post array), or sliced from
    ``w_initial_stored`` where the rule computed them."""
    from functools import partial

    n_pre, n_post = r.w_final.shape
    w1_all = np.ascontiguousarray(r.w_final).reshape(-1)
    thr = float(r.protocol.record.outcome_threshold)
    rows = max(1, CHUNK // max(1, n_post))
    blocks = r.w_initial_rows(rows)
    rel = r.protocol.synapses.release
    release = None if rel is None else (float(rel.U), r.protocol.rule.expression == "presynaptic")
    for a, block in blocks:
        w0_block = np.ascontiguousarray(block).reshape(-1)
        for s in range(0, w0_block.size, CHUNK):
            start = a * n_post + s
            w0 = w0_block[s : s + CHUNK]
            if release is not None:  # U_initial, U_final: formatted in Python
                yield partial(_summary_python, w0, w1_all[start : start + w0.size], start, n_post, thr, lead, release=release)
            elif 7 * w0.size <= PYTHON_CELLS:
                yield partial(_summary_python, w0, w1_all[start : start + w0.size], start, n_post, thr, lead)
            else:
                yield partial(_summary_chunk, w0, w1_all[start : start + w0.size], start, n_post, thr, kinds, labels)


STRUCTURE_OUTCOMES = ("none", "LTP", "LTD", "formed", "eliminated", "absent")


def _structure_summary_tasks(r: RunResult, prefix: str):
    """summary.csv rows of a run with ``synapses.structure``: every potential synapse, with
    ``present_initial, present_final``; ``w_initial`` is empty where the synapse was absent at
    the start, ``w_final`` where it is absent at the end, and ``dw``, ``dw_percent`` where either
    is (a synapse formed during the run is a new one, not a change of an old one); ``outcome``
    is then ``formed``, ``eliminated`` or ``absent``."""
    from ..core.fmt import FLOAT as F
    from ..core.fmt import FLOAT_OR_EMPTY as FE
    from ..core.fmt import INT, LABEL

    st = r.structure
    n_pre, n_post = r.w_final.shape
    w1_all = np.ascontiguousarray(r.w_final).reshape(-1)
    p0_all = st.present_initial.reshape(-1)
    p1_all = st.present_final.reshape(-1)
    thr = float(r.protocol.record.outcome_threshold)
    rows = max(1, CHUNK // max(1, n_post))
    blocks = r.w_initial_rows(rows)
    labels = STRUCTURE_OUTCOMES + ((prefix,) if prefix else ())
    kinds = ([LABEL] if prefix else []) + [INT, INT, FE, FE, FE, FE, LABEL, INT, INT]
    for a, block in blocks:
        start = a * n_post
        cols = _structure_columns(block, w1_all, p0_all, p1_all, start, n_post, thr, np.float64)
        if prefix:
            cols.insert(0, np.full(cols[0].size, len(STRUCTURE_OUTCOMES)))
        yield _table_task(np.column_stack(cols).astype(np.float64), kinds, labels)


def _structure_columns(block, w1_all, p0_all, p1_all, start: int, n_post: int, thr: float, wdtype) -> list:
    """The summary columns of the synapses ``start ..`` (``block``: their initial weights) with
    ``synapses.structure``: pre, post, w_initial, w_final (``wdtype``; NaN where absent), dw,
    dw_percent (NaN where either is absent), outcome (index into STRUCTURE_OUTCOMES), present_initial,
    present_final."""
    w0 = np.ascontiguousarray(block, dtype=np.float64).reshape(-1)
    stop = start + w0.size
    k = np.arange(start, stop)
    p0, p1 = p0_all[start:stop] != 0, p1_all[start:stop] != 0
    w1 = w1_all[start:stop].astype(np.float64)
    both = p0 & p1
    dw = w1 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(w0 != 0.0, 100.0 * dw / np.abs(w0), np.nan)
    sign = np.where(dw > 0, 1, np.where(dw < 0, 2, 0))
    outcome = np.where(np.isnan(pct), sign, np.where(pct > thr, 1, np.where(pct < -thr, 2, 0)))
    outcome = np.where(both, outcome, np.where(p1, 3, np.where(p0, 4, 5)))
    nan = np.nan
    w0s, w1s = np.asarray(block, dtype=wdtype).reshape(-1), w1_all[start:stop].astype(wdtype)
    return [k // n_post, k % n_post, np.where(p0, w0s, nan).astype(wdtype), np.where(p1, w1s, nan).astype(wdtype), np.where(both, dw, nan), np.where(both, pct, nan), outcome, p0, p1]


def write_summary(fh, results: list[RunResult], sweep_keys) -> None:
    """summary.csv: one row per synapse and condition (columns: the sweep values, then those of
    :func:`plastictool.core.fmt.format_summary`), written as bytes."""
    import itertools

    from ..core.fmt import LABEL, SUMMARY_KINDS, SUMMARY_LABELS, label_array

    release = bool(results) and results[0].protocol.synapses.release is not None
    structure = bool(results) and results[0].structure is not None
    extra = (["U_initial", "U_final"] if release else []) + (["present_initial", "present_final"] if structure else [])
    header = ",".join([csv_field(k) for k in sweep_keys] + ["pre", "post", "w_initial", "w_final", "dw", "dw_percent", "outcome"] + extra) + "\n"
    _writer(fh)(header.encode("ascii"))

    def prefix_of(r):
        return ",".join(fmt(v) if isinstance(v, (int, float)) else str(v).replace("?", "_") for _, v in r.condition)

    def tasks(r):
        prefix = prefix_of(r)
        if structure:
            return _structure_summary_tasks(r, prefix)
        kinds = np.array(([LABEL] if prefix else []) + list(SUMMARY_KINDS), dtype=np.uint8)
        labels = label_array(SUMMARY_LABELS + ((prefix,) if prefix else ()))
        return _summary_tasks(r, kinds, labels, prefix + "," if prefix else "")

    big = sum(r.w_final.size for r in results) > CHUNK  # threads pay off for more than a chunk of rows
    if structure or release or len(results) < 2:
        _write_ordered(fh, itertools.chain.from_iterable(tasks(r) for r in results), threaded=big)
        return
    _write_ordered(fh, _small_summaries(results, tasks, prefix_of), threaded=big)


def _small_summaries(results, tasks, prefix_of):
    """The summary tasks of a sweep (no release, no structure): runs of consecutive conditions
    whose rows ``_summary_tasks`` formats in Python (one task of ``_summary_python`` each: at
    most PYTHON_CELLS / 7 synapses) become one task that makes the same calls, in order, and
    joins their bytes (a sweep of tiny networks: one task, not one per condition). Bigger
    conditions get ``tasks(r)``."""

    def joined(group):
        def task(scratch):
            return scratch, [b"".join(_summary_python(w0, w1, 0, n_post, thr, lead, None)[1][0] for w0, w1, n_post, thr, lead in group)]

        task.python = True
        return task

    def item(r):  # what _summary_python takes of a condition
        n_post = r.w_final.shape[1]
        # the initial weights as _summary_tasks takes them: one block of all rows, drawn (where
        # they are not stored) here, on the writing thread, in condition order
        _a, block = next(iter(r.w_initial_rows(max(1, CHUNK // max(1, n_post)))))
        prefix = prefix_of(r)
        return np.ascontiguousarray(block).reshape(-1), np.ascontiguousarray(r.w_final).reshape(-1), n_post, float(r.protocol.record.outcome_threshold), prefix + "," if prefix else ""

    def cells(r):
        small = r.w_final.size and r.protocol.synapses.release is None and r.structure is None
        return 7 * r.w_final.size if small else None

    for small, x in _small_runs(results, cells):
        if small:
            yield joined([item(r) for r in x])
        else:
            yield from tasks(x)


def condition_index(r: RunResult, k: int) -> int:
    """The ``condition`` column: the condition's index in the whole sweep (``Condition.index``),
    so that the folders of ``--shard`` runs and their merge agree; ``k`` (the position among
    ``results``) for results made without :func:`plastictool.simulation.engine.run_condition`."""
    return k if r.index is None else r.index


def write_traces(fh, results: list[RunResult], sweep: bool) -> None:
    import itertools

    from ..core.fmt import FLOAT as F
    from ..core.fmt import INT

    cols = results[0].columns
    _writer(fh)((",".join(csv_field(c) for c in cols + (["condition"] if sweep else [])) + "\n").encode("ascii"))

    def tasks(k, r):
        if r.columns != cols:
            raise ProtocolError("sweep conditions record different columns; sweep values that change sizes are not supported", "sweep")
        data = r.traces
        if sweep:
            data = np.column_stack([data, np.full(data.shape[0], condition_index(r, k))])
        return _table_tasks(data, [F] * len(cols) + ([INT] if sweep else []))

    if not sweep:
        _write_ordered(fh, itertools.chain.from_iterable(tasks(k, r) for k, r in enumerate(results)))
        return

    def parts(k, r):
        if r.columns != cols:
            raise ProtocolError("sweep conditions record different columns; sweep values that change sizes are not supported", "sweep")
        return (r.traces,)

    _write_ordered(fh, _sweep_tasks(results, parts, tasks, len(cols) + 1, [F] * len(cols) + [INT]))


def write_spikes(fh, results: list[RunResult], sweep: bool) -> None:
    import itertools

    from ..core.fmt import FLOAT as F
    from ..core.fmt import INT, LABEL

    _writer(fh)(("t_ms,population,index" + (",condition" if sweep else "") + "\n").encode("ascii"))

    def tasks(k, r):
        t, pop, idx = r.spikes
        if not t.size:
            return ()
        cols = [t, pop, idx] + ([np.full(t.size, condition_index(r, k))] if sweep else [])
        return _column_tasks(cols, [F, LABEL, INT] + ([INT] if sweep else []), ["pre", "post"])

    if not sweep:
        _write_ordered(fh, itertools.chain.from_iterable(tasks(k, r) for k, r in enumerate(results)))
        return
    _write_ordered(fh, _sweep_tasks(results, lambda k, r: r.spikes, tasks, 4, [F, LABEL, INT, INT], ["pre", "post"]))


def write_responses(fh, results: list[RunResult], sweep: bool) -> None:
    """responses.csv (section 11): ``t_ms, pre, post, amplitude`` for each presynaptic spike of
    each recorded synapse, in time, pre, post order; sweeps add ``condition``."""
    import itertools

    from ..core.fmt import FLOAT as F
    from ..core.fmt import INT

    _writer(fh)(("t_ms,pre,post,amplitude" + (",condition" if sweep else "") + "\n").encode("ascii"))

    def tasks(k, r):
        if r.responses is None or not r.responses[0].size:
            return ()
        t, i, j, amp = r.responses
        cols = [t, i, j, amp] + ([np.full(t.size, condition_index(r, k))] if sweep else [])
        return _column_tasks(cols, [F, INT, INT, F] + ([INT] if sweep else []))

    _write_ordered(fh, itertools.chain.from_iterable(tasks(k, r) for k, r in enumerate(results)))


def write_structure(fh, results: list[RunResult], sweep: bool) -> None:
    """structure.csv: every formation and elimination, ``t_ms, pre, post, event`` (+ ``condition``)."""
    import itertools

    from ..core.fmt import FLOAT as F
    from ..core.fmt import INT, LABEL
    from ..core.structure import EVENT_LABELS

    _writer(fh)(("t_ms,pre,post,event" + (",condition" if sweep else "") + "\n").encode("ascii"))

    def tasks(k, r):
        st = r.structure
        if st is None or not st.n_events:
            return ()
        n_post = r.w_final.shape[1]
        cols = [st.ev_step * r.protocol.dt, st.ev_syn // n_post, st.ev_syn % n_post, st.ev_kind]
        if sweep:
            cols.append(np.full(st.n_events, condition_index(r, k)))
        return _column_tasks(cols, [F, INT, INT, LABEL] + ([INT] if sweep else []), list(EVENT_LABELS))

    _write_ordered(fh, itertools.chain.from_iterable(tasks(k, r) for k, r in enumerate(results)))


# ------------------------------------------------------------------ record.format: npy
# The tables as folders of .npy files, one per column (layout: plastictool.results.columnar), written
# straight from the arrays a block of rows at a time; plastictool.results.folders.ColumnWriter writes.

NPY_ROWS = 1 << 18  # rows of a block (2 MiB per float64 column; about 19 MiB of buffers for a summary: W4 stays at 1.26x its matrix, 1.28x with 2^19)
NPY_KERNEL_ROWS = 1 << 16  # summaries of more synapses use the kernel (core.columns), smaller ones NumPy
I4, F8 = "<i4", "<f8"


def _text(values) -> tuple[str, list[bytes]]:
    """ASCII values of a text column and its type ``|S<n>`` (n: the longest)."""
    b = [str(v).encode("ascii", "replace") for v in values]
    return f"|S{max([len(x) for x in b] + [1])}", b


def _sweep_npy(experiment, results):
    """(name, descr) of the sweep columns and, per result, the value of each: float64 where every
    condition of the sweep (not only these results: shards agree) has a number, else the text
    summary.csv writes (a type decided by all conditions too)."""
    cols, values = [], [[] for _ in results]
    for k, key in enumerate(experiment.sweep_keys):
        every = [c.values[k][1] for c in experiment.conditions]
        mine = [r.condition[k][1] for r in results]
        if all(isinstance(v, (int, float)) for v in every):
            cols.append((key, F8))
            row = [np.float64(v) for v in mine]
        else:
            text = lambda v: fmt(v) if isinstance(v, (int, float)) else str(v).replace("?", "_")  # noqa: E731
            descr, _ = _text([text(v) for v in every])
            cols.append((key, descr))
            row = [np.bytes_(text(v).encode("ascii", "replace")) for v in mine]
        for j, v in enumerate(row):
            values[j].append(v)
    return cols, values


def _weight_type(experiment) -> str:
    """``w_initial``/``w_final``: the weight matrix's type (float32 with ``synapses.dtype:
    float32``, unless a sweep changes it), so that they hold the simulation's numbers exactly."""
    f4 = experiment.base.synapses.dtype == "float32" and "synapses.dtype" not in experiment.sweep_keys
    return "<f4" if f4 else F8


def npy_summary(experiment, results: list[RunResult]):
    """The summary table as ``(columns, rows, blocks)``: ``blocks()`` yields lists of arrays, one
    per column, a block of rows at a time (the values of summary.csv; NaN where it is empty)."""
    sweep_cols, sweep_vals = _sweep_npy(experiment, results)
    release = experiment.base.synapses.release is not None
    structure = experiment.base.synapses.structure is not None
    wd = _weight_type(experiment)
    labels = STRUCTURE_OUTCOMES if structure else ("none", "LTP", "LTD")
    descr, names = _text(labels)
    label_arr = np.array(names, dtype=descr)
    columns = sweep_cols + [("pre", I4), ("post", I4), ("w_initial", wd), ("w_final", wd), ("dw", F8), ("dw_percent", F8), ("outcome", descr)]
    columns += [("U_initial", F8), ("U_final", F8)] if release else []
    columns += [("present_initial", "|i1"), ("present_final", "|i1")] if structure else []
    wdtype = np.dtype(wd)
    kernel = sum(int(r.w_final.size) for r in results) > NPY_KERNEL_ROWS

    def blocks():
        # two sets of output buffers, used in turn: npy_fill writes a block while the next one
        # is computed, and asks for the one after only once that write is done
        scratch, parity = ({}, {}), 0
        for r, vals in zip(results, sweep_vals):
            n_pre, n_post = r.w_final.shape
            w1_all = np.ascontiguousarray(r.w_final).reshape(-1)
            thr = float(r.protocol.record.outcome_threshold)
            rows = max(1, NPY_ROWS // max(1, n_post))
            source = r.w_initial_rows(rows)
            for a, block in source:
                start = a * n_post
                if structure:
                    st = r.structure
                    c = _structure_columns(block, w1_all, st.present_initial.reshape(-1), st.present_final.reshape(-1), start, n_post, thr, wdtype)
                    cols = [c[0].astype(np.int32), c[1].astype(np.int32), *c[2:6], label_arr[c[6]], c[7].astype(np.int8), c[8].astype(np.int8)]
                else:
                    w0 = np.ascontiguousarray(block).reshape(-1)
                    w1 = w1_all[start : start + w0.size]
                    cols = [*_summary_columns(w0, w1, a, n_post, thr, label_arr, wdtype, kernel, scratch[parity])]
                    parity ^= 1
                    if release:
                        rel = r.protocol.synapses.release
                        from ..core.release import utilisation

                        cols += [np.full(w0.size, float(rel.U)), utilisation(rel.U, r.protocol.rule.expression == "presynaptic", w0, w1)]
                n = cols[0].size
                yield [np.full(n, v) for v in vals] + cols

    return columns, sum(int(r.w_final.size) for r in results), blocks


def _summary_columns(w0, w1, a: int, n_post: int, thr: float, label_arr, wdtype, kernel: bool, scratch: dict | None = None) -> tuple:
    """pre, post, w_initial, w_final, dw, dw_percent, outcome of the synapses of whole rows from
    row ``a`` (``w0``, ``w1``: their flat initial and final weights): with the kernel
    :func:`plastictool.core.columns.summary_columns`, or (small tables, no compilation) its twin
    in NumPy, which gives the same numbers bit for bit. ``scratch``: the kernel's output arrays
    are kept there and reused by the next call with the same dict (fresh memory costs a page
    fault per 4 KiB)."""
    n = w0.size
    if kernel and label_arr.dtype.itemsize == 4:  # outcome |S4: one uint32 per label
        from ..core.columns import summary_columns

        if scratch is None or scratch.get("n", 0) < n:
            bufs = (np.empty(n, np.int32), np.empty(n, np.int32), np.empty(n), np.empty(n), np.empty(n, np.uint32))
            if scratch is not None:
                scratch.update(n=n, bufs=bufs)
        else:
            bufs = scratch["bufs"]
        pre, post, dw, pct, out = (b[:n] for b in bufs)
        summary_columns(w0, w1, np.int64(a), np.int64(n_post), float(thr), label_arr.view(np.uint32), pre, post, dw, pct, out)
        return pre, post, w0.astype(wdtype, copy=False), w1.astype(wdtype, copy=False), dw, pct, out.view(label_arr.dtype)
    nrows = n // n_post
    a0, a1 = w0.astype(np.float64, copy=False), w1.astype(np.float64, copy=False)
    dw = a1 - a0
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * dw / np.abs(a0)
    empty = a0 == 0.0
    pct[empty] = np.nan
    empty |= np.isnan(pct)
    ltp = (pct > thr) | (empty & (dw > 0))
    ltd = (pct < -thr) | (empty & (dw < 0))
    code = ltp.view(np.uint8) + 2 * ltd.view(np.uint8)
    pre = np.repeat(np.arange(a, a + nrows, dtype=np.int32), n_post)
    post = np.tile(np.arange(n_post, dtype=np.int32), nrows)
    return pre, post, w0.astype(wdtype, copy=False), w1.astype(wdtype, copy=False), dw, pct, label_arr[code]


def _condition_npy(sweep: bool, k: int, r: RunResult, n: int) -> list:
    return [np.full(n, condition_index(r, k), dtype=np.int32)] if sweep else []


def npy_traces(results: list[RunResult], sweep: bool):
    cols = results[0].columns if results else []
    columns = [(c, F8) for c in cols] + ([("condition", I4)] if sweep else [])

    def blocks():
        for k, r in enumerate(results):
            if r.columns != cols:
                raise ProtocolError("sweep conditions record different columns; sweep values that change sizes are not supported", "sweep")
            for a in range(0, r.traces.shape[0], NPY_ROWS):
                data = r.traces[a : a + NPY_ROWS]
                yield [np.ascontiguousarray(data[:, j], dtype=np.float64) for j in range(len(cols))] + _condition_npy(sweep, k, r, data.shape[0])

    return columns, sum(int(r.traces.shape[0]) for r in results), blocks


def npy_spikes(results: list[RunResult], sweep: bool):
    pop = np.array([b"pre", b"post"], dtype="|S4")
    columns = [("t_ms", F8), ("population", "|S4"), ("index", I4)] + ([("condition", I4)] if sweep else [])

    def blocks():
        for k, r in enumerate(results):
            t, p, idx = r.spikes
            if t.size:
                yield [np.asarray(t, dtype=np.float64), pop[p], np.asarray(idx).astype(np.int32)] + _condition_npy(sweep, k, r, t.size)

    return columns, sum(int(r.spikes[0].size) for r in results), blocks


def npy_responses(results: list[RunResult], sweep: bool):
    columns = [("t_ms", F8), ("pre", I4), ("post", I4), ("amplitude", F8)] + ([("condition", I4)] if sweep else [])

    def blocks():
        for k, r in enumerate(results):
            if r.responses is None or not r.responses[0].size:
                continue
            t, i, j, amp = r.responses
            yield [np.asarray(t, dtype=np.float64), np.asarray(i).astype(np.int32), np.asarray(j).astype(np.int32), np.asarray(amp, dtype=np.float64)] + _condition_npy(sweep, k, r, t.size)

    return columns, sum(0 if r.responses is None else int(r.responses[0].size) for r in results), blocks


def npy_structure(results: list[RunResult], sweep: bool):
    from ..core.structure import EVENT_LABELS

    descr, names = _text(EVENT_LABELS)
    labels = np.array(names, dtype=descr)
    columns = [("t_ms", F8), ("pre", I4), ("post", I4), ("event", descr)] + ([("condition", I4)] if sweep else [])

    def blocks():
        for k, r in enumerate(results):
            st = r.structure
            if st is None or not st.n_events:
                continue
            n_post = r.w_final.shape[1]
            yield [st.ev_step * r.protocol.dt, (st.ev_syn // n_post).astype(np.int32), (st.ev_syn % n_post).astype(np.int32), labels[st.ev_kind]] + _condition_npy(sweep, k, r, st.n_events)

    return columns, sum(0 if r.structure is None else int(r.structure.n_events) for r in results), blocks


def npy_fill(table):
    """A ``columns`` writer of :func:`plastictool.results.folders.write_folder` for ``(columns, rows, blocks)``.

    Block ``k`` is written on a second thread while ``blocks()`` computes block ``k + 1``; block
    ``k + 2`` is asked for only after block ``k`` is written, so ``blocks()`` may reuse the
    arrays of the block before the previous one."""
    columns, rows, blocks = table

    def fill(cw) -> None:
        from concurrent.futures import ThreadPoolExecutor

        cw.begin(columns, rows)
        types = [np.dtype(d) for _, d in columns]

        def write(parts):
            for k, part in enumerate(parts):
                cw.write(k, part)

        # a block is written on a second thread while this one draws and computes the next
        # (NumPy's generator, the kernel and the writes release the GIL); blocks stay in order
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for parts in blocks():
                parts = [np.ascontiguousarray(part, dtype=dt) for part, dt in zip(parts, types)]
                if pending is not None:
                    pending.result()
                pending = pool.submit(write, parts)
            if pending is not None:
                pending.result()

    return fill


def versions() -> dict:
    """Versions of plastic and what it runs on; modules not imported by this run (Numba when the
    ahead-of-time kernels ran) are looked up without importing them."""
    from ..core.jit import USED

    out = {"plastic": __version__, "python": platform.python_version()}
    for mod in ("numpy", "numba", "llvmlite", "yaml", "typer", "rich"):
        m = sys.modules.get(mod)
        out["pyyaml" if mod == "yaml" else mod] = (getattr(m, "__version__", "") if m is not None else "") or _dist_version(mod)
    out["kernels"] = "+".join(sorted(USED)) or "none"
    return out


def _dist_version(mod: str) -> str:
    """The installed distribution's version (:mod:`plastictool.dists`: read from its
    ``*.dist-info`` folder name, no import of the module or of importlib.metadata)."""
    from ..dists import version

    return version({"yaml": "pyyaml"}.get(mod, mod))


def shard_doc(shard: tuple[int, int], experiment, results: list[RunResult]) -> dict:
    """``run.json``'s ``shard``: which conditions this folder holds and how many rows each has in
    each file, so that :mod:`plastictool.results.merge` can interleave the shards' rows in condition order."""
    k, n = shard
    rows = {"summary.csv": [int(r.w_final.size) for r in results], "traces.csv": [int(r.traces.shape[0]) for r in results]}
    if experiment.base.record.spikes:
        rows["spikes.csv"] = [int(r.spikes[0].size) for r in results]
    if experiment.base.record.responses:
        rows["responses.csv"] = [0 if r.responses is None else int(r.responses[0].size) for r in results]
    if experiment.base.synapses.structure is not None:
        rows["structure.csv"] = [int(r.structure.n_events) for r in results]
    return {
        "index": k,
        "count": n,
        "assignment": "conditions i with i % count == index - 1",
        "total_conditions": len(experiment.conditions),
        "conditions": [condition_index(r, j) for j, r in enumerate(results)],
        "rows": rows,
    }


def run_json(experiment, results: list[RunResult], wall_s: float, argv, profile: dict, shard: tuple[int, int] | None = None) -> str:
    src_bytes = Path(experiment.file).read_bytes() if Path(experiment.file).exists() else b""
    base = experiment.base.resolved
    counts = {}
    for r in results:
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
    sim_s = sum(r.timings.get("simulate_s", 0.0) for r in results)
    doc = {
        "tool": "plastic",
        "version": __version__,
        "protocol_file": str(experiment.file),
        "protocol_sha256": hashlib.sha256(src_bytes).hexdigest(),
        "resolved_sha256": hashlib.sha256(json.dumps(base, sort_keys=True).encode()).hexdigest(),
        "overrides": list(experiment.overrides),
        "protocol": base,
        "seed": experiment.base.seed,
        "format": experiment.base.record.format,
        "sweep": (
            {
                "mode": experiment.sweep_mode,
                "keys": list(experiment.sweep_keys),
                "conditions": [{"condition": c.index, **{k: v for k, v in c.values}} for c in experiment.conditions],
            }
            if experiment.sweep_keys
            else None
        ),
        "blocks": {ph.name: sorted(set(experiment.base.block) | set(ph.block)) for ph in experiment.base.phases},
        "counts": counts,
        "wall_time_s": round(wall_s, 6),
        "profile": {**{k: round(v, 6) for k, v in profile.items()}, "synaptic_updates_per_s": round(counts.get("synaptic_updates", 0) / sim_s, 1) if sim_s > 0 else None},
        "versions": versions(),
        "platform": {
            "system": platform.system(),
            "machine": platform.machine(),
            "release": platform.release(),
            "python_implementation": platform.python_implementation(),
            "byteorder": sys.byteorder,
        },
        "command": list(argv),
    }
    if shard is not None:
        doc["shard"] = shard_doc(shard, experiment, results)
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def write_outputs(out: Path, experiment, results: list[RunResult], wall_s: float, argv=(), profile=None, force=False, shard=None) -> Path:
    """Write summary, traces, spikes and run.json into ``out`` atomically (the tables as CSV files,
    or with ``record.format: npy`` as folders of .npy files, :mod:`plastictool.results.columnar`).

    ``shard=(K, N)``: ``results`` are the conditions of shard K of N (``plastic run --shard``);
    ``run.json`` records them (``shard``). A shard without conditions writes only ``run.json``."""
    import time

    t0 = time.perf_counter()
    sweep = bool(experiment.sweep_keys)
    writers = []
    if (results or shard is None) and experiment.base.record.format == "npy":
        writers += [("summary", "columns", npy_fill(npy_summary(experiment, results))), ("traces", "columns", npy_fill(npy_traces(results, sweep)))]
        if experiment.base.record.spikes:
            writers.append(("spikes", "columns", npy_fill(npy_spikes(results, sweep))))
        if experiment.base.record.responses:
            writers.append(("responses", "columns", npy_fill(npy_responses(results, sweep))))
        if experiment.base.synapses.structure is not None:
            writers.append(("structure", "columns", npy_fill(npy_structure(results, sweep))))
    elif results or shard is None:
        writers += [("summary.csv", "wb", lambda fh: write_summary(fh, results, experiment.sweep_keys)), ("traces.csv", "wb", lambda fh: write_traces(fh, results, sweep))]
        if experiment.base.record.spikes:
            writers.append(("spikes.csv", "wb", lambda fh: write_spikes(fh, results, sweep)))
        if experiment.base.record.responses:
            writers.append(("responses.csv", "wb", lambda fh: write_responses(fh, results, sweep)))
        if experiment.base.synapses.structure is not None:
            writers.append(("structure.csv", "wb", lambda fh: write_structure(fh, results, sweep)))
    profile = dict(profile or {})

    def meta(fh):
        profile["write_s"] = time.perf_counter() - t0
        fh.write(run_json(experiment, results, wall_s, argv, profile, shard))

    writers.append(("run.json", "w", meta))
    return write_folder(Path(out), writers, force, experiment.file)
