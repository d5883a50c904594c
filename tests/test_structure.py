"""Synapse number (synapses.structure, spec section 12): analytic turnover, survival by weight,
composition with every rule, reruns, outputs and bad input."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from plastictool.api import validate_file
from plastictool.core.structure import StructureRun, pick
from plastictool.simulation.engine import simulate
from plastictool.errors import ProtocolError

from reference_structure import structure_step

BASE = """\
name: {name}
seed: {seed}
dt: 1 ms
duration: {duration}
synapses:
  n_pre: {n_pre}
  n_post: {n_post}
  w_init: {w_init}
  structure: {structure}
neuron: {{model: clamped}}
rule: {{kind: stdp, a_plus: 0, a_minus: 0}}
record: {{interval: {interval}}}
"""


def run(write, name="s", seed=1, duration="1 h", n_pre=100, n_post=100, w_init=0.5, structure="{}", interval="1 min", extra=""):
    path = write(f"{name}.yaml", BASE.format(name=name, seed=seed, duration=duration, n_pre=n_pre, n_post=n_post, w_init=w_init, structure=structure, interval=interval) + extra)
    exp = validate_file(path)
    return exp, simulate(exp.base)


def n_series(r):
    k = r.columns.index("n_synapses")
    return r.traces[:, 0], r.traces[:, k]


def test_turnover_relaxes_to_the_analytic_steady_state(write):
    # 1e4 potential synapses, f = 1/h, e = 3/h: p_inf = 0.25, relaxation time 1/(f + e) = 15 min
    f, e, p0 = 1.0, 3.0, 0.9
    exp, r = run(write, structure=f"{{present: {p0}, formation_rate: {f} /h, elimination_rate: {e} /h}}", duration="2 h", interval="30 s")
    t, n = n_series(r)
    N = 10_000
    th = t / 3.6e6
    p_inf = f / (f + e)
    p = p_inf + (p0 - p_inf) * np.exp(-(f + e) * th)  # the two-state Markov chain
    sd = np.sqrt(N * p * (1 - p))
    assert np.all(np.abs(n - N * p) < 5 * sd + 1), np.max(np.abs(n - N * p) / (sd + 1e-9))
    # at steady state (after 5 relaxation times) the count fluctuates around N p_inf
    late = th > 1.25
    assert abs(n[late].mean() - N * p_inf) < 5 * math.sqrt(N * p_inf * (1 - p_inf))
    # the relaxation time from the half-way crossing: (p(t) - p_inf) halves in ln2 / (f + e)
    half = th[np.argmax(n - N * p_inf < 0.5 * N * (p0 - p_inf))]
    assert abs(half - math.log(2) / (f + e)) < 0.05  # h (the interval is 30 s = 0.008 h)


def test_survival_follows_exp_minus_h_t_for_fixed_weights(write):
    # no formation, w fixed (no learning): a synapse of weight w survives with exp(-e exp(-w/w_ref) t)
    e, w_ref = 2.0, 0.2
    rows = 100
    w = [[round(0.05 * (j % 20), 2) for j in range(100)] for _ in range(rows)]  # 20 weight groups of 500
    exp, r = run(write, structure=f"{{present: 1, elimination_rate: {e} /h, w_ref: {w_ref}}}", w_init=w, duration="30 min", extra="")
    st = r.structure
    t_h = 0.5
    p1 = st.present_final.reshape(rows, 100)
    for g in range(20):
        wg = 0.05 * g
        s = math.exp(-e * math.exp(-wg / w_ref) * t_h)
        got = p1[:, np.arange(100) % 20 == g].mean()
        n = 500
        assert abs(got - s) < 5 * math.sqrt(s * (1 - s) / n) + 1e-9, (wg, got, s)


def test_events_add_up_to_the_change_in_number(write):
    exp, r = run(write, structure="{present: 0.3, formation_rate: 2 /h, elimination_rate: 1 /h, w_new: {uniform: [0.2, 0.6]}}", duration="30 min")
    st = r.structure
    formed = int(np.sum(st.ev_kind == 0))
    elim = int(np.sum(st.ev_kind == 1))
    assert formed > 100 and elim > 100
    assert int(st.present_final.sum()) - int(st.present_initial.sum()) == formed - elim
    _, n = n_series(r)
    assert n[0] == st.present_initial.sum() and n[-1] == st.present_final.sum()
    # replaying the events from the initial matrix gives the final one; no synapse forms while present
    p = st.present_initial.reshape(-1).copy()
    for syn, kind in zip(st.ev_syn, st.ev_kind):
        assert p[syn] == (1 if kind == 1 else 0)
        p[syn] = 1 - p[syn]
    assert np.array_equal(p, st.present_final.reshape(-1))
    # absent synapses weigh 0; new ones start in [0.2, 0.6] (no learning here)
    w = r.w_final.reshape(-1)
    assert np.all(w[st.present_final.reshape(-1) == 0] == 0)
    new = np.unique(st.ev_syn[st.ev_kind == 0])
    alive = new[st.present_final.reshape(-1)[new] == 1]
    assert np.all((w[alive] >= 0.2) & (w[alive] <= 0.6))


def test_the_kernel_agrees_with_its_slow_twin_in_distribution():
    # one interval over 2e4 potential synapses with a weight-dependent hazard: the counts of
    # formations and eliminations of the thinned, O(events) step against the per-synapse twin
    rng = np.random.default_rng(5)
    shape = (100, 200)
    w = rng.uniform(0, 0.5, size=shape)
    present = (rng.random(shape) < 0.6).astype(np.uint8)
    w *= present
    f, e, w_ref, dt_s = 0.3, 0.8, 0.1, 1.0

    class Cfg:
        pass

    counts = {"kernel": [], "twin": []}
    for rep in range(6):
        p_t, w_t = present.copy(), w.copy()
        fo, el = structure_step(p_t, w_t, np.random.default_rng(100 + rep), dt_s, f, e, w_ref, 0.1)
        counts["twin"].append((len(fo), len(el)))
        run = _bare_run(present, w, f, e, w_ref, np.random.default_rng(200 + rep))
        wk = w.copy()
        run.step(wk, None, None, int(round(dt_s * 1e3 / run.dt)))
        counts["kernel"].append((int(np.sum(run.kinds[0] == 0)), int(np.sum(run.kinds[0] == 1))))
    # expected counts
    absent = present.size - present.sum()
    ef = absent * (1 - math.exp(-f * dt_s))
    wp = w[present == 1]
    ee = np.sum(1 - np.exp(-e * np.exp(-wp / w_ref) * dt_s))
    for who in ("kernel", "twin"):
        fo = np.mean([c[0] for c in counts[who]])
        el = np.mean([c[1] for c in counts[who]])
        assert abs(fo - ef) < 5 * math.sqrt(ef / 6), (who, fo, ef)
        assert abs(el - ee) < 5 * math.sqrt(ee / 6), (who, el, ee)


def _bare_run(present, w, f, e, w_ref, rng):
    from plastictool.protocol.inits import Init
    from plastictool.protocol.schema import Structure

    run = StructureRun.__new__(StructureRun)
    run.cfg = Structure(tuple(tuple(float(x) for x in r) for r in present), f, e, w_ref, Init("constant", (0.1,)))
    run.module = None
    run.rng = rng
    run.dt = 1.0
    run.w_min, run.w_max = 0.0, 1.0
    run.from_state = False
    run.present = present.copy()
    run.present_initial = present.copy()
    run.n_present = int(present.sum())
    run.last = 0
    run.steps, run.syns, run.kinds = [], [], []
    run._apply = lambda w, pr, st, fo, el, wn, s: (w.reshape(-1).__setitem__(el, 0.0), w.reshape(-1).__setitem__(fo, wn))
    return run


def test_pick_is_uniform_and_distinct():
    rng = np.random.default_rng(0)
    flat = np.zeros(1000, np.uint8)
    flat[::3] = 1  # 334 candidates
    hits = np.zeros(1000)
    for _ in range(300):
        c = pick(rng, flat, 1, 20, 334)
        assert c.size == 20 and np.unique(c).size == 20 and np.all(flat[c] == 1)
        hits[c] += 1
    # each candidate is picked with probability 20/334 per draw
    m = 300 * 20 / 334
    assert abs(hits[::3].mean() - m) < 1e-9 and hits[::3].max() < m + 6 * math.sqrt(m)
    assert pick(rng, flat, 1, 300, 334).size == 300  # the dense path


RULES = {
    "stdp": ("lif", "{kind: stdp}"),
    "triplet": ("lif", "{kind: triplet}"),
    "calcium": ("clamped", "{kind: calcium}"),
    "receptor": ("clamped", "{kind: receptor}"),
    "hebb": ("rate", "{kind: hebb, eta: 0.1}"),
    "oja": ("rate", "{kind: oja, eta: 0.1}"),
    "bcm": ("rate", "{kind: bcm, eta: 0.1}"),
}


def _composed_text(kind, structure=None, seed=2):
    """A small protocol of rule ``kind``; ``structure``: the synapses.structure mapping, or None
    for none (no key at all)."""
    model, rule = RULES[kind]
    if model == "rate":
        stim = "stimulus: {pre: {gaussian: {mean: [1, 1, 1, 1], cov: [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}}, duration: 2 s}"
        n_pre = 4
    else:
        stim = "stimulus: {pre: {poisson: {rate: 20 Hz}}, post: {poisson: {rate: 10 Hz}}, duration: 2 s}" if model == "clamped" else "stimulus: {pre: {poisson: {rate: 40 Hz}}, duration: 2 s}"
        n_pre = 40
    extra = "" if structure is None else f", structure: {structure}"
    return f"""\
