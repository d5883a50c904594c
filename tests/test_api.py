"""The public Python API (spec section 14): ``import plastictool as pt``; ``pt.load``, ``pt.run``,
``pt.read``, ``Result``, ``Table``, the errors.

What is checked: a written Result is byte-identical to ``plastic run``'s files; every example
protocol run through the API matches tests/golden/ (in memory and written); ``read`` of a
folder equals the Result that wrote it (equality at the files' precision: the same CSV bytes);
dict and YAML-string protocols, ``set=`` overrides equal to ``--set``; errors with ``.line`` and
``.field``; ``import plastictool`` loads neither NumPy nor Numba.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import plastictool as pt
from conftest import PROTOCOLS, ROOT
from plastictool.results.compare import compare_dirs

GOLDEN = ROOT / "tests" / "golden"
TABLES = ("summary.csv", "traces.csv", "spikes.csv", "structure.csv")
EXAMPLES = sorted(PROTOCOLS.glob("*.yaml"))
# API vs CLI byte for byte: every rule (stdp, triplet, calcium, receptor, hebb, oja, bcm) and
# every neuron model (clamped, lif, rate), a sweep, phases and blocks
BYTES = ["stdp_window", "song2000", "sjostrom2001_triplet", "graupner2012_stdp", "receptor_hfs_rapamycin", "hebb_growth", "oja_pca", "bcm_selectivity", "ltp_phases"]
# run.json keys that legitimately differ between two runs (timings, the command line)
VOLATILE = {"wall_time_s", "profile", "command"}

SMALL = """\
name: small
seed: 3
dt: 0.1 ms
synapses: {n_pre: 2, n_post: 2, w_init: {uniform: [0.2, 0.6]}, w_min: 0, w_max: 1}
neuron: {model: clamped}
stimulus:
  pairing: {pairs: 20, frequency: 5 Hz, delta_t: 10 ms}
rule:
  kind: stdp
  preset: bi_poo_1998
  a_plus: 0.01
  a_minus: 0.0105
record: {interval: 100 ms, state: [x_pre]}
sweep:
  stimulus.pairing.delta_t: [-20 ms, 10 ms]
