"""Recording inside the kernels (plastictool.core.record) against its slow twin, the engine's
Python Recorder (``PLASTIC_RECORD=python``): identical arrays, bit for bit, on random protocols,
with the sample buffer filling up mid-run, with LIF out buffers filling up, and at a non-finite
weight (the same error). And the kernels' pairwise sum against np.sum."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plastictool.simulation import engine, recorder, threads
from plastictool.core import record
from plastictool.errors import SimulationError
from plastictool.protocol.schema import load_experiment


def _kernel(k):
    return getattr(k, "dispatcher", k)  # a stand-in until Numba loads, then the dispatcher


def _build(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_experiment(path)


def _run(exp, mode, monkeypatch, threads=1):
    monkeypatch.setenv("PLASTIC_RECORD", mode)
    out = [engine.run_condition(c, threads=threads) for c in exp.conditions]
    monkeypatch.delenv("PLASTIC_RECORD")
    return out


def _same(a, b):
    assert a.columns == b.columns
    assert a.traces.shape == b.traces.shape
    assert a.traces.tobytes() == b.traces.tobytes(), np.argwhere(a.traces != b.traces)[:5]
    assert a.w_final.tobytes() == b.w_final.tobytes()
    for x, y in zip(a.spikes, b.spikes):
        assert x.tobytes() == y.tobytes()
    assert a.counts == b.counts


def _kernel_used(exp):
    b = engine.build(exp.conditions[0].protocol, exp.conditions[0].values)
    rec = recorder.Recorder(b)
    stepper = threads.Stepper(b, [(0, b.w.shape[1])])
    return record.supported(b, rec, stepper)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pairwise_sum_is_np_sum(dtype):
    rng = np.random.default_rng(1)
    for n in list(range(1, 140)) + [255, 256, 257, 1000, 4099, 65537]:
        for shape in ((n,), (1, n)) if n < 140 else ((n,),):
            a = (rng.random(shape) * rng.choice([1.0, 1e-3, 3e5]) - 0.3).astype(dtype)
            flat = a.ravel()
            got = _kernel(record.pairwise_sum)(flat, 0, flat.size, 0, flat[0])
            assert np.asarray(got, dtype).tobytes() == np.sum(a).tobytes(), n
            m = dtype(np.sum(a) / np.intp(a.size))  # (np.std: the mean, squares and sum in the array's type)
            ss = _kernel(record.pairwise_sum)(flat, 0, flat.size, 1, m)
            assert dtype(np.sqrt(dtype(ss / np.intp(a.size)))) == np.std(a), n


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_extreme_is_np_min_max(dtype):
    """The kernels' min and max in eight lanes: np.min and np.max, and where the result is a zero
    (0.0 and -0.0 mixed) the first one in order, as the plain scan."""
    rng = np.random.default_rng(2)
    for n in list(range(1, 70)) + [1000, 4099]:
        for zeros in (False, True):
            a = (rng.random(n) - 0.3).astype(dtype)
            if zeros:
                a[rng.integers(0, n, 3)] = 0.0
                a[rng.integers(0, n, 3)] = -0.0
                a[a > 0] = 1.0  # (ties in the max too)
            for big in (False, True):
                got = _kernel(record.extreme)(a, big)
                assert got == (np.max(a) if big else np.min(a)), (n, big)
                scan = _kernel(record._extreme_scan)(a, big)
                assert np.asarray(got, dtype).tobytes() == np.asarray(scan, dtype).tobytes(), (n, big)


STDP = """
name: r
seed: {seed}
dt: 0.1 ms
duration: {duration} ms
synapses: {{n_pre: {n_pre}, n_post: {n_post}, w_init: {{uniform: [0, 0.05]}}, w_min: 0, w_max: 0.05, dtype: {dtype}, delay: {{axonal: {d_ax} ms, dendritic: {d_den} ms}}{extra}}}
neuron: {neuron}
phases:
  - {{name: a, duration: {d1} ms, pre: {{poisson: {{rate: {rate} Hz}}}}{post}}}
  - {{name: b, duration: {d2} ms, pre: {{poisson: {{rate: {rate} Hz}}}}{post}, block: [NMDA]}}
