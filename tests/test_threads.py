"""Threads over blocks of post neurons (``plastic run --threads``; pair and triplet STDP):
bit-identical to one thread.

Post neurons of a feed-forward network do not interact, so the engine may advance blocks of
them on threads (``sim_threads.plan_blocks``, ``Stepper``). Every array a run produces must be equal,
bit for bit, to the one-thread run's: final weights, recorded traces (weights, statistics, pre
and post traces, v, g) and spikes.
"""

from __future__ import annotations

import numpy as np
import pytest

from plastictool.simulation import engine
from plastictool.simulation import threads as sim_threads
from plastictool.api import validate_file
from plastictool.errors import PlasticError

LIF = """
name: {name}
seed: 3
dt: 0.1 ms
duration: 250 ms
synapses: {{n_pre: 300, n_post: 203, w_init: {{uniform: [0, 0.02]}}, w_min: 0, w_max: 0.02, dtype: {dtype}}}
neuron: {{model: lif, tau_m: 10 ms, v_rest: -74 mV, v_thresh: -54 mV, v_reset: -60 mV, tau_syn: 5 ms, e_syn: 0 mV, t_ref: 1 ms}}
stimulus: {{pre: {{poisson: {{rate: 30 Hz}}}}}}
rule: {{kind: stdp, a_plus: 0.001, a_minus: 0.00105, tau_plus: 20 ms, tau_minus: 20 ms, pairing: {pairing}, weight_dependence: {wdep}}}
record: {{interval: {interval}, weights: [[0, 0], [3, 100], [299, 202]], stats: [mean, max], state: [x_pre, x_post, v, g], spikes: true}}
"""

# LIF neurons driven hard (about 1 kHz, no refractory period) with long chunks: the out buffers
# of post spikes fill up, so the kernels stop early and are called again within a chunk
BUSY = """
name: busy
seed: 4
dt: 0.1 ms
duration: 200 ms
synapses: {n_pre: 300, n_post: 150, w_init: {uniform: [0, 0.08]}, w_min: 0, w_max: 0.08}
neuron: {model: lif, tau_m: 10 ms, v_rest: -74 mV, v_thresh: -54 mV, v_reset: -60 mV, tau_syn: 5 ms, e_syn: 0 mV}
stimulus: {pre: {poisson: {rate: 30 Hz}}}
rule: {kind: stdp, a_plus: 0.001, a_minus: 0.00105, tau_plus: 20 ms, tau_minus: 20 ms, pairing: nearest, weight_dependence: multiplicative}
record: {interval: 100 ms, weights: [[0, 149], [10, 20]], state: [x_pre, x_post], spikes: true}
"""

# clamped post neurons (imposed Poisson spikes), three phases, NMDA blocked in the middle one
CLAMPED = """
name: clamped
seed: 5
dt: 0.1 ms
synapses: {n_pre: 250, n_post: 101, w_init: {uniform: [0.2, 0.8]}, w_min: 0, w_max: 1}
phases:
  - {name: a, duration: 100 ms, pre: {poisson: {rate: 20 Hz}}, post: {poisson: {rate: 15 Hz}}}
  - {name: b, duration: 100 ms, pre: {poisson: {rate: 20 Hz}}, post: {poisson: {rate: 15 Hz}}, block: [NMDA]}
  - {name: c, duration: 100 ms, pre: {poisson: {rate: 20 Hz}}, post: {poisson: {rate: 40 Hz}}}
rule: {kind: stdp, a_plus: 0.01, a_minus: 0.0105, tau_plus: 16.8 ms, tau_minus: 33.7 ms, weight_dependence: gutig}
record: {interval: 5 ms, weights: [[1, 1], [249, 100]], stats: [mean], state: [x_pre, x_post], spikes: true}
"""


def protocol(write, name, text):
    return validate_file(write(f"{name}.yaml", text)).conditions[0].protocol