"""

SMALL_DICT = {
    "name": "small",
    "seed": 3,
    "dt": "0.1 ms",
    "synapses": {"n_pre": 2, "n_post": 2, "w_init": {"uniform": [0.2, 0.6]}, "w_min": 0, "w_max": 1},
    "neuron": {"model": "clamped"},
    "stimulus": {"pairing": {"pairs": 20, "frequency": "5 Hz", "delta_t": "10 ms"}},
    "rule": {"kind": "stdp", "preset": "bi_poo_1998", "a_plus": 0.01, "a_minus": 0.0105},
    "record": {"interval": "100 ms", "state": ["x_pre"]},
    "sweep": {"stimulus.pairing.delta_t": ["-20 ms", "10 ms"]},
}


def _files_equal(a, b):
    names = [n for n in TABLES if (a / n).exists() or (b / n).exists()]
    assert names and "summary.csv" in names
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def _run_json_equal(a, b):
    ja, jb = (json.loads((d / "run.json").read_text()) for d in (a, b))
    assert list(ja) == list(jb)
    for key in ja:
        if key not in VOLATILE:
            assert ja[key] == jb[key], key


def _csv_columns(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], list(zip(*rows[1:])) if len(rows) > 1 else [() for _ in rows[0]]


# ---------------------------------------------------------------------------- import cost
def test_import_loads_neither_numpy_nor_numba():
    code = (
        "import sys, plastictool as pt\n"
        "heavy = lambda: sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'numba', 'yaml', 'typer'))\n"
        "print(heavy())\n"
        "exp = pt.load('protocols/stdp_window.yaml')\n"  # validation: still no Numba
        "print('numba' in sys.modules, len(exp.conditions))\n"
        "print(sorted(set(pt.__all__) - set(dir(pt))), [n for n in pt.__all__ if getattr(pt, n) is None])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]", "False 101", "[] []"]


def test_public_names_and_errors():
    assert pt.__version__ and isinstance(pt.__version__, str)
    assert set(pt.__all__) >= {"load", "run", "read", "Result", "Table", "ProtocolError", "SimulationError", "OutputError", "PlasticError", "__version__"}
    for name in pt.__all__:
        if name != "__version__":
            assert getattr(pt, name).__doc__, name
    assert issubclass(pt.OutputError, pt.PlasticError) and pt.OutputError.exit_code == 4
    assert pt.ProtocolError("m").exit_code == 2 and pt.SimulationError("m").exit_code == 3
    with pytest.raises(AttributeError):
        pt.no_such_name  # noqa: B018


# ---------------------------------------------------------------------------- every example protocol
@pytest.mark.parametrize("protocol", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_via_api_matches_golden(protocol, tmp_path):
    res = pt.run(protocol)
    gold = GOLDEN / protocol.stem
    # the in-memory tables: the golden files' columns, in order, with their numbers
    for name, table in res.tables.items():
        header, cols = _csv_columns(gold / f"{name}.csv")
        assert table.columns == header, name
        assert len(table) == len(cols[0]), name
        for col, cells in zip(header, cols):
            got = table[col]
            if got.dtype.kind in "US":
                assert list(got) == list(cells), (name, col)
            else:
                want = np.array([float(c) if c else np.nan for c in cells])
                np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-12, equal_nan=True, err_msg=f"{name} {col}")
    assert sorted(f"{n}.csv" for n in res.tables) == sorted(p.name for p in gold.iterdir())
    # written: the golden files, and exactly the bytes the Tables format
    out = res.write(tmp_path / "out")
    cmp = compare_dirs(out, gold, rtol=1e-7, atol=1e-12)
    assert cmp.count == 0, [(d.file, d.column, d.row) for d in cmp.largest]
    for name, table in res.tables.items():
        assert table.to_csv_bytes() == (out / f"{name}.csv").read_bytes(), name
    back = pt.read(out)
    assert back == res
    assert back.protocol == json.loads(json.dumps(res.protocol))
    assert back.counts == res.counts and back.info["seed"] == res.info["seed"]


@pytest.mark.parametrize("stem", BYTES)
def test_written_result_is_byte_identical_to_plastic_run(stem, tmp_path, cli, monkeypatch):
    protocol = PROTOCOLS / f"{stem}.yaml"
    r = cli("run", protocol, "--out", tmp_path / "cli", "--quiet", "--jobs", "1")
    assert r.exit_code == 0, r.output
    res = pt.run(protocol)
    res.write(tmp_path / "api")
    _files_equal(tmp_path / "api", tmp_path / "cli")
    _run_json_equal(tmp_path / "api", tmp_path / "cli")
    assert pt.read(tmp_path / "cli") == res
    if stem == "stdp_window":  # the "done when"
        header, cols = _csv_columns(tmp_path / "cli" / "summary.csv")
        cells = cols[header.index("dw")]
        monkeypatch.chdir(ROOT)
        dw = pt.run("protocols/stdp_window.yaml").summary["dw"]
        assert ["%.12g" % x for x in dw] == list(cells)
        np.testing.assert_allclose(dw, np.array(cells, dtype=float), rtol=1e-11, atol=0)
        np.testing.assert_array_equal(pt.read(tmp_path / "cli").summary["dw"], np.array(cells, dtype=float))


# ---------------------------------------------------------------------------- sources and overrides
def test_yaml_string_dict_and_file_give_the_same_result(write):
    path = write("small.yaml", SMALL)
    from_file = pt.run(path)
    from_text = pt.run(SMALL)
    from_dict = pt.run(SMALL_DICT)
    assert from_file == from_text == from_dict
    assert from_text.experiment.file == "<string>" and from_dict.experiment.file == "<dict>"
    np.testing.assert_array_equal(from_dict.summary["w_final"], from_file.summary["w_final"])
    assert from_file.summary.columns == ["stimulus.pairing.delta_t", "pre", "post", "w_initial", "w_final", "dw", "dw_percent", "outcome"]
    assert list(from_file.summary["stimulus.pairing.delta_t"]) == [-20.0] * 4 + [10.0] * 4
    # an Experiment from load() runs as its source does; the dict given is not changed
    assert pt.run(pt.load(SMALL_DICT)) == from_file
    assert SMALL_DICT["sweep"] == {"stimulus.pairing.delta_t": ["-20 ms", "10 ms"]}
    # one-line YAML flow mapping; no name: "protocol"
    one = pt.load("{synapses: {n_pre: 1, n_post: 1}, neuron: {model: clamped}, stimulus: {pairing: {pairs: 2, frequency: 1 Hz, delta_t: 5 ms}}, rule: {kind: stdp}}")
    assert one.name == "protocol" and one.file == "<string>"


def test_set_overrides_equal_the_command_lines(write, tmp_path, cli):
    path = write("small.yaml", SMALL)
    r = cli("run", path, "--out", tmp_path / "cli", "--quiet", "--jobs", "1", "--set", "rule.a_plus=0.02", "--set", "stimulus.pairing.pairs=30", "--seed", "7")
    assert r.exit_code == 0, r.output
    res = pt.run(path, set={"rule.a_plus": 0.02, "stimulus.pairing.pairs": 30}, seed=7)
    assert res.protocol["rule"]["a_plus"] == 0.02 and res.protocol["seed"] == 7
    res.write(tmp_path / "api")
    _files_equal(tmp_path / "api", tmp_path / "cli")
    _run_json_equal(tmp_path / "api", tmp_path / "cli")
    assert res.info["overrides"] == ["rule.a_plus=0.02", "stimulus.pairing.pairs=30"]
    # a unit string, as --set rule.tau_plus=20 ms
    assert pt.load(SMALL, set={"rule.tau_plus": "20 ms"}).base.rule.values["tau_plus"] == 20.0
    assert pt.run(SMALL) != res


# ---------------------------------------------------------------------------- errors
def test_errors_name_the_file_line_and_field():
    bad = SMALL.replace("  a_minus: 0.0105\n", "  a_minus: 0.0105\n  tau_pluss: 20 ms\n")
    line = bad.splitlines().index("  tau_pluss: 20 ms") + 1
    with pytest.raises(pt.ProtocolError) as e:
        pt.load(bad)
    assert (e.value.file, e.value.line, e.value.field) == ("<string>", line, "rule.tau_pluss")
    assert str(e.value).startswith(f"<string>:{line}: rule.tau_pluss: ") and "did you mean 'tau_plus'" in str(e.value)
    with pytest.raises(pt.ProtocolError) as e:
        pt.run({**SMALL_DICT, "rule": {**SMALL_DICT["rule"], "a_plus": "fast"}})
    assert (e.value.file, e.value.line, e.value.field) == ("<dict>", None, "rule.a_plus")
    with pytest.raises(pt.ProtocolError) as e:
        pt.load(SMALL, set={"synapses.n_pre": -1})
    assert e.value.field == "synapses.n_pre" and "--set" in str(e.value)
    with pytest.raises(pt.ProtocolError) as e:
        pt.load(SMALL, set={"rule..a": 1})
    with pytest.raises(pt.ProtocolError, match="no such file"):
        pt.load("protocols/no_such_protocol.yaml")
    with pytest.raises(pt.ProtocolError) as e:
        pt.load("name: x\nrule: [unclosed\n")
    assert e.value.line is not None and "invalid YAML" in str(e.value)
    with pytest.raises(pt.ProtocolError, match="pass them to load"):
        pt.run(pt.load(SMALL), seed=2)
    with pytest.raises(pt.ProtocolError, match="unsupported value"):
        pt.load({**SMALL_DICT, "seed": object()})


def test_simulation_error(capsys):
    blowup = {
        "dt": "1 ms",
        "synapses": {"n_pre": 1, "n_post": 1, "w_init": 1.0, "w_min": None, "w_max": None},
        "neuron": {"model": "rate"},
        "stimulus": {"duration": "10 s", "pre": {"patterns": {"vectors": [[10]], "presentation": "1 s"}}},
        "rule": {"kind": "hebb", "eta": "1000 /s"},
    }
    with pytest.raises(pt.SimulationError) as e:
        pt.run(blowup)
    assert e.value.variable and e.value.t_ms is not None
    assert capsys.readouterr() == ("", "")


def test_write_refuses_an_existing_folder_and_reports_the_file_system(tmp_path):
    res = pt.run(SMALL)
    out = res.write(tmp_path / "x")
    before = (out / "summary.csv").read_bytes()
    with pytest.raises(pt.ProtocolError, match="exists"):
        res.write(out)
    res.write(out, force=True)
    assert (out / "summary.csv").read_bytes() == before
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(pt.OutputError) as e:
        res.write(tmp_path / "file" / "x")
    assert e.value.exit_code == 4 and str(tmp_path / "file" / "x") in str(e.value) and "(ENOTDIR)" in str(e.value)
    # a Result read from a folder writes the same files again, byte for byte
    back = pt.read(out)
    again = back.write(tmp_path / "again")
    for name in TABLES + ("run.json",):
        if (out / name).exists() or (again / name).exists():  # (structure.csv: with synapses.structure)
            assert (again / name).read_bytes() == (out / name).read_bytes(), name
    with pytest.raises(pt.ProtocolError, match="no such folder"):
        pt.read(tmp_path / "nothing")
    with pytest.raises(pt.ProtocolError, match="run.json"):
        pt.read(tmp_path)


# ---------------------------------------------------------------------------- Table
def test_table(monkeypatch):
    res = pt.run(SMALL, progress=False)
    s = res.summary
    assert len(s) == 8 and s.shape == (8, 8) and "w_final" in s
    assert s["dw"].dtype == np.float64 and s["pre"].dtype == np.int64 and s["outcome"].dtype.kind == "U"
    np.testing.assert_array_equal(s["dw"], s["w_final"] - s["w_initial"])
    np.testing.assert_array_equal(s["pre"], [0, 0, 1, 1] * 2)
    np.testing.assert_array_equal(s["post"], [0, 1] * 4)
    assert set(s["outcome"][:4]) == {"LTD"} and set(s["outcome"][4:]) == {"LTP"}  # delta_t -20 ms, then +10 ms
    with pytest.raises(KeyError, match="no such column"):
        s["w"]
    text = repr(s)
    assert text.splitlines()[0] == "Table summary (8 rows x 8 columns)" and "w_final" in text and "3 more rows" in text
    assert "<table>" in s._repr_html_()
    assert res.spikes.columns == ["t_ms", "population", "index", "condition"]
    assert set(res.spikes["population"]) == {"pre", "post"}
    assert res.traces.columns[0] == "t_ms" and res.traces.columns[-1] == "condition"
    with pytest.raises(ValueError, match="read-only"):
        s["w_final"][0] = 1.0
    # a Table of your own: CSV as the result files are written
    t = pt.Table({"x": np.array([0.5, 1 / 3, np.nan]), "n": np.array([1, 2, 3]), "label": np.array(["a", "b", "a"])}, empty_nan=["x"])
    assert t.to_csv_bytes() == b"x,n,label\n0.5,1,a\n0.333333333333,2,b\n,3,a\n"
    with pytest.raises(ValueError, match="expected 3 values"):
        pt.Table({"x": np.zeros(3), "y": np.zeros(2)})
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        s.to_pandas()


def _table_numbers(r):
    return {k: r.summary[k].tolist() for k in r.summary}


def test_results_and_tables_pickle(tmp_path):
    """Result and Table survive pickle (what multiprocessing and Dask do with them): a run's
    Result with its tables used or not, one read from a folder (CSV and npy) even once the folder
    is gone, and a Table; the copies are equal (==) and their columns stay read-only."""
    import multiprocessing
    import pickle
    import shutil

    res = pt.run(SMALL, progress=False)
    fresh = pickle.loads(pickle.dumps(res))  # no table built yet
    assert fresh == res and fresh.info["counts"] == res.info["counts"]
    res.summary, res.traces  # built: lambdas over the run's arrays inside
    again = pickle.loads(pickle.dumps(res))
    assert again == res and again.name == res.name and _table_numbers(again) == _table_numbers(res)
    res.write(tmp_path / "csv")
    pt.run(SMALL, set={"record.format": "npy"}).write(tmp_path / "npy")
    for fmt in ("csv", "npy"):
        read = pt.read(tmp_path / fmt)
        blob = pickle.dumps(read)
        shutil.move(tmp_path / fmt, tmp_path / f"gone-{fmt}")
        copy = pickle.loads(blob)
        assert copy == res and copy.protocol["name"] == res.protocol["name"]
        with pytest.raises(ValueError, match="read-only"):
            copy.summary["w_final"][0] = 1.0
        copy.write(tmp_path / f"rewritten-{fmt}")
        assert (tmp_path / f"rewritten-{fmt}" / "summary.csv").read_bytes() == (tmp_path / "gone-csv" / "summary.csv").read_bytes()
    t = pickle.loads(pickle.dumps(res.spikes))
    assert t == res.spikes and t.name == "spikes" and t.columns == res.spikes.columns
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # a real round trip through a worker
        assert pool.apply(len, (res.summary,)) == len(res.summary)
        assert pool.apply(pickle.loads, (pickle.dumps(res),)) == res


def test_to_pandas_when_installed():
    pd = pytest.importorskip("pandas")
    df = pt.run(SMALL).summary.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.columns)[-1] == "outcome" and len(df) == 8


def test_progress_prints_only_when_asked(capsys):
    pt.run(SMALL)
    assert capsys.readouterr() == ("", "")
    pt.run(SMALL, progress=True)
    err = capsys.readouterr().err
    assert "small: condition 2/2" in err and "100.0 %" in err
    from plastictool.api import _TextProgress

    with _TextProgress(pt.load(SMALL), True) as cb:  # worker processes report "done/total" conditions
        cb("1/2", 1, 2)
    assert "small: conditions 1/2,  50.0 %" in capsys.readouterr().err


def test_big_tables_and_text_sweep_values_through_the_formatting_kernels(tmp_path):
    """Tables above output.PYTHON_CELLS are formatted by the kernels, chunk by chunk (as
    ``plastic run`` writes big files); a sweep over names gives a text column."""
    protocol = {
        "synapses": {"n_pre": 150, "n_post": 100, "w_init": {"uniform": [0.2, 0.6]}},
        "neuron": {"model": "clamped"},
        "stimulus": {"pairing": {"pairs": 3, "frequency": "10 Hz", "delta_t": "10 ms"}},
        "rule": {"kind": "stdp"},
        "sweep": {"rule.preset": ["bi_poo_1998", "song2000_brian2"]},
    }
    res = pt.run(protocol)
    s = res.summary
    assert len(s) == 30_000 and s["rule.preset"].dtype.kind == "U"
    assert list(s["rule.preset"][[0, -1]]) == ["bi_poo_1998", "song2000_brian2"]
    out = res.write(tmp_path / "big")
    for name, table in res.tables.items():
        assert table.to_csv_bytes() == (out / f"{name}.csv").read_bytes(), name
    back = pt.read(out)
    assert back == res
    assert list(back.summary["rule.preset"][[0, -1]]) == ["bi_poo_1998", "song2000_brian2"]
    np.testing.assert_allclose(back.summary["w_final"], s["w_final"], rtol=5e-12, atol=0)
    assert not np.array_equal(back.summary["w_initial"], s["w_initial"])  # 12 digits: the files' rounding
    # another run (a_plus changed in the 9th digit) is a difference
    other = pt.run(protocol, set={"rule.a_plus": 0.0050000001})
    assert other != res and other.summary != s


def test_plastic_run_reports_a_failing_file_system_with_exit_4(tmp_path, cli):
    (tmp_path / "file").write_text("not a folder")
    r = cli("run", PROTOCOLS / "hebb_growth.yaml", "--out", tmp_path / "file" / "x", "--quiet")
    assert r.exit_code == 4 and "not a folder (ENOTDIR)" in r.output
    assert (tmp_path / "file").read_text() == "not a folder"