name: c_{kind}
seed: {seed}
dt: 0.5 ms
synapses: {{n_pre: {n_pre}, n_post: 3, w_init: 0.4, w_min: 0, w_max: 1{extra}}}
neuron: {{model: {model}}}
{stim}
rule: {rule}
record: {{interval: 100 ms}}
"""


def _composed(write, kind, structure, seed=2):
    return simulate(validate_file(write(f"c_{kind}.yaml", _composed_text(kind, structure, seed))).base)


@pytest.mark.parametrize("kind", sorted(RULES))
def test_composes_with_every_rule(write, kind):
    r = _composed(write, kind, "{present: 0.5, formation_rate: 5 Hz, elimination_rate: 5 Hz, w_new: 0.3}")
    st = r.structure
    assert st.n_events > 0
    p = st.present_final.reshape(r.w_final.shape)
    assert np.all(r.w_final[p == 0] == 0)  # absent synapses weigh 0
    assert np.all(np.isfinite(r.w_final))
    # all present and no events: the run of the rule without structure, bit for bit
    same = _composed(write, kind, "{present: 1}")
    assert same.structure.n_events == 0
    plain = simulate(validate_file(write(f"p_{kind}.yaml", _composed_text(kind))).base)  # no structure key
    assert np.array_equal(plain.w_final, same.w_final)
    assert np.array_equal(plain.traces, same.traces[:, :-1])


def test_absent_synapses_transmit_nothing(write):
    # LIF driven hard: with every synapse absent and no formation there is no post spike
    r = _composed(write, "stdp", "{present: 0}")
    assert r.counts["post_spikes"] == 0
    on = _composed(write, "stdp", "{present: 1}")
    assert on.counts["post_spikes"] > 0


def test_reruns_and_jobs_are_byte_identical(write, cli, tmp_path):
    text = BASE.format(name="rr", seed=4, duration="10 min", n_pre=20, n_post=10, w_init=0.5, structure="{present: 0.5, formation_rate: 3 /h, elimination_rate: 3 /h, w_ref: 0.3}", interval="1 min")
    text += "sweep: {synapses.structure.formation_rate: [1 /h, 5 /h, 20 /h]}\n"
    path = write("rr.yaml", text)
    outs = []
    for k, jobs in enumerate(("1", "1", "2")):
        out = tmp_path / f"o{k}"
        res = cli("run", path, "--out", out, "--jobs", jobs, "--quiet")
        assert res.exit_code == 0, res.output
        outs.append(out)
    for name in ("summary.csv", "traces.csv", "structure.csv"):
        a = (outs[0] / name).read_bytes()
        assert a == (outs[1] / name).read_bytes() == (outs[2] / name).read_bytes(), name
    rows = list(csv.DictReader(open(outs[0] / "structure.csv")))
    assert rows and set(rows[0]) == {"t_ms", "pre", "post", "event", "condition"}
    assert {r["event"] for r in rows} == {"formed", "eliminated"}
    summ = list(csv.DictReader(open(outs[0] / "summary.csv")))
    assert len(summ) == 3 * 200
    gone = [r for r in summ if r["present_final"] == "0"]
    assert gone and all(r["w_final"] == "" and r["dw"] == "" for r in gone)
    # shards merge into the files of one run
    for k in (1, 2):
        res = cli("run", path, "--out", tmp_path / f"s{k}", "--shard", f"{k}/2", "--quiet")
        assert res.exit_code == 0, res.output
    res = cli("merge", tmp_path / "s1", tmp_path / "s2", "--out", tmp_path / "m")
    assert res.exit_code == 0, res.output
    for name in ("summary.csv", "traces.csv", "structure.csv"):
        assert (tmp_path / "m" / name).read_bytes() == (outs[0] / name).read_bytes(), name


@pytest.mark.parametrize(
    "structure, field, words",
    [
        ("{formation_rate: -1 /h}", "synapses.structure.formation_rate", "must be >= 0"),
        ("{elimination_rate: -0.5 Hz}", "synapses.structure.elimination_rate", "must be >= 0"),
        ("{present: 1.5}", "synapses.structure.present", "[0, 1]"),
        ("{present: -0.1}", "synapses.structure.present", "[0, 1]"),
        ("{present: [[1, 0], [0, 1]]}", "synapses.structure.present", "2 x 3 matrix"),
        ("{present: [[1, 0, 2], [0, 1, 1]]}", "synapses.structure.present.0.2", "0 (absent) or 1"),
        ("{w_ref: 0}", "synapses.structure.w_ref", "must be > 0"),
        ("{formation_rate: 1 ms}", "synapses.structure.formation_rate", "is a time"),
        ("{birth_rate: 1 Hz}", "synapses.structure.birth_rate", "unknown key"),
    ],
)
def test_bad_input_is_reported_clearly(write, structure, field, words):
    path = write("bad.yaml", BASE.format(name="bad", seed=1, duration="1 s", n_pre=2, n_post=3, w_init=0.5, structure=structure, interval="1 s"))
    with pytest.raises(ProtocolError) as err:
        validate_file(path)
    assert err.value.field == field and words in str(err.value), (err.value.field, str(err.value))


@pytest.mark.parametrize(
    "extra, words",
    [
        ("  release: {preset: tsodyks1997_depressing}\n", "synapses.release cannot be combined"),
        ("  inhibitory: [0]\n", "synapses.inhibitory cannot be combined"),
    ],
)
def test_mechanisms_not_yet_combined_with_structure_are_refused(write, extra, words):
    text = BASE.format(name="c", seed=1, duration="1 s", n_pre=2, n_post=1, w_init=0.5, structure="{formation_rate: 1 /h}", interval="1 s")
    text = text.replace("neuron: {model: clamped}", "neuron: {model: lif}").replace("  structure:", extra + "  structure:")
    with pytest.raises(ProtocolError) as err:
        validate_file(write("c.yaml", text))
    assert err.value.field == "synapses.structure" and words in str(err.value)


def test_threads_give_the_results_of_one_thread(write):
    # a LIF network split over two blocks of post neurons: the structure step runs between chunks
    text = """\
