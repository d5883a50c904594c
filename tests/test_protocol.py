"""Protocol loading and validation: units, defaults, errors with file, line and field."""

from __future__ import annotations

import math

import pytest

from plastictool.errors import ProtocolError
from plastictool.protocol.schema import load_experiment
from plastictool.protocol.units import UnitError, parse_quantity

BASE = """\
name: t
synapses: {n_pre: 2, n_post: 1}
stimulus:
  pairing: {pairs: 5, frequency: 1 Hz, delta_t: 10 ms}
rule: {kind: stdp}
"""


@pytest.mark.parametrize(
    "text,dim,want",
    [("16.8 ms", "time", 16.8), ("0.0168 s", "time", 16.8), (16.8, "time", 16.8), ("1 min", "time", 60000.0),
     ("2 h", "time", 7.2e6), ("500 us", "time", 0.5), ("1 kHz", "rate", 1000.0), ("60 /min", "rate", 1.0),
     ("5 /s", "rate", 5.0), ("-0.07 V", "voltage", -70.0), ("1e-3", "1", 0.001)],
)
def test_units_resolve_to_canonical(text, dim, want):
    assert parse_quantity(text, dim) == pytest.approx(want)


@pytest.mark.parametrize("text,dim", [("20 Hz", "time"), ("3 furlongs", "time"), ("fast", "rate"), ("1 ms", "1"), (True, "time"), ("inf ms", "time")])
def test_bad_quantities_are_refused(text, dim):
    with pytest.raises(UnitError):
        parse_quantity(text, dim)


def load(write, text, *sets):
    return load_experiment(write("p.yaml", text), sets)


def error(write, text, *sets) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        load(write, text, *sets)
    return info.value


def test_minimal_protocol_gets_documented_defaults(write):
    exp = load(write, BASE)
    p = exp.base
    assert p.dt == 0.1 and p.seed == 0
    assert p.duration == pytest.approx(5000.0)  # pairs / frequency
    assert p.synapses.w_min == 0.0 and p.synapses.w_max == 1.0
    assert p.neuron.model == "clamped"
    assert p.rule.values["tau_plus"] == 16.8 and p.rule.values["pairing"] == "all_to_all"
    assert p.record.weights == ((0, 0), (1, 0))
    assert p.record.interval == pytest.approx(5.0)


def test_same_value_in_three_spellings(write):
    for spelling in ("16.8 ms", "0.0168 s", "16.8"):
        exp = load(write, BASE.replace("{kind: stdp}", "{kind: stdp, tau_plus: %s}" % spelling))
        assert exp.base.rule.values["tau_plus"] == pytest.approx(16.8)


@pytest.mark.parametrize(
    "edit,field,line,words",
    [
        (("{kind: stdp}", "{kind: stdp, tau_plus: 20 Hz}"), "rule.tau_plus", 5, "is a rate"),
        (("{kind: stdp}", "{kind: stdp, tau_pluss: 20 ms}"), "rule.tau_pluss", 5, "did you mean 'tau_plus'"),
        (("{kind: stdp}", "{kind: sdtp}"), "rule.kind", 5, "did you mean 'stdp'"),
        (("n_pre: 2,", "n_pre: -2,"), "synapses.n_pre", 2, "must be >= 1"),
        (("n_pre: 2,", "n_pre: 2, n_psot: 1,"), "synapses.n_psot", 2, "did you mean 'n_post'"),
        (("delta_t: 10 ms", "delta_t: 10 ms, pairz: 3"), "stimulus.pairing.pairz", 4, "did you mean 'pairs'"),
        (("name: t", "name: t\nrecrod: {}"), "recrod", 2, "did you mean 'record'"),
        (("{kind: stdp}", "{kind: stdp, preset: nope}"), "rule.preset", 5, "bi_poo_1998"),
        (("{kind: stdp}", "{kind: stdp, weight_dependence: multiplicative}\nsynapses_extra: 1"), "synapses_extra", 6, "unknown key"),
        (("name: t", "name: t\nblock: [mTOR]"), "block.0", 2, "blockable components: NMDA"),
    ],
)
def test_errors_name_file_line_and_field(write, edit, field, line, words):
    exc = error(write, BASE.replace(*edit))
    assert exc.field == field
    assert exc.line == line
    assert exc.file.endswith("p.yaml")
    assert words in exc.message
    assert f"p.yaml:{line}: {field}:" in str(exc)


def test_yaml_syntax_error_has_a_line(write):
    exc = error(write, BASE + "rule: [unclosed\n")
    assert exc.line is not None and "invalid YAML" in exc.message


