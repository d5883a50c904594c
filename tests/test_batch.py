"""Batch runs: several protocols, --out DIR/<name>/, worst exit status, --fail-fast, --json,
--jobs (byte-identical results), seeds that do not depend on the other conditions, Ctrl-C."""

from __future__ import annotations

import json

PAIR = """\
name: pair
seed: 3
dt: 0.1 ms
synapses: {n_pre: 1, n_post: 1, w_init: 0.5, w_min: 0, w_max: 1}
neuron: {model: clamped}
stimulus:
  pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}
rule: {kind: stdp, preset: bi_poo_1998}
record: {interval: 100 ms}
"""

# stochastic: Poisson pre and post trains and random initial weights, per condition
POISSON = """\
name: poisson
seed: 11
dt: 0.1 ms
duration: 500 ms
synapses: {n_pre: 4, n_post: 1, w_init: {uniform: [0.2, 0.8]}, w_min: 0, w_max: 1}
neuron: {model: clamped}
stimulus:
  pre: {poisson: {rate: 20 Hz}}
  post: {poisson: {rate: 10 Hz}}
rule: {kind: stdp, a_plus: 0.01, a_minus: 0.012}
record: {interval: 100 ms}
sweep:
  rule.a_plus: VALUES
"""

BAD = PAIR.replace("name: pair", "name: bad").replace("{kind: stdp, preset: bi_poo_1998}", "{kind: stdp, tau_plus: 20 Hz}")
FILES = ("summary.csv", "traces.csv", "spikes.csv")


def poisson(values):
    return POISSON.replace("VALUES", json.dumps(values))


def test_several_protocols_write_to_out_name(cli, write, tmp_path):
    a = write("a.yaml", PAIR)
    b = write("b.yaml", poisson([0.01, 0.02]))
    out = tmp_path / "results"
    r = cli("run", a, b, "--out", out, "--jobs", "1")
    assert r.exit_code == 0, r.output
    assert sorted(x.name for x in out.iterdir()) == ["pair", "poisson"]
    for name in ("pair", "poisson"):
        assert sorted(x.name for x in (out / name).iterdir()) == ["run.json", "spikes.csv", "summary.csv", "traces.csv"]
    # one protocol: --out is the folder itself
    r = cli("run", a, "--out", tmp_path / "one", "--jobs", "1")
    assert r.exit_code == 0 and (tmp_path / "one" / "summary.csv").is_file()


def test_json_report_has_folder_status_counts_and_wall_time(cli, write, tmp_path):
    a = write("a.yaml", PAIR)
    b = write("b.yaml", poisson([0.01, 0.02]))
    r = cli("run", a, b, "--out", tmp_path / "o", "--json", "--jobs", "1")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # stdout is only the JSON report
    assert doc["status"] == 0 and doc["skipped"] == []
    one, two = doc["runs"]
    assert one["out"] == str(tmp_path / "o" / "pair") and two["out"] == str(tmp_path / "o" / "poisson")
    assert one["status"] == 0 and one["conditions"] == 1 and two["conditions"] == 2
    assert one["counts"] == {"steps": 5000, "pre_spikes": 5, "post_spikes": 5, "synaptic_updates": 10}
    assert one["wall_s"] > 0 and one["workers"] == 0 and one["check"] is None
    assert set(one) >= {"file", "name", "out", "status", "message", "conditions", "counts", "wall_s", "profile"}


def test_quiet_prints_nothing_on_success(cli, write, tmp_path):
    r = cli("run", write("a.yaml", PAIR), "--out", tmp_path / "o", "--quiet")
    assert r.exit_code == 0 and r.output == ""


