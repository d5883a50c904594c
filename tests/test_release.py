"""Transmitter release (synapses.release, spec section 11): the recursion against its slow twin,
the steady-state law, quantal release, composition with every spike rule, LIF through release,
presynaptic expression, outputs and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plastictool.api import run_experiment, validate_file
from plastictool.simulation.engine import simulate

from conftest import PROTOCOLS
from reference_release import paired_pulse_ratio, release_reference, steady_state
from reference_stdp import lif_reference

DT = 0.1


def protocol(write, times, n_post=1, rule="{kind: stdp, a_plus: 0, a_minus: 0}", release="{U: 0.5, tau_rec: 800 ms}", neuron="clamped",
             extra="", duration=None, w_init=0.5, post=None, name="p.yaml"):
    """A protocol with explicit presynaptic spike times {neuron: [ms...]} (and post times)."""
    pre = json.dumps({str(k): list(v) for k, v in times.items()})
    n_pre = max(times) + 1
    end = max(max(v) for v in times.values() if v) + 10.0
    post_line = f"\n      post: {{times: {json.dumps({str(k): list(v) for k, v in post.items()})}}}" if post else ""
    text = f"""
    seed: 5
    dt: {DT} ms
    duration: {duration if duration is not None else end} ms
    synapses: {{n_pre: {n_pre}, n_post: {n_post}, w_init: {w_init}, release: {release}}}
    neuron: {{model: {neuron}}}
    stimulus:
      pre: {{times: {pre}}}{post_line}
    rule: {rule}
    record: {{weights: all, interval: 1000 ms{extra}}}
    """
    return write(name, text)


def run(path):
    [r] = run_experiment(validate_file(path))
    return r


def by_synapse(r):
    t, i, j, amp = r.responses
    out = {}
    for a, b, c, d in zip(t, i, j, amp):
        out.setdefault((int(b), int(c)), []).append((float(a), float(d)))
    return out


def steps(times):
    """Spike times as the kernel sees them: rounded to the step."""
    return [round(t / DT) * DT for t in times]


# ----------------------------------------------------------------------------- the recursion
@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    U=st.floats(0.01, 1.0),
    tau_rec=st.floats(5.0, 2000.0),
    tau_fac=st.one_of(st.just(0.0), st.floats(5.0, 2000.0)),
)
def test_amplitudes_equal_the_recursion_on_random_trains(tmp_path_factory, seed, U, tau_rec, tau_fac):
    rng = np.random.default_rng(seed)
    times = {i: sorted(set(np.round(rng.uniform(0, 2000, rng.integers(1, 40)), 1).tolist())) for i in range(3)}
    d = tmp_path_factory.mktemp("rec")

    def write(name, text):
        import textwrap

        p = d / name
        p.write_text(textwrap.dedent(text))
        return p

    r = run(protocol(write, times, n_post=2, release=f"{{U: {U!r}, tau_rec: {tau_rec!r} ms, tau_fac: {tau_fac!r} ms}}"))
    got = by_synapse(r)
    for i, ts in times.items():
        want = release_reference(steps(ts), U, tau_rec, tau_fac)
        for j in range(2):
            amps = [a for _, a in got[(i, j)]]
            assert len(amps) == len(ts)
            np.testing.assert_allclose(np.array(amps) / 0.5, want, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose([t for t, _ in got[(i, j)]], steps(ts), rtol=1e-12)


def test_steady_state_law_and_one_over_f(write):
    """A regular train at f: r_n -> U (1 - e) / (1 - (1 - U) e), e = exp(-1/(f tau_rec));
    above the limiting frequency 1/(U tau_rec) the steady state falls as 1/f."""
    U, tau_rec = 0.5, 800.0
    last = {}
    for f in (1.0, 5.0, 20.0, 40.0, 100.0):
        times = {0: [k * 1000.0 / f for k in range(80)]}
        r = run(protocol(write, times, release=f"{{U: {U}, tau_rec: {tau_rec} ms}}", name=f"ss{f}.yaml"))
        amp = by_synapse(r)[(0, 0)][-1][1] / 0.5
        assert amp == pytest.approx(steady_state(U, tau_rec, f), rel=1e-10)
        last[f] = amp
    # the 1/f law: r_ss f approaches 1/tau_rec (per second: 1000/tau_rec) at high f
    assert last[100.0] * 100.0 == pytest.approx(1000.0 / tau_rec, rel=0.03)
    assert last[40.0] * 40.0 == pytest.approx(1000.0 / tau_rec, rel=0.05)


def test_paired_pulse_ratio_depressing_and_facilitating(write):
    for preset, U, tr, tf, sign in (("tsodyks1997_depressing", 0.5, 800.0, 0.0, -1), ("markram1998_facilitating", 0.03, 130.0, 530.0, 1)):
        for interval in (10.0, 50.0, 200.0):
            r = run(protocol(write, {0: [0.0, interval]}, release=f"{{preset: {preset}}}", name=f"ppr{preset}{interval}.yaml"))
            amps = [a for _, a in by_synapse(r)[(0, 0)]]
            ppr = amps[1] / amps[0]
            assert ppr == pytest.approx(paired_pulse_ratio(U, tr, tf, interval), rel=1e-12)
            assert (ppr - 1.0) * sign > 0  # depression below 1, facilitation above


# ----------------------------------------------------------------------------- quantal release
def test_quantal_mean_over_many_synapses_within_its_standard_error(write):
    """sites: N, per synapse: the mean amplitude over M synapses at each pulse equals the
    deterministic w r_n within 4 standard errors; single responses are multiples of w/N."""
    M, N = 3000, 3
    times = [k * 25.0 for k in range(12)]  # 40 Hz
    p = write(
        "q.yaml",
        f"""
        seed: 11
        dt: {DT} ms
        synapses: {{n_pre: 1, n_post: {M}, w_init: 1.0, release: {{U: 0.4, tau_rec: 200 ms, tau_fac: 50 ms, sites: {N}}}}}
        neuron: {{model: clamped}}
        stimulus: {{pre: {{times: {times}}}}}
        rule: {{kind: stdp, a_plus: 0, a_minus: 0}}
        record: {{weights: all, interval: 300 ms}}
        """,
    )
    r = run(p)
    t, i, j, amp = r.responses
    assert amp.size == M * len(times)
    assert np.allclose(amp * N, np.rint(amp * N))
    want = release_reference(times, 0.4, 200.0, 50.0)
    for n, tn in enumerate(times):
        a = amp[t == tn]
        assert a.size == M
        se = a.std(ddof=1) / math.sqrt(M)
        assert abs(a.mean() - want[n]) < 4 * se + 1e-12, (n, a.mean(), want[n], se)
    # the same seed gives the same draws; another seed other draws
    assert np.array_equal(run(p).responses[3], amp)


# ----------------------------------------------------------------------------- composition with the rules
RULES = {
    "stdp": "{kind: stdp, a_plus: 0.05, a_minus: 0.04}",
    "triplet": "{kind: triplet, preset: pfister2006_visual_aa_full}",
    "calcium": "{kind: calcium, preset: graupner2012_dp}",
    "receptor": "{kind: receptor}",
}


def _trains(seed, n_pre, n_post, rate_pre=30.0, rate_post=20.0, T=1500.0):
    rng = np.random.default_rng(seed)
    pre = {i: sorted(set(np.round(rng.uniform(0, T, rng.poisson(rate_pre * T / 1000) + 1), 1).tolist())) for i in range(n_pre)}
    post = {j: sorted(set(np.round(rng.uniform(0, T, rng.poisson(rate_post * T / 1000) + 1), 1).tolist())) for j in range(n_post)}
    return pre, post


@pytest.mark.parametrize("kind", list(RULES))
def test_release_composes_with_each_rule(write, kind):
    """Clamped neurons: release leaves the rule's weights exactly as without it; the n-th
    response of synapse (i, j) is w_ij just before that spike (from a run cut there) times r_n."""
    spec_rule = RULES[kind]
    pre, post = _trains(3, 2, 2)
    rel = "{U: 0.3, tau_rec: 300 ms, tau_fac: 100 ms}"
    with_rel = run(protocol(write, pre, n_post=2, rule=spec_rule, release=rel, post=post, name="a.yaml", duration=1600))
    without = run(protocol(write, pre, n_post=2, rule=spec_rule, release="null", post=post, name="b.yaml", duration=1600))
    assert np.array_equal(with_rel.w_final, without.w_final)
    got = by_synapse(with_rel)
    for i in range(2):
        want = release_reference(steps(pre[i]), 0.3, 300.0, 100.0)
        for n in (0, len(pre[i]) // 2, len(pre[i]) - 1):
            t_n = steps(pre[i])[n]
            cut = run(protocol(write, pre, n_post=2, rule=spec_rule, release="null", post=post, name="c.yaml", duration=round(t_n / DT) * DT))
            for j in range(2):
                assert got[(i, j)][n][0] == pytest.approx(t_n)
                assert got[(i, j)][n][1] == pytest.approx(cut.w_final[i, j] * want[n], rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("kind", ["stdp", "triplet"])
def test_lif_driven_through_release_equals_the_slow_twin(write, kind):
    """A LIF neuron whose conductance jumps by w r_n: its spikes equal the step-by-step twin's
    (no plasticity: a_plus = a_minus = 0, so w stays w_init)."""
    rule = "{kind: stdp, a_plus: 0, a_minus: 0}" if kind == "stdp" else "{kind: triplet, a2_plus: 0, a3_plus: 0, a2_minus: 0, a3_minus: 0}"
    rng = np.random.default_rng(7)
    n_pre = 20
    pre = {i: sorted(set(np.round(rng.uniform(0, 2000, 60), 1).tolist())) for i in range(n_pre)}
    r = run(protocol(write, pre, rule=rule, release="{U: 0.6, tau_rec: 150 ms, tau_fac: 20 ms}", neuron="lif", w_init=0.9, duration=2000))
    jumps = {}
    for i, ts in pre.items():
        for s, rn in zip([round(t / DT) for t in ts], release_reference(steps(ts), 0.6, 150.0, 20.0)):
            jumps[s] = jumps.get(s, 0.0) + 0.9 * rn
    want = lif_reference(-74.0, jumps, round(2000 / DT), DT)
    t, pop, idx = r.spikes
    got = [round(x / DT) for x in t[pop == 1]]
    assert len(want) > 5
    assert got == want
    # without release the same input makes the neuron fire more (every jump is w, not w r_n)
    no = run(protocol(write, pre, rule=rule, release="null", neuron="lif", w_init=0.9, duration=2000, name="n.yaml"))
    assert int(np.sum(no.spikes[1] == 1)) > len(want)


def test_calcium_and_receptor_with_lif_run(write):
    """calcium and receptor with LIF neurons and release: finite, responses for every pre spike."""
    pre, _ = _trains(5, 3, 1, rate_pre=40.0, T=1000.0)
    for kind in ("calcium", "receptor"):
        r = run(protocol(write, pre, rule=RULES[kind], release="{preset: tsodyks1997_depressing}", neuron="lif", name=f"{kind}.yaml", duration=1000))
        assert r.responses[0].size == sum(len(v) for v in pre.values())
        assert np.all(np.isfinite(r.responses[3]))


# ----------------------------------------------------------------------------- presynaptic expression
def test_presynaptic_expression_transmits_w_initial_with_its_own_U(write):
    """U_ij = min(1, U w_ij / w_initial_ij): every response is w_initial r_n(U_ij) with w_ij from
    a run without release cut just before the spike."""
    pre, post = _trains(9, 2, 1, rate_pre=20.0, rate_post=30.0, T=1000.0)
    rule = "{kind: stdp, a_plus: 0.08, a_minus: 0.02, expression: presynaptic}"
    r = run(protocol(write, pre, rule=rule, release="{U: 0.3, tau_rec: 400 ms, tau_fac: 0 ms}", post=post, w_init=0.4, duration=1100))
    got = by_synapse(r)
    for i in range(2):
        ts = steps(pre[i])
        Us = []
        for t_n in ts:
            cut = run(protocol(write, pre, rule=rule.replace(", expression: presynaptic", ""), release="null", post=post, w_init=0.4, name="c.yaml", duration=round(t_n / DT) * DT))
            Us.append(min(1.0, 0.3 * cut.w_final[i, 0] / 0.4))
        want = release_reference(ts, 0.3, 400.0, 0.0, Us=Us)
        np.testing.assert_allclose([a for _, a in got[(i, 0)]], 0.4 * np.array(want), rtol=1e-12)
    assert r.w_final[0, 0] != 0.4  # the rule's w evolved, and is what summary reports


def _redistribution(tmp_path, cli):
    out = tmp_path / "redistribution"
    res = cli("run", PROTOCOLS / "markram1996_redistribution.yaml", "--out", out, "--quiet", "--jobs", "1")
    assert res.exit_code == 0, res.output
    return out


def test_redistribution_of_synaptic_efficacy(tmp_path, cli):
    """Markram & Tsodyks 1996: presynaptic expression raises the first response of the test train
    by w_final / w_initial, the 40 Hz steady state by less than 10 %; postsynaptic expression
    scales every response by w_final / w_initial."""
    import csv

    out = _redistribution(tmp_path, cli)
    rows = list(csv.DictReader(open(out / "responses.csv")))
    summ = list(csv.DictReader(open(out / "summary.csv")))
    expr = {int(c["condition"]): c["rule.expression"] for c in json.load(open(out / "run.json"))["sweep"]["conditions"]}
    for cond, e in expr.items():
        amps = np.array([float(x["amplitude"]) for x in rows if int(x["condition"]) == cond])
        ts = np.array([float(x["t_ms"]) for x in rows if int(x["condition"]) == cond])
        s = [x for x in summ if x["rule.expression"] == e][0]
        ratio = float(s["w_final"]) / float(s["w_initial"])
        assert ratio > 1.3  # the pairing potentiated
        test1 = amps[ts < 1000.0]
        test2 = amps[ts >= ts.max() - 1000.0]
        assert test1.size == test2.size == 20
        if e == "presynaptic":
            assert test2[0] / test1[0] == pytest.approx(ratio, rel=1e-6)
            assert abs(test2[-1] / test1[-1] - 1.0) < 0.10
            assert float(s["U_final"]) == pytest.approx(min(1.0, float(s["U_initial"]) * ratio), rel=1e-9)
        else:
            np.testing.assert_allclose(test2 / test1, ratio, rtol=1e-6)
            assert float(s["U_final"]) == float(s["U_initial"])


# ----------------------------------------------------------------------------- outputs
def test_outputs_state_and_no_release_unchanged(write, cli, tmp_path):
    times = {0: [0.0, 20.0, 40.0], 1: [5.0]}
    p = protocol(write, times, n_post=2, extra=", state: [u, x]", release="{U: 0.5, tau_rec: 100 ms, tau_fac: 50 ms}")
    out = tmp_path / "o"
    res = cli("run", p, "--out", out, "--quiet")
    assert res.exit_code == 0, res.output
    lines = (out / "responses.csv").read_text().splitlines()
    assert lines[0] == "t_ms,pre,post,amplitude"
    assert len(lines) == 1 + 4 * 2
    head = (out / "summary.csv").read_text().splitlines()[0]
    assert head.endswith("outcome,U_initial,U_final")
    cols = (out / "traces.csv").read_text().splitlines()[0]
    assert '"u[0,0]"' in cols and '"x[1,1]"' in cols
    # u and x at the end: what the next spike would meet
    r = run(p)
    k = r.columns.index("x[0,0]")
    U, d = 0.5, r.traces[-1, 0] - 40.0
    # plain recomputation: x_(n+1) and u_(n+1) from the reference recursion's own state
    u, x, rprev, last = None, None, None, None
    for t in [0.0, 20.0, 40.0, 40.0 + d]:
        if last is None:
            u, x = U, 1.0
        else:
            dd = t - last
            u = U + (1 - U) * u * math.exp(-dd / 50.0)
            x = 1 - (1 - x + rprev) * math.exp(-dd / 100.0)
        rprev = u * x
        last = t
    assert r.traces[-1, k] == pytest.approx(x, rel=1e-12)
    assert r.traces[-1, r.columns.index("u[0,0]")] == pytest.approx(u, rel=1e-12)
    # compare knows responses.csv: a changed amplitude is a difference
    other = tmp_path / "other"
    import shutil

    shutil.copytree(out, other)
    text = (other / "responses.csv").read_text().splitlines()
    text[2] = text[2].rsplit(",", 1)[0] + ",0.123"
    (other / "responses.csv").write_text("\n".join(text) + "\n")
    res = cli("compare", other, out)
    assert res.exit_code == 1 and "responses.csv" in res.output


def test_responses_can_be_switched_off(write, tmp_path, cli):
    p = protocol(write, {0: [0.0, 10.0]}, extra=", responses: false")
    out = tmp_path / "o"
    assert cli("run", p, "--out", out, "--quiet").exit_code == 0
    assert not (out / "responses.csv").exists()


def test_shards_merge_responses(write, tmp_path, cli):
    p = write(
        "s.yaml",
        """
        seed: 2
        synapses: {n_pre: 1, n_post: 1, release: {preset: tsodyks1997_depressing}}
        stimulus: {pre: {regular: {frequency: 20 Hz, pulses: 5}}}
        rule: {kind: stdp}
        sweep: {synapses.release.U: [0.2, 0.5, 0.9]}
        """,
    )
    whole = tmp_path / "whole"
    assert cli("run", p, "--out", whole, "--quiet", "--jobs", "1").exit_code == 0
    for k in (1, 2):
        assert cli("run", p, "--shard", f"{k}/2", "--out", tmp_path / f"s{k}", "--quiet", "--jobs", "1").exit_code == 0
    merged = tmp_path / "merged"
    res = cli("merge", tmp_path / "s1", tmp_path / "s2", "--out", merged)
    assert res.exit_code == 0, res.output
    assert (merged / "responses.csv").read_bytes() == (whole / "responses.csv").read_bytes()
    assert (whole / "responses.csv").read_text().splitlines()[0] == "t_ms,pre,post,amplitude,condition"


def test_runs_without_release_have_no_release_outputs(write, tmp_path, cli):
    p = protocol(write, {0: [0.0, 10.0]}, release="null")
    out = tmp_path / "o"
    assert cli("run", p, "--out", out, "--quiet").exit_code == 0
    assert not (out / "responses.csv").exists()
    assert "U_initial" not in (out / "summary.csv").read_text()
    doc = json.loads((out / "run.json").read_text())
    assert "release" not in doc["protocol"]["synapses"] and "expression" not in doc["protocol"]["rule"]


# ----------------------------------------------------------------------------- bad input
BASE = """
seed: 1
synapses: {{n_pre: 1, n_post: 1{syn}}}
neuron: {{model: {neuron}}}
stimulus: {{pre: {pre}}}
rule: {rule}
record: {record}
"""


@pytest.mark.parametrize(
    "syn, neuron, pre, rule, record, field, words",
    [
        (", release: {U: 0}", "clamped", "{regular: {frequency: 5 Hz, pulses: 2}}", "{kind: stdp}", "{}", "synapses.release.U", "(0, 1]"),
        (", release: {U: 1.2}", "clamped", "{regular: {frequency: 5 Hz, pulses: 2}}", "{kind: stdp}", "{}", "synapses.release.U", "(0, 1]"),
        (", release: {tau_rec: -5 ms}", "clamped", "{regular: {frequency: 5 Hz, pulses: 2}}", "{kind: stdp}", "{}", "synapses.release.tau_rec", "> 0"),
        (", release: {tau_fac: -1 ms}", "clamped", "{regular: {frequency: 5 Hz, pulses: 2}}", "{kind: stdp}", "{}", "synapses.release.tau_fac", ">= 0"),
        (", release: {sites: 0}", "clamped", "{regular: {frequency: 5 Hz, pulses: 2}}", "{kind: stdp}", "{}", "synapses.release.sites", ">= 1"),
        (", release: {U: 0.5, tau_recc: 3}", "clamped", "{regular: {frequency: 5 Hz, pulses: 2}}", "{kind: stdp}", "{}", "synapses.release.tau_recc", "tau_rec"),
        (", release: {preset: nope}", "clamped", "{regular: {frequency: 5 Hz, pulses: 2}}", "{kind: stdp}", "{}", "synapses.release.preset", "tsodyks1997_depressing"),
        ("", "clamped", "{regular: {frequency: 5 Hz, pulses: 2}}", "{kind: stdp, expression: presynaptic}", "{}", "rule.expression", "needs synapses.release"),
        ("", "clamped", "{regular: {frequency: 5 Hz, pulses: 2}}", "{kind: stdp}", "{state: [u]}", "record.state.0", "needs synapses.release"),
        ("", "clamped", "{regular: {frequency: 5 Hz, pulses: 2}}", "{kind: stdp}", "{responses: true}", "record.responses", "needs synapses.release"),
        (", release: {U: 0.5}", "rate", "{patterns: {vectors: [[1]], presentation: 10 ms}}", "{kind: hebb}", "{}", "synapses.release", "spike rule"),
        (", release: {U: 0.5}", "rate", "{patterns: {vectors: [[1]], presentation: 10 ms}}", "{kind: oja}", "{}", "synapses.release", "spike rule"),
    ],
)
def test_bad_input_is_reported_with_file_line_and_field(write, tmp_path, cli, syn, neuron, pre, rule, record, field, words):
    p = write("bad.yaml", BASE.format(syn=syn, neuron=neuron, pre=pre, rule=rule, record=record))
    out = tmp_path / "out"
    res = cli("run", p, "--out", out)
    assert res.exit_code == 2, res.output
    assert f"{field}:" in res.output and words in res.output, res.output
    assert "Traceback" not in res.output
    assert not out.exists()


def test_rules_release_prints_the_presets_with_citations(cli):
    res = cli("rules", "release")
    assert res.exit_code == 0
    for s in ("tsodyks1997_depressing", "markram1998_facilitating", "Tsodyks & Markram 1997", "Markram, Wang & Tsodyks 1998", "tau_rec", "U_ij"):
        assert s in res.output


def test_validation_and_rules_never_import_numba():
    import subprocess
    import sys

    code = (
        "import sys; from plastictool.protocol import docs; docs.rules_text('release'); docs.rules_text();"
        "from plastictool.protocol.schema import validate; from plastictool.protocol.yamlsrc import Source;"
        "assert 'numba' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_simulate_gives_responses_only_with_release(write):
    r = simulate(validate_file(protocol(write, {0: [0.0]}, release="null")).base)
    assert r.responses is None


# ----------------------------------------------------------------------------- the example protocols
def _responses_by_condition(out):
    import csv

    rows = list(csv.DictReader(open(out / "responses.csv")))
    conds = json.load(open(out / "run.json"))["sweep"]["conditions"]
    return [(c, [float(r["amplitude"]) for r in rows if int(r["condition"]) == c["condition"]]) for c in conds]


def test_example_paired_pulse_and_steady_state_protocols(tmp_path, cli):
    """The numbers in the first comments of the example protocols (read from responses.csv,
    written with 12 significant digits: to 1e-10)."""
    presets = {"tsodyks1997_depressing": (0.5, 800.0, 0.0), "markram1998_facilitating": (0.03, 130.0, 530.0)}
    out = tmp_path / "ppr"
    assert cli("run", PROTOCOLS / "tsodyks_markram_paired_pulse.yaml", "--out", out, "--quiet", "--jobs", "1").exit_code == 0
    for c, amps in _responses_by_condition(out):
        U, tr, tf = presets[c["synapses.release.preset"]]
        assert amps[1] / amps[0] == pytest.approx(paired_pulse_ratio(U, tr, tf, 1000.0 / c["stimulus.pre.regular.frequency"]), rel=1e-10)
    out = tmp_path / "ss"
    assert cli("run", PROTOCOLS / "tsodyks_markram_steady_state.yaml", "--out", out, "--quiet", "--jobs", "1").exit_code == 0
    for c, amps in _responses_by_condition(out):
        assert len(amps) == 60
        assert amps[-1] == pytest.approx(steady_state(0.5, 800.0, c["stimulus.pre.regular.frequency"]), rel=1e-10)


def test_plot_draws_responses_against_pulse_number(tmp_path, cli):
    pytest.importorskip("matplotlib")
    from plastictool.plot import figure

    out = tmp_path / "ppr"
    assert cli("run", PROTOCOLS / "tsodyks_markram_paired_pulse.yaml", "--out", out, "--quiet", "--jobs", "1").exit_code == 0
    fig = figure(out)
    ax = [a for a in fig.axes if a.get_xlabel() == "pulse number"]
    assert len(ax) == 1 and len(ax[0].lines) == 12


def test_python_api_has_responses_and_U_columns(tmp_path):
    import plastictool as pt

    res = pt.run(str(PROTOCOLS / "markram1996_redistribution.yaml"), jobs=1)
    assert list(res.responses.columns) == ["t_ms", "pre", "post", "amplitude", "condition"]
    assert res.summary.columns[-2:] == ["U_initial", "U_final"] or list(res.summary.columns)[-2:] == ["U_initial", "U_final"]
    assert res.summary["U_final"][1] == pytest.approx(0.5 * res.summary["w_final"][1] / 0.5)
    res.write(tmp_path / "w")
    back = pt.read(tmp_path / "w")
    assert back == res
    assert back.responses["amplitude"].size == res.responses["amplitude"].size == 200