def run(p, threads):
    r = engine.simulate(p, threads=threads)
    return r, (r.w_final, r.traces) + tuple(r.spikes)


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y)


def assert_threads_identical(p, thread_counts=(2, 3), min_post_spikes=100):
    """Runs with each of ``thread_counts`` threads use that many blocks and give the arrays and
    counts of one thread."""
    r1, one = run(p, 1)
    assert r1.timings["threads"] == 1
    assert r1.counts["post_spikes"] > min_post_spikes  # the post neurons fire: queues, out buffers, traces
    for threads in thread_counts:
        r, got = run(p, threads)
        assert r.timings["threads"] == threads
        assert r.counts == r1.counts
        assert_same(one, got)


@pytest.mark.parametrize(
    "pairing,wdep,dtype,interval",
    [
        ("all_to_all", "additive", "float64", "7 ms"),
        ("nearest", "multiplicative", "float64", "10 ms"),
        ("all_to_all", "gutig", "float32", "50 ms"),
    ],
)
def test_lif_blocks_identical_to_one_thread(write, pairing, wdep, dtype, interval):
    p = protocol(write, "lif", LIF.format(name="lif", pairing=pairing, wdep=wdep, dtype=dtype, interval=interval))
    assert_threads_identical(p, min_post_spikes=500)  # 3 threads: blocks of 72, 72 and 59 post neurons


def test_full_out_buffers_identical(write):
    p = protocol(write, "busy", BUSY)
    # more than two out buffers a chunk
    assert_threads_identical(p, thread_counts=(2, 5), min_post_spikes=64 * p.synapses.n_post * 2)


def test_clamped_phases_identical(write):
    p = protocol(write, "clamped", CLAMPED)
    assert_threads_identical(p)


def test_block_bounds():
    assert sim_threads.block_bounds(1000, 2) == [(0, 504), (504, 1000)]
    assert sim_threads.block_bounds(203, 3) == [(0, 72), (72, 144), (144, 203)]
    assert sim_threads.block_bounds(10, 4) == [(0, 8), (8, 10)]  # at least 8 post neurons a block
    assert sim_threads.block_bounds(5, 2) == [(0, 5)]
    for n, k in ((1, 1), (17, 3), (1000, 7), (64, 64)):
        b = sim_threads.block_bounds(n, k)
        assert b[0][0] == 0 and b[-1][1] == n and len(b) <= k
        assert all(x[1] == y[0] and x[0] < x[1] for x, y in zip(b, b[1:]))


def test_weights_start_on_a_cache_line(write):
    """The weight matrix starts on a 64-byte line (``engine.aligned_empty``; NumPy's big arrays
    start 16 bytes into one), so that the rows of 1000 float64 weights start on lines too and two
    blocks never write into one line; its values are those drawn again from the seed."""
    for dtype in ("float64", "float32"):
        p = protocol(write, f"align_{dtype}", LIF.format(name="a", dtype=dtype, pairing="all_to_all", wdep="additive", interval="50 ms"))
        b = engine.build(p)
        assert b.w.ctypes.data % 64 == 0 and b.w.flags.c_contiguous and b.w.flags.writeable
        assert b.w.dtype == np.dtype(dtype) and b.w.shape == (300, 203)
        assert np.array_equal(b.w, engine.initial_weights(p))
    for shape, dtype in (((3, 5), np.float64), ((0, 4), np.float32), ((7,), np.int64)):
        a = engine.aligned_empty(shape, dtype)
        assert a.shape == shape and a.dtype == dtype and (a.size == 0 or a.ctypes.data % 64 == 0)
        a[...] = 1
        assert np.all(a == 1)