def test_exit_status_is_the_worst_and_fail_fast_stops(cli, write, tmp_path):
    good = write("good.yaml", PAIR)
    bad = write("bad.yaml", BAD)
    other = write("other.yaml", poisson([0.01]))
    r = cli("run", good, bad, other, "--out", tmp_path / "all", "--json", "--jobs", "1")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert [x["status"] for x in doc["runs"]] == [0, 2, 0] and doc["status"] == 2 and doc["skipped"] == []
    assert "bad.yaml:8: rule.tau_plus:" in r.stderr
    assert sorted(x.name for x in (tmp_path / "all").iterdir()) == ["pair", "poisson"]

    r = cli("run", good, bad, other, "--out", tmp_path / "ff", "--json", "--fail-fast", "--jobs", "1")
    assert r.exit_code == 2
    doc = json.loads(r.stdout)
    assert [x["status"] for x in doc["runs"]] == [0, 2] and doc["skipped"] == [str(other)]
    assert "--fail-fast" in r.stderr
    assert sorted(x.name for x in (tmp_path / "ff").iterdir()) == ["pair"]


def test_fail_fast_also_stops_on_a_baseline_difference(cli, write, tmp_path):
    a = write("a.yaml", PAIR)
    b = write("b.yaml", poisson([0.01]))
    assert cli("run", a, b, "--out", tmp_path / "base", "--quiet").exit_code == 0
    summary = tmp_path / "base" / "pair" / "summary.csv"
    summary.write_text(summary.read_text().replace("0.5,", "0.25,", 1))
    r = cli("run", a, b, "--out", tmp_path / "new", "--check", tmp_path / "base", "--fail-fast", "--quiet")
    assert r.exit_code == 1, r.output
    assert not (tmp_path / "new" / "poisson").exists()
    r = cli("run", a, b, "--out", tmp_path / "new2", "--check", tmp_path / "base", "--quiet")
    assert r.exit_code == 1 and (tmp_path / "new2" / "poisson" / "summary.csv").is_file()


def test_jobs_2_gives_byte_identical_files(cli, write, tmp_path, monkeypatch):
    from plastictool.simulation import parallel

    monkeypatch.setattr(parallel, "WORKER_MIN_S", 0.0)  # force workers for this small sweep
    p = write("p.yaml", poisson([0.005, 0.01, 0.015, 0.02, 0.025]))
    r1 = cli("run", p, "--out", tmp_path / "j1", "--jobs", "1", "--json")
    r2 = cli("run", p, "--out", tmp_path / "j2", "--jobs", "2", "--json")
    assert r1.exit_code == 0 and r2.exit_code == 0, r2.output
    assert json.loads(r1.stdout)["runs"][0]["workers"] == 0
    assert json.loads(r2.stdout)["runs"][0]["workers"] == 2
    for f in FILES:
        assert (tmp_path / "j1" / f).read_bytes() == (tmp_path / "j2" / f).read_bytes(), f
    m1 = json.loads((tmp_path / "j1" / "run.json").read_text())
    m2 = json.loads((tmp_path / "j2" / "run.json").read_text())
    assert m1["counts"] == m2["counts"] and m1["resolved_sha256"] == m2["resolved_sha256"]


def test_workers_are_used_only_when_they_pay_off(write):
    from plastictool import api
    from plastictool.simulation import parallel

    small = api.validate_file(write("p.yaml", poisson([0.01, 0.02, 0.03])))
    one = api.validate_file(write("one.yaml", PAIR))
    assert parallel.plan_workers(small.conditions, 8) == 0  # milliseconds of work: in-process
    assert parallel.plan_workers(one.conditions, 8) == 0  # one condition
    big = api.validate_file(write("big.yaml", poisson([0.01, 0.02, 0.03])), ["duration=10000 s"])
    assert parallel.plan_workers(big.conditions, 1) == 0  # --jobs 1
    assert parallel.plan_workers(big.conditions, 2) == 2
    assert parallel.plan_workers(big.conditions, 8) == 3  # at most one per condition


