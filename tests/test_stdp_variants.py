"""STDP variants of issue 20: synaptic delays, nearest-neighbour schemes, power-law and Gutig
weight dependences, same-step conventions.

Against NEST 3.10.0: tests/data/nest_variants.json holds NEST's final weights on random imposed
trains (written by bench/nest_variants.py with the peers' environment; NEST is not a
dependency). Against the slow twin tests/reference_stdp.py on random trains with hypothesis.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from plastictool.api import run_experiment, validate_file
from plastictool.core.net import LIF, make_net
from plastictool.errors import ProtocolError
from plastictool.rules import stdp
from plastictool.rules.base import BuildContext

from reference_stdp import stdp_reference

DATA = json.loads((Path(__file__).parent / "data" / "nest_variants.json").read_text())
CASES = {c["name"]: c for c in DATA["cases"]}
BRIAN2 = json.loads((Path(__file__).parent / "data" / "brian2_variants.json").read_text())


def protocol_of(case, tmp_path, dt=DATA["dt"], **rule_over):
    """A plastic protocol of one NEST case: the same trains (emission times), bounds, delays."""
    n_pre, n_post = len(case["pre_ms"]), len(case["post_ms"])
    end = max(max(p) for p in case["pre_ms"] + case["post_ms"]) + case["synapses"]["delay"]["dendritic"] + 10.0
    doc = {
        "name": "nest_case",
        "dt": dt,
        "duration": round(end, 1),
        "synapses": {"n_pre": n_pre, "n_post": n_post, "w_init": case["w0"], **case["synapses"]},
        "neuron": {"model": "clamped"},
        "stimulus": {"pre": {"times": {i: p for i, p in enumerate(case["pre_ms"])}},
                     "post": {"times": {j: p for j, p in enumerate(case["post_ms"])}}},
        "rule": {**case["rule"], **rule_over},
        "record": {"interval": "100 ms"},
    }
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(doc))
    return validate_file(path)


@pytest.mark.parametrize("name", [n for n in CASES if n != "issue20_minimal_same_step"])
def test_final_weights_equal_nest(name, tmp_path):
    """Random imposed trains (3 x 3 synapses, 20 Hz, 1 s, some pre and post spikes reaching the
    synapse in the same step), NEST's dendritic delay as plastic's, same_step nest: equal to 1e-9."""
    case = CASES[name]
    [r] = run_experiment(protocol_of(case, tmp_path))
    want = np.array(case["w_nest"])
    assert not np.allclose(want, case["w0"], atol=1e-3)  # the weights did change
    np.testing.assert_allclose(r.w_final, want, rtol=0, atol=1e-9)


@pytest.mark.parametrize("case", BRIAN2["cases"], ids=[c["name"] for c in BRIAN2["cases"]])
def test_final_weights_equal_brian2(case, tmp_path):
    """Brian2 2.9.0's STDP example synapse (all-to-all and nearest) with pre and post pathway
    delays, pre and post spikes reaching the synapse in the same step: plastic with
    synapses.delay {axonal: pre delay, dendritic: post delay} and same_step pair, to 1e-9; with
    same_step exclude the same-step pairs are missing."""
    [r] = run_experiment(protocol_of(case, tmp_path, dt=BRIAN2["dt"]))
    want = np.array(case["w_brian2"])
    assert not np.allclose(want, case["w0"], atol=1e-3)
    np.testing.assert_allclose(r.w_final, want, rtol=0, atol=1e-9)
    [x] = run_experiment(protocol_of(case, tmp_path, dt=BRIAN2["dt"], same_step="exclude"))
    assert np.abs(x.w_final - want).max() > 1e-3


def test_the_issues_minimal_case_same_step():
    """Pre at 10, 14, 100 ms, post reaching the synapse at 12, 14 ms, multiplicative, lambda 0.5:
    same_step nest gives NEST's weight; exclude (plastic's default: depress, then potentiate) and
    pair (Brian2: the 14 ms spikes pair with delta_t = 0) give others, as the reference twin."""
    case = CASES["issue20_minimal_same_step"]
    dt = DATA["dt"]
    pre = [(int(round(t / dt)), 0) for t in case["pre_ms"][0]]
    post = [(int(round(t / dt)), 0) for t in case["post_ms"][0]]
    kw = dict(a_plus=0.5, a_minus=0.5, tau_plus=20.0, tau_minus=20.0, weight_dependence="multiplicative")
    got = {m: kernel_run([[0.5]], pre, post, dt, 2000, same_step=m, dendritic=1, **kw)[0][0, 0] for m in ("exclude", "nest", "pair")}
    assert got["nest"] == pytest.approx(case["w_nest"][0][0], abs=1e-12)
    ref = {m: stdp_reference([[0.5]], pre, post, dt, 0.5, 0.5, 20.0, 20.0, wdep="multiplicative", same_step=m, dendritic=1)[0][0]
           for m in got}
    for m in got:
        assert got[m] == pytest.approx(ref[m], abs=1e-12), m
    assert abs(got["exclude"] - got["nest"]) > 1e-3 and abs(got["pair"] - got["nest"]) > 1e-3


def inh_arg(inhibitory, n_pre, n_post, tau_syn_inh=10.0, e_syn_inh=-80.0):
    """The kernels' ``inh`` argument (core.inhibit), None without inhibitory inputs."""
    from plastictool.core import inhibit

    return None if inhibitory is None else inhibit.build(list(inhibitory), n_pre, n_post, tau_syn_inh, e_syn_inh)