rule: {rule}
record: {{interval: {interval} ms, weights: {weights}, stats: {stats}, state: {state}, spikes: true}}
"""

RULES = {
    "stdp": ("{kind: stdp, a_plus: 0.002, a_minus: 0.0021, pairing: %s, weight_dependence: %s, same_step: %s}", ["x_pre", "x_post"]),
    "triplet": ("{kind: triplet, preset: %s}", ["r1", "r2", "o1", "o2"]),
    # rules without advance_block: the driver calls their advance_kernel (record.step_entry)
    "calcium": ("{kind: calcium, preset: %s, sigma: %s, tau: 1000 ms}", ["ca", "rho"]),
    "receptor": ("{kind: receptor, prp_step: %s}", ["ca", "pi3k", "bound", "tag", "prp"]),
}
DELAYS = ("stdp", "triplet")  # (synaptic delays: the spike-timing rules only)


@st.composite
def protocols(draw):
    kind = draw(st.sampled_from(sorted(RULES)))
    text, traces = RULES[kind]
    if kind == "stdp":
        text = text % (
            draw(st.sampled_from(["all_to_all", "nearest", "presynaptic_centered", "restricted"])),
            draw(st.sampled_from(["additive", "multiplicative", "gutig"])),
            draw(st.sampled_from(["exclude", "nest", "pair"])),
        )
    elif kind == "triplet":
        text = text % draw(st.sampled_from(["pfister2006_hippo_aa_min", "pfister2006_visual_nn_full"]))
    elif kind == "calcium":  # (dpd_prime: a delay of 2.2 ms, not a whole number of steps of 0.3 ms)
        text = text % (draw(st.sampled_from(["graupner2012_dp", "graupner2012_dpd_prime"])), draw(st.sampled_from([0, 3])))
    else:
        text = text % draw(st.sampled_from(["0.1 ms", "1 ms", "20 ms"]))
    lif = draw(st.booleans())
    n_pre, n_post = draw(st.integers(1, 40)), draw(st.integers(1, 20))
    # transmitter release (core.release: its state u and x, per pre neuron or per synapse)
    release = draw(st.sampled_from([None, "{U: 0.5, tau_rec: 100 ms, tau_fac: 50 ms}", "{U: 0.4, tau_rec: 80 ms}", "{U: 0.4, tau_rec: 80 ms, tau_fac: 20 ms, sites: 3}"]))
    extra = "" if release is None else f", release: {release}"
    if release is not None:
        traces = traces + ["u", "x"]
        if draw(st.booleans()):
            text = text[:-1] + ", expression: presynaptic}"
    dtype = draw(st.sampled_from(["float64", "float32"]))
    inhibitory = lif and kind in DELAYS and release is None and draw(st.booleans())  # inhibitory inputs (core.inhibit; not with release)
    state = draw(st.lists(st.sampled_from(traces + (["v", "g"] if lif else [])), unique=True, max_size=4))
    pairs = draw(st.lists(st.tuples(st.integers(0, n_pre - 1), st.integers(0, n_post - 1)), unique=True, max_size=3))
    # without recorded weights, state arrays of more than 16 elements are recorded as a mean (the
    # kernels read every element); u and x of release per pre neuron are then a broadcast array,
    # whose mean NumPy adds in another order (the Python path): small there
    if state and not pairs and (not draw(st.booleans()) or {"u", "x"} & set(state)):
        n_pre, n_post = min(n_pre, 16), min(n_post, 16)
        if kind in ("calcium", "receptor") or {"u", "x"} & set(state):  # (synapse-shaped: at most 16 synapses)
            n_pre, n_post = min(n_pre, 4), min(n_post, 4)
    if inhibitory and n_pre > 1:
        extra += f", inhibitory: {{from: 0, to: {draw(st.integers(1, n_pre - 1))}}}"
    d1, d2 = draw(st.integers(1, 300)), draw(st.integers(0, 200))
    delays = kind in DELAYS
    return STDP.format(
        seed=draw(st.integers(0, 99)),
        d_ax=draw(st.sampled_from([0, 0.3])) if delays else 0,
        d_den=draw(st.sampled_from([0, 1.5])) if delays else 0,
        duration=d1 + d2 + draw(st.integers(0, 50)),
        n_pre=n_pre,
        n_post=n_post,
        dtype=dtype,
        neuron="{model: lif, tau_m: 10 ms, v_rest: -74 mV, v_thresh: -54 mV, v_reset: -60 mV, tau_syn: 5 ms, e_syn: 0 mV}" if lif else "{model: clamped}",
        d1=d1,
        d2=d2,
        rate=draw(st.sampled_from([5, 40, 200])),
        post="" if lif else ", post: {poisson: {rate: 30 Hz}}",
        rule=text,
        extra=extra,
        interval=draw(st.sampled_from([0.1, 0.3, 1, 7.5, 50])),
        weights=[list(p) for p in pairs] if pairs else "none",
        stats=draw(st.lists(st.sampled_from(["mean", "std", "min", "max"]), unique=True, max_size=4)),
        state=state,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=protocols(), buffer_rows=st.sampled_from([1, 2, 7, 4096]))
def test_kernel_recording_equals_python_recorder(text, buffer_rows, tmp_path, monkeypatch):
    exp = _build(tmp_path, text)
    assert _kernel_used(exp) is None
    ref = _run(exp, "python", monkeypatch)
    monkeypatch.setattr(record, "BUFFER_ROWS", buffer_rows)
    got = _run(exp, "kernel", monkeypatch)
    for a, b in zip(ref, got):
        _same(a, b)


def test_sweep_std_and_small_buffer(tmp_path, monkeypatch):
    """The STDP window's shape (101 one-synapse conditions, here 11) with std and the full
    state, a buffer of 5 samples (61 samples: full twelve times per condition)."""
    exp = _build(
        tmp_path,
        "name: w\nseed: 1\ndt: 0.1 ms\nsynapses: {n_pre: 1, n_post: 1, w_init: 0.5, w_min: 0, w_max: 1}\n"
        "neuron: {model: clamped}\nstimulus:\n  pairing: {pairs: 60, frequency: 1 Hz, delta_t: 10 ms}\n"
        "rule: {kind: stdp, a_plus: 0.01, a_minus: 0.0105}\n"
        "record: {interval: 1 s, stats: [mean, std, min, max], state: [x_pre, x_post]}\n"
        "sweep:\n  stimulus.pairing.delta_t: {from: -50 ms, to: 50 ms, step: 10 ms}\n",
    )
    assert _kernel_used(exp) is None
    ref = _run(exp, "python", monkeypatch)
    monkeypatch.setattr(record, "BUFFER_ROWS", 5)
    got = _run(exp, "kernel", monkeypatch)
    assert len(got) == 11
    for a, b in zip(ref, got):
        _same(a, b)
    assert got[6].traces.shape == (61, 8)  # t, w[0,0], 4 statistics, 2 traces at 0..60 s


def test_busy_lif_out_buffer_and_std(tmp_path, monkeypatch):
    """LIF neurons driven hard with samples far apart: the out buffer of post spikes fills up
    between two samples, so the driver returns to Python mid-chunk (and the buffer doubles)."""
    exp = _build(
        tmp_path,
        "name: busy\nseed: 4\ndt: 0.1 ms\nduration: 200 ms\n"
        "synapses: {n_pre: 300, n_post: 150, w_init: {uniform: [0, 0.08]}, w_min: 0, w_max: 0.08}\n"
        "neuron: {model: lif, tau_m: 10 ms, v_rest: -74 mV, v_thresh: -54 mV, v_reset: -60 mV, tau_syn: 5 ms, e_syn: 0 mV}\n"
        "stimulus: {pre: {poisson: {rate: 30 Hz}}}\n"
        "rule: {kind: stdp, a_plus: 0.001, a_minus: 0.00105, pairing: nearest, weight_dependence: multiplicative}\n"
        "record: {interval: 100 ms, weights: [[0, 149], [10, 20]], stats: [mean, std, min, max], state: [x_pre, x_post, v, g], spikes: true}\n",
    )
    assert _kernel_used(exp) is None
    ref = _run(exp, "python", monkeypatch)
    got = _run(exp, "kernel", monkeypatch)
    assert got[0].counts["post_spikes"] > 4096  # more than one out buffer's worth
    _same(ref[0], got[0])


def test_non_finite_weight_same_error(tmp_path, monkeypatch):
    exp = _build(
        tmp_path,
        "name: inf\nseed: 2\ndt: 0.1 ms\nduration: 300 ms\n"
        "synapses: {n_pre: 3, n_post: 2, w_init: 1, w_min: null, w_max: null}\nneuron: {model: clamped}\n"
        "stimulus: {pre: {regular: {frequency: 100 Hz}}, post: {regular: {frequency: 100 Hz, start: 2 ms}}}\n"
        "rule: {kind: stdp, a_plus: 1e307, a_minus: 0}\nrecord: {interval: 10 ms}\n",
    )
    assert _kernel_used(exp) is None
    msgs = []
    for mode in ("python", "kernel"):
        monkeypatch.setenv("PLASTIC_RECORD", mode)
        with pytest.raises(SimulationError) as e:
            engine.run_condition(exp.conditions[0], threads=1)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1] and "became inf" in msgs[0]


def test_what_stays_on_the_python_path(tmp_path):
    base = (
        "name: x\ndt: 0.1 ms\nduration: 10 ms\nsynapses: {n_pre: 30, n_post: 20}\nneuron: {model: clamped}\n"
        "stimulus: {pre: {poisson: {rate: 5 Hz}}, post: {poisson: {rate: 5 Hz}}}\n"
    )
    # means: the kernels read every element (up to MEAN_READS values a sample), in C order
    assert _kernel_used(_build(tmp_path, base + "rule: {kind: stdp}\nrecord: {weights: none, state: [x_pre, x_post]}\n")) is None
    big = base.replace("n_pre: 30, n_post: 20", "n_pre: 100, n_post: 90")
    assert "more than" in _kernel_used(_build(tmp_path, big + "rule: {kind: calcium}\nrecord: {weights: none, state: [ca]}\n"))
    per_pre = base.replace("n_post: 20}", "n_post: 20, release: {U: 0.5, tau_rec: 100 ms}}")  # (u per pre neuron: a broadcast array)
    assert "C-contiguous" in _kernel_used(_build(tmp_path, per_pre + "rule: {kind: stdp}\nrecord: {weights: none, state: [u]}\n"))
    assert _kernel_used(_build(tmp_path, base.replace("n_post: 20", "n_post: 20, dtype: float32") + "rule: {kind: stdp}\nrecord: {stats: [std]}\n")) is None
    assert _kernel_used(_build(tmp_path, base.replace("n_post: 20}", "n_post: 20, release: {U: 0.5, tau_rec: 100 ms}}") + "rule: {kind: stdp}\n")) is None
    small = base.replace("n_pre: 30, n_post: 20}", "n_pre: 2, n_post: 2, structure: {present: [[1, 0], [1, 1]], formation_rate: 100 /s, elimination_rate: 50 /s}}")
    assert "structure" in _kernel_used(_build(tmp_path, small + "rule: {kind: stdp}\n"))
    presyn = base.replace("n_post: 20}", "n_post: 20, dtype: float32, release: {U: 0.5, tau_rec: 100 ms}}")
    # (u with presynaptic expression reads the float32 weights in place: record.WEIGHTS)
    assert _kernel_used(_build(tmp_path, presyn + "rule: {kind: stdp, expression: presynaptic}\nrecord: {weights: [[0, 1]], state: [u]}\n")) is None
    assert _kernel_used(_build(tmp_path, base + "rule: {kind: calcium}\nrecord: {weights: none, state: [rho, ca]}\n")) is None
    assert _kernel_used(_build(tmp_path, base + "rule: {kind: calcium}\nrecord: {weights: [[0, 1]], state: [ca, rho]}\n")) is None
    rate = "name: r\ndt: 1 ms\nduration: 20 ms\nsynapses: {n_pre: 2, n_post: 1}\nneuron: {model: rate}\nrule: {kind: hebb}\n"
    patterns = "{pre: {patterns: {vectors: [[1, 0], [0, 1]], presentation: 1 ms}}}"
    assert _kernel_used(_build(tmp_path, rate + f"stimulus: {{duration: 20 ms, {patterns[1:]}\n")) is None
    assert _kernel_used(_build(tmp_path, rate + f"stimulus: {{duration: 10 ms, {patterns[1:]}\n")) is None  # (a rest phase: rows of zeros)


def test_something_new_goes_to_the_python_path(tmp_path):
    """A field this module does not know (a new mechanism merged into Built, say) sends the run
    to the Python path."""
    import dataclasses

    exp = _build(tmp_path, "name: x\ndt: 0.1 ms\nduration: 10 ms\nsynapses: {n_pre: 3, n_post: 2}\nstimulus: {pre: {poisson: {rate: 5 Hz}}, post: {poisson: {rate: 5 Hz}}}\nrule: {kind: stdp}\n")
    b = engine.build(exp.conditions[0].protocol)
    rec = recorder.Recorder(b)
    stepper = threads.Stepper(b, [(0, 2)])
    assert record.supported(b, rec, stepper) is None
    New = dataclasses.make_dataclass("New", [(f.name, f.type) for f in dataclasses.fields(b)] + [("future_mechanism", object, None)])
    b2 = New(**{f.name: getattr(b, f.name) for f in dataclasses.fields(b)}, future_mechanism=object())
    assert "future_mechanism" in record.supported(b2, rec, stepper)
    b.phases[0] = b.phases[0] + (object(),)
    assert "phases" in record.supported(b, rec, stepper)
    net2 = b.net.__class__.__name__  # (a NamedTuple: a new array field that holds something counts)
    from collections import namedtuple

    Net2 = namedtuple(net2, b.net._fields + ("release_u",))
    b.phases[0] = b.phases[0][:4]
    b.net = Net2(*b.net, np.zeros(3))
    assert "release_u" in record.supported(b, rec, stepper)
    b.net = Net2(*b.net[:-1], np.zeros(0))
    assert record.supported(b, rec, stepper) is None


RATE = """
name: rate
seed: {seed}
dt: {dt} ms
duration: {duration} ms
synapses: {{n_pre: {n_pre}, n_post: {n_post}, w_init: {{uniform: [0, 0.3]}}, w_min: {w_min}, w_max: {w_max}, dtype: {dtype}}}
neuron: {{model: rate, activation: {activation}}}
phases:
{phases}
rule: {rule}
record: {{interval: {interval} ms, weights: {weights}, stats: {stats}, state: {state}}}
"""


@st.composite
def rate_protocols(draw):
    kind = draw(st.sampled_from(["hebb", "oja", "bcm"]))
    rule = {"hebb": "{kind: hebb, eta: 2 /s, decay: 0.5 /s}", "oja": "{kind: oja, eta: 5 /s}", "bcm": "{kind: bcm, eta: 5 /s, tau_theta: 20 ms}"}[kind]
    n_pre, n_post = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    dt = draw(st.sampled_from([0.1, 1]))
    phases, total = [], 0
    for k in range(draw(st.integers(1, 3))):
        d = draw(st.integers(1, 900)) * dt
        total += d
        vecs = [[draw(st.sampled_from([0, 0.5, 1])) for _ in range(n_pre)] for _ in range(2)]
        pats = f"patterns: {{vectors: {vecs}, presentation: {draw(st.sampled_from([1, 7]))} ms, order: {draw(st.sampled_from(['cyclic', 'random']))}}}"
        cov = (np.full((n_pre, n_pre), 0.2) + 0.3 * np.eye(n_pre)).tolist()  # (correlated: a matrix product, not a scaling)
        gauss = f"gaussian: {{mean: {[0.2] * n_pre}, cov: {cov}}}"
        pre = draw(st.sampled_from([pats, gauss, pats + ", " + gauss]))
        if draw(st.integers(0, 3)) == 0:  # a phase without rate input: input 0
            phases.append(f"  - {{name: p{k}, duration: {d:g} ms}}")
        else:
            phases.append(f"  - {{name: p{k}, duration: {d:g} ms, pre: {{{pre}}}}}")
    total += draw(st.sampled_from([0, 0, 13 * dt]))  # (a rest after the phases)
    state = draw(st.lists(st.sampled_from(["y", "theta"] if kind == "bcm" else ["y"]), unique=True, max_size=2))
    pairs = draw(st.lists(st.tuples(st.integers(0, n_pre - 1), st.integers(0, n_post - 1)), unique=True, max_size=3))
    bounded = draw(st.booleans())
    return RATE.format(
        seed=draw(st.integers(0, 99)),
        dt=dt,
        duration=f"{total:g}",
        n_pre=n_pre,
        n_post=n_post,
        w_min=0 if bounded else "null",
        w_max=1 if bounded else "null",
        dtype=draw(st.sampled_from(["float64", "float32"])),
        activation=draw(st.sampled_from(["linear", "sigmoid"])),
        phases="\n".join(phases),
        rule=rule,
        # (500 ms at dt 0.1 ms: samples further apart than a chunk of rate input rows, 4096 steps)
        interval=draw(st.sampled_from([dt, 3 * dt, 7.5, 50, 500])),
        weights=[list(p) for p in pairs] if pairs else "none",
        stats=draw(st.lists(st.sampled_from(["mean", "min", "max"]), unique=True, max_size=3)),
        state=state,
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=rate_protocols(), buffer_rows=st.sampled_from([1, 3, 4096]), chunk_rows=st.sampled_from([5, 4096]))
def test_rate_rules_recording_equals_python_recorder(text, buffer_rows, chunk_rows, tmp_path, monkeypatch):
    """The rate rules (hebb, oja, bcm): the kernels sample inside a chunk of rate input rows
    (record.RateChunks), filled as the Python path fills its smaller ones (Gaussian inputs
    included: their matrix products are made block by block)."""
    exp = _build(tmp_path, text)
    assert _kernel_used(exp) is None
    ref = _run(exp, "python", monkeypatch)
    monkeypatch.setattr(record, "BUFFER_ROWS", buffer_rows)
    monkeypatch.setattr(record, "RATE_ROWS", chunk_rows)
    got = _run(exp, "kernel", monkeypatch)
    for a, b in zip(ref, got):
        _same(a, b)


@pytest.mark.parametrize(
    "rule, extra, state",
    [
        ("{kind: stdp, pairing: nearest}", "", "[x_pre, x_post, v, g]"),
        ("{kind: triplet, preset: pfister2006_visual_nn_full}", "", "[r1, o2, v]"),
        ("{kind: calcium, preset: graupner2012_dpd_prime, sigma: 3, tau: 1000 ms}", "", "[ca, rho, v]"),
        ("{kind: receptor}", "", "[ca, tag]"),
        ("{kind: stdp, a_plus: 0.002, a_minus: 0.0021}", ", release: {U: 0.4, tau_rec: 80 ms, tau_fac: 20 ms, sites: 3}", "[u, x]"),
        ("{kind: stdp, a_plus: 0.002, a_minus: 0.0021, expression: presynaptic}", ", release: {U: 0.4, tau_rec: 80 ms}", "[u, x]"),
        ("{kind: stdp, a_plus: 0.002, a_minus: 0.0021, expression: presynaptic}", ", release: {U: 0.4, tau_rec: 80 ms, tau_fac: 20 ms}, dtype: float32", "[u, x]"),
    ],
)
def test_state_means_equal_python_recorder(rule, extra, state, tmp_path, monkeypatch):
    """State recorded as a mean (no recorded weights, more than 16 elements): the kernels read
    every element at each sample and NumPy takes the mean of each row, bit for bit np.mean of
    the probed array; a buffer of 3 samples."""
    exp = _build(
        tmp_path,
        "name: m\nseed: 5\ndt: 0.1 ms\nduration: 150 ms\n"
        f"synapses: {{n_pre: 23, n_post: 9, w_init: {{uniform: [0, 0.1]}}, w_min: 0, w_max: 0.1{extra}}}\n"
        "neuron: {model: lif, tau_m: 10 ms, v_rest: -74 mV, v_thresh: -54 mV, v_reset: -60 mV, tau_syn: 5 ms, e_syn: 0 mV}\n"
        "stimulus: {pre: {poisson: {rate: 40 Hz}}}\n"
        f"rule: {rule}\nrecord: {{interval: 1.3 ms, weights: none, stats: [mean, max], state: {state}}}\n",
    )
    assert _kernel_used(exp) is None
    ref = _run(exp, "python", monkeypatch)
    monkeypatch.setattr(record, "BUFFER_ROWS", 3)
    got = _run(exp, "kernel", monkeypatch)
    assert any(c.endswith("_mean") for c in got[0].columns[3:])
    _same(ref[0], got[0])


def test_rate_rest_phase_has_no_input(tmp_path, monkeypatch):
    """A rate rule's phase without rate input (here the rest after the stimulus) has input 0:
    Hebb's rule without decay then leaves the weights as they are and a linear neuron's y is 0
    (the rows of the last chunk of input were read there before), on both recording paths."""
    exp = _build(
        tmp_path,
        "name: rest\nseed: 1\ndt: 1 ms\nduration: 40 ms\nsynapses: {n_pre: 2, n_post: 1, w_init: 0.5}\nneuron: {model: rate}\n"
        "stimulus: {duration: 20 ms, pre: {patterns: {vectors: [[1, 0], [0, 1]], presentation: 1 ms}}}\n"
        "rule: {kind: hebb, eta: 10 /s}\nrecord: {interval: 5 ms, weights: [[0, 0], [1, 0]], state: [y]}\n",
    )
    ref = _run(exp, "python", monkeypatch)
    got = _run(exp, "kernel", monkeypatch)
    _same(ref[0], got[0])
    t = got[0].traces
    assert t[4, 0] == 20.0 and t[4, 1] > 0.5 and t[4, 2] > 0.5  # (grown during the patterns)
    assert np.all(t[5:, 1:3] == t[4, 1:3])
    assert np.all(t[5:, 4] == 0.0)
