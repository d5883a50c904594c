"""Pair STDP: analytic results, the all-pairs reference twin, and plasticity facts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plastictool.api import run_experiment, validate_file
from plastictool.core.net import LIF, make_net
from plastictool.rules import stdp
from plastictool.rules.base import BuildContext

from conftest import PROTOCOLS
from reference_stdp import lif_reference, stdp_reference

A_PLUS, A_MINUS, TAU_PLUS, TAU_MINUS = 0.01, 0.0105, 16.8, 33.7


def kernel_run(w0, pre, post, dt, n_steps, model=0, w_min=0.0, w_max=1.0, **values):
    w0 = np.array(w0, dtype=float)
    n_pre, n_post = w0.shape
    vals = {p.name: p.default for p in stdp.SPEC.params}
    vals.update(values)
    net = make_net(n_pre, n_post, dt, model, (np.array([s for s, _ in pre]), np.array([i for _, i in pre])),
                   (np.array([s for s, _ in post]), np.array([j for _, j in post])))
    w = w0.copy()
    pr, stt = stdp.build(vals, BuildContext(n_pre, n_post, dt, w, w_min, w_max, np.random.default_rng(0)))
    stdp.advance(w, net, stt, pr, 0, n_steps, np.zeros(1, np.uint8))
    return w, net


def test_window_matches_the_analytic_sum_for_every_delta_t():
    """60 pairings at 1 Hz: dw = 60 a_plus exp(-dt/tau_plus) (dt > 0), -60 a_minus exp(dt/tau_minus) (dt < 0).

    Pairs one second apart also interact (all-to-all), by at most 60 a exp(-1000/33.7) ~ 1e-13,
    so the tolerance is 1e-10; clipping at [0, 1] applies to the running weight.
    """
    exp = validate_file(PROTOCOLS / "stdp_window.yaml")
    results = run_experiment(exp)
    assert len(results) == 101
    for r in results:
        d = dict(r.condition)["stimulus.pairing.delta_t"]
        if d > 0:
            want = min(1.0, 0.5 + 60 * A_PLUS * math.exp(-d / TAU_PLUS))
        elif d < 0:
            want = max(0.0, 0.5 - 60 * A_MINUS * math.exp(d / TAU_MINUS))
        else:
            want = 0.5  # same step: no pairing
        assert r.w_final[0, 0] == pytest.approx(want, abs=1e-10), d


@pytest.mark.parametrize("delta_t", [5.0, 10.0, 20.0, -5.0, -10.0, -20.0])
def test_multiplicative_closed_form(delta_t):
    """w_max - w_n = (w_max - w_0)(1 - a_plus e^(-dt/tau_plus))^n; w_n - w_min = (w_0 - w_min)(1 - a_minus e^(dt/tau_minus))^n."""
    dt, n, w0 = 0.1, 60, 0.4
    base = np.arange(n) * 10000  # 1 Hz in steps of 0.1 ms
    d = int(round(delta_t / dt))
    pre = [(int(b + max(0, -d)), 0) for b in base]
    post = [(int(b + max(0, d)), 0) for b in base]
    w, _ = kernel_run([[w0]], pre, post, dt, n * 10000 + 1000, weight_dependence="multiplicative",
                      a_plus=A_PLUS, a_minus=A_MINUS)
    if delta_t > 0:
        want = 1.0 - (1.0 - w0) * (1 - A_PLUS * math.exp(-delta_t / TAU_PLUS)) ** n
    else:
        want = w0 * (1 - A_MINUS * math.exp(delta_t / TAU_MINUS)) ** n
    assert w[0, 0] == pytest.approx(want, abs=1e-10)


events = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 2)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(pre=events, post=events, nearest=st.booleans(), wdep=st.sampled_from(["additive", "multiplicative", "gutig"]),
       seed=st.integers(0, 2**16))
def test_kernel_equals_all_pairs_reference(pre, post, nearest, wdep, seed):
    rng = np.random.default_rng(seed)
    w0 = rng.uniform(0.2, 0.8, size=(3, 3))
    post = [(s, j) for s, j in post]
    kw = dict(a_plus=0.05, a_minus=0.06, tau_plus=2.0, tau_minus=3.5, mu_plus=0.3, mu_minus=0.7)
    got, _ = kernel_run(w0, pre, post, 0.1, 500, pairing="nearest" if nearest else "all_to_all",
                        weight_dependence=wdep, **kw)
    want = stdp_reference(w0.tolist(), pre, post, 0.1, nearest=nearest, wdep=wdep, **kw)
    np.testing.assert_allclose(got, np.array(want), rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_queued_spikes_beyond_the_decay_table_equal_the_reference(seed):
    """A row's sync applies its queued post spikes in one flat loop when every decay comes from
    the table (additive), else step by step (``np.exp`` past 50 tau): with tau_plus 0.5 ms (a
    table of 251 steps) and spikes over 3000 steps, syncs of both kinds, and rows that never
    spiked (x = 0), give the all-pairs reference's weights."""
    rng = np.random.default_rng(seed)
    n_pre, n_post = 5, 4
    pre = sorted({(int(s), int(i)) for s, i in zip(rng.integers(0, 3000, 60), rng.integers(0, n_pre - 1, 60))})  # the last row never spikes
    post = sorted({(int(s), int(j)) for s, j in zip(rng.integers(0, 3000, 300), rng.integers(0, n_post, 300))})
    w0 = rng.uniform(0.2, 0.8, size=(n_pre, n_post))
    kw = dict(a_plus=0.01, a_minus=0.012, tau_plus=0.5, tau_minus=3.0)
    assert stdp.decay_table(kw["tau_plus"], 0.1).shape[0] == 251
    got, _ = kernel_run(w0, pre, post, 0.1, 3100, **kw)
    want = stdp_reference(w0.tolist(), pre, post, 0.1, **kw)
    np.testing.assert_allclose(got, np.array(want), rtol=0, atol=1e-12)
    gaps = np.concatenate([np.diff([s for s, i in pre if i == row]) for row in range(n_pre - 1)])
    assert gaps.max() > 251 and gaps.min() < 251  # both kinds of sync


