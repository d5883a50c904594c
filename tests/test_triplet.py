"""Triplet STDP (plastictool.rules.triplet): reference twin, published numbers, pair-STDP limit.

Tolerances: kernel vs the event-driven twin on the same step grid: 1e-12 (same arithmetic up to
the last bit of exp); kernel at dt = 0.1 ms vs the [RUN-R] table of references.md section 2:
2e-3; the twin in continuous time vs the same table: 1e-3 (the table is rounded to 1e-3).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import reference_triplet as ref
from plastictool.core.net import CLAMPED, LIF, make_net
from plastictool.rules import stdp, triplet
from plastictool.rules.base import BuildContext, block_mask

INF = math.inf


def values(preset=None, **kw):
    v = {p.name: p.default for p in triplet.SPEC.params}
    if preset:
        v.update(triplet.SPEC.presets[preset].values)
    v.update(kw)
    return v


def ctx(n_pre, n_post, dt, w0=1.0, w_min=-INF, w_max=INF, seed=0):
    return BuildContext(
        n_pre=n_pre,
        n_post=n_post,
        dt=dt,
        w=np.broadcast_to(np.asarray(w0, dtype=float), (n_pre, n_post)).copy(),
        w_min=w_min,
        w_max=w_max,
        rng=np.random.default_rng(seed),
        blockable_index={"NMDA": 0},
    )


def run(mod, vals, n_pre, n_post, dt, pre, post, w0=1.0, w_min=-INF, w_max=INF, n_steps=None,
        chunks=1, blocked=(), model=CLAMPED):
    net = make_net(n_pre, n_post, dt, model=model, pre=pre, post=post)
    c = ctx(n_pre, n_post, dt, w0, w_min, w_max)
    pr, st = mod.build(vals, c)
    w = c.w.copy()
    if n_steps is None:
        n_steps = int(max(np.max(pre[0], initial=0), np.max(post[0], initial=0))) + 2
    mask = block_mask(mod.SPEC, blocked)
    edges = np.linspace(0, n_steps, chunks + 1).astype(np.int64)
    for s0, s1 in zip(edges[:-1], edges[1:]):
        s = s0
        while s < s1:
            s = mod.advance(w, net, st, pr, int(s), int(s1), mask)
            net.cursor[2] = 0  # drain the LIF out buffer
    return w, st, pr, net


def pairing_steps(pairs, frequency, delta_t, dt):
    pre, post = ref.pairing_times(pairs, frequency, delta_t)
    return (np.rint(np.array(pre) / dt).astype(np.int64), np.rint(np.array(post) / dt).astype(np.int64))


def poisson_steps(rng, n, rate_hz, n_steps, dt):
    """Independent Poisson trains on a step grid (a neuron spikes at most once per step)."""
    spikes = rng.random((n_steps, n)) < rate_hz * dt * 1e-3
    steps, idx = np.nonzero(spikes)
    return steps.astype(np.int64), idx.astype(np.int64)


# ---------------------------------------------------------------- published numbers (section 2)

FREQS = [0.1, 1.0, 10.0, 20.0, 30.0, 40.0, 50.0]
TABLE = {  # [RUN-R], 60 pairs at f, w0 = 1, unbounded: fractional change
    ("pfister2006_visual_aa_full", 10): [0.000, 0.000, 0.132, 0.247, 0.371, 0.534, 0.741],
    ("pfister2006_visual_aa_full", -10): [-0.312, -0.312, -0.334, -0.352, -0.205, 0.155, 0.727],
    ("pfister2006_visual_aa_min", 10): [0.000, 0.000, 0.119, 0.228, 0.355, 0.532, 0.763],
    ("pfister2006_visual_aa_min", -10): [-0.317, -0.317, -0.332, -0.342, -0.189, 0.174, 0.749],
    ("pfister2006_visual_nn_full", 10): [0.000, 0.000, 0.104, 0.323, 0.467, 0.560, 0.624],
    ("pfister2006_visual_nn_full", -10): [-0.294, -0.328, -0.411, -0.338, -0.085, 0.260, 0.619],
    ("pfister2006_visual_nn_min", 10): [0.000, 0.000, 0.106, 0.341, 0.499, 0.603, 0.675],
    ("pfister2006_visual_nn_min", -10): [-0.357, -0.357, -0.356, -0.275, -0.024, 0.316, 0.669],
}


@pytest.mark.parametrize("key", sorted(TABLE))
def test_published_table_kernel(key):
    preset, delta_t = key
    dt = 0.1
    got = []
    for f in FREQS:
        pre, post = pairing_steps(60, f, delta_t, dt)
        z = np.zeros_like(pre)
        w, *_ = run(triplet, values(preset), 1, 1, dt, (pre, z), (post, z))
        got.append(w[0, 0] - 1.0)
    np.testing.assert_allclose(got, TABLE[key], atol=2e-3, rtol=0)


@pytest.mark.parametrize("key", sorted(TABLE))
def test_published_table_twin_continuous(key):
    preset, delta_t = key
    got = []
    for f in FREQS:
        pre, post = ref.pairing_times(60, f, delta_t)
        w = ref.simulate([(t, 0) for t in pre], [(t, 0) for t in post], 1, 1, values(preset), 1.0)
        got.append(w[0][0] - 1.0)
    np.testing.assert_allclose(got, TABLE[key], atol=1e-3, rtol=0)


def test_sjostrom_nn_full_brief_numbers():
    """Nearest-spike full set, 60 pairs, delta_t = -10 ms: -0.294, -0.411, -0.338, +0.260, +0.619."""
    dt = 0.1
    for f, want in zip([0.1, 10.0, 20.0, 40.0, 50.0], [-0.294, -0.411, -0.338, 0.260, 0.619]):
        pre, post = pairing_steps(60, f, -10.0, dt)
        z = np.zeros_like(pre)
        w, *_ = run(triplet, values("pfister2006_visual_nn_full"), 1, 1, dt, (pre, z), (post, z))
        assert abs(w[0, 0] - 1.0 - want) < 2e-3, (f, w[0, 0] - 1.0, want)


def test_single_pair_and_triplets_by_hand():
    """A pre-post pair, a post-pre-post and a pre-post-pre triplet, computed by hand."""
    v = values(a2_plus=0.01, a3_plus=0.02, a2_minus=0.03, a3_minus=0.04, tau_plus=10.0,
               tau_minus=20.0, tau_x=30.0, tau_y=40.0)
    dt = 1.0
    e = math.exp
    # pre at 0, post at 5
    w, *_ = run(triplet, v, 1, 1, dt, ([0], [0]), ([5], [0]), w0=0.0)
    assert w[0, 0] == pytest.approx(e(-5 / 10) * 0.01, abs=1e-15)
    # post at 0, pre at 5, post at 12: depression o1 = e^-5/20; potentiation r1 = e^-7/10, o2 = e^-12/40
    w, *_ = run(triplet, v, 1, 1, dt, ([5], [0]), ([0, 12], [0, 0]), w0=0.0)
    want = -e(-5 / 20) * 0.03 + e(-7 / 10) * (0.01 + 0.02 * e(-12 / 40))
    assert w[0, 0] == pytest.approx(want, abs=1e-15)
    # pre at 0, post at 4, pre at 10: potentiation r1 = e^-4/10; depression o1 = e^-6/20, r2 = e^-10/30
    w, *_ = run(triplet, v, 1, 1, dt, ([0, 10], [0, 0]), ([4], [0]), w0=0.0)
    want = e(-4 / 10) * 0.01 - e(-6 / 20) * (0.03 + 0.04 * e(-10 / 30))
    assert w[0, 0] == pytest.approx(want, abs=1e-15)
    # nearest: post at 0 and 2, pre at 5 -> o1 = e^-3/20 (not e^-3/20 + e^-5/20)
    vn = dict(v, pairing="nearest")
    w, *_ = run(triplet, vn, 1, 1, dt, ([5], [0]), ([0, 2], [0, 0]), w0=0.0)
    assert w[0, 0] == pytest.approx(-e(-3 / 20) * 0.03, abs=1e-15)
    w, *_ = run(triplet, v, 1, 1, dt, ([5], [0]), ([0, 2], [0, 0]), w0=0.0)
    assert w[0, 0] == pytest.approx(-(e(-3 / 20) + e(-5 / 20)) * 0.03, abs=1e-15)


def test_same_step_does_not_pair():
    v = values(a2_plus=0.01, a3_plus=0.02, a2_minus=0.03, a3_minus=0.04)
    w, *_ = run(triplet, v, 1, 1, 0.1, ([10], [0]), ([10], [0]), w0=0.5)
    assert w[0, 0] == 0.5


# ---------------------------------------------------------------- reference twin, random trains

def random_case(seed, pairing, bounded):
    rng = np.random.default_rng(seed)
    n_pre, n_post, dt, n_steps = 4, 3, 0.1, 20000
    pre = poisson_steps(rng, n_pre, 30.0, n_steps, dt)
    post = poisson_steps(rng, n_post, 30.0, n_steps, dt)
    v = values(
        a2_plus=float(rng.uniform(0, 0.02)), a3_plus=float(rng.uniform(0, 0.02)),
        a2_minus=float(rng.uniform(0, 0.02)), a3_minus=float(rng.uniform(0, 0.01)),
        tau_plus=float(rng.uniform(5, 40)), tau_minus=float(rng.uniform(5, 40)),
        tau_x=float(rng.uniform(20, 800)), tau_y=float(rng.uniform(20, 200)), pairing=pairing,
    )
    w0 = rng.uniform(0.2, 0.8, (n_pre, n_post))
    lo, hi = (0.0, 1.0) if bounded else (-INF, INF)
    return v, n_pre, n_post, dt, pre, post, w0, lo, hi, n_steps


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
@pytest.mark.parametrize("bounded", [False, True])
def test_matches_reference_twin(seed, pairing, bounded):
    v, n_pre, n_post, dt, pre, post, w0, lo, hi, n_steps = random_case(seed, pairing, bounded)
    if bounded:  # large amplitudes so that the bounds are hit
        v = dict(v, a2_plus=0.2, a3_plus=0.1, a2_minus=0.2, a3_minus=0.1)
    w, *_ = run(triplet, v, n_pre, n_post, dt, pre, post, w0, lo, hi, n_steps=n_steps)
    want = ref.simulate(list(zip(*pre)), list(zip(*post)), n_pre, n_post, v, w0, lo, hi, dt=dt)
    np.testing.assert_allclose(w, np.array(want), atol=1e-12, rtol=0)
    if bounded:
        assert (w == 0.0).any() or (w == 1.0).any()


@settings(max_examples=25, deadline=None)
@given(
    pre_t=hs.lists(hs.integers(0, 400), max_size=12),
    post_t=hs.lists(hs.integers(0, 400), max_size=12),
    nearest=hs.booleans(),
)
def test_matches_reference_twin_hypothesis(pre_t, post_t, nearest):
    """Arbitrary spike lists on a 1 ms grid, coincident and repeated spikes included."""
    v = values("pfister2006_visual_nn_full" if nearest else "pfister2006_visual_aa_full")
    pre = (np.array(pre_t, np.int64), np.zeros(len(pre_t), np.int64))
    post = (np.array(post_t, np.int64), np.zeros(len(post_t), np.int64))
    w, *_ = run(triplet, v, 1, 1, 1.0, pre, post, n_steps=402)
    want = ref.simulate([(t, 0) for t in pre_t], [(t, 0) for t in post_t], 1, 1, v, 1.0, dt=1.0)
    assert abs(w[0, 0] - want[0][0]) < 1e-12


# ---------------------------------------------------------------- pair-STDP limit, chunks, block, LIF

def stdp_values(v):
    s = {p.name: p.default for p in stdp.SPEC.params}
    s.update(a_plus=v["a2_plus"], a_minus=v["a2_minus"], tau_plus=v["tau_plus"],
             tau_minus=v["tau_minus"], pairing=v["pairing"], weight_dependence="additive")
    return s


@pytest.mark.parametrize("seed", [4, 5])
@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
@pytest.mark.parametrize("model", [CLAMPED, LIF])
def test_a3_zero_equals_pair_stdp_exactly(seed, pairing, model):
    v, n_pre, n_post, dt, pre, post, w0, lo, hi, n_steps = random_case(seed, pairing, True)
    v = dict(v, a3_plus=0.0, a3_minus=0.0, a2_plus=0.05, a2_minus=0.06)
    if model == LIF:
        n_pre, post = 40, None
        pre = poisson_steps(np.random.default_rng(seed), n_pre, 20.0, n_steps, dt)
        w0 = np.random.default_rng(seed).uniform(0.0, 1.0, (n_pre, n_post))
    w_t, st_t, _, net_t = run(triplet, v, n_pre, n_post, dt, pre, post, w0, lo, hi, n_steps=n_steps, model=model)
    w_s, st_s, _, net_s = run(stdp, stdp_values(v), n_pre, n_post, dt, pre, post, w0, lo, hi, n_steps=n_steps,
                              model=model)
    assert np.array_equal(w_t, w_s)
    assert np.array_equal(st_t.r1, st_s.x_pre) and np.array_equal(st_t.o1, st_s.x_post)
    assert not np.array_equal(w_t, w0)
    if model == LIF:
        assert np.array_equal(net_t.v, net_s.v)
        assert net_t.ref_until.sum() > 0  # the LIF neurons did fire


def test_chunked_equals_single_call():
    v, n_pre, n_post, dt, pre, post, w0, lo, hi, n_steps = random_case(7, "all_to_all", True)
    w1, st1, *_ = run(triplet, v, n_pre, n_post, dt, pre, post, w0, lo, hi, n_steps=n_steps)
    w7, st7, *_ = run(triplet, v, n_pre, n_post, dt, pre, post, w0, lo, hi, n_steps=n_steps, chunks=7)
    assert np.array_equal(w1, w7)
    for a, b in zip(st1, st7):
        assert np.array_equal(a, b)


def test_nmda_block_freezes_weights_not_traces():
    v, n_pre, n_post, dt, pre, post, w0, lo, hi, n_steps = random_case(8, "all_to_all", False)
    w_b, st_b, pr, _ = run(triplet, v, n_pre, n_post, dt, pre, post, w0, n_steps=n_steps, blocked=("NMDA",))
    w_f, st_f, *_ = run(triplet, v, n_pre, n_post, dt, pre, post, w0, n_steps=n_steps)
    assert np.array_equal(w_b, w0)
    assert not np.array_equal(w_f, w0)
    for a, b in zip(st_b, st_f):
        assert np.array_equal(a, b)
    for name in ("r1", "r2", "o1", "o2"):
        assert np.array_equal(triplet.probe(st_b, pr, name, n_steps), triplet.probe(st_f, pr, name, n_steps))


def test_probe_traces():
    v = values(tau_plus=10.0, tau_x=100.0, tau_minus=20.0, tau_y=50.0)
    _, st, pr, _ = run(triplet, v, 1, 1, 1.0, ([0, 5], [0, 0]), ([3], [0]), w0=0.0, n_steps=10)
    assert triplet.probe(st, pr, "r1", 15)[0] == pytest.approx(math.exp(-1.5) + math.exp(-1.0))
    assert triplet.probe(st, pr, "r2", 15)[0] == pytest.approx(math.exp(-0.15) + math.exp(-0.1))
    assert triplet.probe(st, pr, "o1", 23)[0] == pytest.approx(math.exp(-1.0))
    assert triplet.probe(st, pr, "o2", 53)[0] == pytest.approx(math.exp(-1.0))


def test_spec_and_presets():
    spec = triplet.SPEC
    assert spec.param_names == ("a2_plus", "a3_plus", "a2_minus", "a3_minus", "tau_plus", "tau_minus",
                                "tau_x", "tau_y", "pairing", "same_step")
    for name in ("pfister2006_visual_aa_full", "pfister2006_visual_aa_min", "pfister2006_visual_nn_full",
                 "pfister2006_visual_nn_min", "pfister2006_hippo_aa_min"):
        p = spec.presets[name]
        assert p.citation and set(p.values) <= set(spec.param_names)
        assert p.values["tau_plus"] == 16.8 and p.values["tau_minus"] == 33.7
    assert spec.presets["pfister2006_visual_aa_min"].values["tau_y"] == 114.0
    assert spec.blockable == ("NMDA",)
    assert triplet.__doc__.isascii()


def test_rate_limit_crossover():
    """Poisson pre 10 Hz, AA-min: LTD below and LTP above ry* = a2m tau_m / (a3p tau_p tau_y) = 19.2 Hz."""
    v = values("pfister2006_visual_aa_min")
    dt, n_steps, n = 0.1, 200_000, 200  # 20 s, 200 independent synapses (1 pre, 200 post)
    rng = np.random.default_rng(3)
    drift = {}
    for ry in (10.0, 30.0):
        pre = poisson_steps(rng, 1, 10.0, n_steps, dt)
        post = poisson_steps(rng, n, ry, n_steps, dt)
        w, *_ = run(triplet, v, 1, n, dt, pre, post, 1.0, n_steps=n_steps)
        drift[ry] = (w.mean() - 1.0) / 20.0
    # analytic <dw/dt> = rx ry [a3p tau_p tau_y ry - a2m tau_m] (rates in 1/ms): -0.0115 and +0.0403 /s
    assert drift[10.0] == pytest.approx(-0.0115, abs=0.004)
    assert drift[30.0] == pytest.approx(0.0403, abs=0.006)