name: th
seed: 9
dt: 0.5 ms
synapses: {n_pre: 30, n_post: 16, w_init: 0.5, structure: {present: 0.6, formation_rate: 3 Hz, elimination_rate: 2 Hz, w_ref: 0.3, w_new: {uniform: [0.1, 0.9]}}}
neuron: {model: lif}
stimulus: {pre: {poisson: {rate: 30 Hz}}, duration: 2 s}
rule: {kind: stdp}
record: {interval: 50 ms}
"""
    p = validate_file(write("th.yaml", text)).base
    one, two = simulate(p, threads=1), simulate(p, threads=2)
    assert two.timings["threads"] == 2 and one.structure.n_events > 0
    assert np.array_equal(one.w_final, two.w_final) and np.array_equal(one.traces, two.traces)
    for a in ("present_final", "ev_step", "ev_syn", "ev_kind"):
        assert np.array_equal(getattr(one.structure, a), getattr(two.structure, a))


def test_plot_shows_synapse_number_and_survival(write, tmp_path, cli):
    pytest.importorskip("matplotlib")
    from plastictool.plot import read_run

    text = BASE.format(name="pl", seed=3, duration="20 min", n_pre=20, n_post=10, w_init="{uniform: [0, 1]}", structure="{elimination_rate: 3 /h, w_ref: 0.2}", interval="1 min")
    path = write("pl.yaml", text + "sweep: {synapses.structure.elimination_rate: [1 /h, 4 /h]}\n")
    res = cli("run", path, "--out", tmp_path / "o", "--quiet", "--plot")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "plot.png").stat().st_size > 10_000
    run = read_run(tmp_path / "o")
    assert "n_synapses" in run.trace_cols and "present_final" in run.summary_cols


def test_receptor_absent_synapses_stay_at_rest_and_add_no_products(write):
    # receptor: an absent synapse gets no calcium, so its signals stay 0 and it adds nothing to
    # the post neuron's products; the present one of the same post neuron potentiates
    from plastictool.simulation.engine import build
    from plastictool.rules import receptor

    text = """\