def kernel_run(w0, pre, post, dt, n_steps, model=0, w_min=0.0, w_max=1.0, axonal=0, dendritic=0, inhibitory=None, **values):
    """The stdp kernel on imposed trains (steps), delays in steps, as the engine sets them up."""
    from plastictool.core import delay

    w0 = np.array(w0, dtype=float)
    n_pre, n_post = w0.shape
    vals = {p.name: p.default for p in stdp.SPEC.params}
    vals.update(values)
    ev_pre = (np.array([s for s, _ in pre], dtype=np.int64), np.array([i for _, i in pre], dtype=np.int64))
    ev_post = (np.array([s for s, _ in post], dtype=np.int64), np.array([j for _, j in post], dtype=np.int64))
    net = make_net(n_pre, n_post, dt, model, delay.shift(ev_pre, axonal), delay.shift(ev_post, dendritic if model != LIF else 0),
                   dendritic=dendritic)
    w = w0.copy()
    pr, stt = stdp.build(vals, BuildContext(n_pre, n_post, dt, w, w_min, w_max, np.random.default_rng(0)))
    stdp.advance(w, net, stt, pr, 0, n_steps, np.zeros(1, np.uint8), None, inh=inh_arg(inhibitory, n_pre, n_post))
    return w, net


events = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 2)), max_size=30)
SCHEMES = ("all_to_all", "nearest", "presynaptic_centered", "restricted")


