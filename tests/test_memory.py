"""Memory of big runs (benchmark W4: 1e8 float32 synapses, goal: the process peaks at most 1.3x
its weight matrix): nothing of the matrix's size besides the matrix itself is allocated while
building, at the end of the run or while writing, and the tables are written in bounded chunks.

Peaks are measured with tracemalloc (NumPy reports its array buffers to it) over a moderate
network; each bound sits well below what the code did before (stated per test), so a change
that brings back a whole-size temporary fails here. The values are checked too: the memory
saving changes no number.
"""

from __future__ import annotations

import hashlib
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plastictool.simulation import engine, threads
from plastictool.results import output
from plastictool.simulation.engine import RunResult, condition_seed, initial_weight_rows, initial_weights, spike_table
from plastictool.protocol.schema import load_experiment

N = 2000  # 2000 x 2000 synapses: a 16 MB float32 matrix
MIB = 2**20

PROTOCOL = """\
name: big
seed: 3
dt: 0.1 ms
duration: 10 ms
synapses: {{n_pre: {n}, n_post: {n}, dtype: {dtype}, w_init: {init}, w_min: 0, w_max: 0.0028}}
neuron: {{model: lif}}
stimulus: {{pre: {{poisson: {{rate: 5 Hz}}}}}}
rule: {{kind: stdp}}
record: {{weights: none, spikes: post}}
"""


def protocol(write, n=N, dtype="float32", init="{uniform: [0, 0.0028]}"):
    return load_experiment(write("big.yaml", PROTOCOL.format(n=n, dtype=dtype, init=init))).base


def traced_peak(fn, *args, **kwargs):
    """(result, peak bytes allocated while ``fn`` ran, above what was allocated before)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        out = fn(*args, **kwargs)
        return out, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


class Sink:
    """A binary file that keeps only the length and a hash of what it is given."""

    def __init__(self):
        self.n = 0
        self.h = hashlib.sha256()

    def write(self, part):
        self.h.update(part)
        self.n += len(part)
        return len(part)


# ---------------------------------------------------------------------------- building
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("init", ["{uniform: [0, 0.0028]}", "{normal: [0.001, 0.002]}", "0.001"])
@pytest.mark.parametrize("prefault", [False, True])
def test_initial_matrix_filled_in_place(write, dtype, init, prefault, monkeypatch):
    """The initial weights are drawn a block of rows at a time into the matrix: the peak is the
    matrix plus one block (before: a float64 matrix drawn, clipped and cast, 3x a float32
    matrix). The values are those of one draw of the whole matrix, clipped and cast, whether
    or not its pages were faulted in first (``memory.prefault``, here for any size)."""
    from plastictool.simulation import memory

    monkeypatch.setattr(memory, "PREFAULT_MIN", 0 if prefault else memory.PREFAULT_MIN)
    p = protocol(write, dtype=dtype, init=init)
    w, peak = traced_peak(initial_weights, p)
    assert w.dtype == np.dtype(dtype) and w.shape == (N, N) and w.flags.c_contiguous
    assert peak <= w.nbytes + 3 * 8 * engine.INITIAL_BLOCK, (peak / MIB, w.nbytes / MIB)
    rng = np.random.default_rng(condition_seed(p.seed, ()).spawn(4)[0])
    whole = np.clip(p.synapses.w_init.sample((N, N), rng), 0.0, 0.0028).astype(dtype)
    assert np.array_equal(w, whole)
    assert np.array_equal(np.concatenate([b for _, b in initial_weight_rows(p, (), 333)]), whole)


def test_build_holds_one_matrix(write):
    """``build`` of a 2000 x 2000 float32 network: one matrix and the spikes, nothing else of
    the matrix's size (before: 3x the matrix)."""
    p = protocol(write)
    b, peak = traced_peak(engine.build, p)
    assert b.w.dtype == np.float32 and b.w_initial is None
    assert peak <= b.w.nbytes + 8 * MIB, (peak / MIB, b.w.nbytes / MIB)