name: rc
seed: 1
dt: 0.5 ms
synapses: {n_pre: 2, n_post: 1, w_init: 0.5, structure: {present: [[1], [0]]}}
neuron: {model: clamped}
stimulus: {pre: {tetanus: {frequency: 100 Hz, duration: 1 s, trains: 3, interval: 10 min}}, duration: 30 min}
rule: {kind: receptor}
"""
    p = validate_file(write("rc.yaml", text)).base
    b = build(p)
    rest = b.state.x[1].copy()
    b.module.advance(b.w, b.net, b.state, b.params, 0, p.n_steps, b.phases[0][2], None, b.present)
    assert np.array_equal(b.state.x[1], rest) and b.w[1, 0] == 0.0
    assert b.w[0, 0] > 0.5 and b.state.x[0, receptor.MTOR_X] > 0.0
    # the same synapse alone (n_pre 1, no structure) ends where the present one did
    alone = build(validate_file(write("ra.yaml", text.replace("n_pre: 2", "n_pre: 1").replace(", structure: {present: [[1], [0]]}", ""))).base)
    alone.module.advance(alone.w, alone.net, alone.state, alone.params, 0, p.n_steps, alone.phases[0][2], None, None)
    assert np.allclose(alone.w[0, 0], b.w[0, 0], rtol=1e-12, atol=0)


def test_w_new_forms_and_float32_weights(write):
    # w_new as a matrix: a new synapse takes its own entry; float32 weights work the same
    w_new = [[0.1 * (i + 1) + 0.01 * j for j in range(5)] for i in range(4)]
    exp, r = run(write, n_pre=4, n_post=5, duration="10 min", structure=f"{{present: 0, formation_rate: 20 /h, w_new: {w_new}}}", extra="")
    st = r.structure
    formed = st.ev_syn[st.ev_kind == 0]
    assert formed.size > 5
    w = r.w_final.reshape(-1)
    assert np.allclose(w[formed], np.array(w_new).reshape(-1)[formed])
    text = BASE.format(name="f32", seed=2, duration="10 min", n_pre=20, n_post=20, w_init=0.5, structure="{present: 0.5, formation_rate: 20 /h, elimination_rate: 20 /h, w_new: {normal: [0.5, 0.1]}}", interval="1 min")
    p32 = validate_file(write("f32.yaml", text.replace("w_init: 0.5", "w_init: 0.5\n  dtype: float32"))).base
    p64 = validate_file(write("f64.yaml", text)).base
    a, b = simulate(p32), simulate(p64)
    assert a.w_final.dtype == np.float32 and np.array_equal(a.structure.ev_syn, b.structure.ev_syn)
    assert np.allclose(a.w_final, b.w_final, rtol=1e-6)


def test_negative_weights_raise_the_hazard_above_the_rate(write):
    # w_min null: weights below 0 are eliminated faster than elimination_rate (thinning bound
    # from the smallest weight); S(w) = exp(-e exp(-w / w_ref) t)
    e, w_ref, t_h = 1.0, 0.2, 0.5
    w = [[-0.2 if j % 2 else 0.2 for j in range(100)] for _ in range(100)]
    text = BASE.format(name="neg", seed=6, duration="30 min", n_pre=100, n_post=100, w_init=w, structure=f"{{elimination_rate: {e} /h, w_ref: {w_ref}}}", interval="1 min")
    p = validate_file(write("neg.yaml", text.replace("  structure:", "  w_min: null\n  structure:"))).base
    r = simulate(p)
    p1 = r.structure.present_final.reshape(100, 100)
    for wv, cols in ((-0.2, p1[:, 1::2]), (0.2, p1[:, ::2])):
        s = math.exp(-e * math.exp(-wv / w_ref) * t_h)
        assert abs(cols.mean() - s) < 5 * math.sqrt(s * (1 - s) / cols.size), (wv, cols.mean(), s)


def test_composes_with_synaptic_delays(write):
    # synapses.delay (stdp, triplet) and structure: absent synapses transmit nothing after the delay either
    def go(present, rate):
        text = f"""\
