"""``record.format: npy``: the tables as folders of ``.npy`` files (plastictool.results.columnar).

The same run written as CSV and as npy carries the same numbers (the npy table, formatted as the
CSV writer formats, gives the CSV file byte for byte; its weights are the simulation's arrays
exactly); reruns are byte-identical; compare, merge, plot and the Python API read both; a bad
format is refused."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

import plastictool as pt
from plastictool.results import columnar
from plastictool.results.result import read_table

TABLES = ("summary", "traces", "spikes")

SWEEP = """\
name: fmt
seed: 7
dt: 0.1 ms
synapses: {n_pre: 3, n_post: 2, w_init: {uniform: [0, 1]}, w_min: 0, w_max: 1}
neuron: {model: clamped}
stimulus:
  pairing: {pairs: 5, frequency: 2 Hz, delta_t: 10 ms}
rule: {kind: stdp, a_plus: 0.01, a_minus: 0.0105}
record: {interval: 100 ms, stats: [mean, max], state: [x_pre]}
sweep:
  mode: grid
  rule.weight_dependence: [additive, multiplicative]
  stimulus.pairing.delta_t: [-10 ms, 10 ms]
"""

ZERO = """\
name: zero
seed: 1
dt: 0.1 ms
synapses: {n_pre: 2, n_post: 2, w_init: 0, w_min: 0, w_max: 1, dtype: float32}
neuron: {model: clamped}
stimulus:
  pairing: {pairs: 3, frequency: 2 Hz, delta_t: 10 ms}
rule: {kind: stdp, a_plus: 0.01, a_minus: 0.0105}
"""


def files(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` but run.json (timed), by relative path."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "run.json"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The SWEEP protocol run once per format, written to folders; the npy run's Result."""
    root = tmp_path_factory.mktemp("fmt")
    src = root / "fmt.yaml"
    src.write_text(SWEEP)
    csv = pt.run(src)
    csv.write(root / "csv")
    npy = pt.run(src, set={"record.format": "npy"})
    npy.write(root / "npy")
    return root, npy


def test_npy_layout_and_plain_numpy_reading(runs):
    root, res = runs
    out = root / "npy"
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "spikes", "summary", "traces"]
    info = json.loads((out / "run.json").read_text())
    assert info["format"] == "npy" and info["protocol"]["record"]["format"] == "npy"
    assert json.loads((root / "csv" / "run.json").read_text())["format"] == "csv"
    assert "format" not in json.loads((root / "csv" / "run.json").read_text())["protocol"]["record"]  # csv runs keep their resolved protocol
    # the documented recipe: columns.txt, then one np.load per column
    names = open(out / "summary" / "columns.txt").read().split("\n")[:-1]
    assert names == ["rule.weight_dependence", "stimulus.pairing.delta_t", "pre", "post", "w_initial", "w_final", "dw", "dw_percent", "outcome"]
    summary = {n: np.load(out / "summary" / f"{n}.npy") for n in names}
    types = {n: a.dtype.str for n, a in summary.items()}
    assert types == {
        "rule.weight_dependence": "|S14", "stimulus.pairing.delta_t": "<f8", "pre": "<i4", "post": "<i4", "w_initial": "<f8", "w_final": "<f8",
        "dw": "<f8", "dw_percent": "<f8", "outcome": "|S4",
    }
    assert set(summary["outcome"].tolist()) <= {b"LTP", b"LTD", b"none"}
    assert summary["rule.weight_dependence"].tolist() == [b"additive"] * 12 + [b"multiplicative"] * 12
    # the binary w_final is the simulation's array exactly; dw and dw_percent unrounded
    w1 = np.concatenate([r.w_final.reshape(-1) for r in res._results])
    w0 = np.concatenate([r.w_initial.reshape(-1) for r in res._results])
    assert np.array_equal(summary["w_final"], w1) and np.array_equal(summary["w_initial"], w0)
    assert np.array_equal(summary["dw"], w1 - w0)
    assert np.array_equal(summary["dw_percent"], 100.0 * (w1 - w0) / np.abs(w0))
    traces = columnar.load_all(out / "traces")
    assert list(traces) == list(res._results[0].columns) + ["condition"]
    assert traces["condition"].dtype.str == "<i4" and sorted(set(traces["condition"].tolist())) == [0, 1, 2, 3]
    assert np.array_equal(np.column_stack([traces[c] for c in res._results[0].columns]), np.concatenate([r.traces for r in res._results]))
    spikes = columnar.load_all(out / "spikes")
    assert [a.dtype.str for a in spikes.values()] == ["<f8", "|S4", "<i4", "<i4"]