@settings(max_examples=80, deadline=None)
@given(pre=events, post=events, pairing=st.sampled_from(SCHEMES), same=st.sampled_from(("exclude", "nest", "pair")),
       wdep=st.sampled_from(["additive", "multiplicative", "gutig", "power_law"]), axonal=st.integers(0, 3),
       dendritic=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_kernel_equals_reference_for_every_scheme(pre, post, pairing, same, wdep, axonal, dendritic, seed):
    rng = np.random.default_rng(seed)
    w0 = rng.uniform(0.2, 0.8, size=(3, 3))
    w_max = math.inf if wdep == "power_law" else 1.0
    kw = dict(a_plus=0.05, a_minus=0.06, tau_plus=2.0, tau_minus=3.5, mu_plus=1.4 if wdep == "gutig" else 0.3, mu_minus=0.7)
    got, _ = kernel_run(w0, pre, post, 0.1, 320, w_max=w_max, axonal=axonal, dendritic=dendritic, pairing=pairing,
                        same_step=same, weight_dependence=wdep, **kw)
    want = stdp_reference(w0.tolist(), pre, post, 0.1, w_max=w_max, pairing=pairing, same_step=same, wdep=wdep,
                          axonal=axonal, dendritic=dendritic, **kw)
    np.testing.assert_allclose(got, np.array(want), rtol=0, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(pre=events, post=events, pairing=st.sampled_from(SCHEMES), axonal=st.integers(0, 5), dendritic=st.integers(0, 5),
       seed=st.integers(0, 2**16))
def test_a_delay_equals_shifting_the_trains(pre, post, pairing, axonal, dendritic, seed):
    """Delays D1, D2 give the weights of the same trains shifted by D1 (pre) and D2 (post)."""
    w0 = np.random.default_rng(seed).uniform(0.2, 0.8, size=(3, 3))
    kw = dict(a_plus=0.05, a_minus=0.06, tau_plus=2.0, tau_minus=3.5, pairing=pairing, weight_dependence="multiplicative")
    a, _ = kernel_run(w0, pre, post, 0.1, 320, axonal=axonal, dendritic=dendritic, **kw)
    b, _ = kernel_run(w0, [(s + axonal, i) for s, i in pre], [(s + dendritic, j) for s, j in post], 0.1, 320, **kw)
    assert np.array_equal(a, b)


def alternating(draw_gaps):
    """One pre and one post neuron spiking in turns, never in the same step."""
    pre, post, t = [], [], 0
    for k, gap in enumerate(draw_gaps):
        t += gap
        (pre if k % 2 == 0 else post).append((t, 0))
    return pre, post


@settings(max_examples=40, deadline=None)
@given(gaps=st.lists(st.integers(1, 40), min_size=1, max_size=30), post_first=st.booleans(),
       wdep=st.sampled_from(["additive", "multiplicative", "gutig"]))
def test_the_three_nearest_schemes_coincide_when_spikes_alternate(gaps, post_first, wdep):
    """Strictly alternating pre and post spikes: every spike's nearest neighbours are adjacent,
    so nearest, presynaptic_centered and restricted pair the same spikes (Morrison et al. 2008)."""
    pre, post = alternating(gaps)
    if post_first:
        pre, post = post, pre
    kw = dict(a_plus=0.05, a_minus=0.06, tau_plus=20.0, tau_minus=35.0, weight_dependence=wdep, mu_plus=0.4, mu_minus=0.4)
    ws = [kernel_run([[0.5]], pre, post, 0.1, 1300, pairing=p, **kw)[0] for p in ("nearest", "presynaptic_centered", "restricted")]
    np.testing.assert_allclose(ws[1], ws[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(ws[2], ws[0], rtol=0, atol=1e-14)


@settings(max_examples=40, deadline=None)
@given(pre=events, post=events, pairing=st.sampled_from(SCHEMES), wdep=st.sampled_from(["additive", "multiplicative"]))
def test_same_step_matters_only_when_spikes_share_a_step(pre, post, pairing, wdep):
    """Without a pre and a post spike in one step the three conventions give the same bits."""
    pre_steps = {s for s, _ in pre}
    post = [(s, j) for s, j in post if s not in pre_steps]
    kw = dict(a_plus=0.05, a_minus=0.06, tau_plus=2.0, tau_minus=3.5, pairing=pairing, weight_dependence=wdep)
    w0 = [[0.5, 0.4, 0.6]] * 3
    ws = [kernel_run(w0, pre, post, 0.1, 320, same_step=m, **kw)[0] for m in ("exclude", "nest", "pair")]
    assert np.array_equal(ws[0], ws[1]) and np.array_equal(ws[0], ws[2])


def test_same_step_pair_pairs_with_delta_t_zero():
    """Brian2's convention: a pre and a post spike in one step pair as pre-before-post, dw = a_plus."""
    w, _ = kernel_run([[0.5]], [(100, 0)], [(100, 0)], 0.1, 1000, same_step="pair")
    assert w[0, 0] == pytest.approx(0.5 + 0.01, abs=1e-15)
    w, _ = kernel_run([[0.5]], [(100, 0)], [(100, 0)], 0.1, 1000, same_step="nest")
    assert w[0, 0] == 0.5


def test_power_law_closed_form():
    """20 pre-post pairings (nearest: each pairs once), no depression: w_{k+1} = w_k + lambda w_k^mu e^(-d/tau)."""
    d, tau, lam, mu, w = 5.0, 20.0, 0.1, 0.4, 1.3
    pre = [(k * 5000, 0) for k in range(20)]
    post = [(k * 5000 + 50, 0) for k in range(20)]
    got, _ = kernel_run([[w]], pre, post, 0.1, 100001, w_max=math.inf, a_plus=lam, a_minus=0.0, tau_plus=tau,
                        weight_dependence="power_law", mu_plus=mu, pairing="nearest")
    for _ in range(20):
        w += lam * w**mu * math.exp(-d / tau)
    assert got[0, 0] == pytest.approx(w, rel=1e-12)


def test_lif_dendritic_delay_delivers_the_emitted_spikes_later():
    """LIF: the post spikes are the same (plasticity off), and with plasticity on, a dendritic
    delay of D2 steps equals imposing the LIF's own post spikes D2 steps later on a clamped run."""
    dt, n_steps = 0.1, 20000
    rng = np.random.default_rng(3)
    pre = sorted((int(s), int(i)) for s, i in zip(rng.integers(0, n_steps, 600), rng.integers(0, 20, 600)))
    w0 = rng.uniform(0.0, 0.5, size=(20, 2))
    kw = dict(a_plus=0.0, a_minus=0.0)
    _, net0 = kernel_run(w0, pre, [], dt, n_steps, model=LIF, **kw)
    spikes0 = net0.out_step[: net0.cursor[2]].tolist()
    # plasticity on, a tiny rate so that the post spikes do not change: the LIF spikes are fixed
    kw = dict(a_plus=1e-9, a_minus=1e-9, pairing="restricted")
    w_lif, net = kernel_run(w0, pre, [], dt, n_steps, model=LIF, dendritic=37, **kw)
    assert net.out_step[: net.cursor[2]].tolist() == spikes0 and len(spikes0) > 10
    post = list(zip(net.out_step[: net.cursor[2]].tolist(), net.out_idx[: net.cursor[2]].tolist()))
    w_clamped, _ = kernel_run(w0, pre, post, dt, n_steps, dendritic=37, **kw)
    assert np.array_equal(w_lif, w_clamped)
    assert not np.array_equal(w_lif, kernel_run(w0, pre, post, dt, n_steps, **kw)[0])


BASE = """
    dt: 0.1 ms
    duration: 1 s
    synapses: {{n_pre: 2, n_post: 1, w_min: 0, w_max: {w_max}, delay: {delay}}}
    stimulus: {{pre: {{poisson: {{rate: 10 Hz}}}}, post: {{poisson: {{rate: 10 Hz}}}}}}
    rule: {{kind: {kind}, {rule}}}
"""


@pytest.mark.parametrize("delay, w_max, kind, rule, field, words", [
    ("{dendritic: 0.25 ms}", 1, "stdp", "a_plus: 0.01", "synapses.delay.dendritic", "not a multiple of dt"),
    ("{axonal: -1 ms}", 1, "stdp", "a_plus: 0.01", "synapses.delay.axonal", ">= 0"),
    ("{axonal: 1 ms, somatic: 1 ms}", 1, "stdp", "a_plus: 0.01", "synapses.delay.somatic", "unknown key"),
    ("{dendritic: 1 ms}", 1, "calcium", "preset: graupner2012_dp", "synapses.delay.dendritic", "spike-timing rules"),
    ("{}", 1, "stdp", "weight_dependence: power_law", "synapses.w_max", "w_max: null"),
    ("{}", 1, "triplet", "pairing: restricted", "rule.pairing", "not one of"),
])
def test_bad_variants_are_refused_with_the_field(write, delay, w_max, kind, rule, field, words):
    p = write("bad.yaml", BASE.format(delay=delay, w_max=w_max, kind=kind, rule=rule))
    with pytest.raises(ProtocolError) as e:
        validate_file(p)
    assert e.value.field == field and words in str(e.value), str(e.value)


def test_delays_run_through_the_protocol_and_keep_the_emitted_spike_times(write):
    """Through the whole pipeline: a protocol with delays gives the weights of its own trains
    shifted by hand, and spikes.csv keeps the emission times."""
    text = BASE.format(delay="{axonal: 1.5 ms, dendritic: 3 ms}", w_max=1, kind="stdp", rule="pairing: nearest, a_plus: 0.05")
    text = text.replace("rate: 10 Hz}", "rate: 40 Hz, stop: 900 ms}")
    [a] = run_experiment(validate_file(write("a.yaml", text)))
    assert a.protocol.synapses.delay_axonal == 1.5 and a.protocol.synapses.delay_dendritic == 3.0
    t, pop, idx = a.spikes

    def times(p, k, shift):
        return [round(float(x) + shift, 1) for x, q, i in zip(t, pop, idx) if q == p and i == k]

    assert times(0, 0, 0) and times(1, 0, 0)
    by_hand = text.replace("delay: {axonal: 1.5 ms, dendritic: 3 ms}", "delay: {}").replace(
        "stimulus: {pre: {poisson: {rate: 40 Hz, stop: 900 ms}}, post: {poisson: {rate: 40 Hz, stop: 900 ms}}}",
        "stimulus: {pre: {times: {0: %s, 1: %s}}, post: {times: {0: %s}}}" % (times(0, 0, 1.5), times(0, 1, 1.5), times(1, 0, 3.0)))
    assert "times" in by_hand and "delay: {}" in by_hand
    [b] = run_experiment(validate_file(write("b.yaml", by_hand)))
    assert np.array_equal(a.w_final, b.w_final)
    assert not np.array_equal(a.w_final, b.w_initial)


# ---------------------------------------------------------------- triplet: same_step and delays

def triplet_run(pre, post, n_pre, n_post, dt, n_steps, vals, w0, w_min=-math.inf, w_max=math.inf, model=0,
                axonal=0, dendritic=0, inhibitory=None):
    from plastictool.core import delay
    from plastictool.rules import triplet

    ev_pre = (np.array([s for s, _ in pre], dtype=np.int64), np.array([i for _, i in pre], dtype=np.int64))
    ev_post = (np.array([s for s, _ in post], dtype=np.int64), np.array([j for _, j in post], dtype=np.int64))
    net = make_net(n_pre, n_post, dt, model, delay.shift(ev_pre, axonal), delay.shift(ev_post, dendritic if model != LIF else 0),
                   dendritic=dendritic)
    w = np.array(w0, dtype=float)
    pr, stt = triplet.build(vals, BuildContext(n_pre, n_post, dt, w, w_min, w_max, np.random.default_rng(0)))
    triplet.advance(w, net, stt, pr, 0, n_steps, np.zeros(1, np.uint8), None, inh=inh_arg(inhibitory, n_pre, n_post))
    return w, net


@settings(max_examples=40, deadline=None)
@given(pre=events, post=events, same=st.sampled_from(("exclude", "nest", "pair")), nearest=st.booleans(),
       axonal=st.integers(0, 3), dendritic=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_triplet_same_step_and_delays_equal_the_reference(pre, post, same, nearest, axonal, dendritic, seed):
    import reference_triplet as ref
    from plastictool.rules import triplet

    vals = {p.name: p.default for p in triplet.SPEC.params}
    vals.update(a2_plus=0.05, a3_plus=0.04, a2_minus=0.06, a3_minus=0.03, tau_plus=2.0, tau_minus=3.5, tau_x=7.0, tau_y=9.0,
                pairing="nearest" if nearest else "all_to_all", same_step=same)
    w0 = np.random.default_rng(seed).uniform(0.2, 0.8, size=(3, 3))
    got, _ = triplet_run(pre, post, 3, 3, 0.1, 320, vals, w0, 0.0, 1.0, axonal=axonal, dendritic=dendritic)
    want = ref.simulate([(s + axonal, i) for s, i in pre], [(s + dendritic, j) for s, j in post], 3, 3, vals, w0.tolist(),
                        0.0, 1.0, dt=0.1, same_step=same)
    np.testing.assert_allclose(got, np.array(want), rtol=0, atol=1e-12)


def test_triplet_lif_dendritic_delay_equals_clamped_replay():
    """A LIF run with a dendritic delay equals a clamped run of its own post spikes, delayed."""
    from plastictool.rules import triplet

    dt, n_steps = 0.1, 20000
    rng = np.random.default_rng(5)
    pre = sorted((int(s), int(i)) for s, i in zip(rng.integers(0, n_steps, 600), rng.integers(0, 20, 600)))
    w0 = rng.uniform(0.0, 0.5, size=(20, 2))
    vals = {p.name: p.default for p in triplet.SPEC.params}
    vals.update(a2_plus=1e-9, a3_plus=1e-9, a2_minus=1e-9, a3_minus=1e-9, same_step="nest")
    w_lif, net = triplet_run(pre, [], 20, 2, dt, n_steps, vals, w0, model=LIF, dendritic=23)
    post = list(zip(net.out_step[: net.cursor[2]].tolist(), net.out_idx[: net.cursor[2]].tolist()))
    assert len(post) > 10
    w_cl, _ = triplet_run(pre, post, 20, 2, dt, n_steps, vals, w0, dendritic=23)
    assert np.array_equal(w_lif, w_cl)


# ---------------------------------------------------------------- threads, sweeps, memory, docs

@pytest.mark.parametrize("pairing, same_step", [("presynaptic_centered", "exclude"), ("restricted", "nest"), ("restricted", "pair")])
def test_blocks_identical_to_one_thread_with_delays_and_schemes(write, pairing, same_step):
    """Threads over blocks of post neurons: the per-block dendritic ring, the shared per-synapse
    kp (presynaptic_centered) and t_seen (restricted) give the bits of one thread."""
    from test_threads import LIF as LIF_TEXT, assert_threads_identical, protocol

    text = LIF_TEXT.format(name="lif", pairing=pairing, wdep="multiplicative", dtype="float64", interval="10 ms")
    text = text.replace("w_max: 0.02, dtype", "w_max: 0.02, delay: {axonal: 0.5 ms, dendritic: 1.2 ms}, dtype")
    text = text.replace("pairing: %s," % pairing, "pairing: %s, same_step: %s," % (pairing, same_step))
    p = protocol(write, "lif", text)
    assert p.synapses.delay_dendritic == 1.2 and p.rule.values["same_step"] == same_step
    assert_threads_identical(p, min_post_spikes=500)


def test_delays_can_be_swept(write):
    text = BASE.format(delay="{dendritic: 1 ms}", w_max=1, kind="stdp", rule="a_plus: 0.05") + \
        "    sweep: {synapses.delay.dendritic: [0 ms, 2 ms, 5 ms]}\n"
    exp = validate_file(write("sweep.yaml", text))
    assert [c.protocol.synapses.delay_dendritic for c in exp.conditions] == [0.0, 2.0, 5.0]
    results = run_experiment(exp)
    assert len({r.w_final.tobytes() for r in results}) == 3


def test_plastic_rules_stdp_prints_the_conversion_table():
    from plastictool.protocol.docs import rules_text

    text = rules_text("stdp")
    for word in ("stdp_nn_pre_centered_synapse", "stdp_nn_restr_synapse", "stdp_pl_synapse_hom", "stdp_triplet_synapse",
                 "lambda Wmax^(1 - mu", "S.pre.delay", "presynaptic_centered", "power_law", "same_step"):
        assert word in text, word


@pytest.mark.parametrize("same", ["exclude", "nest", "pair"])
@pytest.mark.parametrize("pairing", ["all_to_all", "nearest"])
def test_a_full_queue_keeps_every_same_step_convention(monkeypatch, same, pairing):
    """A queue of 3 steps, flushed into every row whenever it is full: still the reference's
    weights (the flush happens before or after this step's pre traces, by same_step)."""
    monkeypatch.setattr(stdp, "QUEUE", 3)
    rng = np.random.default_rng(7)
    pre = sorted((int(s), int(i)) for s, i in zip(rng.integers(0, 300, 60), rng.integers(0, 3, 60)))
    post = sorted((int(s), int(j)) for s, j in zip(rng.integers(0, 300, 60), rng.integers(0, 3, 60)))
    post += [(s, 0) for s, _ in pre[:10]]  # same-step spikes
    w0 = rng.uniform(0.2, 0.8, size=(3, 3))
    kw = dict(a_plus=0.05, a_minus=0.06, tau_plus=2.0, tau_minus=3.5)
    got, _ = kernel_run(w0, pre, post, 0.1, 320, pairing=pairing, same_step=same, weight_dependence="multiplicative", **kw)
    want = stdp_reference(w0.tolist(), pre, post, 0.1, pairing=pairing, same_step=same, wdep="multiplicative", **kw)
    np.testing.assert_allclose(got, np.array(want), rtol=0, atol=1e-12)


# ---------------------------------------------------------------- inhibitory inputs (LIF)

def lif_inputs(seed, n_pre=30, n_steps=20000, n_spikes=1500):
    rng = np.random.default_rng(seed)
    pre = sorted((int(s), int(i)) for s, i in zip(rng.integers(0, n_steps, n_spikes), rng.integers(0, n_pre, n_spikes)))
    return rng, pre


@pytest.mark.parametrize("kind", ["stdp", "triplet"])
@pytest.mark.parametrize("seed", [1, 2])
def test_lif_with_inhibitory_inputs_matches_its_reference_twin(kind, seed):
    """Plasticity off: the kernel's LIF spike steps with excitatory and inhibitory inputs equal
    the one-neuron twin's (two conductances, e_syn_inh -80 mV, tau_syn_inh 10 ms)."""
    from reference_stdp import lif_reference

    dt, n_steps = 0.1, 20000
    rng, pre = lif_inputs(seed)
    w0 = rng.uniform(0.0, 0.6, size=(30, 2))
    inh = list(range(20, 30))
    if kind == "stdp":
        _, net = kernel_run(w0, pre, [], dt, n_steps, model=LIF, inhibitory=inh, a_plus=0.0, a_minus=0.0)
    else:
        from plastictool.rules import triplet

        vals = {p.name: p.default for p in triplet.SPEC.params}
        vals.update(a2_plus=0.0, a3_plus=0.0, a2_minus=0.0, a3_minus=0.0)
        _, net = triplet_run(pre, [], 30, 2, dt, n_steps, vals, w0, model=LIF, inhibitory=inh)
    out = list(zip(net.out_step[: net.cursor[2]].tolist(), net.out_idx[: net.cursor[2]].tolist()))
    for j in range(2):
        ge, gi = {}, {}
        for s, i in pre:
            d = gi if i in inh else ge
            d[s] = d.get(s, 0.0) + w0[i, j]
        want = lif_reference(-74.0, ge, n_steps, dt, gi_events=gi)
        got = [s for s, k in out if k == j]
        assert len(want) > 10 and got == want
        without = lif_reference(-74.0, {s: x for s, x in ge.items()}, n_steps, dt)
        assert len(without) > len(want)  # inhibition lowers the rate


def test_inhibitory_synapses_learn_by_the_same_rule():
    """Plasticity on (tiny, so that the post spikes are fixed): the weights of a LIF run with
    inhibitory inputs equal those of a clamped run of its own post spikes: the rule treats the
    inhibitory synapses (weights as magnitudes) exactly like the excitatory ones."""
    dt, n_steps = 0.1, 20000
    rng, pre = lif_inputs(3)
    w0 = rng.uniform(0.0, 0.6, size=(30, 2))
    kw = dict(a_plus=1e-9, a_minus=1.1e-9, weight_dependence="multiplicative")
    w_lif, net = kernel_run(w0, pre, [], dt, n_steps, model=LIF, inhibitory=range(20, 30), **kw)
    post = list(zip(net.out_step[: net.cursor[2]].tolist(), net.out_idx[: net.cursor[2]].tolist()))
    assert len(post) > 10
    w_cl, _ = kernel_run(w0, pre, post, dt, n_steps, **kw)
    assert np.array_equal(w_lif, w_cl)
    assert not np.array_equal(w_lif[20:], w0[20:])



def test_inhibitory_triplet_synapses_learn_by_the_same_rule():
    """The same for triplet: the inhibitory rows (magnitudes, kept >= 0 by w_min 0) change by the
    rule exactly as in a clamped run of the LIF's own post spikes."""
    from plastictool.rules import triplet

    dt, n_steps = 0.1, 20000
    rng, pre = lif_inputs(4)
    w0 = rng.uniform(0.0, 0.6, size=(30, 2))
    vals = {p.name: p.default for p in triplet.SPEC.params}
    vals.update(a2_plus=1e-9, a3_plus=1e-9, a2_minus=1.2e-9, a3_minus=0.0)
    w_lif, net = triplet_run(pre, [], 30, 2, dt, n_steps, vals, w0, w_min=0.0, w_max=1.0, model=LIF, inhibitory=range(20, 30))
    post = list(zip(net.out_step[: net.cursor[2]].tolist(), net.out_idx[: net.cursor[2]].tolist()))
    assert len(post) > 10
    w_cl, _ = triplet_run(pre, post, 30, 2, dt, n_steps, vals, w0, w_min=0.0, w_max=1.0)
    assert np.array_equal(w_lif, w_cl)
    assert not np.array_equal(w_lif[20:], w0[20:]) and (w_lif >= 0).all()


@pytest.mark.parametrize("kind", ["stdp", "triplet"])
def test_an_inhibitory_spike_opens_g_inh_and_an_excitatory_one_g(kind):
    """One step after simultaneous spikes of an excitatory (0) and an inhibitory (1) neuron: g
    holds row 0 and g_inh row 1 (the weights before the rule acts on them), exactly."""
    from plastictool.core import inhibit
    from plastictool.rules import stdp as rule_stdp, triplet

    mod = rule_stdp if kind == "stdp" else triplet
    w0 = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    net = make_net(2, 3, 0.1, LIF, (np.array([5, 5]), np.array([0, 1])), None)
    inh = inhibit.build([1], 2, 3, 10.0, -80.0)
    w = w0.copy()
    vals = {p.name: p.default for p in mod.SPEC.params}
    pr, stt = mod.build(vals, BuildContext(2, 3, 0.1, w, 0.0, 1.0, np.random.default_rng(0)))
    mod.advance(w, net, stt, pr, 0, 6, np.zeros(1, np.uint8), None, inh=inh)
    assert np.array_equal(net.g, w0[0]) and np.array_equal(inh.g, w0[1])
    v0 = net.v.copy()
    mod.advance(w, net, stt, pr, 6, 7, np.zeros(1, np.uint8), None, inh=inh)
    g, gi = w0[0], w0[1]  # v relaxes towards (v_rest + g e_syn + g_inh e_syn_inh) / (1 + g + g_inh)
    v_inf = (-74.0 + g * 0.0 + gi * -80.0) / (1.0 + g + gi)
    np.testing.assert_allclose(net.v, v_inf + (v0 - v_inf) * np.exp(-0.1 * (1.0 + g + gi) / 10.0), rtol=1e-13, atol=0)
    np.testing.assert_allclose(inh.g, gi * math.exp(-0.1 / 10.0), rtol=1e-15)


def test_resolved_protocol_keeps_its_keys_without_inhibitory_inputs(write):
    """Without synapses.inhibitory the resolved protocol (run.json, its sha256) has no new keys."""
    plain = validate_file(write("plain.yaml", INH.format(inh="[]", kind="stdp", rule="a_plus: 0.001").replace(", inhibitory: []", "").replace(", e_syn_inh: -75 mV, tau_syn_inh: 8 ms", "")))
    assert "tau_syn_inh" not in plain.base.resolved["neuron"] and "inhibitory" not in plain.base.resolved["synapses"]
    inh = validate_file(write("inh.yaml", INH.format(inh="[1, 2]", kind="stdp", rule="a_plus: 0.001")))
    assert inh.base.resolved["neuron"]["e_syn_inh"] == -75.0 and inh.base.resolved["synapses"]["inhibitory"] == [1, 2]


def test_negative_w_min_with_inhibitory_inputs_is_refused(write):
    text = INH.format(inh="[1]", kind="stdp", rule="a_plus: 0.001").replace("w_max: 0.05", "w_min: -0.01, w_max: 0.05")
    with pytest.raises(ProtocolError) as e:
        validate_file(write("bad.yaml", text))
    assert e.value.field == "synapses.w_min" and "magnitude" in str(e.value)

INH = """
    dt: 0.1 ms
    duration: 300 ms
    synapses: {{n_pre: 300, n_post: 203, w_init: {{uniform: [0, 0.05]}}, w_max: 0.05, inhibitory: {inh}}}
    neuron: {{model: lif, e_syn_inh: -75 mV, tau_syn_inh: 8 ms}}
    stimulus: {{pre: {{poisson: {{rate: 30 Hz}}}}}}
    rule: {{kind: {kind}, {rule}}}
    record: {{interval: 10 ms, state: [v, g], spikes: true}}
"""


@pytest.mark.parametrize("kind, rule", [("stdp", "a_plus: 0.001, a_minus: 0.00105"), ("triplet", "a2_plus: 0.001, a2_minus: 0.001")])
def test_inhibitory_protocol_and_threads(write, kind, rule):
    """Through the protocol ({from, to} form), threads over blocks bit-identical to one thread,
    and fewer post spikes than without the inhibitory inputs."""
    from test_threads import assert_threads_identical, protocol

    p = protocol(write, "inh", INH.format(inh="{from: 240, to: 300}", kind=kind, rule=rule))
    assert p.synapses.inhibitory == tuple(range(240, 300))
    assert p.resolved["synapses"]["inhibitory"] == list(range(240, 300))
    assert_threads_identical(p, thread_counts=(2,), min_post_spikes=100)
    from plastictool.simulation import engine

    none = engine.simulate(protocol(write, "exc", INH.format(inh="[]", kind=kind, rule=rule).replace(", inhibitory: []", "")), threads=1)
    assert engine.simulate(p, threads=1).counts["post_spikes"] < none.counts["post_spikes"]


@pytest.mark.parametrize("inh, neuron, kind, field, words", [
    ("[0, 400]", "lif", "stdp", "synapses.inhibitory.1", "index from 0 to 299"),
    ("{from: 10, to: 5}", "lif", "stdp", "synapses.inhibitory", "from < to"),
    ("[1]", "clamped", "stdp", "synapses.inhibitory", "lif neurons"),
    ("[1]", "lif", "calcium", "synapses.inhibitory", "lif neurons"),
])
def test_bad_inhibitory_inputs_are_refused(write, inh, neuron, kind, field, words):
    rule = "preset: graupner2012_dp" if kind == "calcium" else "a_plus: 0.001"
    text = INH.format(inh=inh, kind=kind, rule=rule).replace("neuron: {model: lif, e_syn_inh: -75 mV, tau_syn_inh: 8 ms}", "neuron: {model: %s}" % neuron)
    with pytest.raises(ProtocolError) as e:
        validate_file(write("bad.yaml", text))
    assert e.value.field == field and words in str(e.value), str(e.value)