name: dl
seed: 2
dt: 0.5 ms
synapses: {{n_pre: 40, n_post: 3, w_init: 0.4, delay: {{axonal: 2 ms, dendritic: 1 ms}}, structure: {{present: {present}, formation_rate: {rate}, elimination_rate: {rate}}}}}
neuron: {{model: lif}}
stimulus: {{pre: {{poisson: {{rate: 40 Hz}}}}, duration: 2 s}}
rule: {{kind: triplet}}
record: {{interval: 100 ms}}
"""
        return simulate(validate_file(write("dl.yaml", text)).base)

    assert go(0, 0).counts["post_spikes"] == 0 and go(1, 0).counts["post_spikes"] > 0
    r = go(0.5, 1)
    assert r.structure.n_events > 0 and r.counts["post_spikes"] > 0
    assert np.all(r.w_final[r.structure.present_final == 0] == 0)


def test_stdp_presynaptic_centered_new_synapses_start_with_no_trace(write):
    # the one per-synapse state of the pair rule: presynaptic_centered's kp, 0 for a new synapse
    from plastictool.simulation.engine import build

    text = """\
name: pc
seed: 2
dt: 0.5 ms
synapses: {n_pre: 3, n_post: 2, w_init: 0.4, structure: {present: [[1, 0], [0, 1], [0, 0]], formation_rate: 5 Hz, elimination_rate: 5 Hz}}
neuron: {model: clamped}
stimulus: {pre: {poisson: {rate: 20 Hz}}, post: {poisson: {rate: 10 Hz}}, duration: 1 s}
rule: {kind: stdp, pairing: presynaptic_centered}
"""
    p = validate_file(write("pc.yaml", text)).base
    b = build(p)
    b.state.kp[...] = 3.0
    b.structure.step(b.w, b.params, b.state, 2000)  # 1 s at 5 Hz: most absent synapses form
    formed = b.structure.syns[0][b.structure.kinds[0] == 0]
    assert formed.size and np.all(b.state.kp.reshape(-1)[formed] == 0.0)
    others = np.setdiff1d(np.arange(6), formed)
    assert np.all(b.state.kp.reshape(-1)[others] == 3.0)
    assert simulate(p).structure.n_events > 0  # and the run composes


def test_release_and_structure_are_refused_together(write):
    path = write("rs.yaml", BASE.format(name="rs", seed=1, duration="1 s", n_pre=2, n_post=3, w_init=0.5, structure="{formation_rate: 1 Hz}", interval="1 s").replace("  structure:", "  release: {U: 0.5}\n  structure:"))
    with pytest.raises(ProtocolError) as err:
        validate_file(path)
    assert err.value.field == "synapses.structure" and "release" in str(err.value)
