"""Bounded work before validation, and nonsense refused with a message that points the right way.

Every case here is refused by validation (exit 2): nothing is built, allocated or simulated."""

from __future__ import annotations

import os
import threading
import time

import pytest

from plastictool.errors import ProtocolError
from plastictool.protocol.schema import MAX_CONDITIONS, MAX_COUNT, load_experiment
from plastictool.protocol.yamlsrc import MAX_BYTES, MAX_DEPTH, load_file

BASE = """\
name: t
synapses: {n_pre: 2, n_post: 1}
stimulus:
  pairing: {pairs: 5, frequency: 1 Hz, delta_t: 10 ms}
rule: {kind: stdp}
"""


def error(write, text, *sets) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        load_experiment(write("p.yaml", text), sets)
    return info.value


# ---------------------------------------------------------------------------- reading
def test_a_grid_sweep_is_counted_before_any_condition_is_built(write, monkeypatch):
    import itertools

    def boom(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("conditions were built")

    monkeypatch.setattr(itertools, "product", boom)
    text = BASE + "sweep:\n" + "".join(f"  rule.{k}: {{from: 1, to: 1000, step: 1}}\n" for k in ("a_plus", "a_minus", "tau_plus"))
    t0 = time.perf_counter()
    exc = error(write, text)
    assert time.perf_counter() - t0 < 5  # counted, not built (1e9 conditions would take minutes)
    assert exc.field == "sweep" and exc.line == 6
    assert "1000000000 conditions (1000 x 1000 x 1000)" in exc.message and str(MAX_CONDITIONS) in exc.message


def test_zip_counts_equal_lengths_and_tiny_steps_are_refused(write):
    exc = error(write, BASE + "sweep:\n  mode: zip\n  rule.a_plus: [0.1, 0.2]\n  rule.a_minus: [0.1]\n")
    assert exc.field == "sweep.mode" and "2, 1" in exc.message
    exc = error(write, BASE + "sweep:\n  rule.a_plus: {from: 0, to: 1, step: 1e-300}\n")
    assert exc.field == "sweep.rule.a_plus" and "too many" in exc.message
    # at the limit is fine
    ok = load_experiment(write("q.yaml", BASE + "sweep:\n  rule.a_plus: {from: 0.001, to: 0.003, step: 0.001}\n"))
    assert len(ok.conditions) == 3


def test_protocol_files_are_read_at_most_16_mib(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_BYTES + 10))
    with pytest.raises(ProtocolError, match="larger than 16 MiB"):
        load_file(big)
    with pytest.raises(ProtocolError, match="more than 16 MiB"):
        load_file("/dev/zero")  # a character device with no end


