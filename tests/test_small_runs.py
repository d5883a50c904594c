"""Sweeps of small networks (benchmark W1: 101 one-synapse conditions) pay little Python per
condition and per table: small tables are formatted by one ``%`` over a repeated line format,
without threads, and small networks keep their initial weights instead of drawing them again
for the summary. The files stay those of the general path, byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

import plastictool as pt
from plastictool.simulation import engine
from plastictool.results import output
from plastictool.core.fmt import FLOAT, FLOAT_OR_EMPTY, INT, LABEL


def per_cell(values: np.ndarray, kinds, labels=()) -> bytes:
    """The obvious twin of output._python_table: one ``%`` per cell."""

    def cell(x, kind):
        if kind == INT:
            return "%d" % int(x)
        if kind == LABEL:
            return labels[int(x)]
        if kind == FLOAT_OR_EMPTY and x != x:
            return ""
        return "%.12g" % x

    return "".join(",".join(cell(x, k) for x, k in zip(row, kinds)) + "\n" for row in values.tolist()).encode("ascii")


@pytest.mark.parametrize(
    "kinds",
    [[FLOAT] * 4 + [INT], [FLOAT, LABEL, INT, INT], [LABEL, INT, INT, FLOAT_OR_EMPTY, FLOAT_OR_EMPTY, FLOAT, LABEL], [FLOAT]],
)
def test_python_tables_equal_a_format_per_cell(kinds):
    rng = np.random.default_rng(len(kinds))
    n = 257
    v = rng.normal(size=(n, len(kinds))) * 10.0 ** rng.integers(-320, 300, size=(n, len(kinds)))
    for c, k in enumerate(kinds):
        if k in (INT, LABEL):
            v[:, c] = rng.integers(0, 3, n) if k == LABEL else rng.integers(-10**12, 10**12, n)
        else:
            v[::7, c] = np.nan
            v[1::11, c] = np.inf
            v[2::13, c] = -np.inf
            v[3::17, c] = -0.0
            v[4::19, c] = 5e-324  # subnormal
    labels = ["pre", "post", "LTP"]
    assert output._python_table(v, kinds, labels) == per_cell(v, kinds, labels)
    assert output._python_table(v[:0], kinds, labels) == b""


def test_python_tables_equal_the_kernels():
    """Where the kernels decide (tables above PYTHON_CELLS), the bytes are the same."""
    from plastictool.core.fmt import format_csv_bytes

    rng = np.random.default_rng(3)
    v = np.column_stack([rng.normal(0, 1e3, 400), rng.integers(0, 2, 400), rng.integers(-9, 99, 400), rng.normal(0, 1, 400)])
    v[::5, 3] = np.nan
    kinds = [FLOAT, LABEL, INT, FLOAT_OR_EMPTY]
    assert output._python_table(v, kinds, ["pre", "post"]) == b"".join(bytes(x) for x in format_csv_bytes(v, kinds, ["pre", "post"])[1])


SWEEP = {
    "seed": 4,
    "synapses": {"n_pre": 2, "n_post": 3, "w_init": {"uniform": [0.1, 0.9]}, "w_min": 0, "w_max": 1},
    "neuron": {"model": "clamped"},
    "stimulus": {"pairing": {"pairs": 5, "frequency": "5 Hz", "delta_t": "10 ms"}},
    "rule": {"kind": "stdp", "a_plus": 0.01, "a_minus": 0.0105},
    "record": {"interval": "50 ms", "state": ["x_pre"]},
    "sweep": {"stimulus.pairing.delta_t": ["-20 ms", "5 ms", "30 ms"], "rule.a_plus": [0.005, 0.02]},
}


def test_small_networks_keep_the_initial_weights_they_would_draw(tmp_path, monkeypatch):
    """Each condition of a sweep (its own seed) keeps exactly the initial weights that the seed
    gives again, and the files equal those written with the weights drawn again."""
    res = pt.run(SWEEP)
    results = res._results
    assert len(results) == 6
    for r in results:
        assert r.w_initial_stored is not None
        np.testing.assert_array_equal(r.w_initial_stored, engine.initial_weights(r.protocol, r.condition))
    assert len({r.w_initial_stored.tobytes() for r in results}) == 6  # a seed per condition
    kept = res.write(tmp_path / "kept")
    monkeypatch.setattr(engine, "KEEP_INITIAL", 0)
    again = pt.run(SWEEP)
    assert all(r.w_initial_stored is None for r in again._results)
    drawn = again.write(tmp_path / "drawn")
    for name in ("summary.csv", "traces.csv", "spikes.csv"):
        assert (kept / name).read_bytes() == (drawn / name).read_bytes(), name


def test_small_tables_are_written_without_threads(monkeypatch, tmp_path):
    """Tables that Python formats never start the writer's threads (they would wait on the GIL)."""
    import concurrent.futures

    def refuse(*args, **kwargs):
        raise AssertionError("a thread pool for small tables")

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", refuse)
    pt.run(SWEEP).write(tmp_path / "out")


