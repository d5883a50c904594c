"""What a sweep of tiny conditions does for all of them at once (issue 15, bench/sweep_overhead.py)
against its per-condition twin, on random inputs: the spike events of many protocols
(``stimulus.spike_events_many`` vs ``spike_events``), the spike tables of a batch
(``engine.spike_tables`` vs ``spike_table``), the packing of arrays (``core.batch.pack_arrays``
vs ``np.concatenate(axis=None)``), and the sweep's tables (traces.csv, spikes.csv,
summary.csv) written from stacked runs of conditions vs a plain per-row, per-condition
formatting with Python's ``%``. Identical arrays (values and dtypes) and bytes throughout; and
the NET101 benchmark workload computes what W1D's conditions compute."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plastictool import api
from plastictool.core import batch
from plastictool.simulation import engine, stimulus
from plastictool.simulation.engine import ConditionSeeds

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------- spike events
def _train(draw, population: str, n: int):
    kind = draw(st.sampled_from(["regular", "poisson", "times", "tetanus", "times_per"]))
    neurons = {} if n == 1 or not draw(st.booleans()) else {"neurons": sorted(draw(st.sets(st.integers(0, n - 1), min_size=1)))}
    if kind == "regular":
        return "regular", {"frequency": draw(st.sampled_from([7.0, 40.0, 333.0])), "start": draw(st.sampled_from([0.0, 0.05, 3.3])), **neurons}
    if kind == "poisson":
        return "poisson", {"rate": draw(st.sampled_from([5.0, 80.0, 400.0])), **neurons}
    if kind == "tetanus":
        return "tetanus", {"frequency": 100.0, "duration": 30.0, "trains": 2, "interval": 45.0, **neurons}
    times = sorted(draw(st.lists(st.floats(0.0, 99.0, allow_nan=False), min_size=1, max_size=6)))
    if kind == "times":
        return "times", times
    return "times", {str(draw(st.integers(0, n - 1))): times}


@st.composite
def protocols(draw):
    n_pre, n_post = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    phases = []
    for k in range(draw(st.integers(1, 3))):
        ph = {"name": f"ph{k}", "duration": draw(st.sampled_from([150.3, 200.0]))}
        if draw(st.booleans()):
            ph["pairing"] = {"pairs": draw(st.integers(1, 4)), "frequency": 50.0, "delta_t": draw(st.sampled_from([-12.3, -5.0, 0.0, 0.05, 7.0])),
                             "pre_spikes": draw(st.integers(1, 2)), "post_spikes": draw(st.integers(1, 3))}
        for population, n in (("pre", n_pre), ("post", n_post)):
            trains = dict(_train(draw, population, n) for _ in range(draw(st.integers(0, 2))))
            if trains:
                ph[population] = trains
        phases.append(ph)
    return {
        "name": "events",
        "seed": draw(st.integers(0, 2**31 - 1)),
        "dt": draw(st.sampled_from([0.1, 0.25, 1.0])),
        "synapses": {"n_pre": n_pre, "n_post": n_post},
        "neuron": {"model": "clamped"},
        "phases": phases,
        "rule": {"kind": "stdp"},
        "record": {"weights": [[0, 0]]},
        **({"duration": draw(st.sampled_from([30.0, 400.0]))} if draw(st.booleans()) else {}),
    }


@SETTINGS
@given(st.lists(protocols(), min_size=2, max_size=5))
def test_spike_events_many_is_spike_events_of_each(docs):
    conds = [c for d in docs for c in api.load(d).conditions]
    one = [stimulus.spike_events(c.protocol, ConditionSeeds(c.protocol.seed, c.values).rng(1)) for c in conds]
    many = stimulus.spike_events_many((c.protocol, ConditionSeeds(c.protocol.seed, c.values).rng(1)) for c in conds)
    assert len(many) == len(one)
    for a, b in zip(one, many):
        for (sa, ia), (sb, ib) in zip(a, b):
            assert sa.dtype == sb.dtype == np.int64 and ia.dtype == ib.dtype == np.int64
            assert np.array_equal(sa, sb) and np.array_equal(ia, ib)


def test_spike_events_many_of_a_sweep_of_the_stimulus():
    exp = api.load("protocols/stdp_window.yaml")
    conds = exp.conditions
    many = stimulus.spike_events_many((c.protocol, ConditionSeeds(c.protocol.seed, c.values).rng(1)) for c in conds)
    for c, got in zip(conds, many):
        want = stimulus.spike_events(c.protocol, ConditionSeeds(c.protocol.seed, c.values).rng(1))
        assert all(np.array_equal(x, y) for pw, pg in zip(want, got) for x, y in zip(pw, pg))
    assert sum(g[0][0].size + g[1][0].size for g in many) == 101 * 120


# ---------------------------------------------------------------------------- spike tables
def _events(rng, n, size):
    steps = np.sort(rng.integers(0, 8, size)).astype(np.int64)  # (many spikes in one step: the sort decides)
    return steps, rng.integers(0, n, size).astype(np.int64)


@pytest.mark.parametrize("seed", range(12))
def test_spike_tables_are_spike_table_of_each(seed):
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(rng.integers(1, 8)):
        n_pre, n_post = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        pre = _events(rng, n_pre, int(rng.integers(0, 10)))
        post = _events(rng, n_post, int(rng.integers(0, 10)))
        runs.append((pre, post, float(rng.choice([0.1, 0.25, 1.0]))))
    got = engine.spike_tables(runs)
    for (pre, post, dt), table in zip(runs, got):
        want = engine.spike_table(pre, post, dt)
        for x, y in zip(want, table):
            assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


# ---------------------------------------------------------------------------- packing
@pytest.mark.parametrize("seed", range(8))
def test_pack_arrays_is_concatenation(seed):
    rng = np.random.default_rng(seed)
    ndim = int(rng.integers(1, 4))
    same = bool(rng.integers(0, 2))
    shape = tuple(int(x) for x in rng.integers(0, 4, ndim))
    arrs = []
    for _ in range(int(rng.integers(2, 6))):
        s = shape if same else tuple(int(x) for x in rng.integers(0, 4, ndim))
        a = rng.random(s)
        arrs.append(a if rng.integers(0, 3) else np.asfortranarray(a))  # (a Fortran-ordered one too)
    packed = batch.pack_arrays(arrs)
    assert packed[0].tobytes() == np.concatenate(arrs, axis=None).tobytes()
    for c, a in enumerate(arrs):
        assert np.array_equal(batch.view(packed, c), a)


# ---------------------------------------------------------------------------- the sweep's tables
def _result(rng, k, rows, cols, n_pre, n_post):
    traces = rng.random((rows, len(cols)))
    traces[:, 0] = np.arange(rows) * 1000.0
    traces[rng.random(traces.shape) < 0.2] = 0.5  # repeated values (the formatter's shortcut)
    n_spk = int(rng.integers(0, 30))
    t = np.sort(rng.integers(0, 500, n_spk)) * 0.1
    pop = rng.integers(0, 2, n_spk).astype(np.int8)
    idx = rng.integers(0, 3, n_spk).astype(np.int64)
    w0, w1 = rng.random((n_pre, n_post)), rng.random((n_pre, n_post))
    w0[0, 0] = 0.0  # an empty dw_percent
    proto = SimpleNamespace(record=SimpleNamespace(outcome_threshold=1.0), synapses=SimpleNamespace(release=None))
    return SimpleNamespace(
        protocol=proto, condition=(("rule.a_plus", float(k) / 7),), index=k, columns=list(cols), traces=traces, spikes=(t, pop, idx),
        w_final=w1, w_initial_stored=w0, structure=None,
        w_initial_rows=lambda rows, w0=w0: ((a, w0[a : a + rows]) for a in range(0, w0.shape[0], rows)),
    )


def _fmt(x):
    return "%.12g" % x


@pytest.mark.parametrize("seed", range(6))
def test_sweep_tables_are_rows_formatted_one_by_one(seed, monkeypatch):
    from plastictool.results import output

    rng = np.random.default_rng(seed)
    # small limits: runs of conditions split between tables, and conditions bigger than one
    monkeypatch.setattr(output, "PYTHON_CELLS", int(rng.choice([40, 300, 20_000])))
    cols = ["t_ms", "w[0,0]", "w_mean"]
    results = [_result(rng, k, int(rng.integers(1, 40)), cols, int(rng.integers(1, 3)), int(rng.integers(1, 4))) for k in range(int(rng.integers(2, 12)))]

    fh = io.BytesIO()
    output.write_traces(fh, results, True)
    want = "t_ms,\"w[0,0]\",w_mean,condition\n" + "".join(",".join(_fmt(v) for v in row) + f",{r.index}\n" for r in results for row in r.traces.tolist())
    assert fh.getvalue().decode() == want

    fh = io.BytesIO()
    output.write_spikes(fh, results, True)
    want = "t_ms,population,index,condition\n" + "".join(
        f"{_fmt(t)},{('pre', 'post')[p]},{i},{r.index}\n" for r in results for t, p, i in zip(*(x.tolist() for x in r.spikes))
    )
    assert fh.getvalue().decode() == want

    fh = io.BytesIO()
    output.write_summary(fh, results, ["rule.a_plus"])
    want = ["rule.a_plus,pre,post,w_initial,w_final,dw,dw_percent,outcome\n"]
    for r in results:
        lead = _fmt(r.condition[0][1]) + ","
        want += output._summary_python(r.w_initial_stored.reshape(-1), r.w_final.reshape(-1), 0, r.w_final.shape[1], 1.0, lead, None)[1]
    assert fh.getvalue() == "".join(x if isinstance(x, str) else x.decode() for x in want).encode()


# ---------------------------------------------------------------------------- NET101
def test_net101_is_w1d_as_one_network():
    """bench/workloads/w1_net101.yaml (written by bench/sweep_overhead.py) ends with the weights
    of W1D's 101 conditions: synapse (0, j) sees the pairings of condition j."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("sweep_overhead", root / "bench" / "sweep_overhead.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (root / "bench" / "workloads" / "w1_net101.yaml").read_text() == mod.net101_yaml()  # the file is up to date
    net = api.run(root / "bench" / "workloads" / "w1_net101.yaml")
    sweep = api.run(root / "bench" / "workloads" / "w1_default.yaml")
    w_net = net._results[0].w_final[0]
    w_sweep = np.array([r.w_final[0, 0] for r in sweep._results])
    assert w_net.shape == w_sweep.shape == (101,)
    np.testing.assert_allclose(w_net, w_sweep, rtol=0, atol=1e-12)