def test_a_fifo_is_read_with_the_same_limit(tmp_path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    written = []

    def writer():
        try:
            with open(fifo, "wb") as fh:
                for _ in range(40):  # 40 MiB, more than the reader takes
                    fh.write(b"#" * 2**20)
                    written.append(1)
        except BrokenPipeError:
            pass

    th = threading.Thread(target=writer, daemon=True)
    th.start()
    with pytest.raises(ProtocolError, match="more than 16 MiB"):
        load_file(fifo)
    th.join(10)
    assert not th.is_alive() and len(written) < 40  # the reader stopped early


def test_symlink_loop_and_folder_are_named(tmp_path):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    with pytest.raises(ProtocolError, match="too many levels of symbolic links"):
        load_file(tmp_path / "a.yaml")
    with pytest.raises(ProtocolError, match="is a folder"):
        load_file(tmp_path)
    with pytest.raises(ProtocolError, match="no such file"):
        load_file(tmp_path / "missing.yaml")


def test_yaml_nesting_is_limited_with_the_line(write):
    deep = BASE + "description: " + "[" * 500 + "]" * 500 + "\n"
    exc = error(write, deep)
    assert exc.line == 6 and f"nested more than {MAX_DEPTH} levels deep" in exc.message
    block = BASE + "record:\n" + "".join("  " * (k + 1) + f"k{k}:\n" for k in range(100))
    exc = error(write, block)
    assert exc.line == 6 + MAX_DEPTH and "nested" in exc.message
    # nesting up to the limit is read (and then validated as usual)
    exc = error(write, BASE + "description: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "\n")  # + the top mapping
    assert exc.field == "description" and "nested" not in exc.message


def test_set_values_get_the_same_limits_and_name_the_option(write):
    exc = error(write, BASE, "rule.a_plus=" + "[" * 2000 + "]" * 2000)
    assert exc.file == "--set rule.a_plus" and "nested" in exc.message and exc.line is None
    exc = error(write, BASE, "rule.a_plus=!!python/name:os.system")
    assert exc.file == "--set rule.a_plus" and "not allowed" in exc.message
    exc = error(write, BASE, "rule.a_plus=[1")
    assert exc.file == "--set rule.a_plus" and "invalid YAML" in exc.message


# ---------------------------------------------------------------------------- counts
@pytest.mark.parametrize("path", ["synapses.n_pre", "synapses.n_post", "stimulus.pairing.pairs", "stimulus.pairing.post_spikes"])
def test_huge_counts_say_too_large(write, path):
    exc = error(write, BASE, f"{path}=1e12")
    assert exc.field == path and "too large" in exc.message and f"{MAX_COUNT:g}" in exc.message


def test_huge_count_in_the_file_blames_that_field_not_dt(write):
    exc = error(write, BASE.replace("pairs: 5", "pairs: 1.0e12"))
    assert exc.field == "stimulus.pairing.pairs" and exc.line == 4 and "too large" in exc.message


def test_integral_float_counts_are_fine(write):
    exp = load_experiment(write("p.yaml", BASE.replace("n_pre: 2", "n_pre: 1e3").replace("pairs: 5", "pairs: 5.0")))
    assert exp.base.synapses.n_pre == 1000 and exp.base.phases[0].pairing["pairs"] == 5
    exc = error(write, BASE.replace("n_pre: 2", "n_pre: 2.5"))
    assert exc.field == "synapses.n_pre" and "whole number" in exc.message


def test_long_runs_blame_what_makes_them_long(write):
    exc = error(write, BASE, "dt=1e-300")
    assert exc.field == "dt" and "too many steps" in exc.message
    exc = error(write, BASE + "duration: 1e300 s\n")
    assert exc.field == "duration" and "too many steps" in exc.message


def test_long_names_are_refused(write):
    exc = error(write, BASE.replace("name: t", "name: " + "a" * 101))
    assert exc.field == "name" and exc.line == 1 and "at most 100" in exc.message
    assert load_experiment(write("q.yaml", BASE.replace("name: t", "name: " + "a" * 100))).name == "a" * 100


def test_record_all_weights_is_refused_before_the_list_is_built(write):
    exc = error(write, BASE.replace("n_pre: 2", "n_pre: 100000000") + "record: {weights: all}\n")
    assert exc.field == "record.weights" and "100000000 weight columns" in exc.message


# ---------------------------------------------------------------------------- nonsense
def test_dt_longer_than_the_run(write):
    exc = error(write, BASE + "dt: 10 s\n")
    assert exc.field == "dt" and exc.line == 6 and "not a single step" in exc.message


def test_pairings_closer_than_dt(write):
    exc = error(write, BASE.replace("frequency: 1 Hz", "frequency: 100 kHz"))
    assert exc.field == "stimulus.pairing.frequency" and exc.line == 4 and "into one step" in exc.message
    exc = error(write, BASE.replace("delta_t: 10 ms", "delta_t: 10 ms, post_spikes: 3, post_frequency: 20 kHz"))
    assert exc.field == "stimulus.pairing.post_frequency" and "into one step" in exc.message
    text = BASE.replace("stimulus:\n  pairing: {pairs: 5, frequency: 1 Hz, delta_t: 10 ms}", "stimulus:\n  pre: {regular: {frequency: 20 kHz, pulses: 10}}")
    exc = error(write, text)
    assert exc.field == "stimulus.pre.regular.frequency" and "into one step" in exc.message


def test_delta_t_longer_than_the_phase_would_drop_spikes(write):
    exc = error(write, BASE.replace("delta_t: 10 ms", "delta_t: 1.5 s"))
    assert exc.field == "stimulus.pairing.delta_t" and exc.line == 4 and "would be dropped" in exc.message
    exc = error(write, BASE.replace("delta_t: 10 ms", "delta_t: -1.5 s"))
    assert exc.field == "stimulus.pairing.delta_t" and "pre spike" in exc.message
    phases = BASE.replace("stimulus:\n  pairing: {pairs: 5, frequency: 1 Hz, delta_t: 10 ms}", "phases:\n  - {duration: 2 s, pairing: {pairs: 5, frequency: 1 Hz, delta_t: 10 ms}}")
    exc = error(write, phases)
    assert exc.field == "phases.0.duration" and "would be dropped" in exc.message
    # just inside the phase is fine: the last post spike at 4.999 s of a 5 s phase
    load_experiment(write("ok.yaml", BASE.replace("delta_t: 10 ms", "delta_t: 999 ms")))


@pytest.mark.parametrize(
    "train, last",
    [
        ("regular: {frequency: 10 Hz, pulses: 25}", 2400),
        ("tetanus: {frequency: 100 Hz, duration: 1 s, trains: 2, interval: 1.5 s}", 2490),
        ("theta_burst: {bursts: 10, trains: 2, train_interval: 2 s}", 3830),
        ("times: [10, 500, 2000]", 2000),
    ],
)
def test_trains_longer_than_their_phase_would_drop_spikes(write, train, last):
    """A phase whose own duration cuts a train of fixed length is refused, naming the duration;
    a top-level duration that ends the run early is a deliberate cut and stays allowed."""
    text = "name: t\nsynapses: {n_pre: 1, n_post: 1}\nrule: {kind: stdp}\nphases:\n  - duration: 2 s\n    pre: {%s}\n" % train
    exc = error(write, text)
    assert exc.field == "phases.0.duration" and exc.line == 5 and f"at {last:g} ms" in exc.message and "would be dropped" in exc.message
    load_experiment(write("ok.yaml", text.replace("duration: 2 s", "duration: 4 s")))
    load_experiment(write("cut.yaml", text.replace("phases:\n  - duration: 2 s\n    pre:", "duration: 1 s\nstimulus:\n    pre:")))


@pytest.mark.parametrize(
    "w_init,bad",
    [("1.5", "1.5"), ("-0.1", "-0.1"), ("{uniform: [0.5, 2]}", "2"), ("[[0.5], [7]]", "7")],
)
def test_w_init_outside_the_bounds_is_refused(write, w_init, bad):
    exc = error(write, BASE.replace("n_post: 1}", f"n_post: 1, w_init: {w_init}}}"))
    assert exc.field == "synapses.w_init" and exc.line == 2 and f"{bad} is outside [w_min, w_max] = [0, 1]" in exc.message


def test_w_init_inside_unbounded_or_normal_is_fine(write):
    load_experiment(write("a.yaml", BASE.replace("n_post: 1}", "n_post: 1, w_init: 5, w_max: null}")))
    load_experiment(write("b.yaml", BASE.replace("n_post: 1}", "n_post: 1, w_init: {normal: [0.5, 2]}}")))


# ---------------------------------------------------------------------------- messages
def test_set_of_an_unknown_section_blames_the_option_not_line_1(write):
    exc = error(write, BASE, "nosuch.path=1")
    assert exc.file == "--set" and exc.line is None and exc.field == "nosuch" and "--set nosuch.path=1" in exc.message


def test_sweep_of_an_unknown_section_blames_the_sweep_line(write):
    exc = error(write, BASE + "sweep:\n  nosuch.path: [1, 2]\n")
    assert exc.line == 7 and exc.field == "nosuch"


@pytest.mark.parametrize(
    "setting,valid",
    [("rule.preset=nosuch", "bi_poo_1998"), ("record.state=[nosuch]", "x_pre"), ("block=[nosuch]", "NMDA"), ("neuron.model=nosuch", "clamped")],
)
def test_valid_lists_are_printed_once(write, setting, valid):
    exc = error(write, BASE, setting)
    assert exc.message.count(valid) == 1, exc.message
