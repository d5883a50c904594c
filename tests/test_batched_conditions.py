"""Many small conditions in one kernel call (plastictool.core.batch) against its twin, the same
conditions run one by one (``PLASTIC_BATCH=0``): identical results, bit for bit, on random small
sweeps (pair and triplet STDP, clamped and LIF neurons, with and without recorded state, swept
parameters and spike timings), and the same error, naming the same sweep condition, when one of
them becomes non-finite."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plastictool import api
from plastictool.core import batch
from plastictool.errors import SimulationError
from plastictool.protocol.schema import load_experiment
from plastictool.simulation import batches

STATE = {"stdp": ["x_pre", "x_post"], "triplet": ["r1", "o2"]}


def _exp(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_experiment(path)


def _run(exp, monkeypatch, batched: bool, calls: list | None = None):
    monkeypatch.setenv("PLASTIC_BATCH", "1" if batched else "0")
    monkeypatch.setattr(batches, "CHECK_KEYS", True)  # shortcut keys (a sweep of the stimulus) checked
    if calls is not None:
        real = batch.run

        def counted(bs, recs, steppers):
            calls.append(len(bs))
            return real(bs, recs, steppers)

        monkeypatch.setattr(batch, "run", counted)
    try:
        return batches.run_conditions(exp.conditions)
    finally:
        monkeypatch.setattr(batch, "run", batch.run if calls is None else real)
        monkeypatch.delenv("PLASTIC_BATCH")


def _same(a, b):
    assert a.index == b.index and a.condition == b.condition
    assert a.columns == b.columns
    assert a.traces.shape == b.traces.shape
    assert a.traces.tobytes() == b.traces.tobytes(), np.argwhere(a.traces != b.traces)[:5]
    assert a.w_final.dtype == b.w_final.dtype and a.w_final.tobytes() == b.w_final.tobytes()
    assert a.w_initial.tobytes() == b.w_initial.tobytes()
    for x, y in zip(a.spikes, b.spikes):
        assert x.tobytes() == y.tobytes()
    assert a.counts == b.counts


def _protocol(kind, model, state, n_pre, n_post, dtype, seed, sweep, rate, interval):
    neuron = "{model: lif}" if model == "lif" else "{model: clamped}"
    post = "" if model == "lif" else f", post: {{poisson: {{rate: {rate} Hz}}}}"
    rec = f"record: {{interval: {interval} ms, state: [{', '.join(state)}]}}\n" if state else f"record: {{interval: {interval} ms}}\n"
    w_init = "{uniform: [0.2, 0.8]}" if model == "clamped" else "{uniform: [0.5, 1.0]}"
    return (
        f"name: b\nseed: {seed}\ndt: 0.1 ms\nduration: 200 ms\n"
        f"synapses: {{n_pre: {n_pre}, n_post: {n_post}, w_init: {w_init}, w_min: 0, w_max: 1, dtype: {dtype}}}\n"
        f"neuron: {neuron}\nstimulus: {{pre: {{poisson: {{rate: {rate} Hz}}}}{post}}}\n"
        f"rule: {{kind: {kind}}}\n{rec}sweep: {sweep}\n"
    )


SWEEPS = {
    "stdp": ["{rule.a_plus: [0.005, 0.01, 0.02]}", "{rule.tau_plus: [10 ms, 16.8 ms, 30 ms], rule.a_minus: [0.004, 0.012]}", "{stimulus.pre.poisson.rate: [20 Hz, 40 Hz, 60 Hz]}"],
    "triplet": ["{rule.a3_plus: [0.001, 0.006, 0.01]}", "{rule.tau_y: [50 ms, 125 ms], rule.a2_minus: [0.003, 0.007]}", "{stimulus.pre.poisson.rate: [20 Hz, 40 Hz, 60 Hz]}"],
}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["stdp", "triplet"]),
    model=st.sampled_from(["clamped", "lif"]),
    with_state=st.booleans(),
    n_pre=st.integers(1, 4),
    n_post=st.integers(1, 3),
    dtype=st.sampled_from(["float64", "float64", "float32"]),
    seed=st.integers(0, 1000),
    which=st.integers(0, 2),
    rate=st.sampled_from([10, 40, 80]),
    interval=st.sampled_from([7, 20, 1000]),
)
def test_batched_equals_one_by_one(tmp_path, monkeypatch, kind, model, with_state, n_pre, n_post, dtype, seed, which, rate, interval):
    state = STATE[kind] + (["v", "g"] if model == "lif" else []) if with_state else []
    exp = _exp(tmp_path, _protocol(kind, model, state, n_pre, n_post, dtype, seed, SWEEPS[kind][which], rate, interval))
    calls: list = []
    got, err = _run(exp, monkeypatch, True, calls)
    ref, ref_err = _run(exp, monkeypatch, False)
    assert err is None and ref_err is None
    assert sum(calls) == len(exp.conditions) > 1, calls  # every condition ran in a batch
    assert len(got) == len(ref) == len(exp.conditions)
    for a, b in zip(got, ref):
        _same(a, b)


def test_stdp_window_files_identical(tmp_path, monkeypatch):
    """The STDP window (101 conditions, recorded traces): the files byte for byte, and one batch."""
    from conftest import PROTOCOLS

    exp = api.load(str(PROTOCOLS / "stdp_window.yaml"))
    monkeypatch.setattr(batches, "CHECK_KEYS", True)
    calls: list = []
    monkeypatch.setattr(batch, "run", _counting(batch.run, calls))
    outs = []
    for on in ("1", "0"):
        monkeypatch.setenv("PLASTIC_BATCH", on)
        api.run(exp).write(tmp_path / on)
        outs.append(tmp_path / on)
    assert calls == [101]
    for name in ("summary.csv", "traces.csv", "spikes.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def _counting(real, calls):
    def counted(bs, recs, steppers):
        calls.append(len(bs))
        return real(bs, recs, steppers)

    return counted


def test_mixed_sweep_batches_what_it_can(tmp_path, monkeypatch):
    """A sweep whose conditions differ in kernel types (a weight dtype swept) or size (n_pre
    swept) runs in several batches and alone, in sweep order, with the results of one by one."""
    exp = _exp(tmp_path, _protocol("stdp", "clamped", ["x_pre"], 2, 2, "float64", 3, "{synapses.n_pre: [1, 2, 3], rule.a_plus: [0.01, 0.02]}", 40, 10))
    calls: list = []
    got, err = _run(exp, monkeypatch, True, calls)
    ref, _ = _run(exp, monkeypatch, False)
    assert err is None and sorted(calls) == [2, 2, 2]
    for a, b in zip(got, ref):
        _same(a, b)


def _failing(tmp_path):
    return _exp(
        tmp_path,
        "name: inf\nseed: 2\ndt: 0.1 ms\nduration: 300 ms\n"
        "synapses: {n_pre: 3, n_post: 2, w_init: 1, w_min: null, w_max: null}\nneuron: {model: clamped}\n"
        "stimulus: {pre: {regular: {frequency: 100 Hz}}, post: {regular: {frequency: 100 Hz, start: 2 ms}}}\n"
        "rule: {kind: stdp, a_minus: 0}\nrecord: {interval: 10 ms, state: [x_pre]}\n"
        "sweep: {rule.a_plus: [0.01, 0.02, 1e307, 0.03, 1e308]}\n",
    )


def test_non_finite_condition_same_error(tmp_path, monkeypatch):
    """The first condition (in sweep order) that becomes non-finite raises the same
    SimulationError, naming it, batched or not; the conditions before it are returned."""
    exp = _failing(tmp_path)
    calls: list = []
    got, err = _run(exp, monkeypatch, True, calls)
    ref, ref_err = _run(exp, monkeypatch, False)
    assert calls == [5]
    assert isinstance(err, SimulationError) and isinstance(ref_err, SimulationError)
    assert str(err) == str(ref_err) and (err.t_ms, err.variable) == (ref_err.t_ms, ref_err.variable)
    assert str(err).startswith("sweep condition 2 (rule.a_plus = 1e+307): w[") and "became inf" in str(err)
    assert len(got) == len(ref) == 2
    for a, b in zip(got, ref):
        _same(a, b)


def test_non_finite_condition_exit_3(tmp_path, monkeypatch):
    """``plastic run`` of that sweep: exit 3 with the same message, nothing written."""
    exp = _failing(tmp_path)
    reports = []
    for on in ("1", "0"):
        monkeypatch.setenv("PLASTIC_BATCH", on)
        reports.append(api.run_file(exp.file, tmp_path / f"out{on}"))
        assert not (tmp_path / f"out{on}").exists()
    assert reports[0].status == reports[1].status == 3
    assert reports[0].message == reports[1].message


@pytest.mark.parametrize("env", [("PLASTIC_BATCH", "0"), ("PLASTIC_RECORD", "python")])
def test_switched_off(tmp_path, monkeypatch, env):
    exp = _exp(tmp_path, _protocol("stdp", "clamped", [], 1, 1, "float64", 1, SWEEPS["stdp"][0], 40, 10))
    calls: list = []
    monkeypatch.setattr(batch, "run", _counting(batch.run, calls))
    monkeypatch.setenv(*env)
    got, err = batches.run_conditions(exp.conditions)
    assert err is None and len(got) == 3 and calls == []


def test_pack_and_views_round_trip():
    rng = np.random.default_rng(0)
    shared = np.arange(5.0)
    for arrs in ([rng.random(3), rng.random(0), rng.random(7)], [rng.random((2, 3)), rng.random((4, 1))], [shared] * 3, [np.zeros((2, 2), np.int64)] * 2):
        packed = batch.pack_arrays(arrs)
        for c, (a, v) in enumerate(zip(arrs, batch.views(packed))):
            assert v.shape == a.shape and v.dtype == a.dtype and np.array_equal(v, a)
            assert np.array_equal(batch.view(packed, c), a)


def test_small_tables_joined_give_the_same_bytes():
    """output._coalesced joins consecutive small tables (one per condition) into one ``%``: the
    same bytes as each table alone, in order, also around a table of other columns."""
    import io

    from plastictool.results import output
    from plastictool.core.fmt import FLOAT, INT, LABEL

    rng = np.random.default_rng(2)
    tables = []
    for k in range(40):
        n = int(rng.integers(0, 30))
        vals = np.column_stack([rng.random(n) * 10.0 ** rng.integers(-5, 5, n), rng.integers(0, 2, n), np.full(n, k)]).astype(np.float64)
        tables.append((vals, [FLOAT, LABEL, INT], ["pre", "post"]))
        if k == 17:
            tables.append((rng.random((5, 2)), [FLOAT, FLOAT], []))
    want = b"".join(output._python_table(v, kinds, labels) for v, kinds, labels in tables)
    fh = io.BytesIO()
    output._write_ordered(fh, [output._table_task(v, kinds, labels) for v, kinds, labels in tables])
    assert fh.getvalue() == want
    joined = list(output._coalesced(iter([output._table_task(v, kinds, labels) for v, kinds, labels in tables])))
    assert len(joined) < len(tables) // 4


@pytest.mark.parametrize(
    "extra",
    [
        "{kind: stdp, pairing: presynaptic_centered, weight_dependence: multiplicative}",
        "{kind: stdp, pairing: restricted, same_step: nest, weight_dependence: gutig}",
        "{kind: stdp, pairing: nearest, same_step: pair, weight_dependence: power_law}",
        "{kind: triplet, preset: pfister2006_visual_aa_full, pairing: nearest}",
    ],
)
@pytest.mark.parametrize("model", ["clamped", "lif"])
def test_stdp_variants_and_delays_batched_equal_one_by_one(tmp_path, monkeypatch, extra, model):
    """Pairing schemes, weight dependences, same-step conventions and synaptic delays (swept:
    conditions with different delay rings in one batch)."""
    text = _protocol("stdp", model, [], 3, 2, "float64", 5, "{synapses.delay.dendritic: [0 ms, 0.5 ms, 2 ms], rule.a_minus: [0.004, 0.01]}", 60, 13)
    text = text.replace("rule: {kind: stdp}", f"rule: {extra}")
    if "triplet" in extra:
        text = text.replace("rule.a_minus", "rule.a2_minus")
    text = text.replace("w_max: 1,", "w_max: 1, delay: {axonal: 0.3 ms, dendritic: 0 ms},")
    if "power_law" in extra:
        text = text.replace("w_max: 1,", "w_max: null,")
    exp = _exp(tmp_path, text)
    calls: list = []
    got, err = _run(exp, monkeypatch, True, calls)
    ref, ref_err = _run(exp, monkeypatch, False)
    assert err is None and ref_err is None, (err, ref_err)
    assert sum(calls) == 6
    for a, b in zip(got, ref):
        _same(a, b)


def test_dask_task_batches_and_runs_on_after_a_failure(tmp_path, monkeypatch):
    """A Dask task (``distributed.run_chunk``, called here without a cluster) runs its conditions
    through the batched path: every condition, a failing one not stopping the others, each
    result and error those of ``run_condition`` one by one."""
    from plastictool.simulation import distributed
    from plastictool.simulation.engine import run_condition
    from plastictool.simulation.parallel import _unpack

    exp = _failing(tmp_path)
    calls: list = []
    monkeypatch.setattr(batch, "run", _counting(batch.run, calls))
    got = distributed.run_chunk(list(exp.conditions))
    assert calls and sum(calls) >= 4  # in batches (the failing conditions end theirs)
    assert [r is None for r, _ in got] == [False, False, True, False, True]
    for cond, (r, err) in zip(exp.conditions, got):
        try:
            ref = run_condition(cond)
        except SimulationError as exc:
            e = _unpack(err)
            assert type(e) is type(exc) and str(e) == str(exc) and e.exit_code == exc.exit_code
        else:
            assert err is None
            _same(r, ref)


@pytest.mark.parametrize("kind", ["stdp", "triplet"])
@pytest.mark.parametrize("w_init", ["0.4", "[[0.3, 0.6], [0.5, 0.2]]", "{uniform: [0.2, 0.8]}"])
def test_stimulus_sweeps_share_their_builds(tmp_path, monkeypatch, kind, w_init):
    """Conditions equal but for their stimulus share what draws nothing (engine.build's
    ``shared``: the initial weights, the rule's Params, copies of its State): the results of
    building each on its own (PLASTIC_BATCH=0), and no condition's arrays are another's."""
    exp = _exp(
        tmp_path,
        f"name: s\nseed: 3\ndt: 0.1 ms\nsynapses: {{n_pre: 2, n_post: 2, w_init: {w_init}, w_min: 0, w_max: 1}}\n"
        f"neuron: {{model: clamped}}\nstimulus: {{pairing: {{pairs: 20, frequency: 5 Hz, delta_t: 10 ms}}}}\n"
        f"rule: {{kind: {kind}}}\nrecord: {{interval: 50 ms, state: [{STATE[kind][0]}]}}\n"
        "sweep: {stimulus.pairing.delta_t: [-20 ms, -5 ms, 0 ms, 5 ms, 20 ms]}\n",
    )
    calls: list = []
    got, err = _run(exp, monkeypatch, True, calls)
    ref, ref_err = _run(exp, monkeypatch, False)
    assert err is None and ref_err is None and calls == [5]
    for a, b in zip(got, ref):
        _same(a, b)
    assert len({r.w_final.ctypes.data for r in got}) == len(got)
    assert len({r.w_final[0, 0] for r in got}) > 1  # the conditions differ


def test_only_separate_states_are_shared():
    """engine._separate: a rule's build is shared only where copying its State array by array
    (and the weights) keeps what aliases what: one table twice in Params is fine; an array twice
    in State, a view, State sharing with Params, or Params holding the weights is not."""
    from collections import namedtuple

    from plastictool.simulation.engine import _separate

    S, P = namedtuple("S", "a b"), namedtuple("P", "c d")
    w, x, t = np.zeros((2, 2)), np.zeros(3), np.ones(4)
    assert _separate(S(np.zeros(2), np.zeros(0)), P(t, t), w)
    assert _separate(S(np.zeros(0), np.zeros(0)), P(None, 2), w)
    assert not _separate(S(x, x), P(t, 1.0), w)
    assert not _separate(S(x[:2], np.zeros(1)), P(t, 1.0), w)
    assert not _separate(S(x, t), P(t, 1.0), w)
    assert not _separate(S(x, np.zeros(1)), P(w, 1.0), w)
    assert not _separate(S(x, [1, 2]), P(t, 1.0), w)
