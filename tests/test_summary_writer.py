"""summary.csv is written by a kernel straight from the flat weights, in chunks on two threads,
with the initial weights drawn again from the seed a block of rows at a time; the bytes are
those of a plain-Python twin."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest

from plastictool.results import output
from plastictool.simulation.engine import RunResult, initial_weight_rows, initial_weights
from plastictool.protocol.inits import Init
from plastictool.protocol.schema import load_experiment

PROTOCOL = """\
name: summary
seed: 11
synapses: {n_pre: 37, n_post: 13, w_init: {normal: [0.5, 0.4]}, w_min: 0, w_max: 1}
stimulus:
  pairing: {pairs: 2, frequency: 10 Hz, delta_t: 10 ms}
rule: {kind: stdp}
record: {outcome_threshold: 2.5}
"""


def protocol(write, text=PROTOCOL, **synapses):
    p = load_experiment(write("p.yaml", text)).base
    return dataclasses.replace(p, synapses=dataclasses.replace(p.synapses, **synapses)) if synapses else p


def result(p, w_final, w_initial=None, condition=()):
    none = np.zeros(0)
    return RunResult(p, condition, w_initial, w_final, ["t_ms"], np.zeros((1, 1)), (none, none, none), {})


@pytest.fixture(autouse=True)
def kernels_only(monkeypatch):
    """These tests are about the kernels: no table is small enough for Python's own "%"."""
    monkeypatch.setattr(output, "PYTHON_CELLS", 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_small_tables_formatted_by_python_equal_the_kernels(write, monkeypatch, dtype):
    """Small summaries, traces and spikes tables go through Python's "%" (no kernel to compile
    on a first run): the same bytes as the kernels, sweep prefix, zeros, NaN and inf included."""
    p = protocol(write, dtype="float32" if dtype == np.float32 else "float64")
    rng = np.random.default_rng(5)
    w1 = rng.normal(0.5, 0.5, (37, 13)).astype(dtype)
    w0 = rng.normal(0.5, 0.5, (37, 13)).astype(dtype)
    w0[0, :4] = 0.0
    w1[1, 0], w0[2, 0], w1[3, 0] = np.nan, np.inf, -0.0
    results = [result(p, w1, w0, condition=(("rule.a_plus", 0.015),)), result(p, w1 * 2, w0)]
    kernel = written(results, ("rule.a_plus",))
    monkeypatch.setattr(output, "PYTHON_CELLS", 10**9)
    assert written(results, ("rule.a_plus",)) == kernel
    table = np.column_stack([rng.normal(0, 1e3, 500), rng.integers(0, 2, 500), rng.integers(-9, 99, 500), np.full(500, np.nan)])
    kinds = [output_kinds("FLOAT"), output_kinds("LABEL"), output_kinds("INT"), output_kinds("FLOAT_OR_EMPTY")]
    fh = io.BytesIO()
    output._write_table(fh, table, kinds, ["pre", "post"])
    monkeypatch.setattr(output, "PYTHON_CELLS", 0)
    fh2 = io.BytesIO()
    output._write_table(fh2, table, kinds, ["pre", "post"])
    assert fh.getvalue() == fh2.getvalue()


def output_kinds(name):
    from plastictool.core import fmt

    return getattr(fmt, name)


# ---------------------------------------------------------------------------- the Python twin
def twin_row(i: int, j: int, a: float, b: float, thr: float, prefix: str = "") -> str:
    """One row of summary.csv in plain Python, f-strings for the numbers."""
    dw = b - a
    pct = 100.0 * dw / abs(a) if a != 0 else math.nan
    if math.isnan(pct):
        outcome = "LTP" if dw > 0 else "LTD" if dw < 0 else "none"
    else:
        outcome = "LTP" if pct > thr else "LTD" if pct < -thr else "none"
    cell = "" if math.isnan(pct) else f"{pct:.12g}"
    return f"{prefix}{i},{j},{a:.12g},{b:.12g},{dw:.12g},{cell},{outcome}\n"


def twin_rows(w0: np.ndarray, w1: np.ndarray, thr: float, prefix: str = "") -> str:
    """summary.csv's rows (no header) in plain Python."""
    return "".join(twin_row(i, j, a, b, thr, prefix) for (i, j), a, b in zip(np.ndindex(w1.shape), w0.ravel().tolist(), w1.ravel().tolist()))


def written(results, sweep_keys=(), binary=True) -> str:
    fh = io.BytesIO() if binary else io.StringIO()
    output.write_summary(fh, results, sweep_keys)
    v = fh.getvalue()
    return v.decode("ascii") if binary else v


HEADER = "pre,post,w_initial,w_final,dw,dw_percent,outcome\n"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_summary_kernel_matches_the_python_twin(write, dtype):
    p = protocol(write, dtype="float32" if dtype == np.float32 else "float64")
    rng = np.random.default_rng(3)
    shape = (p.synapses.n_pre, p.synapses.n_post)
    w0 = rng.uniform(-1, 1, shape) * 10.0 ** rng.integers(-12, 4, shape)
    w0[rng.random(shape) < 0.2] = 0.0  # zero initial weights: dw_percent empty, outcome by dw
    w0[0, :3] = [-0.0, 1e-300, 2.0**-18]  # a negative zero, cells for Python
    w1 = w0 + rng.normal(0, 1, shape) * np.abs(w0).clip(1e-3) * rng.choice([0, 0.001, 0.05, 1], shape)
    w1[1, :4] = [np.nan, np.inf, -np.inf, w0[1, 3]]
    w1[2, :2] = w0[2, :2] * (1 + 0.025)  # exactly at the threshold
    w0, w1 = w0.astype(dtype), w1.astype(dtype)
    thr = p.record.outcome_threshold
    got = written([result(p, w1, w0)])
    assert got == HEADER + twin_rows(w0.astype(float), w1.astype(float), thr)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sweep_prefix_and_initial_weights_drawn_again(write, dtype):
    """Sweep values lead each row; without stored initial weights they are drawn again from the
    condition's seed (as build drew them: clipped, float32 where asked)."""
    p = protocol(write, dtype=dtype)
    cond_a = (("rule.a_plus", 0.005), ("neuron.model", "lif"))
    cond_b = (("rule.a_plus", 1e-12), ("neuron.model", "a?b"))
    rng = np.random.default_rng(5)
    results, want = [], HEADER.replace("pre,", "rule.a_plus,neuron.model,pre,")
    for cond, prefix in ((cond_a, "0.005,lif,"), (cond_b, "1e-12,a_b,")):
        w0 = initial_weights(p, cond)
        assert w0.dtype == np.dtype(dtype) and w0.min() == 0 and w0.max() == 1  # clipped
        w1 = (w0 + rng.normal(0, 0.1, w0.shape)).astype(dtype)
        results.append(result(p, w1, None, cond))
        want += twin_rows(w0.astype(float), w1.astype(float), p.record.outcome_threshold, prefix)
    assert written(results, ["rule.a_plus", "neuron.model"]) == want
    assert written(results, ["rule.a_plus", "neuron.model"], binary=False) == want  # a text file too


@pytest.mark.parametrize("chunk", [1, 7, 13, 50, 10_000])
def test_chunks_and_threads_do_not_change_the_bytes(write, monkeypatch, chunk):
    p = protocol(write)
    w1 = initial_weights(p) * 1.01
    want = HEADER + twin_rows(initial_weights(p).astype(float), w1, p.record.outcome_threshold)
    monkeypatch.setattr(output, "CHUNK", chunk)
    assert written([result(p, w1), result(p, w1, initial_weights(p))]) == want + want[len(HEADER) :]


def test_the_whole_initial_matrix_is_never_drawn(write, monkeypatch):
    from plastictool.simulation import engine

    p = protocol(write)
    w1 = initial_weights(p) + 0.01
    want = written([result(p, w1)])

    def whole(*a, **k):
        raise AssertionError("initial_weights called: a second n_pre x n_post array")

    monkeypatch.setattr(engine, "initial_weights", whole)
    monkeypatch.setattr(output, "CHUNK", 2 * p.synapses.n_post)
    assert written([result(p, w1)]) == want


# ---------------------------------------------------------------------------- drawn in blocks
@pytest.mark.parametrize("init", [Init("uniform", (-1.0, 2.0)), Init("normal", (0.5, 3.0)), Init("constant", (0.25,)), Init("matrix", (tuple(tuple(float(10 * i + j) for j in range(4)) for i in range(9)),))])
@pytest.mark.parametrize("rows", [1, 2, 4, 9, 100])
def test_rows_drawn_in_blocks_are_the_rows_drawn_at_once(init, rows):
    """NumPy's Generator gives the same stream for successive smaller uniform/normal calls as
    for one big call in row-major order."""
    shape = (9, 4)
    whole = init.sample(shape, np.random.default_rng(7))
    blocks = list(init.sample_rows(shape, np.random.default_rng(7), rows))
    assert [a for a, _ in blocks] == list(range(0, 9, rows))
    assert np.array_equal(np.concatenate([b for _, b in blocks]), whole)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rule", ["stdp", "calcium"])
def test_initial_weight_rows_are_initial_weights(write, dtype, rule):
    """Clipping (rules with a weight of their own: not clipped) and the float32 conversion of
    ``_initial`` block by block."""
    text = PROTOCOL.replace("rule: {kind: stdp}", "rule: {kind: calcium}") if rule == "calcium" else PROTOCOL
    p = protocol(write, text, dtype=dtype)
    for cond in ((), (("seed", 4),)):
        whole = initial_weights(p, cond)
        assert whole.dtype == np.dtype(dtype)
        for rows in (1, 5, 37, 64):
            blocks = list(initial_weight_rows(p, cond, rows))
            got = np.concatenate([b for _, b in blocks])
            assert got.dtype == whole.dtype and np.array_equal(got, whole)


@pytest.mark.parametrize("chunk", [1, 3])
def test_a_long_sweep_prefix(write, monkeypatch, chunk):
    """The prefix label is as wide as it likes (the buffers are sized for it)."""
    p = protocol(write)
    cond = (("neuron.model", "x" * 300), ("rule.a_plus", 0.25))
    w0 = initial_weights(p, cond)
    w1 = w0 * 0.9
    monkeypatch.setattr(output, "CHUNK", chunk)
    want = "neuron.model,rule.a_plus," + HEADER + twin_rows(w0, w1, p.record.outcome_threshold, "x" * 300 + ",0.25,")
    assert written([result(p, w1, None, cond)], ["neuron.model", "rule.a_plus"]) == want


@pytest.mark.parametrize("thr", [2.5, 0.0])
def test_outcomes_at_the_threshold_and_rows_of_big_networks(thr):
    """The outcome (computed without branches in the kernel) at dw_percent exactly +-thr, zero and
    negative initial weights, and pre/post indices past the kernel's 4-digit int word (rows from
    10**8 on, 12,345 columns), against the Python twin."""
    from plastictool.core.fmt import SUMMARY_KINDS, SUMMARY_LABELS, label_array

    rng = np.random.default_rng(21)
    w0 = np.array([40.0, 40.0, -40.0, -40.0, 0.0, -0.0, 0.0, 3.0, 40.0, 1e9, 123456789012.0] + list(rng.uniform(-1, 1, 400)))
    w1 = np.array([41.0, 39.0, -41.0, -39.0, 1.0, -1.0, 0.0, 3.0, 40.0 + thr * 0.4, 2e9, 0.5] + list(rng.uniform(-1, 1, 400)))
    assert 100.0 * (w1[0] - w0[0]) / abs(w0[0]) == 2.5 and 100.0 * (w1[2] - w0[2]) / abs(w0[2]) == -2.5
    start, n_post = 10**8 + 12_340, 12_345
    kinds = np.array(SUMMARY_KINDS, dtype=np.uint8)
    _, parts = output._summary_chunk(w0, w1, start, n_post, thr, kinds, label_array(SUMMARY_LABELS), None)
    got = b"".join(bytes(x) for x in parts).decode("ascii")
    want = [twin_row(*divmod(start + k, n_post), a, b, thr) for k, (a, b) in enumerate(zip(w0.tolist(), w1.tolist()))]
    assert got == "".join(want)
    assert got.splitlines()[0].endswith(",none" if thr == 2.5 else ",LTP") and got.splitlines()[2].endswith(",none" if thr == 2.5 else ",LTD")