def test_small_tables_by_the_compiled_formatter_are_the_same_bytes(monkeypatch, tmp_path):
    """With the ahead-of-time module loaded (``output.compiled_tables``), small tables are formatted
    by ``fmt.format_table`` (joined as Python's are, without threads): the same files."""
    import concurrent.futures

    res = pt.run(SWEEP)
    monkeypatch.setattr(output, "compiled_tables", lambda: False)
    by_python = res.write(tmp_path / "python")
    monkeypatch.setattr(output, "compiled_tables", lambda: True)  # the JIT stands in for the module here
    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", lambda *a, **k: (_ for _ in ()).throw(AssertionError("threads")))
    by_kernel = res.write(tmp_path / "kernel")
    for name in ("summary.csv", "traces.csv", "spikes.csv"):
        assert (by_python / name).read_bytes() == (by_kernel / name).read_bytes(), name


def test_compiled_tables_asks_the_module_for_the_formatter(monkeypatch):
    """``compiled_tables`` is true only where the module has ``format_table`` for the float64
    tables ``format_csv_bytes`` passes (and never starts the JIT to find out)."""
    from plastictool.core import fmt, jit
    from plastictool.core.native import argkey

    key = tuple(argkey(a) for a in (np.zeros((3, 2)), np.zeros(2, np.uint8), fmt.label_array(["pre", "post"]), np.zeros(9, np.uint8), np.zeros(6, np.int64), np.zeros(6)))
    name = "plastictool.core.fmt.format_table"
    for table, want in (({}, False), ({name: {key: object()}}, True), ({name: {key[:-1] + (argkey(np.zeros(1, np.float32)),): object()}}, False)):
        monkeypatch.setattr(jit, "_native", table)  # a new table: asked again
        assert output.compiled_tables() is want


def test_lazy_seeds_are_the_spawned_ones():
    """``engine.ConditionSeeds`` makes a condition's streams only when drawn from, the same as
    ``condition_seed(...).spawn(4)``; mechanisms spawning after it (release: ``spawn(5)[4]``) get
    what they got when the four were spawned eagerly."""
    values = (("stimulus.pairing.delta_t", -20.0),)
    eager = engine.condition_seed(7, values)
    kids = eager.spawn(4)
    later = eager.spawn(5)[4]
    seeds = engine.ConditionSeeds(7, values)
    for i, kid in enumerate(kids):
        assert seeds.child(i).generate_state(4).tolist() == kid.generate_state(4).tolist()
        a, b = seeds.rng(i), np.random.default_rng(kid)
        assert a.uniform(size=5).tolist() == b.uniform(size=5).tolist()
        assert a.poisson(3.0, size=5).tolist() == b.poisson(3.0, size=5).tolist()
    assert seeds.ss.spawn(5)[4].generate_state(4).tolist() == later.generate_state(4).tolist()


@pytest.mark.parametrize("kinds", [[FLOAT] * 5 + [INT], [FLOAT, LABEL, INT, INT], [INT, FLOAT, FLOAT, FLOAT_OR_EMPTY, FLOAT]])
def test_python_tables_with_repeats_equal_a_format_per_cell(kinds):
    """Tables of output.REPEATS_MIN_ROWS rows or more format each distinct value of a column once
    and share the strings of equal columns: the same bytes, with -0.0 apart from 0.0, NaN,
    infinities, subnormals, and an INT column equal to a FLOAT one."""
    rng = np.random.default_rng(len(kinds) + 7)
    n = 3 * output.REPEATS_MIN_ROWS + 5
    pool = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 5e-324, 1.0, -1.5, 1e300, 123456789012345.0, 0.1 + 0.2])
    v = pool[rng.integers(0, pool.size, size=(n, len(kinds)))]
    for c, k in enumerate(kinds):
        if k in (INT, LABEL):
            v[:, c] = rng.integers(0, 3, n) if k == LABEL else rng.integers(-5, 5, n)
    if kinds[1] == FLOAT and kinds[2] == FLOAT:
        v[:, 2] = v[:, 1]  # an equal column takes the other's strings
        v[:, 1] = np.where(rng.random(n) < 0.5, v[:, 1], rng.normal(size=n))  # ... and mostly distinct
        v[:, 2] = v[:, 1]
    if kinds[0] == INT:
        v[:, 1] = v[:, 0]  # a FLOAT column equal to an INT one keeps its own format
    labels = ["pre", "post", "LTP"]
    assert output._python_table(v, kinds, labels) == per_cell(v, kinds, labels)
    assert output._python_table(v[:5], kinds, labels) == per_cell(v[:5], kinds, labels)