# ---------------------------------------------------------------------------- end of the run
@pytest.mark.parametrize("blocks", [1, 2, 3])
def test_post_spikes_of_blocks_merged_without_copies(blocks):
    """``Stepper.post_spikes`` merges the blocks' chunks of post spikes in (step, index) order
    (as a stable sort by step gives them), emptying the chunk lists as it goes: its peak is
    about its result (before: chunks, concatenation, order and permuted copies, 2.5x)."""
    rng = np.random.default_rng(1)
    n_post, n_steps, n = 999, 5000, 300_000
    bounds = threads.block_bounds(n_post, blocks)
    st_ = object.__new__(threads.Stepper)
    st_.bounds = bounds
    st_.b = type("B", (), {"w": np.zeros((1, n_post), np.float32)})()
    st_.spikes = []
    want_s, want_i = [], []
    for j0, j1 in bounds:  # each block: its spikes in (step, index) order, in chunks
        steps = np.sort(rng.integers(0, n_steps, n // blocks))
        idx = rng.integers(j0, j1, steps.size)
        key = np.unique(steps * n_post + idx)
        steps, idx = key // n_post, key % n_post
        want_s.append(steps)
        want_i.append(idx)
        cuts = np.sort(rng.integers(0, steps.size, 7))
        st_.spikes.append((list(np.split(steps, cuts)), list(np.split(idx, cuts))))
    all_s, all_i = np.concatenate(want_s), np.concatenate(want_i)
    order = np.argsort(all_s, kind="stable")
    from plastictool.core.sort import radix_sort_u32

    k32 = np.arange(4, dtype=np.uint32)
    radix_sort_u32(k32, np.empty_like(k32))  # the sort's kernel loaded first (alone, the test traced its loading)
    (steps, idx), peak = traced_peak(st_.post_spikes)
    assert np.array_equal(steps, all_s[order]) and np.array_equal(idx, all_i[order])
    assert all(not lst for blk in st_.spikes for lst in blk)
    assert peak <= 1.6 * (steps.nbytes + idx.nbytes), (peak, steps.nbytes + idx.nbytes)


@pytest.mark.parametrize("which", ["post", "pre", "both"])
def test_spike_table_sorted_without_copies(which):
    """spikes.csv's rows in time, population, index order; one population alone is in that
    order already and is not permuted: the peak is about the table (before: 2.5x)."""
    rng = np.random.default_rng(2)

    def events(n, n_neurons):
        key = np.unique(rng.integers(0, 50_000 * n_neurons, n))
        return key // n_neurons, key % n_neurons

    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    pre = events(200_000, 300) if which != "post" else empty
    post = events(200_000, 700) if which != "pre" else empty
    (t, pop, idx), peak = traced_peak(spike_table, pre, post, 0.1)
    tt = np.concatenate([pre[0], post[0]]) * 0.1
    pp = np.concatenate([np.zeros(pre[0].size, np.int8), np.ones(post[0].size, np.int8)])
    ii = np.concatenate([pre[1], post[1]])
    order = np.lexsort((ii, pp, tt))
    assert np.array_equal(t, tt[order]) and np.array_equal(pop, pp[order]) and np.array_equal(idx, ii[order])
    assert t.dtype == np.float64 and pop.dtype == np.int8
    table = t.nbytes + pop.nbytes + idx.nbytes
    if which != "both":
        assert peak <= 1.25 * table, (peak, table)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1), st.integers(0, 3)), max_size=12))
def test_lex_sorted_is_lexsort_leaving_the_rows(rows):
    """``_lex_sorted`` is True exactly when a stable ``np.lexsort`` leaves the rows in place."""
    a = np.array(rows, dtype=np.int64).reshape(-1, 3)
    keys = (a[:, 0] * 0.1, a[:, 1].astype(np.int8), a[:, 2])
    order = np.lexsort(keys[::-1])
    assert engine._lex_sorted(*keys) == bool(np.array_equal(order, np.arange(a.shape[0])))