@pytest.mark.parametrize("table", TABLES)
def test_npy_tables_format_to_the_csv_files_byte_for_byte(runs, table):
    """Same numbers: the npy table written with the CSV writer's %.12g is the CSV file."""
    root, _ = runs
    assert read_table(root / "npy", table).to_csv_bytes() == (root / "csv" / f"{table}.csv").read_bytes()


def test_npy_numbers_agree_with_the_csv_at_its_precision(runs):
    root, _ = runs
    csv = np.genfromtxt(root / "csv" / "summary.csv", delimiter=",", names=True, dtype=None, encoding="ascii")
    for col in ("w_initial", "w_final", "dw", "dw_percent"):
        full = columnar.load(root / "npy" / "summary", col)
        assert np.allclose(csv[col], full, rtol=5e-12, atol=0), col
        assert ["%.12g" % x for x in full.tolist()] == ["%.12g" % x for x in csv[col].tolist()]


def test_reruns_are_byte_identical(runs, tmp_path):
    root, _ = runs
    again = pt.run(root / "fmt.yaml", set={"record.format": "npy"})
    again.write(tmp_path / "again")
    assert files(tmp_path / "again") == files(root / "npy")
    # a Result read back and written again: the same files
    pt.read(root / "npy").write(tmp_path / "copy")
    assert files(tmp_path / "copy") == files(root / "npy")


def test_api_reads_both_formats_alike(runs):
    root, res = runs
    a, b = pt.read(root / "csv"), pt.read(root / "npy")
    assert a == b and b == res
    for t in TABLES:
        ta, tb = a.table(t), b.table(t)
        assert ta.columns == tb.columns and len(ta) == len(tb)
        for c in ta.columns:
            assert ta[c].dtype.kind == tb[c].dtype.kind, (t, c)
    assert b.summary["outcome"].dtype.kind == "U" and b.summary["pre"].dtype == np.int64
    assert np.array_equal(b.summary["w_final"], res.summary["w_final"])  # full precision, unlike CSV


def test_zero_initial_weights_and_float32(tmp_path, write):
    """dw_percent is NaN where the CSV cell is empty; float32 weights are kept as float32, exactly."""
    src = write("zero.yaml", ZERO)
    res = pt.run(src, set={"record.format": "npy"})
    res.write(tmp_path / "npy")
    pt.run(src).write(tmp_path / "csv")
    s = columnar.load_all(tmp_path / "npy" / "summary")
    assert s["w_initial"].dtype.str == "<f4" and s["w_final"].dtype.str == "<f4"
    assert np.array_equal(s["w_final"], res._results[0].w_final.reshape(-1))
    assert np.all(s["w_initial"] == 0) and np.all(np.isnan(s["dw_percent"]))
    assert s["outcome"].tolist() == [b"LTP"] * 4  # by the sign of dw
    assert read_table(tmp_path / "npy", "summary").to_csv_bytes() == (tmp_path / "csv" / "summary.csv").read_bytes()
    assert ",,LTP" in (tmp_path / "csv" / "summary.csv").read_text()