@pytest.mark.parametrize("tau_plus", [1e-4, 0.02, 0.3])
def test_queued_spikes_with_a_decay_table_that_reaches_zero(tau_plus):
    """The flat sync loop tests no trace for 0: it runs only where the pre trace times the
    table's smallest decay is above 0. A table ending in 0 (tau_plus 1e-4 ms at dt 0.1 ms:
    exp(-1000)) or in tiny values makes rows sync step by step or flat: the reference's weights."""
    rng = np.random.default_rng(7)
    n_pre, n_post = 4, 5
    pre = sorted({(int(s), int(i)) for s, i in zip(rng.integers(0, 400, 80), rng.integers(0, n_pre, 80))})
    post = sorted({(int(s), int(j)) for s, j in zip(rng.integers(0, 400, 200), rng.integers(0, n_post, 200))})
    w0 = rng.uniform(0.2, 0.8, size=(n_pre, n_post))
    kw = dict(a_plus=0.01, a_minus=0.012, tau_plus=tau_plus, tau_minus=3.0)
    table = stdp.decay_table(tau_plus, 0.1)
    assert (table[-1] == 0.0) == (tau_plus == 1e-4)
    got, _ = kernel_run(w0, pre, post, 0.1, 420, **kw)
    want = stdp_reference(w0.tolist(), pre, post, 0.1, **kw)
    np.testing.assert_allclose(got, np.array(want), rtol=0, atol=1e-12)


@pytest.mark.parametrize("tau", [1e-4, 0.05, 0.5, 16.8, 33.7, 1000.0])
@pytest.mark.parametrize("dt", [0.01, 0.1, 1.0])
def test_decay_tables_never_increase(tau, dt):
    """sync_row relies on it: the last entry is the smallest decay of the table."""
    table = stdp.decay_table(tau, dt)
    assert table[0] == 1.0 and np.all(np.diff(table) <= 0.0)


def test_spikes_in_the_same_step_do_not_pair():
    w, _ = kernel_run([[0.5]], [(100, 0)], [(100, 0)], 0.1, 1000)
    assert w[0, 0] == 0.5