def test_plan_blocks(write, monkeypatch):
    monkeypatch.delenv(sim_threads.THREADS_ENV, raising=False)
    small = engine.build(protocol(write, "lif", LIF.format(name="lif", pairing="all_to_all", wdep="additive", dtype="float64", interval="7 ms")))
    big_text = LIF.format(name="big", pairing="all_to_all", wdep="additive", dtype="float64", interval="100 ms")
    big = engine.build(protocol(write, "big", big_text.replace("n_pre: 300, n_post: 203", "n_pre: 1000, n_post: 256")))
    monkeypatch.setattr("plastictool.simulation.parallel.default_jobs", lambda: 2)
    assert sim_threads.plan_blocks(small) == [(0, 203)]  # 6e4 synapses: not worth threads
    assert sim_threads.plan_blocks(big) == [(0, 128), (128, 256)]
    assert sim_threads.plan_blocks(big, 1) == [(0, 256)]
    assert sim_threads.plan_blocks(small, 2) == [(0, 104), (104, 203)]  # asked for: always
    monkeypatch.setenv(sim_threads.THREADS_ENV, "3")
    assert len(sim_threads.plan_blocks(small)) == 3
    assert sim_threads.plan_blocks(small, 1) == [(0, 203)]  # the argument wins over the variable
    monkeypatch.setenv(sim_threads.THREADS_ENV, "1")
    assert sim_threads.plan_blocks(big) == [(0, 256)]
    monkeypatch.setenv(sim_threads.THREADS_ENV, "two")
    with pytest.raises(PlasticError, match="PLASTIC_THREADS"):
        sim_threads.plan_blocks(big)
    monkeypatch.delenv(sim_threads.THREADS_ENV)
    # worker processes (--jobs, Dask) keep to one thread: their siblings use the other cores
    monkeypatch.setattr("multiprocessing.parent_process", lambda: object())
    assert sim_threads.plan_blocks(big) == [(0, 256)]


TRIPLET = """
name: trip
seed: 2
dt: 0.1 ms
duration: 150 ms
synapses: {n_pre: 300, n_post: 77, w_init: {uniform: [0, 0.04]}, w_min: 0, w_max: 0.04}
neuron: {model: lif, t_ref: 2 ms}
stimulus: {pre: {poisson: {rate: 30 Hz}}, post: {poisson: {rate: 20 Hz}}}
rule: {kind: triplet, pairing: PAIRING}
record: {interval: 10 ms, weights: [[0, 0], [5, 76]], state: [r1, r2, o1, o2, v], spikes: true}
"""


@pytest.mark.parametrize("model", ["lif", "clamped"])
@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
def test_triplet_blocks_identical(write, model, pairing):
    text = TRIPLET.replace("PAIRING", pairing)
    if model == "lif":
        text = text.replace(", post: {poisson: {rate: 20 Hz}}", "")
    else:
        text = text.replace("neuron: {model: lif, t_ref: 2 ms}\n", "").replace("state: [r1, r2, o1, o2, v]", "state: [r1, r2, o1, o2]")
    p = protocol(write, "trip", text)
    assert_threads_identical(p)


def test_rules_without_blocks_ignore_threads(write):
    text = """
    name: ca
    seed: 2
    dt: 0.1 ms
    duration: 50 ms
    synapses: {n_pre: 40, n_post: 20}
    neuron: {model: lif}
    stimulus: {pre: {poisson: {rate: 30 Hz}}}
    rule: {kind: calcium}
    record: {interval: 10 ms, weights: [[0, 0]], spikes: true}
    """
    p = protocol(write, "ca", text)
    r1, one = run(p, 1)
    r2, two = run(p, 2)
    assert r2.timings["threads"] == 1
    assert_same(one, two)


def test_cli_threads_files_identical(write, cli, tmp_path):
    src = write("lif.yaml", LIF.format(name="lif", pairing="all_to_all", wdep="additive", dtype="float64", interval="10 ms"))
    outs = []
    for threads in (1, 2):
        out = tmp_path / f"t{threads}"
        r = cli("run", src, "--out", out, "--quiet", "--threads", threads)
        assert r.exit_code == 0, r.output
        outs.append(out)
    for name in ("summary.csv", "traces.csv", "spikes.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()
