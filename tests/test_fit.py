"""plastic fit (spec section 13): known optima, recovery of parameters from data plastic made,
bad input, determinism. Protocols here are single pairs (a run takes about a millisecond)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from plastictool.fitting import fit, read_data, write_fit
from plastictool.fitting.objective import Evaluator, make_plan

TAU_PLUS, TAU_MINUS = 16.8, 33.7  # bi_poo_1998
DTS = [-40.0, -20.0, -10.0, -5.0, 5.0, 10.0, 20.0, 40.0]

PAIR = """\
name: pair
seed: 3
dt: 0.1 ms
synapses: {n_pre: 1, n_post: 1, w_init: 0.5, w_min: null, w_max: null}
neuron: {model: clamped}
stimulus:
  pairing: {pairs: 1, frequency: 1 Hz, delta_t: 10 ms}
rule: {kind: stdp, preset: bi_poo_1998, a_plus: 0.01, a_minus: 0.0105}
record: {interval: 1 s}
"""


def write_csv(path, dts, y, sem=None):
    lines = ["# synthetic", "stimulus.pairing.delta_t,dw_percent" + (",sem" if sem is not None else "")]
    for k, (d, v) in enumerate(zip(dts, y)):
        lines.append(f"{d!r},{v!r}" + (f",{sem[k]!r}" if sem is not None else ""))
    path.write_text("\n".join(lines) + "\n")
    return path


def window(dt, a_plus, a_minus, tau_plus=TAU_PLUS):
    """dw_percent of one pair with additive STDP from w = 0.5 (no bounds): exact."""
    if dt > 0:
        return 100.0 * a_plus * math.exp(-dt / tau_plus) / 0.5
    return -100.0 * a_minus * math.exp(dt / TAU_MINUS) / 0.5


def plastic_data(proto, data_path, params: dict):
    """Mean dw_percent of each row of ``data_path`` computed by plastic at ``params``."""
    from plastictool.fitting.core import _load
    from plastictool.fitting.data import make_param

    raw, lines, file, name, _, _ = _load(proto)
    data = read_data(data_path)
    free = [make_param(k, [v * 0.5, v * 2.0], "stdp") for k, v in params.items()]
    with Evaluator(make_plan(raw, lines, file, name, data, free)) as ev:
        return ev.model([list(params.values())])[0]


def test_additive_window_has_the_analytic_optimum_and_error(write, tmp_path):
    """dw is linear in a_plus: the weighted least-squares optimum and its error are closed forms."""
    proto = write("pair.yaml", PAIR)
    dts = [d for d in DTS if d > 0]
    f = np.array([window(d, 1.0, 0.0) for d in dts])
    rng = np.random.default_rng(0)
    sem = np.array([0.3, 0.2, 0.1, 0.05])
    y = 0.012 * f + rng.normal(0, sem)
    data = write_csv(tmp_path / "d.csv", dts, y.tolist(), sem.tolist())
    res = fit(proto, data, ["rule.a_plus=1e-4:1e-1"], seed=1)
    wgt = 1.0 / sem**2
    a_star = float(np.sum(wgt * f * y) / np.sum(wgt * f * f))
    se_star = 1.0 / math.sqrt(np.sum(wgt * f * f))
    assert res.converged
    assert res.x["rule.a_plus"] == pytest.approx(a_star, rel=1e-6)
    assert res.se["rule.a_plus"] == pytest.approx(se_star, rel=1e-4)
    chi2 = float(np.sum(wgt * (a_star * f - y) ** 2))
    assert res.chi2 == pytest.approx(chi2, rel=1e-6, abs=1e-9)
    assert res.aic == pytest.approx(res.chi2 + 2) and res.bic == pytest.approx(res.chi2 + math.log(4))
    assert not res.covariance_scaled and res.dof == 3


def test_exact_recovery_of_a_nonlinear_parameter(write, tmp_path):
    """Data made by plastic itself at a_plus 0.013, tau_plus 21 ms, a_minus 0.009: recovered to 1e-4."""
    proto = write("pair.yaml", PAIR)
    dummy = write_csv(tmp_path / "dummy.csv", DTS, [0.0] * len(DTS))
    true = {"rule.a_plus": 0.013, "rule.tau_plus": 21.0, "rule.a_minus": 0.009}
    y = plastic_data(proto, dummy, true)
    assert y[-1] == pytest.approx(window(40.0, 0.013, 0.009, 21.0), rel=1e-9)  # plastic = the closed form
    data = write_csv(tmp_path / "d.csv", DTS, y)
    res = fit(proto, data, ["rule.a_plus=1e-3:1e-1", "rule.tau_plus=5ms:50ms", "rule.a_minus=1e-3:1e-1"], seed=2)
    assert res.converged
    for k, v in true.items():
        assert res.x[k] == pytest.approx(v, rel=1e-4)
    assert res.chi2 < 1e-12 and res.covariance_scaled  # no sem: scaled, and it says so
    assert json.loads(json.dumps(res.as_dict()))["covariance_scaled"] is True


def test_noisy_recovery_true_value_inside_the_95_interval(write, tmp_path):
    proto = write("pair.yaml", PAIR)
    f_plus = np.array([window(d, 1.0, 0.0) for d in DTS])
    f_minus = np.array([window(d, 0.0, 1.0) for d in DTS])
    sem = np.full(len(DTS), 0.15)
    inside = {"rule.a_plus": 0, "rule.a_minus": 0}
    reps = 6
    for rep in range(reps):
        rng = np.random.default_rng(100 + rep)
        y = 0.01 * f_plus + 0.0105 * f_minus + rng.normal(0, sem)
        data = write_csv(tmp_path / f"d{rep}.csv", DTS, y.tolist(), sem.tolist())
        res = fit(proto, data, ["rule.a_plus=1e-4:1e-1", "rule.a_minus=1e-4:1e-1"], seed=rep)
        for k, v in (("rule.a_plus", 0.01), ("rule.a_minus", 0.0105)):
            lo, hi = res.ci95[k]
            inside[k] += lo <= v <= hi
    assert all(n >= reps - 2 for n in inside.values()), inside  # 95 %: about 5.7 of 6 expected


def test_undetermined_parameter_is_warned(write, tmp_path):
    """Only post-before-pre data: a_plus does not change the model at all."""
    proto = write("pair.yaml", PAIR)
    dts = [d for d in DTS if d < 0]
    data = write_csv(tmp_path / "d.csv", dts, [window(d, 0.01, 0.0105) for d in dts], [0.1] * len(dts))
    res = fit(proto, data, ["rule.a_plus=1e-4:1e-1", "rule.a_minus=1e-4:1e-1"], seed=1, n_starts=1)
    assert res.x["rule.a_minus"] == pytest.approx(0.0105, rel=1e-5)
    assert not math.isfinite(res.se["rule.a_plus"])
    assert any("rule.a_plus" in w and "do not determine" in w for w in res.warnings)


def test_identical_inputs_give_identical_files_and_fitted_yaml_reproduces(cli, write, tmp_path):
    proto = write("pair.yaml", PAIR + "fit:\n  data: d.csv\n  params: {rule.a_plus: [1e-4, 1e-1], rule.a_minus: [1e-4, 3e-3, 1e-1]}\n")
    f = [window(d, 0.011, 0.01) + 0.01 * k for k, d in enumerate(DTS)]
    write_csv(tmp_path / "d.csv", DTS, f, [0.2] * len(DTS))
    r1 = cli("fit", proto, "--out", tmp_path / "a", "--seed", "4")
    assert r1.exit_code == 0, r1.output
    r2 = cli("fit", proto, "--out", tmp_path / "b", "--seed", "4", "--jobs", "2")
    assert r2.exit_code == 0, r2.output
    for name in ("fit.json", "fitted.yaml", "predictions.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    doc = json.loads((tmp_path / "a" / "fit.json").read_text())
    assert doc["converged"] and doc["parameters"]["rule.a_minus"]["start"] == 3e-3
    assert set(doc) >= {"chi2", "dof", "reduced_chi2", "aic", "bic", "evaluations", "data_sha256", "resolved_sha256", "versions", "seed"}
    assert json.loads((tmp_path / "a" / "timing.json").read_text())["evaluations_per_s"] > 0
    # fitted.yaml runs as is and reproduces the predictions
    r3 = cli("run", tmp_path / "a" / "fitted.yaml", "--out", tmp_path / "run", "--jobs", "1")
    assert r3.exit_code == 0, r3.output
    summary = (tmp_path / "run" / "summary.csv").read_text().splitlines()[1:]
    preds = (tmp_path / "a" / "predictions.csv").read_text().splitlines()[1:]
    got = [float(line.split(",")[6]) for line in summary]
    want = [float(line.split(",")[-2]) for line in preds]
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize(
    "csv_text, param, message",
    [
        ("stimulus.pairing.delta_tt,dw_percent\n10,1\n20,2\n", "rule.a_plus=1e-4:1e-1", "delta_tt"),
        ("frequency,dw_percent\n10,1\n20,2\n", "rule.a_plus=1e-4:1e-1", "not a dotted protocol path"),
        ("stimulus.pairing.pairs,dw_percent\n-3,1\n20,2\n", "rule.a_plus=1e-4:1e-1", "data row 1"),
        ("stimulus.pairing.delta_t,dw_percent\n10,1\n20,2\n", "rule.a_plus=1e-1:1e-4", "LO must be below HI"),
        ("stimulus.pairing.delta_t,dw_percent\n10,1\n20,2\n", "rule.a_plus=abc:1", "abc"),
        ("stimulus.pairing.delta_t,dw_percent\n10,1\n20,2\n", "rule.tau_plus=1 mV:2 mV", "expected a time unit"),
        ("stimulus.pairing.delta_t,dw_percent\n10,1\n20,2\n", "rule.a_plus=-1:1", "rejected"),
        ("stimulus.pairing.delta_t,dw_percent\n10,1\n20,2\n", "neuron.model=0:1", "neuron.model"),
        ("# only a comment\n", "rule.a_plus=1e-4:1e-1", "empty"),
        ("stimulus.pairing.delta_t,dw_percent\n10,x\n", "rule.a_plus=1e-4:1e-1", "not a number"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message_and_writes_nothing(cli, write, tmp_path, csv_text, param, message):
    proto = write("pair.yaml", PAIR)
    data = tmp_path / "bad.csv"
    data.write_text(csv_text)
    r = cli("fit", proto, "--data", data, "--param", param, "--out", tmp_path / "out")
    assert r.exit_code == 2, r.output
    assert message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()


def test_several_protocols_are_ranked_by_aic(cli, write, tmp_path):
    a = write("pair.yaml", PAIR)
    b = write("mult.yaml", PAIR.replace("name: pair", "name: nearest").replace("a_minus: 0.0105}", "a_minus: 0.0105, pairing: nearest}"))
    data = write_csv(tmp_path / "d.csv", DTS, [window(d, 0.01, 0.0105) for d in DTS], [0.1] * len(DTS))
    r = cli("fit", a, b, "--data", data, "--param", "rule.a_plus=1e-4:1e-1", "--out", tmp_path / "o", "--plot")
    assert r.exit_code == 0, r.output
    assert "AIC" in r.output and (tmp_path / "o" / "pair-fit" / "fit.json").is_file()
    assert (tmp_path / "o" / "pair-fit" / "plot.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "o" / "nearest-fit" / "fit.json").is_file()


def test_cmaes_finds_the_same_optimum(write, tmp_path):
    proto = write("pair.yaml", PAIR)
    data = write_csv(tmp_path / "d.csv", DTS, [window(d, 0.02, 0.004) for d in DTS], [0.1] * len(DTS))
    res = fit(proto, data, ["rule.a_plus=1e-4:1e-1", "rule.a_minus=1e-4:1e-1"], method="cmaes", seed=5)
    assert res.converged and res.method == "cmaes"
    assert res.x["rule.a_plus"] == pytest.approx(0.02, rel=1e-5)
    assert res.x["rule.a_minus"] == pytest.approx(0.004, rel=1e-5)


def test_stochastic_rule_uses_common_random_numbers(write, tmp_path):
    """Calcium with noise: the same parameters give the same value in every evaluation, and a
    small change of a parameter a small change of the model (the noise is the same)."""
    from plastictool.fitting.core import _load
    from plastictool.fitting.data import make_param

    proto = write("ca.yaml", """\
        name: ca
        seed: 7
        dt: 0.1 ms
        synapses: {n_pre: 1, n_post: 20, w_min: null, w_max: null}
        neuron: {model: clamped}
        stimulus:
          pairing: {pairs: 10, frequency: 5 Hz, delta_t: 10 ms}
        rule: {kind: calcium, preset: graupner2012_dp, rho_init: 0.5, tau: 2 s}
        record: {interval: 1 s}
        """)
    data = write_csv(tmp_path / "d.csv", [-10.0, 10.0], [0.0, 0.0])
    raw, lines, file, name, _, _ = _load(proto)
    free = [make_param("rule.theta_p", [1.1, 2.0], "calcium")]
    plan = make_plan(raw, lines, file, name, read_data(data), free)
    with Evaluator(plan) as ev:
        a = ev.model([[1.3]])[0]
        ev.cache.clear()
        b = ev.model([[1.3]])[0]
        c = ev.model([[1.3 + 1e-6]])[0]
        d = ev.model([[1.3 + 2e-6]])[0]
    assert a == b  # common random numbers: bit for bit
    assert all(x != y for x, y in zip(a, c))  # the threshold matters ...
    for x, y, z in zip(a, c, d):  # ... smoothly: no new noise, no whole steps
        assert abs(y - x) < 1e-3 * max(1.0, abs(x))
        assert (z - x) == pytest.approx(2 * (y - x), rel=1e-2)


def test_existing_output_folder_is_refused_before_fitting(cli, write, tmp_path):
    proto = write("pair.yaml", PAIR)
    data = write_csv(tmp_path / "d.csv", DTS, [window(d, 0.01, 0.0105) for d in DTS], [0.1] * len(DTS))
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("mine")
    r = cli("fit", proto, "--data", data, "--param", "rule.a_plus=1e-4:1e-1", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "exists" in r.output
    assert (tmp_path / "o" / "keep.txt").read_text() == "mine"


def test_python_api_fit_is_the_command(cli, write, tmp_path):
    """pt.fit with a dict of bounds and a loaded Experiment gives the fit of `plastic fit`; the
    name stays the function after the subpackage is imported; FitResult.write writes its folder."""
    import plastictool as pt
    import plastictool.fitting  # noqa: F401  (must not shadow pt.fit)

    proto = write("pair.yaml", PAIR)
    dts = [d for d in DTS if d > 0]
    data = write_csv(tmp_path / "d.csv", dts, [0.012 * window(d, 1.0, 0.0) for d in dts])
    res = pt.fit(pt.load(proto), data=data, params={"rule.a_plus": (1e-4, 1e-1)}, seed=1)
    assert isinstance(res, pt.FitResult) and res.converged
    assert res.x["rule.a_plus"] == pytest.approx(0.012, rel=1e-6)
    res.write(tmp_path / "api")
    r = cli("fit", proto, "--data", data, "--param", "rule.a_plus=1e-4:1e-1", "--seed", "1", "--out", tmp_path / "cli", "--quiet")
    assert r.exit_code == 0, r.output
    for name in ("predictions.csv", "fitted.yaml"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    a, c = (json.loads((tmp_path / d / "fit.json").read_text()) for d in ("api", "cli"))
    assert a["parameters"] == c["parameters"] and a["chi2"] == c["chi2"]