@settings(max_examples=30, deadline=None)
@given(pre=events, post=events, a=st.floats(0.0, 2.0), seed=st.integers(0, 1000))
def test_weights_stay_within_bounds(pre, post, a, seed):
    w0 = np.random.default_rng(seed).uniform(0.1, 0.3, size=(3, 3))
    w, _ = kernel_run(w0, pre, post, 0.1, 500, w_min=0.1, w_max=0.3, a_plus=a, a_minus=a, tau_plus=20.0, tau_minus=20.0)
    assert np.all(w >= 0.1) and np.all(w <= 0.3)


def test_lif_neuron_matches_its_reference_twin():
    """Plasticity off (a = 0): the kernel's LIF spike steps equal the step-by-step twin's."""
    dt, n_steps = 0.1, 20000
    rng = np.random.default_rng(3)
    pre = sorted((int(s), int(i)) for s, i in zip(rng.integers(0, n_steps, 600), rng.integers(0, 20, 600)))
    w0 = rng.uniform(0.0, 0.5, size=(20, 1))
    w, net = kernel_run(w0, pre, [], dt, n_steps, model=LIF, a_plus=0.0, a_minus=0.0)
    got = net.out_step[: net.cursor[2]].tolist()
    jumps = {}
    for s, i in pre:
        jumps[s] = jumps.get(s, 0.0) + w0[i, 0]
    want = lif_reference(-74.0, jumps, n_steps, dt)
    assert len(want) > 10
    assert got == want


SMALL_LIF = """
    name: small_lif
    seed: 9
    dt: {dt}
    duration: 2 s
    synapses: {{n_pre: 50, n_post: 2, w_init: {{uniform: [0, 0.05]}}, w_min: 0, w_max: 0.05}}
    neuron: {{model: lif}}
    stimulus: {{pre: {{poisson: {{rate: 20 Hz}}}}}}
    rule: {{kind: stdp, a_plus: 0.0005, a_minus: 0.000525, tau_plus: 20 ms, tau_minus: 20 ms}}
    record: {{interval: {interval}}}
"""


def _w_final(write, **kw):
    p = write("small.yaml", SMALL_LIF.format(**kw))
    [r] = run_experiment(validate_file(p))
    return r


def test_a_chunked_run_equals_one_run(write):
    """Recording every step (many kernel calls) or once (one call) gives the same bits."""
    a = _w_final(write, dt="0.1 ms", interval="0.1 ms")
    b = _w_final(write, dt="0.1 ms", interval="2 s")
    assert np.array_equal(a.w_final, b.w_final)
    assert np.array_equal(a.spikes[0], b.spikes[0])


def test_halving_dt_barely_changes_the_result(write):
    """Same Poisson spike times (drawn in ms), dt 0.1 vs 0.05 ms: weights agree to a few % of w_max."""
    a = _w_final(write, dt="0.1 ms", interval="1 s")
    b = _w_final(write, dt="0.05 ms", interval="1 s")
    dw_a, dw_b = a.w_final - a.w_initial, b.w_final - b.w_initial
    assert np.array_equal(a.w_initial, b.w_initial)
    assert np.abs(dw_a - dw_b).max() < 0.03 * 0.05
    assert abs(a.counts["post_spikes"] - b.counts["post_spikes"]) <= 0.05 * a.counts["post_spikes"] + 2


def test_a_full_queue_is_flushed_without_changing_the_result(write, monkeypatch):
    """Post spikes wait in a queue until each row's next pre spike; a queue of 3 steps (flushed
    into every row whenever it is full, mid-call) gives the bits of the default one."""
    text = SMALL_LIF.format(dt="0.1 ms", interval="2 s").replace("n_pre: 50, n_post: 2, w_init: {uniform: [0, 0.05]}, w_min: 0, w_max: 0.05", "n_pre: 100, n_post: 3, w_init: {uniform: [0.05, 0.1]}, w_min: 0, w_max: 0.1").replace("rate: 20 Hz", "rate: 40 Hz")
    assert "n_pre: 100" in text and "rate: 40 Hz" in text
    [a] = run_experiment(validate_file(write("queue.yaml", text)))
    monkeypatch.setattr(stdp, "QUEUE", 3)
    [b] = run_experiment(validate_file(write("queue.yaml", text)))
    assert a.counts["post_spikes"] > 100
    assert np.array_equal(a.w_final, b.w_final)
    assert np.array_equal(a.spikes[0], b.spikes[0])


