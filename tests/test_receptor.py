"""The receptor rule (issue 4): interface, steady state, conservation, blockers, the
calibration bands of every experiment, robustness, numerics and the slow reference twin.

Experiments drive ``receptor.advance`` directly through ``make_net`` (one synapse, presynaptic
spikes only, clamped neuron), as in the protocols ``protocols/receptor_*.yaml``: 10 min
baseline with test pulses at 0.05 Hz, induction, follow-up with test pulses. ``dw`` is the
percentage change of ``w`` (= of the receptors bound in the PSD).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from plastictool.core.net import LIF, make_net
from plastictool.rules import REGISTRY
from plastictool.rules import receptor as R
from plastictool.rules.base import BuildContext, block_mask

import reference_receptor as REF

MIN = 60e3
HOUR = 3600e3
BASE = 10 * MIN
TEST_HZ = 0.05
SWEEP = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)
STATE = ("ca", "pi3k", "akt", "mtor", "pool", "free", "bound", "slots", "pp", "tag")


# ------------------------------------------------------------------------------------- driver
def tetanus(start, freq=100.0, dur=1000.0, trains=3, interval=10 * MIN):
    n = int(round(dur * freq / 1000.0))
    return [start + k * interval + m * 1000.0 / freq for k in range(trains) for m in range(n)]


def regular(start, freq, pulses=None, stop=None):
    if pulses is None:
        pulses = int(math.floor((stop - start) * freq / 1000.0 + 1e-9))
    return [start + m * 1000.0 / freq for m in range(pulses)]


def build(values=(), n_pre=1, n_post=1, dt=0.5, w0=0.5):
    ctx = BuildContext(n_pre, n_post, dt, np.full((n_pre, n_post), w0), 0.0, 1.0, np.random.default_rng(0))
    pr, st = R.build(dict(values), ctx)
    return pr, st, ctx.w.copy()


def run(values=(), phases=(), record=(), dt=0.5, test_hz=TEST_HZ, pr_hook=None, chunk=None):
    """phases: (duration ms, spike times relative to the phase, blocks, test pulses?).

    Returns {t: (dw_percent, {state: value})} at the record times (ms from the start)."""
    spikes, bounds, t = [], [], 0.0
    for dur, sp, blk, test in phases:
        spikes += [t + x for x in sp]
        if test and test_hz:
            spikes += regular(t, test_hz, stop=t + dur)
        bounds.append((t, t + dur, tuple(blk)))
        t += dur
    steps = np.array(sorted(int(round(x / dt)) for x in spikes), dtype=np.int64)
    net = make_net(1, 1, dt, pre=(steps, np.zeros(steps.size, np.int64)))
    pr, st, w = build(values, dt=dt)
    if pr_hook is not None:
        pr = pr_hook(pr)
    cuts = sorted({int(round(b[1] / dt)) for b in bounds} | {int(round(r / dt)) for r in record})
    if chunk:
        cuts = sorted(set(cuts) | set(range(0, cuts[-1], chunk)))
    out, s = {}, 0
    for c in cuts:
        blk = next((bl for a, b, bl in bounds if a <= s * dt < b), ())
        mask = block_mask(R.SPEC, blk)
        while s < c:
            s = R.advance(w, net, st, pr, s, c, mask)
        for r in record:
            if int(round(r / dt)) == c:
                out[r] = (100.0 * (w[0, 0] / 0.5 - 1.0), {k: float(R.probe(st, pr, k, c)[0, 0]) for k in STATE})
    return out


def as_items(values):
    return tuple(sorted(dict(values).items()))


@functools.lru_cache(maxsize=None)
def hfs(values=(), blocks=(), follow=4 * HOUR, dt=0.5):
    ind = 20 * MIN + 1000.0
    ph = [(BASE, [], blocks, True), (ind, tetanus(0.0), blocks, False), (follow, [], blocks, True)]
    t_end = BASE + ind
    rec = (30 * MIN, 60 * MIN, 2 * HOUR, 3 * HOUR, 4 * HOUR)
    res = run(dict(values), ph, [t_end + r for r in rec], dt=dt)
    return {r: res[t_end + r][0] for r in rec}, {r: res[t_end + r][1] for r in rec}


@functools.lru_cache(maxsize=None)
def train(values=(), freq=1.0, pulses=900, blocks=(), follow=2 * HOUR, dt=0.5):
    dur = pulses * 1000.0 / freq
    ph = [(BASE, [], blocks, True), (dur, regular(0.0, freq, pulses), blocks, False), (follow, [], blocks, True)]
    rec = tuple(r for r in (30 * MIN, 60 * MIN, 2 * HOUR) if r <= follow)
    res = run(dict(values), ph, [BASE + dur + r for r in rec], dt=dt)
    return {r: res[BASE + dur + r][0] for r in rec}


@functools.lru_cache(maxsize=None)
def drug(values=(), block="exocytosis"):
    rec = (5 * MIN, 10 * MIN, 30 * MIN, 60 * MIN, 2 * HOUR)
    res = run(dict(values), [(BASE, [], (), False), (2 * HOUR, [], (block,), False)], [BASE + r for r in rec])
    return {r: res[BASE + r][0] for r in rec}


def crossover(fs, dws):
    for k in range(len(fs) - 1):
        if dws[k] <= 0 < dws[k + 1]:
            a, b = math.log(fs[k]), math.log(fs[k + 1])
            return math.exp(a + (b - a) * (0 - dws[k]) / (dws[k + 1] - dws[k]))
    return float("nan")


def sweep(values=()):
    return [train(values, f, follow=60 * MIN)[60 * MIN] for f in SWEEP]


def test_pulses_only(values=(), hours=4.0):
    T = hours * HOUR
    return run(dict(values), [(T, [], (), True)], [T])[T][0]


test_pulses_only.__test__ = False


# ------------------------------------------------------------------------------------- bands
def bands(values=()):
    """Every band of issue 4, item 3: {name: (value, lo, hi)}."""
    h, _ = hfs(values)
    rapa, _ = hfs(values, ("mTOR",))
    pi3k, _ = hfs(values, ("PI3K",))
    lfs = train(values, 1.0)
    sw = dict(zip(SWEEP, sweep(values)))
    exo, endo = drug(values, "exocytosis"), drug(values, "endocytosis")
    inf = math.inf
    fx = crossover(SWEEP, [sw[f] for f in SWEEP])
    return {
        "HFS dw at 30 min in [40, 100]": (h[30 * MIN], 40, 100),
        "HFS dw at 4 h >= 25 (persists)": (h[4 * HOUR], 25, inf),
        "HFS dw at 4 h / 30 min >= 0.5": (h[4 * HOUR] / h[30 * MIN], 0.5, inf),
        "rapamycin dw at 30 min in [30, 100] (early LTP)": (rapa[30 * MIN], 30, 100),
        "rapamycin dw at 60 min >= 20": (rapa[60 * MIN], 20, inf),
        "rapamycin dw at 3 h <= 15": (rapa[3 * HOUR], -inf, 15),
        "rapamycin dw at 4 h in [-10, 10] (baseline)": (rapa[4 * HOUR], -10, 10),
        "PI3K blocked dw at 30 min in [-10, 10]": (pi3k[30 * MIN], -10, 10),
        "PI3K blocked dw at 4 h in [-10, 10]": (pi3k[4 * HOUR], -10, 10),
        "LFS dw at 30 min in [-35, -15]": (lfs[30 * MIN], -35, -15),
        "LFS dw at 60 min in [-35, -15]": (lfs[60 * MIN], -35, -15),
        "900 pulses at 1 Hz: dw <= -5": (sw[1.0], -inf, -5),
        "900 pulses at 3 Hz: dw <= -3": (sw[3.0], -inf, -3),
        "900 pulses at 50 Hz: dw >= 5": (sw[50.0], 5, inf),
        "900 pulses at 100 Hz: dw >= 5": (sw[100.0], 5, inf),
        "LTD/LTP crossover in [5, 20] Hz": (fx if fx == fx else -1.0, 5, 20),
        "exocytosis blocked: dw at 10 min <= -25": (exo[10 * MIN], -inf, -25),
        "endocytosis blocked: dw at 60 min >= 25": (endo[60 * MIN], 25, inf),
        "endocytosis blocked: dw(10 min) / dw(60 min) <= 0.7": (endo[10 * MIN] / endo[60 * MIN], -inf, 0.7),
        "4 h of test pulses: |dw| <= 2": (abs(test_pulses_only(values)), -inf, 2),
    }


def failures(values=()):
    return [f"{k}: {x:.3g}" for k, (x, lo, hi) in bands(values).items() if not lo <= x <= hi]


# ------------------------------------------------------------------------------------- interface
def test_spec_and_registry():
    assert REGISTRY["receptor"] == "plastictool.rules.receptor"
    spec = R.SPEC
    assert spec.kind == "receptor" and spec.weight_from_state and spec.neurons == ("clamped", "lif")
    assert spec.blockable == ("NMDA", "PI3K", "Akt", "mTOR", "synthesis", "exocytosis", "endocytosis", "phosphatase")
    assert tuple(s.name for s in spec.state)[:8] == ("ca", "pi3k", "akt", "mtor", "pool", "free", "bound", "slots")
    assert all(s.shape == ("post" if s.name == "prp" else "syn") for s in spec.state)
    assert [s.name for s in spec.state][-2:] == ["tag", "prp"]
    assert all(p.doc for p in spec.params)
    assert R.__doc__.isascii() and "Man et al. 2003" in R.__doc__


def test_probe_shapes_and_weight_readout():
    pr, st, w = build(n_pre=3, n_post=2)
    for name in STATE:
        assert R.probe(st, pr, name, 0).shape == (3, 2)
    assert R.probe(st, pr, "prp", 0).shape == (2,)
    assert np.allclose(R.probe(st, pr, "bound", 0), pr.bound_rest)
    assert np.array_equal(w, np.full((3, 2), 0.5))


# ------------------------------------------------------------------------------------- steady state
def test_rest_is_a_steady_state_of_the_equations():
    v = REF.params({})
    x = REF.rest(v)
    for name, dx in REF.rhs(x, v, 0.0).items():
        assert abs(dx) <= 1e-15 * max(1.0, abs(x[name])), name
    assert x["bound"] <= x["slots"]
    assert x["bound"] == pytest.approx(x["slots"] * x["free"] / (x["free"] + v["kd"]), rel=1e-14)
    pool, free, bound, slots = R.resting_state({})
    assert (pool, free, bound, slots) == pytest.approx((x["pool"], x["free"], x["bound"], x["slots"]), rel=1e-14)


def test_no_drift_over_hours_without_stimulation():
    res = run({}, [(8 * HOUR, [], (), False)], [HOUR, 8 * HOUR])
    for dw, st in res.values():
        assert abs(dw) < 1e-9
        assert st["pi3k"] == st["mtor"] == st["pp"] == 0.0


@settings(max_examples=25, deadline=None)
@given(
    kd=hs.floats(1.0, 200.0),
    slots=hs.floats(5.0, 500.0),
    tau_exo=hs.floats(60e3, 3600e3),
    tau_endo=hs.floats(30e3, 3600e3),
    tau_off=hs.floats(1e3, 3600e3),
    synthesis=hs.floats(1e-4, 1e-1),
)
def test_langmuir_steady_state_for_any_parameters(kd, slots, tau_exo, tau_endo, tau_off, synthesis):
    values = {"kd": kd, "slots_rest": slots, "tau_exo": tau_exo, "tau_endo": tau_endo, "tau_off": tau_off, "synthesis": synthesis}
    pool, free, bound, s = R.resting_state(values)
    assert 0 < bound < s
    assert bound == pytest.approx(s * free / (free + kd), rel=1e-12)
    res = run(values, [(10 * HOUR, [], (), False)], [10 * HOUR])
    dw, st = res[10 * HOUR]
    assert abs(dw) < 1e-8
    assert st["bound"] <= st["slots"]


def test_bound_never_exceeds_slots_or_total():
    _, states = hfs()
    for st in states.values():
        assert 0 < st["bound"] <= st["slots"]
        assert st["free"] >= 0 and st["pool"] >= 0


def test_receptors_conserved_without_synthesis_and_degradation():
    def no_degradation(pr):
        k = pr.k.copy()
        k[R.K_DEG] = 0.0
        return pr._replace(k=k)

    ph = [(BASE, [], ("synthesis",), True), (20 * MIN, tetanus(0.0), ("synthesis",), False),
          (30 * MIN, regular(0.0, 1.0, 900), ("synthesis",), False), (HOUR, [], ("synthesis",), True)]
    rec = [BASE, BASE + 21 * MIN, BASE + 50 * MIN, BASE + 80 * MIN, BASE + 110 * MIN]
    res = run({}, ph, rec, pr_hook=no_degradation)
    pool, free, bound, _ = R.resting_state({})
    total = pool + free + bound
    changed = False
    for dw, st in res.values():
        assert st["pool"] + st["free"] + st["bound"] == pytest.approx(total, rel=1e-12)
        changed |= abs(dw) > 10
    assert changed  # the receptors did move between the compartments


# ------------------------------------------------------------------------------------- bands
def test_calibration_bands():
    """Every band of issue 4 item 3 with the defaults (values in docs/receptor.md)."""
    assert failures() == []


def test_hfs_early_and_late_ltp():
    h, states = hfs()
    assert 40 <= h[30 * MIN] <= 100
    assert h[4 * HOUR] >= 25 and h[4 * HOUR] >= 0.5 * h[30 * MIN]
    # consolidation: new slots carry the late phase
    assert states[4 * HOUR]["slots"] > 1.2 * R.resting_state({})[3]


def test_rapamycin_keeps_early_ltp_and_loses_late_ltp():
    rapa, states = hfs((), ("mTOR",))
    assert 30 <= rapa[30 * MIN] <= 100
    assert abs(rapa[4 * HOUR]) <= 10
    assert all(st["mtor"] == 0.0 for st in states.values())
    akt, akt_states = hfs((), ("Akt",))  # Akt only drives mTOR: same result
    assert akt[4 * HOUR] == pytest.approx(rapa[4 * HOUR], abs=1e-9)
    assert all(st["akt"] == 0.0 and st["mtor"] == 0.0 for st in akt_states.values())


def test_anisomycin_blocks_late_ltp():
    aniso, states = hfs((), ("synthesis",))
    h, _ = hfs()
    assert aniso[30 * MIN] >= 30
    assert aniso[4 * HOUR] < 10 < h[4 * HOUR]
    pool, free, bound, slots = R.resting_state({})
    assert all(st["slots"] <= slots + 1e-9 for st in states.values())  # no new slots
    totals = [pool + free + bound] + [states[t]["pool"] + states[t]["free"] + states[t]["bound"] for t in sorted(states)]
    assert all(b < a for a, b in zip(totals, totals[1:]))  # no new receptors: degradation only


def test_pi3k_block_prevents_insertion_and_ltp():
    dw, states = hfs((), ("PI3K",))
    assert all(abs(x) <= 10 for x in dw.values())
    assert all(st["pi3k"] == st["akt"] == st["mtor"] == 0.0 for st in states.values())


def test_lfs_gives_lasting_ltd():
    lfs = train((), 1.0)
    assert -35 <= lfs[30 * MIN] <= -15 and -35 <= lfs[60 * MIN] <= -15
    assert lfs[2 * HOUR] <= -10


def test_frequency_response_crosses_over_near_10_hz():
    sw = sweep()
    assert all(x < -5 for f, x in zip(SWEEP, sw) if f <= 3.0)
    assert all(x > 5 for f, x in zip(SWEEP, sw) if f >= 20.0)
    assert 5 <= crossover(SWEEP, sw) <= 20


def test_exocytosis_and_endocytosis_blocks_from_rest():
    exo = drug((), "exocytosis")
    assert exo[10 * MIN] <= -25 and exo[5 * MIN] < 0
    endo = drug((), "endocytosis")
    assert endo[60 * MIN] >= 25
    assert 0 < endo[10 * MIN] <= 0.7 * endo[60 * MIN]  # rises over about an hour


def test_test_pulses_do_not_drift():
    assert abs(test_pulses_only()) <= 2


# ------------------------------------------------------------------------------------- blockers
def test_nmda_block_removes_calcium_and_plasticity():
    dw, states = hfs((), ("NMDA",))
    assert all(abs(x) < 1e-9 for x in dw.values())
    assert all(st["ca"] == 0.0 and st["pi3k"] == 0.0 and st["pp"] == 0.0 for st in states.values())


def test_phosphatase_block_removes_ltd():
    lfs = train((), 1.0, blocks=("phosphatase",))
    assert all(abs(x) < 2 for x in lfs.values())
    rec = run({}, [(BASE, [], ("phosphatase",), True), (900e3, regular(0.0, 1.0, 900), ("phosphatase",), False)], [BASE + 900e3])
    assert rec[BASE + 900e3][1]["pp"] == 0.0


def test_endocytosis_block_stops_internalisation():
    # with synthesis also blocked the pool has no source but internalisation: it can only fall
    ph = [(BASE, [], ("endocytosis", "synthesis"), True), (20 * MIN, tetanus(0.0), ("endocytosis", "synthesis"), False),
          (HOUR, [], ("endocytosis", "synthesis"), True)]
    rec = [BASE * k / 4 for k in range(1, 4)] + [BASE + 20 * MIN + k * 10 * MIN for k in range(7)]
    res = run({}, ph, sorted(rec))
    pools = [res[t][1]["pool"] for t in sorted(res)]
    assert all(b <= a for a, b in zip(pools, pools[1:]))


def test_exocytosis_block_stops_insertion():
    ph = [(BASE, [], ("exocytosis",), True), (20 * MIN, tetanus(0.0), ("exocytosis",), False), (HOUR, [], ("exocytosis",), True)]
    rec = sorted([BASE * k / 4 for k in range(1, 4)] + [BASE + 20 * MIN + k * 10 * MIN for k in range(7)])
    res = run({}, ph, rec)
    surface = [res[t][1]["free"] + res[t][1]["bound"] for t in rec]
    assert all(b <= a for a, b in zip(surface, surface[1:]))


# ------------------------------------------------------------------------------------- robustness
def test_every_band_survives_a_20_percent_change_of_any_parameter():
    bad = []
    for p in R.SPEC.params:
        if p.name in ("substep", "prp_step", "c_post"):  # numerics; no post spikes in these experiments
            continue
        for fac in (0.8, 1.2):
            f = failures(((p.name, p.default * fac),))
            if f:
                bad.append((p.name, fac, f))
    assert bad == []


# ------------------------------------------------------------------------------------- numerics
def test_results_do_not_depend_on_dt_or_substep():
    base_h, _ = hfs()
    base_l = train((), 1.0)
    for dt, sub in ((0.25, 1000.0), (1.0, 1000.0), (0.5, 500.0), (0.5, 5000.0)):
        h, _ = hfs((("substep", sub),), dt=dt)
        lfs = train((("substep", sub),), 1.0, dt=dt)
        for r in h:
            assert h[r] == pytest.approx(base_h[r], abs=0.02)
        for r in lfs:
            assert lfs[r] == pytest.approx(base_l[r], abs=0.02)


def test_chunking_of_advance_calls_barely_matters():
    ph = [(BASE, [], (), True), (20 * MIN + 1000.0, tetanus(0.0), (), False), (HOUR, [], (), True)]
    t_end = BASE + 81 * MIN + 1000.0
    a = run({}, ph, [t_end])[t_end]
    b = run({}, ph, [t_end], chunk=1237)[t_end]
    assert b[0] == pytest.approx(a[0], abs=0.01)  # percentage points


FAST = {  # every pathway moves within two minutes, so a short Euler run checks them all
    "tau_pi3k": 30e3, "k_akt": 0.5, "tau_akt": 20e3, "k_mtor": 0.5, "tau_mtor": 20e3,
    "k_pp": 2.0, "tau_pp": 20e3, "pp_half": 0.2, "tau_exo": 30e3, "tau_endo": 20e3,
    "tau_off": 5e3, "synthesis": 1.0, "tau_deg": 60e3, "slot_growth": 0.02, "slot_removal": 0.02,
    "tau_slots": 60e3, "c_post": 1.5, "k_tag": 0.5, "tau_tag": 20e3, "tau_prp": 20e3, "prp_step": 1000.0,
}


def test_matches_the_slow_reference_twin():
    dt = 0.5
    pre = tetanus(1000.0, trains=1) + regular(5000.0, 5.0, 150) + regular(40000.0, 1.0, 30)
    post = regular(45005.0, 1.0, 20)
    t_end = 100e3
    blocks = [(60e3, 80e3, ("exocytosis",))]
    samples = (2000.0, 10e3, 35e3, 60e3, 80e3)
    ref = REF.simulate(FAST, pre, post, t_end, dt, blocks, samples)

    steps = np.array(sorted(int(round(t / dt)) for t in pre), np.int64)
    psteps = np.array(sorted(int(round(t / dt)) for t in post), np.int64)
    net = make_net(1, 1, dt, pre=(steps, np.zeros(steps.size, np.int64)), post=(psteps, np.zeros(psteps.size, np.int64)))
    pr, st, w = build(FAST, dt=dt)
    s = 0
    moved = set()
    edges = {int(round(x / dt)) for a, b, _ in blocks for x in (a, b)}
    for t in list(samples) + [t_end]:
        c = int(round(t / dt))
        for stop in sorted(e for e in edges | {c} if s < e <= c):
            blk = next((bl for a, b, bl in blocks if a <= s * dt < b), ())
            while s < stop:
                s = R.advance(w, net, st, pr, s, stop, block_mask(R.SPEC, blk))
        for name in STATE:
            fast = float(R.probe(st, pr, name, c)[0, 0])
            slow = ref[t][name]
            scale = max(abs(ref[t_end][name]), max(abs(ref[x][name]) for x in samples), 1e-12)
            assert fast == pytest.approx(slow, abs=5e-3 * scale, rel=5e-3), (t, name)
            if abs(slow - REF.rest(REF.params(FAST))[name]) > 0.05 * scale:
                moved.add(name)
        scale = max(ref[x]["prp"] for x in samples)
        assert float(R.probe(st, pr, "prp", c)[0]) == pytest.approx(ref[t]["prp"], abs=5e-3 * scale, rel=5e-3), t
        assert w[0, 0] == pytest.approx(0.5 * ref[t]["bound"] / pr.bound_rest, rel=5e-3)
    assert moved >= set(STATE) - {"ca"}


def test_post_neurons_are_independent_and_synapses_share_only_products():
    """Different post neurons never interact; synapses of one post neuron interact only
    through its products (with mTOR blocked there are none: every synapse is on its own)."""
    dt = 0.5
    trains = [tetanus(1000.0, trains=1), regular(0.0, 1.0, 60), regular(0.0, 20.0, 100)]
    ev = [(int(round(t / dt)), i) for i, tr in enumerate(trains) for t in tr]
    steps, idx = (np.array(x, np.int64) for x in zip(*sorted(ev)))
    n = int(round(120e3 / dt))
    for blk in ((), ("mTOR",)):
        net = make_net(3, 2, dt, pre=(steps, idx))
        pr, st, w = build(n_pre=3, n_post=2, dt=dt)
        s = 0
        while s < n:
            s = R.advance(w, net, st, pr, s, n, block_mask(R.SPEC, blk))
        assert np.array_equal(w[:, 0], w[:, 1]) and st.prp[0] == st.prp[1]  # the two columns are twins
        assert (st.prp[0] > 0) == (blk == ())
        for i, tr in enumerate(trains):
            steps1 = np.array([int(round(t / dt)) for t in tr], np.int64)
            net1 = make_net(1, 1, dt, pre=(steps1, np.zeros(steps1.size, np.int64)))
            pr1, st1, w1 = build(dt=dt)
            s = 0
            while s < n:
                s = R.advance(w1, net1, st1, pr1, s, n, block_mask(R.SPEC, blk))
            if blk:
                assert w[i, 0] == pytest.approx(w1[0, 0], rel=1e-12)


def test_lif_neuron_sees_the_weight():
    dt = 0.5
    steps = np.array([int(round(t / dt)) for t in tetanus(100.0, trains=1)], np.int64)
    n_pre = 4
    net = make_net(n_pre, 1, dt, LIF, pre=(np.repeat(steps, n_pre), np.tile(np.arange(n_pre), steps.size)))
    pr, st, w = build(n_pre=n_pre, dt=dt, w0=0.5)
    n = int(round(60e3 / dt))
    s = 0
    while s < n:
        s = R.advance(w, net, st, pr, s, n, block_mask(R.SPEC, ()))
        net.cursor[2] = 0
    assert np.all(np.isfinite(w)) and np.all(w > 0.5)  # pre + post calcium during the tetanus: LTP
    assert net.v[0] < 0.0


# ------------------------------------------------------------------------------------- tagging
# Synaptic tagging and capture (issue 19): two pathways onto one post neuron, S1 = pre neuron 0,
# S2 = pre neuron 1, test pulses at 0.05 Hz on both throughout, as in
# protocols/receptor_tagging_*.yaml. STET: 3 x 100 pulses at 100 Hz, 10 min apart; WTET: 21
# pulses at 100 Hz (Frey & Morris 1997).
def stet(start):
    return tetanus(start, 100.0, 1000.0, 3, 10 * MIN)


def wtet(start):
    return tetanus(start, 100.0, 210.0, 1)


def run_cell(values, spikes, t_end, blocks=(), record=(), dt=0.5):
    """spikes: {pre neuron: times}; blocks: [(start, stop, names)]. Returns {t: (dw S1, dw S2,
    {state of S1}, {state of S2}, prp)} at the record times."""
    ev = [(int(round(t / dt)), i) for i, ts in spikes.items() for t in ts]
    ev += [(int(round(t / dt)), i) for i in (0, 1) for t in regular(0.0, TEST_HZ, stop=t_end)]
    steps, idx = (np.array(x, np.int64) for x in zip(*sorted(ev)))
    net = make_net(2, 1, dt, pre=(steps, idx))
    pr, st, w = build(values, n_pre=2, dt=dt)
    cuts = sorted({int(round(x / dt)) for a, b, _ in blocks for x in (a, b)} | {int(round(r / dt)) for r in record})
    out, s = {}, 0
    for c in cuts:
        blk = next((bl for a, b, bl in blocks if a <= s * dt < b), ())
        while s < c:
            s = R.advance(w, net, st, pr, s, c, block_mask(R.SPEC, blk))
        for r in record:
            if int(round(r / dt)) == c:
                sv = [{k: float(R.probe(st, pr, k, c)[i, 0]) for k in STATE} for i in (0, 1)]
                out[r] = (100.0 * (w[0, 0] / 0.5 - 1.0), 100.0 * (w[1, 0] / 0.5 - 1.0), sv[0], sv[1], float(st.prp[0]))
    return out


T_STET = BASE + 20 * MIN + 1000.0  # end of the STET given at BASE
T_WTET = T_STET + 35 * MIN  # WTET 35 min after the STET
ANISO = (BASE - 10 * MIN, T_WTET + 2 * HOUR, ("synthesis",))  # around STET and WTET


@functools.lru_cache(maxsize=None)
def tagging(values=()):
    """The tagging experiments: {name: {time after induction: (dw S1, dw S2, st1, st2, prp)}}."""
    v = dict(values)
    r = {}
    r["wtet"] = run_cell(v, {1: wtet(BASE)}, BASE + 6 * HOUR, record=(BASE + 30 * MIN, BASE + 6 * HOUR))
    r["stet"] = run_cell(v, {0: stet(BASE)}, T_STET + 6 * HOUR, record=(T_STET + 30 * MIN, T_STET + 6 * HOUR))
    r["stet_wtet"] = run_cell(v, {0: stet(BASE), 1: wtet(T_WTET)}, T_WTET + 6 * HOUR, record=(T_WTET + 6 * HOUR,))
    s = BASE + 30 * MIN  # STET 30 min after the WTET at BASE
    r["wtet_stet"] = run_cell(v, {1: wtet(BASE), 0: stet(s)}, BASE + 6 * HOUR, record=(BASE + 6 * HOUR,))
    r["aniso"] = run_cell(v, {0: stet(BASE), 1: wtet(T_WTET)}, T_WTET + 6 * HOUR, blocks=(ANISO,), record=(T_WTET + 6 * HOUR,))
    return r


def tagging_bands(values=()):
    """The bands of issue 19 (w of each pathway 6 h after induction unless said)."""
    r = tagging(values)
    inf = math.inf
    w30, w6 = r["wtet"][BASE + 30 * MIN], r["wtet"][BASE + 6 * HOUR]
    s6 = r["stet"][T_STET + 6 * HOUR]
    sw = r["stet_wtet"][T_WTET + 6 * HOUR]
    ws = r["wtet_stet"][BASE + 6 * HOUR]
    an = r["aniso"][T_WTET + 6 * HOUR]
    return {
        "WTET alone: S2 at 30 min in [10, 80]": (w30[1], 10, 80),
        "WTET alone: S2 at 6 h in [-10, 10]": (w6[1], -10, 10),
        "STET on S1: S1 >= 40": (s6[0], 40, inf),
        "STET on S1: S2 in [-10, 10]": (s6[1], -10, 10),
        "STET then WTET 35 min later: S1 >= 40": (sw[0], 40, inf),
        "STET then WTET 35 min later: S2 >= 20": (sw[1], 20, inf),
        "WTET then STET 30 min later: S2 >= 20": (ws[1], 20, inf),
        "anisomycin around STET and WTET: S1 in [-10, 10]": (an[0], -10, 10),
        "anisomycin around STET and WTET: S2 in [-10, 10]": (an[1], -10, 10),
    }


def tagging_failures(values=()):
    return [f"{k}: {x:.3g}" for k, (x, lo, hi) in tagging_bands(values).items() if not lo <= x <= hi]


def test_tagging_bands():
    assert tagging_failures() == []


def test_tag_is_local_and_products_are_cell_wide():
    r = tagging()
    dw1, dw2, st1, st2, prp = r["wtet"][BASE + 30 * MIN]
    assert st2["tag"] > 0.5 and st1["tag"] < 1e-9  # the WTET tags S2 only; test pulses tag nothing
    assert abs(dw1) < 1 and prp < 0.1  # a weak tetanus makes (almost) no products
    dw1, dw2, st1, st2, prp = r["stet"][T_STET + 30 * MIN]
    assert st1["tag"] > 0.5 and st2["tag"] < 1e-9 and prp > 0.3  # the STET makes products for the cell
    assert abs(dw2) < 1  # ... which the untagged S2 does not capture (input specificity)
    _, _, st1, st2, prp = r["stet"][T_STET + 6 * HOUR]
    assert st1["tag"] < 0.05 and prp < 0.3  # both decay within hours


def test_anisomycin_stops_the_products_of_the_cell():
    out = run_cell({}, {0: stet(BASE)}, T_STET + HOUR, blocks=((0.0, T_STET + HOUR, ("synthesis",)),),
                   record=(T_STET, T_STET + HOUR))
    assert all(o[4] == 0.0 for o in out.values())
    assert out[T_STET + HOUR][2]["mtor"] > 0.3  # mTOR is active: only the synthesis is blocked


NEW_OR_RECALIBRATED = ("k_tag", "pi3k_tag", "n_tag", "tau_tag", "tau_prp", "k_akt", "pi3k_akt", "n_akt", "n_mtor", "slot_growth")


@pytest.mark.parametrize("name", [p.name for p in R.SPEC.params if p.name not in ("substep", "prp_step", "c_post")])
def test_tagging_bands_survive_a_20_percent_change(name):
    """Every parameter (the new ones of tagging and capture and those recalibrated for it,
    NEW_OR_RECALIBRATED, among them); each run is five two-pathway experiments of about 7 h."""
    d = R.SPEC.param(name).default
    assert tagging_failures(((name, d * 0.8),)) == [] and tagging_failures(((name, d * 1.2),)) == []


def test_cell_matches_the_slow_reference_twin():
    """Two synapses onto one post neuron: S1 gets a tetanus, S2 a weak train later; the kernel
    against the plain Euler twin (products shared through prp, captured by the tags)."""
    dt = 0.5
    # the products change within seconds here: a grid of 20 ms (prp_step, substep) keeps their lag small
    # (at 1 s the predictor is off by ~1 % with these fast rates; at hour scales it is not)
    # (n_akt 4: the kernel drives Akt by the piece mean of PI3K, which a Hill exponent of 8 on
    # a PI3K that jumps within one piece resolves only to ~1 %)
    fast = dict(FAST, k_akt=0.5, n_akt=4.0, tau_pi3k=60e3, substep=20.0, prp_step=20.0)
    pre = [tetanus(1000.0, trains=1), regular(0.0, TEST_HZ, stop=60e3) + tetanus(20000.0, dur=210.0, trains=1)]
    t_end = 60e3
    samples = (5e3, 15e3, 25e3, 40e3)
    ref = REF.simulate_cell(fast, pre, (), t_end, dt, (), samples)
    ev = sorted((int(round(t / dt)), i) for i, tr in enumerate(pre) for t in tr)
    steps, idx = (np.array(x, np.int64) for x in zip(*ev))
    net = make_net(2, 1, dt, pre=(steps, idx))
    pr, st, w = build(fast, n_pre=2, dt=dt)
    s = 0
    for t in samples:
        c = int(round(t / dt))
        while s < c:
            s = R.advance(w, net, st, pr, s, c, block_mask(R.SPEC, ()))
        xs, prp = ref[t]
        for i in (0, 1):
            for name in STATE:
                scale = max(max(abs(ref[x][0][i][name]) for x in samples), 1e-12)
                assert float(R.probe(st, pr, name, c)[i, 0]) == pytest.approx(xs[i][name], abs=5e-3 * scale, rel=5e-3), (t, i, name)
        assert float(st.prp[0]) == pytest.approx(prp, rel=5e-3, abs=5e-3 * max(ref[x][1] for x in samples)), t
    xs, _ = ref[samples[-1]]
    assert xs[1]["tag"] > 0.05 and xs[1]["slots"] > REF.rest(REF.params(fast))["slots"] * 1.001  # S2 captured


def test_tagging_does_not_depend_on_the_product_grid():
    """prp_step (the grid of the cell-wide products) 60 s against 1 s and 5 min: < 0.1 points."""
    base = tagging_bands()
    for step in (1000.0, 300e3):
        other = tagging_bands((("prp_step", step),))
        for k, (x, _, _) in base.items():
            assert other[k][0] == pytest.approx(x, abs=0.1), (step, k)


def test_capture_window_closes_as_the_products_decay():
    """WTET on S2 at increasing delays after the STET (receptor_tagging_window.yaml): S2's late
    LTP falls as the cell's products decay (35 min +59 %, 2 h +41 %, 4 h +15 % at 6 h)."""
    late = {}
    for delay in (35 * MIN, 2 * HOUR, 4 * HOUR):
        t_w = T_STET + delay
        late[delay] = run_cell({}, {0: stet(BASE), 1: wtet(t_w)}, t_w + 6 * HOUR, record=(t_w + 6 * HOUR,))[t_w + 6 * HOUR][1]
    assert late[35 * MIN] > late[2 * HOUR] > late[4 * HOUR] > tagging()["wtet"][BASE + 6 * HOUR][1]
    assert late[4 * HOUR] < 0.5 * late[35 * MIN]