# ---------------------------------------------------------------------------- writing
def test_summary_written_in_bounded_chunks(write, monkeypatch):
    """summary.csv of 4 million synapses (about 300 MB of text, a 16 MB float32 matrix) is
    written with about 10 MiB of buffers: initial weights drawn again a block of rows at a time,
    rows formatted a chunk at a time, nothing of the matrix's size (a float64 copy of the final
    weights alone would be 32 MB). The bytes are those of the same table written with the
    initial weights stored and small chunks."""
    p = protocol(write)
    w1 = initial_weights(p)
    w1 *= np.float32(1.01)
    w1[::7] = 0.001
    none = np.zeros(0)
    r = RunResult(p, (), None, w1, ["t_ms"], np.zeros((1, 1)), (none, none, none), {})
    with monkeypatch.context() as m:  # compile or load the formatting kernel first
        m.setattr(output, "PYTHON_CELLS", 0)
        output.write_summary(Sink(), [RunResult(p, (), None, w1[:3], ["t_ms"], np.zeros((1, 1)), (none, none, none), {})], ())
    sink = Sink()
    _, peak = traced_peak(output.write_summary, sink, [r], ())
    assert sink.n > 250 * 10**6
    assert peak <= 12 * MIB, peak / MIB  # three chunks in flight, 3.1 MiB of buffers each
    twin = Sink()
    monkeypatch.setattr(output, "CHUNK", 5000)
    output.write_summary(twin, [RunResult(p, (), initial_weights(p), w1, ["t_ms"], np.zeros((1, 1)), (none, none, none), {})], ())
    assert twin.h.digest() == sink.h.digest()


@pytest.mark.parametrize("sweep", [False, True])
def test_spikes_written_in_bounded_chunks(write, sweep):
    """spikes.csv rows are stacked a chunk at a time: a peak of about 8 MiB of buffers for a
    million spikes (before: the whole table as float64 twice, 48 MB, besides them); the bytes
    are those of the whole table formatted at once."""
    p = protocol(write, n=10)
    rng = np.random.default_rng(4)
    n = 1_000_000
    t = np.sort(rng.integers(0, 10**6, n)) * 0.1
    spikes = (t, rng.integers(0, 2, n).astype(np.int8), rng.integers(0, 10_000, n))
    r = RunResult(p, (), None, np.zeros((10, 10)), ["t_ms"], np.zeros((1, 1)), spikes, {})
    output.write_spikes(Sink(), [r], sweep)  # compile
    sink = Sink()
    _, peak = traced_peak(output.write_spikes, sink, [r], sweep)
    assert peak <= 12 * MIB + (8 * n if sweep else 0), peak / MIB  # the condition column: 8 bytes a spike
    from plastictool.core.fmt import FLOAT, INT, LABEL

    cols = list(spikes) + ([np.zeros(n)] if sweep else [])
    whole = Sink()
    whole.write(("t_ms,population,index" + (",condition" if sweep else "") + "\n").encode())
    output._write_ordered(whole, output._table_tasks(np.column_stack(cols).astype(np.float64), [FLOAT, LABEL, INT] + ([INT] if sweep else []), ["pre", "post"]))
    assert whole.h.digest() == sink.h.digest()


# ---------------------------------------------------------------------------- the C heap
HEAP = """
import json, sys
import numpy as np
from plastictool.simulation import memory

MIB = 2**20


def rss():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024


memory.trim_heap()
if not memory._TRIM:
    print(json.dumps(None))
    sys.exit()
big = np.ones(12 * MIB // 8)  # mmapped; freeing it raises glibc's mmap threshold above 4 MiB
del big
held, keep = [], []
for _ in range(24):  # 4 MiB arrays from the heap, each followed by a small live one: holes when freed
    held.append(np.ones(4 * MIB // 8))
    keep.append(np.ones(40_000))
before = rss()
del held
after_free = rss()
memory.trim_heap() if sys.argv[1] == "trim" else None
print(json.dumps([before, after_free, rss()]))
"""