def test_summary_kernel_equals_its_numpy_twin():
    """core.columns.summary_columns (big tables) and the NumPy path (small ones): the same bits."""
    from plastictool.results.output import _summary_columns

    rng = np.random.default_rng(3)
    labels = np.array([b"none", b"LTP", b"LTD"], dtype="|S4")
    for dtype in (np.float64, np.float32):
        w0 = rng.uniform(0, 1, 60).astype(dtype)
        w0[::7] = 0.0
        w1 = (w0 + rng.normal(0, 0.02, 60)).astype(dtype)
        w1[::11] = w0[::11]  # no change: none
        w1[3] = w0[3] * 1.005  # below the threshold
        fast = _summary_columns(w0, w1, 4, 6, 1.0, labels, np.dtype(dtype), True)
        slow = _summary_columns(w0, w1, 4, 6, 1.0, labels, np.dtype(dtype), False)
        for f, s in zip(fast, slow):
            assert f.dtype == s.dtype and f.tobytes() == s.tobytes()
        assert fast[0].tolist() == [4 + k // 6 for k in range(60)] and fast[1].tolist() == [k % 6 for k in range(60)]
        assert set(fast[6].tolist()) == {b"none", b"LTP", b"LTD"}


def test_npy_header_is_numpys():
    for descr, n in (("<f8", 0), ("<i4", 123456789), ("|S10", 3), ("<f4", 10**9)):
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": (n,)})
        assert columnar.npy_header(descr, n) == buf.getvalue()
        assert columnar.read_header(io.BytesIO(buf.getvalue()))[:2] == (descr, n)


def test_compare_csv_against_npy_and_npy_against_npy(runs, cli, tmp_path):
    import shutil

    root, _ = runs
    for a, b in (("csv", "npy"), ("npy", "csv"), ("npy", "npy")):
        r = cli("compare", root / a, root / b)
        assert r.exit_code == 0, r.output
        assert "warning" not in r.stderr  # only record.format differs: no warning
    # a change below the CSV's 12 digits: found between two npy folders, at full precision
    shutil.copytree(root / "npy", tmp_path / "changed")
    f = tmp_path / "changed" / "summary" / "w_final.npy"
    w = np.load(f)
    w[5] *= 1 + 1e-8
    np.save(f, w)
    r = cli("compare", tmp_path / "changed", root / "npy", "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert [(c["file"], c["column"], c["count"], c["worst_row"]) for c in doc["columns"]] == [("summary.csv", "w_final", 1, 6)]
    assert cli("compare", tmp_path / "changed", root / "npy", "--rtol", "1e-7").exit_code == 0
    # and against the CSV baseline (as the CSV text it stands for)
    assert cli("compare", tmp_path / "changed", root / "csv").exit_code == 1
    # a missing table and a missing column
    shutil.rmtree(tmp_path / "changed" / "spikes")
    (tmp_path / "changed" / "summary" / "columns.txt").write_text("\n".join(columnar.column_names(root / "npy" / "summary")[:-1]) + "\n")
    doc = json.loads(cli("compare", tmp_path / "changed", root / "npy", "--json").stdout)
    kinds = {(c["file"], c["column"]): c["kinds"] for c in doc["columns"]}
    assert kinds[("spikes.csv", "")] == ["missing file"] and kinds[("summary.csv", "outcome")] == ["missing column"]


@pytest.mark.parametrize("damage", ["header", "header length", "truncated", "object type", "names"])
def test_compare_names_the_damaged_file_of_an_npy_folder(runs, cli, tmp_path, damage):
    """A garbled or truncated file of an npy table: exit 2 naming that file (not "one of the
    folders"), in plain words (no NumPy wording about pickles), for either side."""
    import shutil

    root, _ = runs
    shutil.copytree(root / "npy", tmp_path / "b")
    f = tmp_path / "b" / "summary" / ("columns.txt" if damage == "names" else "w_final.npy")
    data = bytearray(f.read_bytes())
    if damage == "header":
        data[20:30] = b"x" * 10
    elif damage == "header length":
        data[8:10] = (16).to_bytes(2, "little")
    elif damage == "truncated":
        data = data[:-5]
    elif damage == "object type":
        data = data.replace(b"'<f8'", b"'|O8'")
    else:
        data[:3] = b"\xff\xfe\xfd"
    f.write_bytes(bytes(data))
    for args in ((root / "npy", tmp_path / "b"), (tmp_path / "b", root / "npy")):
        r = cli("compare", *args)
        assert r.exit_code == 2, r.output
        assert r.stderr.startswith(f"error: {f}: damaged result file: "), r.stderr
        assert "garbled" in r.stderr or "truncated" in r.stderr
        assert "pickle" not in r.stderr and "one of the folders" not in r.stderr and r.stderr.count("\n") == 1
    with pytest.raises(columnar.DamagedFile) as err:  # the Python API names it too
        read_table(tmp_path / "b", "summary").to_csv_bytes()
    assert err.value.path == f


def test_run_check_against_a_csv_baseline(runs, cli, tmp_path):
    root, _ = runs
    r = cli("run", root / "fmt.yaml", "--set", "record.format=npy", "--out", tmp_path / "o", "--check", root / "csv", "--quiet")
    assert r.exit_code == 0, r.output


def test_merged_npy_shards_equal_a_single_run(runs, cli, tmp_path):
    root, _ = runs
    for k in (1, 2, 3):
        r = cli("run", root / "fmt.yaml", "--set", "record.format=npy", "--shard", f"{k}/3", "--out", tmp_path / str(k), "--jobs", "1", "--quiet")
        assert r.exit_code == 0, r.output
    r = cli("merge", tmp_path / "2", tmp_path / "3", tmp_path / "1", "--out", tmp_path / "merged")
    assert r.exit_code == 0, r.output
    assert files(tmp_path / "merged") == files(root / "npy")
    assert json.loads((tmp_path / "merged" / "run.json").read_text())["format"] == "npy"
    # a truncated column is refused, nothing written
    f = tmp_path / "1" / "summary" / "w_final.npy"
    f.write_bytes(f.read_bytes()[:-8])
    r = cli("merge", tmp_path / "1", tmp_path / "2", tmp_path / "3", "--out", tmp_path / "bad")
    assert r.exit_code == 2 and "truncated" in r.output and not (tmp_path / "bad").exists()


def test_plot_reads_npy_folders(runs):
    from plastictool.plot import read_run

    root, _ = runs
    a, b = read_run(root / "csv"), read_run(root / "npy")
    assert a.summary_cols == b.summary_cols and a.summary == b.summary and a.sweep_keys == b.sweep_keys
    assert a.trace_cols == b.trace_cols and np.allclose(a.traces, b.traces, rtol=1e-11, atol=0)
    assert a.spikes == b.spikes is None  # a sweep: no raster


def test_plot_draws_an_npy_run(cli, write, tmp_path):
    pytest.importorskip("matplotlib")
    src = write("zero.yaml", ZERO)
    assert cli("run", src, "--set", "record.format=npy", "--out", tmp_path / "o", "--quiet").exit_code == 0
    r = cli("plot", tmp_path / "o", "-o", tmp_path / "o.png")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o.png").stat().st_size > 1000


def test_unknown_format_is_refused(cli, write, tmp_path):
    src = write("bad.yaml", ZERO + "record:\n  format: parquet\n")
    r = cli("run", src, "--out", tmp_path / "o")
    assert r.exit_code == 2
    assert f"{src}:10: record.format: 'parquet' is not one of csv, npy" in r.output
    assert not (tmp_path / "o").exists()
    r = cli("run", write("ok.yaml", ZERO), "--set", "record.format=hdf5", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "record.format" in r.output and not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "protocol, changes, tables",
    [
        # synapses.structure: w_initial/w_final NaN where absent, outcome formed/eliminated/absent, structure.csv
        ("structure_survival.yaml", {"synapses.n_pre": 12, "synapses.n_post": 5, "duration": "20 min", "synapses.structure.formation_rate": "1 /h"}, ("summary", "traces", "spikes", "structure")),
        # synapses.release: U_initial, U_final and responses.csv; a sweep over names (text column)
        ("tsodyks_markram_paired_pulse.yaml", {}, ("summary", "traces", "spikes", "responses")),
    ],
)
def test_structure_and_release_tables(protocol, changes, tables, tmp_path, cli):
    from conftest import PROTOCOLS

    src = PROTOCOLS / protocol
    pt.run(src, set=changes).write(tmp_path / "csv")
    pt.run(src, set={**changes, "record.format": "npy"}).write(tmp_path / "npy")
    assert sorted(p.name for p in (tmp_path / "npy").iterdir()) == sorted(tables + ("run.json",))
    for t in tables:
        assert read_table(tmp_path / "npy", t).to_csv_bytes() == (tmp_path / "csv" / f"{t}.csv").read_bytes(), t
    assert cli("compare", tmp_path / "npy", tmp_path / "csv").exit_code == 0
    s = columnar.load_all(tmp_path / "npy" / "summary")
    if "structure" in tables:
        assert s["outcome"].dtype.str == "|S10" and s["present_final"].dtype.str == "|i1"
        gone = s["present_final"] == 0
        assert gone.any() and np.isnan(s["w_final"][gone]).all() and (s["outcome"][gone & (s["present_initial"] == 1)] == b"eliminated").all()
        assert set(columnar.load(tmp_path / "npy" / "structure", "event").tolist()) <= {b"formed", b"eliminated"}
    else:
        assert s["synapses.release.preset"].dtype.str == "|S24" and "U_final" in s


def test_a_damaged_npy_table_is_bad_input(runs, cli, tmp_path):
    import shutil

    root, _ = runs
    shutil.copytree(root / "npy", tmp_path / "bad")
    f = tmp_path / "bad" / "summary" / "dw.npy"
    f.write_bytes(f.read_bytes()[:100])  # cut inside the header
    for base in ("npy", "csv"):
        r = cli("compare", tmp_path / "bad", root / base)
        assert r.exit_code == 2 and f"{f}: damaged result file: " in r.output and "truncated" in r.output, r.output
    r = cli("plot", tmp_path / "bad", "-o", tmp_path / "bad.png")
    assert r.exit_code == 2 and not (tmp_path / "bad.png").exists()
