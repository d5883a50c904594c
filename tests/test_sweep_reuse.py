"""Sweep conditions reuse the base's validated sections where no swept key reaches them
(``schema.Sections``): the conditions, and the errors, must be those of validating each
condition whole (``schema.REUSE_SECTIONS = False``, the twin)."""

from __future__ import annotations

from pathlib import Path

import pytest

from plastictool.errors import ProtocolError
from plastictool.protocol import schema

ROOT = Path(__file__).resolve().parent.parent
SWEEPS = sorted(p.name for p in (ROOT / "protocols").glob("*.yaml") if "\nsweep:" in p.read_text())

BASE = """\
name: t
synapses: {n_pre: 2, n_post: 1, w_init: 0.5}
stimulus:
  pairing: {pairs: 5, frequency: 1 Hz, delta_t: 10 ms}
rule: {kind: stdp, a_plus: 0.01}
record: {interval: 100 ms, state: [x_pre]}
"""

# sweeps over every section: the reused ones must equal what a whole validation gives
VARIANTS = [
    "sweep:\n  stimulus.pairing.delta_t: {from: -20 ms, to: 20 ms, step: 10 ms}\n",
    "sweep:\n  rule.a_plus: [0.01, 0.02]\n  stimulus.pairing.pairs: [3, 7]\n",
    "sweep:\n  mode: zip\n  synapses.w_init: [0.2, 0.8]\n  neuron.model: [clamped, clamped]\n",
    "sweep:\n  dt: [0.1, 0.05]\n",
    "sweep:\n  duration: [6000, 8000]\n",
    "sweep:\n  record.interval: [50 ms, 1 s]\n",
    "sweep:\n  synapses.n_pre: [1, 3]\n",
    "sweep:\n  stimulus.pairing.frequency: [1 Hz, 20 Hz]\n",
    "sweep:\n  description: [a, b]\n",
    "sweep:\n  block: [[], [NMDA]]\n",
    "sweep:\n  rule.preset: [bi_poo_1998, song2000_brian2]\n",
    "sweep:\n  rule.a_plus: [0.01, 0.02, 0.03]\n",
]

# a bad value in condition k: the same message (naming the condition), field, file and line
BAD = [
    "sweep:\n  stimulus.pairing.delta_t: [10 ms, 2 s]\n",
    "sweep:\n  rule.a_plus: [0.01, fast]\n",
    "sweep:\n  synapses.w_init: [0.5, 3]\n",
    "sweep:\n  neuron.model: [clamped, lif]\n",
    "sweep:\n  record.state: [[x_pre], [nope]]\n",
    "sweep:\n  stimulus.pairing.frequency: [1 Hz, 1e6 Hz]\n",
    "sweep:\n  block: [[], [PI3K]]\n",
    "sweep:\n  dt: [0.1, 10 s]\n",
    "sweep:\n  rule.kind: [stdp, triplet]\n",  # x_pre is not triplet's: the record is validated again
]


def both(path, *sets):
    """The experiment loaded with section reuse and without it."""
    old = schema.REUSE_SECTIONS
    try:
        schema.REUSE_SECTIONS = True
        fast = schema.load_experiment(path, sets)
        schema.REUSE_SECTIONS = False
        whole = schema.load_experiment(path, sets)
    finally:
        schema.REUSE_SECTIONS = old
    return fast, whole


def same(fast, whole):
    assert len(fast.conditions) == len(whole.conditions) > 1
    for a, b in zip(fast.conditions, whole.conditions):
        assert a.index == b.index and a.values == b.values
        assert a.protocol == b.protocol
        assert a.protocol.resolved == b.protocol.resolved
        assert a.protocol.resolved is not b.protocol.resolved


@pytest.mark.parametrize("name", SWEEPS)
def test_example_sweeps_equal_whole_validation(name):
    same(*both(ROOT / "protocols" / name))


@pytest.mark.parametrize("sweep", VARIANTS)
def test_sweeps_of_every_section_equal_whole_validation(write, sweep):
    same(*both(write("p.yaml", BASE + sweep)))


def test_overrides_and_sweeps_equal_whole_validation(write):
    same(*both(write("p.yaml", BASE + VARIANTS[0]), "rule.a_minus=0.02", "synapses.n_post=2"))


def test_conditions_own_their_resolved_sections(write):
    fast, _ = both(write("p.yaml", BASE + VARIANTS[1]))
    a, b = fast.conditions[0].protocol.resolved, fast.conditions[1].protocol.resolved
    for key in ("synapses", "neuron", "rule", "record"):
        assert a[key] is not b[key]
    a["rule"]["a_minus"] = 123.0  # a caller that edits one resolved protocol changes no other
    assert b["rule"]["a_minus"] != 123.0 and fast.base.resolved["rule"]["a_minus"] != 123.0


@pytest.mark.parametrize("sweep", BAD)
def test_errors_of_a_condition_are_those_of_whole_validation(write, sweep):
    path = write("p.yaml", BASE + sweep)
    got = []
    for reuse in (True, False):
        old = schema.REUSE_SECTIONS
        schema.REUSE_SECTIONS = reuse
        try:
            with pytest.raises(ProtocolError) as info:
                schema.load_experiment(path)
        finally:
            schema.REUSE_SECTIONS = old
        e = info.value
        got.append((str(e), e.field, e.file, e.line))
    assert got[0] == got[1]
