"""The command line: exit codes, messages, and what is (not) written to disk."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import PROTOCOLS
from conftest import SMALL  # the small protocol several test files run



def test_run_writes_the_four_files_with_the_spec_columns(cli, write, tmp_path):
    p = write("small.yaml", SMALL)
    out = tmp_path / "out"
    r = cli("run", p, "--out", out)
    assert r.exit_code == 0, r.output
    assert sorted(x.name for x in out.iterdir()) == ["run.json", "spikes.csv", "summary.csv", "traces.csv"]
    assert (out / "summary.csv").read_text().splitlines()[0] == "pre,post,w_initial,w_final,dw,dw_percent,outcome"
    assert (out / "traces.csv").read_text().splitlines()[0] == 't_ms,"w[0,0]","w[1,0]",w_mean,x_pre[0],x_pre[1]'
    assert (out / "spikes.csv").read_text().splitlines()[:3] == ["t_ms,population,index", "0,pre,0", "0,pre,1"]
    meta = json.loads((out / "run.json").read_text())
    assert meta["seed"] == 3 and meta["counts"]["pre_spikes"] == 10 and meta["counts"]["post_spikes"] == 5
    assert meta["protocol"]["rule"]["tau_plus"] == 16.8
    assert len(meta["protocol_sha256"]) == 64
    summary = (out / "summary.csv").read_text().splitlines()[1].split(",")
    assert summary[-1] == "LTP"


def test_existing_output_is_kept_unless_force(cli, write, tmp_path):
    p = write("small.yaml", SMALL)
    out = tmp_path / "out"
    assert cli("run", p, "--out", out).exit_code == 0
    (out / "summary.csv").write_text("mine")
    r = cli("run", p, "--out", out)
    assert r.exit_code == 2 and "--force" in r.output
    assert (out / "summary.csv").read_text() == "mine"
    assert cli("run", p, "--out", out, "--force").exit_code == 0
    assert (out / "summary.csv").read_text().startswith("pre,post")
    assert [x.name for x in tmp_path.iterdir() if x.name.startswith(".")] == []


def test_bad_input_exits_2_names_file_line_field_and_writes_nothing(cli, write, tmp_path):
    p = write("bad.yaml", SMALL.replace("{kind: stdp}", "{kind: stdp, tau_plus: 20 Hz}"))
    out = tmp_path / "out"
    r = cli("run", p, "--out", out)
    assert r.exit_code == 2
    assert "bad.yaml:6: rule.tau_plus:" in r.output and "Traceback" not in r.output
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [p]


def test_missing_file_and_usage_errors_exit_2(cli, tmp_path):
    r = cli("run", tmp_path / "missing.yaml", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "no such file" in r.output
    assert cli("run").exit_code == 2
    assert cli("run", "x.yaml", "--bogus").exit_code == 2
    r = cli("run", tmp_path / "missing.yaml", "--set", "novalue")
    assert r.exit_code == 2


def test_nan_stops_the_run_with_exit_3_naming_time_and_variable(cli, write, tmp_path):
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
    out = tmp_path / "o"
    r = cli("run", write("b.yaml", text), "--out", out)
    assert r.exit_code == 3, r.output
    assert "w[0,0]" in r.output and "t =" in r.output
    assert not out.exists()


@pytest.mark.parametrize("dtype, w", [("float64", "1e308"), ("float32", "3e38")])
@pytest.mark.parametrize("path", ["kernel", "python"])
def test_overflowing_statistic_of_finite_weights_exits_3_naming_it(cli, write, tmp_path, monkeypatch, dtype, w, path):
    """Finite weights near the largest float: their sum overflows, so w_mean would be inf in
    traces.csv. The run stops with exit 3 naming w_mean and the time (the spec's "a value became
    infinite"), on both recording paths, and writes nothing; the same weights halved run."""
    monkeypatch.setenv("PLASTIC_RECORD", path)
    text = (
        f"name: huge\ndt: 0.1 ms\nduration: 20 ms\nsynapses: {{n_pre: 3, n_post: 1, w_init: {w}, w_min: null, w_max: null, dtype: {dtype}}}\n"
        "neuron: {model: clamped}\nstimulus: {pre: {regular: {frequency: 100 Hz}}, post: {regular: {frequency: 100 Hz, start: 2 ms}}}\n"
        "rule: {kind: stdp, a_plus: 0.0, a_minus: 0.0}\nrecord: {interval: 5 ms, stats: [mean, max]}\n"
    )
    out = tmp_path / "o"
    r = cli("run", write("huge.yaml", text), "--out", out)
    assert r.exit_code == 3, r.output
    assert "w_mean became inf at t = 0 ms: every weight is finite" in r.output and f"overflows {dtype}" in r.output
    assert not out.exists()
    r = cli("run", write("half.yaml", text.replace(f"w_init: {w}", f"w_init: {float(w) / 3}")), "--out", out)
    assert r.exit_code == 0, r.output


def test_validate_prints_the_resolved_protocol(cli):
    r = cli("validate", PROTOCOLS / "stdp_window.yaml")
    assert r.exit_code == 0
    assert "tau_plus: 16.8" in r.output and "conditions: 101" in r.output


def test_validate_reports_every_bad_file(cli, write):
    good = write("good.yaml", SMALL)
    bad = write("bad.yaml", SMALL.replace("n_pre: 2", "n_pre: two"))
    r = cli("validate", good, bad)
    assert r.exit_code == 2 and "bad.yaml:3: synapses.n_pre:" in r.output


def test_rules_lists_and_describes(cli):
    r = cli("rules")
    assert r.exit_code == 0 and "stdp" in r.output and "oja" in r.output
    r = cli("rules", "stdp")
    assert "tau_plus" in r.output and "ms" in r.output and "bi_poo_1998" in r.output and "Bi & Poo" in r.output
    r = cli("rules", "stpd")
    assert r.exit_code == 2 and "did you mean 'stdp'" in r.output


def test_schema_is_json_with_every_top_level_key(cli):
    r = cli("schema")
    doc = json.loads(r.output)
    assert {"synapses", "rule", "phases", "stimulus", "record", "sweep"} <= set(doc["properties"])


@pytest.mark.parametrize("arg", ["--help", "--version"])
def test_help_does_not_import_numba_or_numpy(arg):
    code = f"import sys; sys.argv=['plastic','{arg}']\nfrom plastictool.cli import main\ntry:\n main()\nexcept SystemExit: pass\nprint('numba' in sys.modules, 'numpy' in sys.modules, 'importlib.metadata' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False False False"


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-c", "from plastictool.cli import main; main()", "--version"], capture_output=True, text=True).stdout
    assert out.strip() == f"plastic {version('plastictool')}"


def test_validate_does_not_import_numba(write):
    p = write("small.yaml", SMALL)
    code = f"import sys; sys.argv=['plastic','validate','{p}']\nfrom plastictool.cli import main\ntry:\n main()\nexcept SystemExit: pass\nprint('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"


def test_same_seed_gives_identical_files(cli, write, tmp_path):
    text = """\
name: poisson
seed: 12
synapses: {n_pre: 20, n_post: 2, w_init: {uniform: [0, 0.05]}, w_max: 0.05}
neuron: {model: lif}
stimulus: {duration: 1 s, pre: {poisson: {rate: 30 Hz}}}
rule: {kind: stdp, a_plus: 0.001, a_minus: 0.001}
"""
    p = write("p.yaml", text)
    assert cli("run", p, "--out", tmp_path / "a").exit_code == 0
    assert cli("run", p, "--out", tmp_path / "b").exit_code == 0
    assert cli("run", p, "--out", tmp_path / "c", "--seed", "13").exit_code == 0
    for name in ("summary.csv", "traces.csv", "spikes.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "spikes.csv").read_bytes() != (tmp_path / "c" / "spikes.csv").read_bytes()


def test_warmup_compiles_every_rule_and_neuron(cli):
    from plastictool.api import warmup_protocols

    r = cli("warmup", "--jit-only")
    assert r.exit_code == 0, r.output
    runs = len(warmup_protocols()) * 2  # float64 and float32 weights, and some with threads
    n = int(r.output.split("kernels of ")[1].split()[0])
    assert n > runs and "warmup runs (every rule, neuron model and weight dtype)" in r.output


def test_kernels_are_cached_in_the_user_folder_never_in_the_package(monkeypatch, tmp_path):
    from plastictool.core import jit

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.delenv("PLASTIC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert jit.cache_dir() == str(tmp_path / "plastic" / "numba")
    monkeypatch.setenv("PLASTIC_CACHE_DIR", str(tmp_path / "p"))
    assert jit.cache_dir() == str(tmp_path / "p" / "numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "n"))
    assert jit.cache_dir() == str(tmp_path / "n")


def test_main_collects_less_often_and_freezes_what_lives_at_the_end(write):
    """``main`` runs the garbage collector every 50,000 new objects and freezes the objects alive
    at its end (the exit then skips walking them); the command's result is unchanged."""
    p = write("small.yaml", SMALL)
    code = (
        f"import gc, sys; sys.argv=['plastic','validate','{p}']\nfrom plastictool.cli import main\n"
        "assert gc.get_freeze_count() == 0\ntry:\n main()\nexcept SystemExit as e: code = e.code\n"
        "print(code, gc.get_threshold()[0], gc.get_freeze_count() > 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] in ("0 50000 True", "None 50000 True")