PREFAULT = """
import ctypes, json
import numpy as np
from plastictool.simulation import memory


def rss():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024


probe = np.empty(1 << 20, np.uint8)  # does this kernel have MADV_POPULATE_WRITE (Linux 5.14)?
start = -(-probe.__array_interface__["data"][0] // 4096) * 4096
madvise = memory._madvise()
ok = madvise is not None and madvise(start, 65536, memory.MADV_POPULATE_WRITE) == 0
a = np.empty(memory.PREFAULT_MIN // 8)  # fresh pages, none touched
before = rss()
memory.prefault(a)
print(json.dumps([ok, before, rss(), a.nbytes / 2**20]))
"""


def test_prefault_brings_a_fresh_arrays_pages_in():
    """``prefault`` of a fresh (untouched) array: its pages are resident afterwards, without
    a write to it. In a fresh process, where nothing else touched that memory."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PREFAULT], capture_output=True, text=True, check=True).stdout
    ok, before, after, size = json.loads(out)
    if not ok:
        pytest.skip("no madvise(MADV_POPULATE_WRITE) here (not Linux 5.14 or later): prefault does nothing")
    assert after - before >= 0.95 * size, (before, after, size)


@pytest.mark.parametrize("trim", [True, False])
def test_trim_heap_gives_freed_temporaries_back(trim):
    """Arrays freed in the middle of glibc's heap stay resident until ``trim_heap`` (as the
    temporaries of a big run would, beside its matrix); it gives them back. In a fresh
    process, whose heap is in a known state."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", HEAP, "trim" if trim else "no"], capture_output=True, text=True, check=True).stdout
    got = json.loads(out)
    if got is None:
        pytest.skip("not glibc: no malloc_trim")
    before, after_free, after = got
    if before - after_free >= 24:  # seen in a fresh CI clone: this heap gave the holes back at free
        pytest.skip(f"the allocator returned the freed arrays at once (RSS MiB {got}): nothing left for trim_heap")
    if trim:
        assert after_free - after > 60, got
    else:
        assert after_free - after < 24, got


def test_npy_summary_written_in_bounded_blocks(write, tmp_path, monkeypatch):
    """``record.format: npy``: the summary of 4 million float32 synapses is written with about
    20 MiB of buffers (blocks of NPY_ROWS rows, two sets of column buffers), below W4's margin
    beside its matrix (blocks of 2^19 rows took 40 MiB: W4 peaked at 1.28x its matrix instead of
    1.26x); the files are those written in small blocks."""
    import plastictool as pt

    text = PROTOCOL.format(n=N, dtype="float32", init="{uniform: [0, 0.0028]}").replace("record: {", "record: {format: npy, ")
    res = pt.run(write("npy.yaml", text))
    res.write(tmp_path / "warm")  # compile or load the kernels first
    _, peak = traced_peak(res.write, tmp_path / "a")
    assert peak <= 24 * MIB, peak / MIB
    monkeypatch.setattr(output, "NPY_ROWS", 3 * N + 7)
    res.write(tmp_path / "b")
    files = sorted(x.relative_to(tmp_path / "a") for x in (tmp_path / "a").rglob("*.npy"))
    assert any(f.parts[0] == "summary" for f in files)
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_the_memory_estimate_counts_a_second_weight_matrix_only_where_the_rule_keeps_one():
    """W4's 1e8 float32 synapses need 0.4 GB of weights under pair STDP (the initial weights are
    drawn again from the seed for the summary); rules whose weight is a readout of their state
    (calcium, receptor) keep a copy of the initial matrix."""
    import plastictool as pt
    from plastictool.simulation.memory import estimate_memory

    base = "name: m\nsynapses: {n_pre: 10000, n_post: 10000, dtype: float32}\nneuron: {model: lif}\nrule: {kind: %s}\nphases: [{duration: 1 s}]\nrecord: {stats: [mean]}\n"
    stdp = estimate_memory(pt.load(base % "stdp").base)
    calcium = estimate_memory(pt.load(base % "calcium").base)
    assert stdp["weights"] == 4 * 10**8
    assert calcium["weights"] == 8 * 10**8