def test_sync_row_does_no_reference_counting():
    """sync_row runs at nearly every pre spike: it must compile without the atomic reference
    count updates of its array arguments (Numba prunes them when the control flow is simple; an
    early return or a view of an array brings them back, 2-3x slower runs in benchmark W2)."""
    from plastictool.core import jit as jitmod

    numba = jitmod._load_numba()
    w = np.zeros((4, 3))
    vals = {p.name: p.default for p in stdp.SPEC.params}
    pr, st = stdp.build(vals, BuildContext(4, 3, 0.1, w, 0.0, 1.0, np.random.default_rng(0)))
    args = (0, w[0], st.x_pre, st.t_pre, st.xm_pre, st.q_j, st.q_step, st.q_end, st.qn, st.qptr, pr.dec_plus, pr.dt, pr.tau_plus, pr.a_plus, pr.mu_plus, stdp.ADDITIVE, pr.w_min, pr.w_max)
    sig = tuple(numba.typeof(a) for a in args)
    fresh = numba.njit(**{**jitmod.OPTIONS, "cache": False})(stdp.sync_row.py_func)
    fresh.compile(sig)
    fresh(*args)
    lines = fresh.inspect_llvm(sig).splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith("define") and "sync_row" in line)
    body = lines[first : lines.index("}", first)]
    assert sum("NRT_incref" in line or "NRT_decref" in line for line in body) == 0


@pytest.mark.parametrize("same_step", ["exclude", "nest", "pair"])
def test_post_spikes_queued_more_than_2_to_the_32_steps_apart(same_step):
    """The queue keeps each post spike's step less the first queued one in 32 bits: a post
    spike more than 2**32 - 1 steps after the first queued one flushes the queue first. Clamped
    neurons jump from event to event, so 4.3e9 steps take no time; the weights are the
    reference twin's (pairs at both ends, one of each rule's branches: same-step pairs, the
    flat loop, decays past the table)."""
    far = 2**32 + 1000
    pre = [(5, 0), (10, 1), (far - 20, 1), (far - 3, 0), (far + 4, 1)]
    post = [(10, 0), (12, 1), (far - 20, 1), (far, 0), (far, 1), (far + 2, 0)]
    w0 = [[0.5, 0.4], [0.3, 0.6]]
    kw = dict(a_plus=0.01, a_minus=0.012, tau_plus=TAU_PLUS, tau_minus=TAU_MINUS, same_step=same_step)
    got, _ = kernel_run(w0, pre, post, 0.1, far + 10, **kw)
    want = stdp_reference(w0, pre, post, 0.1, **kw)
    np.testing.assert_allclose(got, np.array(want), rtol=0, atol=1e-15)
    assert not np.array_equal(got, np.array(w0))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31), st.integers(1, 60), st.sampled_from([5, 200, 20_000]))
def test_decayed_traces_equal_one_decay_each(seed, n, age):
    """``decayed`` gives ``x * decay(table, s - t)`` (the table, else ``exp``; 0 where x is 0),
    bit for bit: traces inside and beyond the table, zero traces, and a block of columns
    (k0, k1) leaving the rest alone."""
    from plastictool.rules.traces import decay_table

    rng = np.random.default_rng(seed)
    dt, tau = 0.1, 2.0
    table = decay_table(tau, dt)  # 1001 entries
    x = rng.uniform(0.0, 3.0, n) * (rng.uniform(size=n) > 0.3)
    s = 30_000
    t = s - rng.integers(0, age, n)
    k0, k1 = sorted(rng.integers(0, n + 1, 2))
    out = np.full(n, -7.0)
    stdp.decayed(x, t, table, s, dt, tau, out, k0, k1)
    want = np.full(n, -7.0)
    for k in range(k0, k1):
        age_k = int(s - t[k])  # decay(): the table, else the C library's exp (as math.exp)
        want[k] = x[k] * (table[age_k] if age_k < table.size else math.exp(-age_k * dt / tau)) if x[k] != 0.0 else 0.0
    assert out.tobytes() == want.tobytes()