@pytest.mark.parametrize("payload", ["!!python/object/apply:os.system ['echo hi']", "!!python/name:os.system", "!custom 3"])
def test_object_tags_are_refused(write, payload):
    exc = error(write, BASE.replace("name: t", f"name: {payload}"))
    assert "tag" in exc.message and exc.field == "name"


def test_aliases_are_refused(write):
    text = "a: &x [1, 2]\n" + BASE.replace("name: t", "name: *x")
    exc = error(write, text)
    assert "alias" in exc.message or "unknown key" in exc.message


def test_duplicate_keys_are_errors(write):
    exc = error(write, BASE + "seed: 1\nseed: 2\n")
    assert "duplicate key" in exc.message and exc.line == 7


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ProtocolError, match="no such file"):
        load_experiment(tmp_path / "nope.yaml")


def test_set_overrides_are_validated_like_the_file(write):
    exp = load(write, BASE, "rule.a_plus=0.02", "stimulus.pairing.delta_t=-5 ms")
    assert exp.base.rule.values["a_plus"] == 0.02
    assert exp.base.phases[0].pairing["delta_t"] == -5.0
    exc = error(write, BASE, "rule.a_plus=-1")
    assert exc.file == "--set" and exc.field == "rule.a_plus" and "must be >= 0" in exc.message


def test_sweep_grid_and_zip(write):
    grid = BASE + "sweep:\n  rule.a_plus: [0.01, 0.02]\n  stimulus.pairing.delta_t: {from: -10 ms, to: 10 ms, step: 10 ms}\n"
    exp = load(write, grid)
    assert len(exp.conditions) == 6
    assert exp.conditions[1].values == (("rule.a_plus", 0.01), ("stimulus.pairing.delta_t", 0.0))
    zipped = BASE + "sweep:\n  mode: zip\n  rule.a_plus: [0.01, 0.02]\n  stimulus.pairing.delta_t: [0.5 s, 2 ms]\n"
    exp = load(write, zipped)
    assert [c.values[1][1] for c in exp.conditions] == [500.0, 2.0]


def test_sweep_errors_point_at_the_sweep_line(write):
    exc = error(write, BASE + "sweep:\n  rule.a_plus: [0.01, -3]\n")
    assert exc.line == 7 and exc.field == "rule.a_plus" and "condition 1" in exc.message
    exc = error(write, BASE + "sweep:\n  mode: zip\n  rule.a_plus: [1, 2]\n  rule.a_minus: [1]\n")
    assert "equal length" in exc.message


def test_unbounded_weights_and_null_bounds(write):
    exp = load(write, BASE.replace("n_pre: 2, n_post: 1", "n_pre: 2, n_post: 1, w_min: null, w_max: null"))
    assert exp.base.synapses.w_min == -math.inf and exp.base.synapses.w_max == math.inf
    exc = error(write, BASE.replace("n_pre: 2, n_post: 1", "n_pre: 2, n_post: 1, w_max: null").replace("{kind: stdp}", "{kind: stdp, weight_dependence: gutig}"))
    assert "finite w_min and w_max" in exc.message


def test_rule_and_neuron_must_fit(write):
    exc = error(write, BASE.replace("{kind: stdp}", "{kind: oja}"))
    assert exc.field == "neuron.model" and "rate" in exc.message
    exc = error(write, BASE.replace("name: t", "name: t\nneuron: {model: clamped, tau_m: 5 ms}"))
    assert "belongs to model: lif" in exc.message


def test_sizes_that_cannot_fit_are_refused_up_front(write, monkeypatch):
    monkeypatch.setenv("PLASTIC_MAX_MEMORY", str(2**30))
    from plastictool.api import validate_file

    p = write("big.yaml", BASE.replace("n_pre: 2, n_post: 1", "n_pre: 100000, n_post: 10000"))
    with pytest.raises(ProtocolError) as info:
        validate_file(p)
    assert "GiB" in info.value.message and info.value.field == "synapses.n_pre"


def test_phases_concatenate_and_rest_phases_need_a_duration(write):
    text = """\
synapses: {n_pre: 1}
phases:
  - {name: base, duration: 1 min}
  - {name: ind, pre: {tetanus: {trains: 3, interval: 10 s}}}
  - {name: post, duration: 2 min, block: [NMDA]}
rule: {kind: stdp}
"""
    p = load(write, text).base
    assert [ph.start for ph in p.phases] == [0.0, 60000.0, 60000.0 + 21000.0]
    assert p.duration == pytest.approx(60000 + 21000 + 120000)
    assert p.phases[2].block == ("NMDA",)
    exc = error(write, text.replace("{name: base, duration: 1 min}", "{name: base}"))
    assert exc.field == "phases.0.duration"