def test_a_condition_error_is_the_same_with_workers(cli, write, tmp_path, monkeypatch):
    from plastictool.simulation import parallel

    monkeypatch.setattr(parallel, "WORKER_MIN_S", 0.0)
    text = """\
    name: blowup
    seed: 1
    dt: 1 ms
    synapses: {n_pre: 2, n_post: 1, w_init: 0.1, w_min: null, w_max: null}
    neuron: {model: rate, activation: linear}
    stimulus: {duration: 1 s, pre: {gaussian: {mean: [1, 1], cov: [[1, 0], [0, 1]]}}}
    rule: {kind: hebb, eta: 0.1 /s, decay: 0 /s}
    record: {interval: 100 ms}
    sweep: {rule.eta: [0.1, 1.0e+5, 0.2, 2.0e+5]}
    """
    p = write("blowup.yaml", text)
    r1 = cli("run", p, "--out", tmp_path / "e1", "--jobs", "1")
    r2 = cli("run", p, "--out", tmp_path / "e2", "--jobs", "2")
    assert r1.exit_code == r2.exit_code == 3
    assert r1.stderr == r2.stderr
    assert list(tmp_path.glob("e*")) == [] and list(tmp_path.glob(".e*")) == []


def test_adding_a_condition_keeps_the_other_conditions_results(cli, write, tmp_path):
    a = write("a.yaml", poisson([0.01, 0.02]))
    b = write("b.yaml", poisson([0.01, 0.015, 0.02]))
    assert cli("run", a, "--out", tmp_path / "a", "--jobs", "1", "--quiet").exit_code == 0
    assert cli("run", b, "--out", tmp_path / "b", "--jobs", "1", "--quiet").exit_code == 0

    def rows(path, by):
        lines = (path).read_text().splitlines()[1:]
        out = {}
        for line in lines:
            cells = line.split(",")
            key = cells[0] if by == "first" else cells[-1]
            out.setdefault(key, []).append(",".join(cells[1:] if by == "first" else cells[:-1]))
        return out

    sa, sb = rows(tmp_path / "a" / "summary.csv", "first"), rows(tmp_path / "b" / "summary.csv", "first")
    assert sa["0.01"] == sb["0.01"] and sa["0.02"] == sb["0.02"]
    assert sa["0.01"] != sa["0.02"]  # stochastic: each condition has its own draws
    # traces and spikes carry the condition index: 0 -> 0 and 1 -> 2
    for f in ("traces.csv", "spikes.csv"):
        ra, rb = rows(tmp_path / "a" / f, "last"), rows(tmp_path / "b" / f, "last")
        assert ra["0"] == rb["0"] and ra["1"] == rb["2"], f
        assert ra["0"] != ra["1"]


def test_interrupt_halfway_leaves_no_result_folder(cli, write, tmp_path, monkeypatch):
    from plastictool.simulation import batches

    real = batches.run_condition
    calls = []

    def interrupted(cond, progress=None):
        calls.append(cond.index)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(cond, progress)

    monkeypatch.setattr(batches, "run_condition", interrupted)
    monkeypatch.setenv("PLASTIC_BATCH", "0")  # one by one: run_condition per condition (not one batch)
    p = write("p.yaml", poisson([0.01, 0.02, 0.03]))
    out = tmp_path / "results" / "poisson"
    (tmp_path / "results").mkdir()
    r = cli("run", p, "--out", out, "--jobs", "1")
    assert r.exit_code == 130
    assert "interrupted" in r.stderr
    assert calls == [0, 1]
    assert list((tmp_path / "results").iterdir()) == []  # no folder, no temporary sibling


def test_run_json_records_what_reproduces_a_run(cli, write, tmp_path):
    p = write("a.yaml", PAIR)
    r = cli("run", p, "--out", tmp_path / "o", "--seed", "9")
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "o" / "run.json").read_text())
    assert meta["seed"] == 9 and meta["protocol"]["seed"] == 9
    assert meta["protocol"]["rule"]["tau_plus"] == 16.8  # resolved: preset and defaults filled
    assert len(meta["protocol_sha256"]) == 64 and len(meta["resolved_sha256"]) == 64
    assert all(meta["versions"][k] for k in ("plastic", "python", "numpy", "numba", "llvmlite", "pyyaml", "typer", "rich"))
    assert {"system", "machine", "release", "python_implementation"} <= set(meta["platform"])
    assert meta["command"][0] == "plastic"  # the command line (pytest's own under CliRunner)
    assert meta["profile"]["workers"] == 0
