"""A campaign of bad inputs, as a new user would type them: every one ends with exit 2 (bad input)
or 3 (the simulation failed), a message that names the file and line (or the option), no
traceback, and no output folder."""

from __future__ import annotations

import os
import re

import pytest

BASE = """\
name: p
seed: 1
dt: 0.1 ms
synapses: {n_pre: 2, n_post: 1, w_init: 0.5}
neuron: {model: clamped}
stimulus:
  pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}
rule: {kind: stdp, a_plus: 0.01}
record: {state: [x_pre]}
"""
# (id, [(old, new), ...] edits of BASE, line the message must name (None: any line))
EDITS = [
    ("unknown-top-key", [("seed: 1", "seed: 1\nsede: 2")], 3),
    ("typo-section", [("record:", "recrod:")], 9),
    ("description-mapping", [("seed: 1", "seed: 1\ndescription: {a: 1}")], 3),
    ("seed-negative", [("seed: 1", "seed: -1")], 2),
    ("seed-fraction", [("seed: 1", "seed: 1.5")], 2),
    ("seed-text", [("seed: 1", "seed: one")], 2),
    ("name-slash", [("name: p", "name: a/b")], 1),
    ("name-dots", [("name: p", "name: '..'")], 1),
    ("name-300", [("name: p", "name: " + "x" * 300)], 1),
    ("name-unicode", [("name: p", "name: r\u00e9sultat")], 1),
    ("dt-zero", [("dt: 0.1 ms", "dt: 0")], 3),
    ("dt-negative", [("dt: 0.1 ms", "dt: -1 ms")], 3),
    ("dt-wrong-unit", [("dt: 0.1 ms", "dt: 1 Hz")], 3),
    ("dt-unknown-unit", [("dt: 0.1 ms", "dt: 1 furlong")], 3),
    ("dt-longer-than-run", [("dt: 0.1 ms", "dt: 10 s")], 3),
    ("dt-tiny", [("dt: 0.1 ms", "dt: 1e-300 ms")], 3),
    ("dt-inf", [("dt: 0.1 ms", "dt: .inf")], 3),
    ("dt-nan", [("dt: 0.1 ms", "dt: .nan")], 3),
    ("duration-zero", [("dt: 0.1 ms", "dt: 0.1 ms\nduration: 0 s")], 4),
    ("duration-huge", [("dt: 0.1 ms", "dt: 0.1 ms\nduration: 1e300 s")], 4),
    ("synapses-missing", [("synapses: {n_pre: 2, n_post: 1, w_init: 0.5}\n", "")], None),
    ("synapses-list", [("synapses: {n_pre: 2, n_post: 1, w_init: 0.5}", "synapses: [1, 2]")], 4),
    ("n-pre-zero", [("n_pre: 2", "n_pre: 0")], 4),
    ("n-pre-negative", [("n_pre: 2", "n_pre: -3")], 4),
    ("n-pre-fraction", [("n_pre: 2", "n_pre: 2.5")], 4),
    ("n-pre-text", [("n_pre: 2", "n_pre: two")], 4),
    ("n-pre-huge", [("n_pre: 2", "n_pre: 1e12")], 4),
    ("n-pre-huge-float", [("n_pre: 2", "n_pre: 1.0e15")], 4),
    ("n-pre-bool", [("n_pre: 2", "n_pre: true")], 4),
    ("n-post-huge", [("n_post: 1", "n_post: 99999999999")], 4),
    ("w-init-above", [("w_init: 0.5", "w_init: 2")], 4),
    ("w-init-below", [("w_init: 0.5", "w_init: -1")], 4),
    ("w-init-uniform-outside", [("w_init: 0.5", "w_init: {uniform: [0.5, 3]}")], 4),
    ("w-init-uniform-reversed", [("w_init: 0.5", "w_init: {uniform: [0.9, 0.1]}")], 4),
    ("w-init-normal-sd", [("w_init: 0.5", "w_init: {normal: [0.5, -1]}")], 4),
    ("w-init-bad-kind", [("w_init: 0.5", "w_init: {gamma: [1, 2]}")], 4),
    ("w-init-matrix-shape", [("w_init: 0.5", "w_init: [[0.5, 0.5]]")], 4),
    ("w-init-matrix-outside", [("w_init: 0.5", "w_init: [[0.5], [1.5]]")], 4),
    ("w-bounds-reversed", [("w_init: 0.5", "w_init: 0.5, w_min: 1, w_max: 0")], 4),
    ("dtype-bad", [("w_init: 0.5", "w_init: 0.5, dtype: float16")], 4),
    ("neuron-model-bad", [("model: clamped", "model: hodgkin")], 5),
    ("neuron-lif-key-on-clamped", [("model: clamped", "model: clamped, tau_m: 5 ms")], 5),
    ("neuron-lif-reset-above", [("model: clamped", "model: lif, v_reset: -50 mV")], 5),
    ("rule-missing-kind", [("kind: stdp, ", "")], 8),
    ("rule-kind-bad", [("kind: stdp", "kind: sdtp")], 8),
    ("rule-param-unknown", [("a_plus: 0.01", "a_pluss: 0.01")], 8),
    ("rule-param-unit", [("a_plus: 0.01", "tau_plus: 20 Hz")], 8),
    ("rule-param-text", [("a_plus: 0.01", "a_plus: lots")], 8),
    ("rule-preset-bad", [("a_plus: 0.01", "preset: nosuch")], 8),
    ("rule-needs-rate-neuron", [("kind: stdp, a_plus: 0.01", "kind: oja")], None),
    ("rule-multiplicative-unbounded", [("w_init: 0.5", "w_init: 0.5, w_max: null"), ("a_plus: 0.01", "weight_dependence: multiplicative")], 8),
    ("pairs-zero", [("pairs: 5", "pairs: 0")], 7),
    ("pairs-huge", [("pairs: 5", "pairs: 1e12")], 7),
    ("pairs-huge-float", [("pairs: 5", "pairs: 1.0e12")], 7),
    ("pairing-frequency-zero", [("frequency: 10 Hz", "frequency: 0 Hz")], 7),
    ("pairing-frequency-above-dt", [("frequency: 10 Hz", "frequency: 100 kHz")], 7),
    ("pairing-delta-missing", [(", delta_t: 10 ms", "")], 7),
    ("pairing-delta-past-phase", [("delta_t: 10 ms", "delta_t: 150 ms")], 7),
    ("pairing-delta-negative-past-phase", [("delta_t: 10 ms", "delta_t: -150 ms")], 7),
    ("pairing-burst-dt", [("delta_t: 10 ms", "delta_t: 10 ms, post_spikes: 3, post_frequency: 50 kHz")], 7),
    ("pairing-burst-zero", [("delta_t: 10 ms", "delta_t: 10 ms, pre_spikes: 0")], 7),
    ("pairing-unknown-key", [("delta_t: 10 ms", "delta_t: 10 ms, repeats: 3")], 7),
    ("pairing-on-lif", [("model: clamped", "model: lif")], 7),
    ("stimulus-and-phases", [("rule:", "phases: [{duration: 1 s}]\nrule:")], 8),
    ("phases-empty", [("stimulus:\n  pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "phases: []")], 6),
    ("phases-duplicate-name", [("stimulus:\n  pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "phases:\n  - {name: a, duration: 1 s}\n  - {name: a, duration: 1 s}")], 8),
    ("phase-rest-no-duration", [("stimulus:\n  pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "phases:\n  - {name: a}")], 7),
    ("phase-duration-cuts-pairing", [("stimulus:\n  pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "phases:\n  - {duration: 200 ms, pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}}")], 7),
    ("poisson-no-end", [("pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "pre: {poisson: {rate: 10 Hz}}")], 6),
    ("poisson-negative-rate", [("pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "duration: 1 s\n  pre: {poisson: {rate: -10 Hz}}")], 8),
    ("regular-above-dt", [("pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "pre: {regular: {frequency: 50 kHz, pulses: 10}}")], 7),
    ("regular-pulses-and-stop", [("pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "pre: {regular: {frequency: 10 Hz, pulses: 10, stop: 1 s}}")], 7),
    ("train-unknown", [("pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "pre: {burst: {frequency: 10 Hz}}")], 7),
    ("times-negative", [("pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "pre: {times: [10 ms, -5 ms]}")], 7),
    ("times-bad-index", [("pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "pre: {times: {7: [10 ms]}}")], 7),
    ("patterns-for-stdp", [("pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "pre: {patterns: {vectors: [[1, 0]], presentation: 1 s}}")], 7),
    ("tetanus-trains-huge", [("pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}", "pre: {tetanus: {trains: 1e12}}")], 7),
    ("record-interval-zero", [("record: {state: [x_pre]}", "record: {interval: 0 ms}")], 9),
    ("record-weights-pair", [("record: {state: [x_pre]}", "record: {weights: [[0]]}")], 9),
    ("record-weights-outside", [("record: {state: [x_pre]}", "record: {weights: [[5, 0]]}")], 9),
    ("record-weights-all-huge", [("n_pre: 2", "n_pre: 100000"), ("record: {state: [x_pre]}", "record: {weights: all}")], 9),
    ("record-stats-bad", [("record: {state: [x_pre]}", "record: {stats: [median]}")], 9),
    ("record-state-bad", [("record: {state: [x_pre]}", "record: {state: [v]}")], 9),
    ("record-spikes-bad", [("record: {state: [x_pre]}", "record: {spikes: maybe}")], 9),
    ("block-bad", [("record:", "block: [mTOR]\nrecord:")], 9),
    ("sweep-empty", [("record: {state: [x_pre]}", "record: {state: [x_pre]}\nsweep: {}")], 10),
    ("sweep-mode-bad", [("record: {state: [x_pre]}", "record: {state: [x_pre]}\nsweep: {mode: cross, rule.a_plus: [0.1]}")], 10),
    ("sweep-zip-unequal", [("record: {state: [x_pre]}", "record: {state: [x_pre]}\nsweep: {mode: zip, rule.a_plus: [0.1, 0.2], rule.a_minus: [0.1]}")], 10),
    ("sweep-step-zero", [("record: {state: [x_pre]}", "record: {state: [x_pre]}\nsweep:\n  rule.a_plus: {from: 0, to: 1, step: 0}")], 11),
    ("sweep-to-below-from", [("record: {state: [x_pre]}", "record: {state: [x_pre]}\nsweep:\n  rule.a_plus: {from: 1, to: 0, step: 0.1}")], 11),
    ("sweep-huge-grid", [("record: {state: [x_pre]}", "record: {state: [x_pre]}\nsweep:\n  rule.a_plus: {from: 0, to: 1, step: 0.001}\n  rule.a_minus: {from: 0, to: 1, step: 0.001}\n  rule.tau_plus: {from: 1, to: 100, step: 0.1}")], 10),
    ("sweep-name", [("record: {state: [x_pre]}", "record: {state: [x_pre]}\nsweep: {name: [a, b]}")], 10),
    ("sweep-unknown-path", [("record: {state: [x_pre]}", "record: {state: [x_pre]}\nsweep: {nosuch.path: [1, 2]}")], 10),
    ("sweep-bad-value", [("record: {state: [x_pre]}", "record: {state: [x_pre]}\nsweep: {rule.a_plus: [0.1, lots]}")], 10),
    ("sweep-delta-past-phase", [("record: {state: [x_pre]}", "record: {state: [x_pre]}\nsweep: {stimulus.pairing.delta_t: [10 ms, 500 ms]}")], 10),
    ("yaml-syntax", [("rule: {kind: stdp, a_plus: 0.01}", "rule: {kind: stdp, a_plus: 0.01")], None),
    ("yaml-tab", [("record: {state: [x_pre]}", "record:\n\tstate: [x_pre]")], 10),
    ("yaml-tag", [("seed: 1", "seed: !!python/object/apply:os.getpid []")], 2),
    ("yaml-alias", [("seed: 1", "seed: &s 1\ndescription: *s")], 3),
    ("yaml-merge", [("neuron: {model: clamped}", "neuron: {<<: {model: clamped}}")], 5),
    ("yaml-duplicate", [("seed: 1", "seed: 1\nseed: 2")], 3),
    ("yaml-deep", [("seed: 1", "seed: 1\ndescription: " + "[" * 400 + "]" * 400)], 3),
    ("yaml-deep-block", [("seed: 1", "seed: 1\ndescription:\n" + "".join("  " * (k + 1) + f"- a{k}:\n" for k in range(80)))], None),
    ("yaml-not-mapping", [(BASE, "- 1\n- 2\n")], 1),
]
SETS = [
    ("set-unknown-section", ["nosuch.path=1"]),
    ("set-no-equals", ["novalue"]),
    ("set-empty-path", ["=1"]),
    ("set-deep", ["rule.a_plus=" + "[" * 3000 + "]" * 3000]),
    ("set-tag", ["rule.a_plus=!!python/name:os.system"]),
    ("set-bad-yaml", ["rule.a_plus=[1"]),
    ("set-n-pre-huge", ["synapses.n_pre=1e12"]),
    ("set-dt-long", ["dt=1 s"]),
    ("set-preset", ["rule.preset=nosuch"]),
    ("set-state", ["record.state=[nosuch]"]),
    ("set-block", ["block=[nosuch]"]),
    ("set-pairs-zero", ["stimulus.pairing.pairs=0"]),
    ("set-list-index", ["phases.5.duration=1"]),
    ("set-into-value", ["name.x=1"]),
    ("set-w-init", ["synapses.w_init=2"]),
    ("set-name-long", ["name=" + "n" * 200]),
]


def _check(r, out, where):
    text = r.output
    assert r.exit_code in (2, 3), f"exit {r.exit_code}: {text}"
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in text and "RuntimeWarning" not in text, text
    assert re.search(where, text), f"no location {where!r} in: {text}"
    assert not os.path.exists(out)


def _edit(edits):
    text = BASE
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize("edits,line", [pytest.param(e, ln, id=i) for i, e, ln in EDITS])
def test_bad_protocol(cli, write, tmp_path, edits, line):
    p = write("p.yaml", _edit(edits))
    out = tmp_path / "out"
    r = cli("run", p, "--out", out, "--quiet")
    _check(r, out, rf"p\.yaml:{line if line is not None else r'[0-9]+'}:")
    assert r.exit_code == 2


@pytest.mark.parametrize("sets", [pytest.param(s, id=i) for i, s in SETS])
def test_bad_set(cli, write, tmp_path, sets):
    p = write("p.yaml", BASE)
    out = tmp_path / "out"
    args = [a for s in sets for a in ("--set", s)]
    r = cli("run", p, "--out", out, "--quiet", *args)
    _check(r, out, r"--set")
    assert r.exit_code == 2 and "p.yaml:1:" not in r.output


def _special_paths(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(tmp_path / "loop2.yaml")
    (tmp_path / "loop2.yaml").symlink_to(loop)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"name: p\n\xff\xfe\x00junk")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    comments = tmp_path / "comments.yaml"
    comments.write_text("# nothing here\n")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (17 * 2**20) + b"\n")
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    return {
        "missing": (tmp_path / "missing.yaml", "no such file"),
        "loop": (loop, "too many levels of symbolic links"),
        "binary": (binary, "not UTF-8"),
        "empty": (empty, "empty"),
        "comments": (comments, "empty"),
        "big": (big, "16 MiB"),
        "folder": (folder, "is a folder"),
        "dev-zero": ("/dev/zero", "16 MiB"),
    }


@pytest.mark.parametrize("which", ["missing", "loop", "binary", "empty", "comments", "big", "folder", "dev-zero"])
def test_bad_path(cli, tmp_path, which):
    path, words = _special_paths(tmp_path)[which]
    out = tmp_path / "out"
    r = cli("run", path, "--out", out, "--quiet")
    _check(r, out, re.escape(f"{path}:"))
    assert r.exit_code == 2 and words in r.output


def test_blow_up_is_exit_3_without_numpy_warnings(cli, write, tmp_path):
    text = """\
name: blowup
dt: 1 ms
synapses: {n_pre: 1, n_post: 1, w_init: 1.0, w_min: null, w_max: null}
neuron: {model: rate}
stimulus:
  duration: 10 s
  pre: {patterns: {vectors: [[10]], presentation: 1 s}}
rule: {kind: hebb, eta: 1000 /s}
"""
    out = tmp_path / "out"
    r = cli("run", write("p.yaml", text), "--out", out, "--quiet")
    assert r.exit_code == 3 and "became" in r.output and "RuntimeWarning" not in r.output
    assert not out.exists()


def test_json_report_on_bad_input(cli, write, tmp_path):
    import json

    out = tmp_path / "out"
    r = cli("run", write("p.yaml", _edit([("n_pre: 2", "n_pre: 1e12")])), "--out", out, "--json")
    assert r.exit_code == 2
    doc = json.loads(r.stdout[r.stdout.index("{"):])
    assert doc["status"] == 2 and "too large" in doc["runs"][0]["message"]
    assert not out.exists()
