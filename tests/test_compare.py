"""``plastic compare`` and ``plastic run --check`` (spec section 10): tolerances, structural
differences, warnings, exit codes. One small sweep is run once per module and copied per test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from plastictool.results import compare as cmp
from plastictool.results.output import csv_field

PAIR = """\
name: pair
seed: 3
dt: 0.1 ms
synapses: {n_pre: 1, n_post: 1, w_init: 0.5, w_min: 0, w_max: 1}
neuron: {model: clamped}
stimulus:
  pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}
rule: {kind: stdp, preset: bi_poo_1998}
record: {interval: 100 ms, state: [x_pre]}
sweep:
  stimulus.pairing.delta_t: [-20 ms, 0 ms, 10 ms]
"""


@pytest.fixture(scope="module")
def result_dir(tmp_path_factory):
    """One run of the small sweep: the pristine output folder (do not modify; copy it)."""
    from typer.testing import CliRunner

    from plastictool.cli import app

    root = tmp_path_factory.mktemp("cmp")
    p = root / "pair.yaml"
    p.write_text(textwrap.dedent(PAIR))
    out = root / "pristine"
    r = CliRunner().invoke(app, ["run", str(p), "--out", str(out), "--jobs", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture
def dirs(result_dir, tmp_path):
    """(run, baseline, protocol file): two copies of the same results, and the protocol."""
    run, base = tmp_path / "run", tmp_path / "baseline"
    shutil.copytree(result_dir, run)
    shutil.copytree(result_dir, base)
    proto = tmp_path / "pair.yaml"
    proto.write_text(textwrap.dedent(PAIR))
    return run, base, proto


def read(path):
    rows = [cmp.split_line(line) for line in path.read_text().splitlines()]
    return rows[0], rows[1:]


def write(path, header, rows):
    path.write_text(",".join(csv_field(c) for c in header) + "\n" + "".join(",".join(r) + "\n" for r in rows))


def edit_cell(path, row, column, fn):
    header, rows = read(path)
    c = header.index(column)
    old = rows[row - 1][c]
    rows[row - 1][c] = fn(old)
    write(path, header, rows)
    return old, rows[row - 1][c]


def test_quoted_headers_with_commas_are_one_column(result_dir):
    header, rows = read(result_dir / "traces.csv")
    assert header == ["t_ms", "w[0,0]", "w_mean", "x_pre[0]", "condition"]
    assert all(len(r) == len(header) for r in rows)
    assert cmp.split_line('a,"b,c",d') == ["a", "b,c", "d"]


def test_cli_defaults_agree_with_the_module():
    from plastictool import cli

    assert (cli.DEFAULT_RTOL, cli.DEFAULT_ATOL) == (cmp.DEFAULT_RTOL, cmp.DEFAULT_ATOL) == (1e-9, 1e-12)


def test_identical_folders_compare_equal(cli, dirs):
    run, base, _ = dirs
    r = cli("compare", run, base)
    assert r.exit_code == 0, r.output
    assert "matches" in r.stdout and "warning" not in r.output
    res = cmp.compare_dirs(run, base)
    assert res.ok and res.count == 0 and res.files == ["summary.csv", "traces.csv", "spikes.csv"] and res.cells > 0


def test_a_drifted_number_exits_1_and_names_file_column_row(cli, dirs):
    run, base, _ = dirs
    old, new = edit_cell(base / "summary.csv", 2, "w_final", lambda s: repr(float(s) + 1e-3))
    r = cli("compare", run, base)
    assert r.exit_code == 1, r.output
    out = r.stdout
    assert "summary.csv" in out and "w_final" in out and old in out and new in out
    assert "1 difference" in out
    res = cmp.compare_dirs(run, base)
    (d,) = res.largest
    assert (d.file, d.column, d.row, d.got, d.expected, d.kind) == ("summary.csv", "w_final", 2, old, new, "value")
    assert d.abs_diff == pytest.approx(1e-3)
    assert res.by_file() == {"summary.csv": 1}


def test_rtol_and_atol_are_respected(cli, dirs):
    run, base, _ = dirs
    # relative: 1e-6 off a value of order 0.5
    edit_cell(base / "summary.csv", 1, "w_final", lambda s: repr(float(s) * (1 + 1e-6)))
    assert cli("compare", run, base).exit_code == 1
    assert cli("compare", run, base, "--rtol", "1e-7").exit_code == 1
    assert cli("compare", run, base, "--rtol", "1e-5").exit_code == 0
    # absolute: a zero that became 1e-10 (rtol cannot help: |expected| is 0)
    shutil.rmtree(base)
    shutil.copytree(run, base)
    header, rows = read(base / "traces.csv")
    c, k = header.index("x_pre[0]"), next(i for i, r in enumerate(rows) if r[header.index("x_pre[0]")] == "0")
    rows[k][c] = "1e-10"
    write(base / "traces.csv", header, rows)
    assert cli("compare", run, base, "--rtol", "0.1").exit_code == 1
    assert cli("compare", run, base, "--atol", "1e-9").exit_code == 0
    # the isclose rule: |got - expected| <= atol + rtol |expected|, the baseline is expected
    assert cmp.compare_dirs(run, base, rtol=0, atol=1e-10).ok
    assert not cmp.compare_dirs(run, base, rtol=0, atol=0.99e-10).ok


def test_text_and_empty_cells_must_match_exactly(dirs):
    run, base, _ = dirs
    header, rows = read(base / "summary.csv")
    c_out, c_pct = header.index("outcome"), header.index("dw_percent")
    rows[0][c_out] = "LTP" if rows[0][c_out] != "LTP" else "LTD"
    rows[1][c_pct] = ""  # an empty cell equals only an empty cell
    write(base / "summary.csv", header, rows)
    res = cmp.compare_dirs(run, base, rtol=1.0, atol=1e6)
    assert res.count == 2
    assert {(d.column, d.row, d.kind) for d in res.largest} == {("outcome", 1, "text"), ("dw_percent", 2, "text")}


def test_missing_column_missing_file_and_row_count_are_differences(cli, dirs):
    run, base, _ = dirs
    header, rows = read(run / "traces.csv")
    c = header.index("x_pre[0]")
    write(run / "traces.csv", header[:c] + header[c + 1 :], [r[:c] + r[c + 1 :] for r in rows])
    (run / "spikes.csv").unlink()
    header, rows = read(run / "summary.csv")
    write(run / "summary.csv", header, rows[:-1])
    r = cli("compare", run, base)
    assert r.exit_code == 1, r.output
    assert "x_pre[0]" in r.stdout and "spikes.csv" in r.stdout and "missing" in r.stdout
    res = cmp.compare_dirs(run, base)
    kinds = {(d.file, d.column, d.kind) for d in res.largest}
    assert ("traces.csv", "x_pre[0]", "missing column") in kinds
    assert ("spikes.csv", "", "missing file") in kinds
    assert ("summary.csv", "", "row count") in kinds
    assert res.count == 3  # the rows both have are equal
    # the other way round: an extra file or column is a difference too
    res = cmp.compare_dirs(base, run)
    kinds = {(d.file, d.column, d.kind) for d in res.largest}
    assert ("traces.csv", "x_pre[0]", "extra column") in kinds and ("spikes.csv", "", "extra file") in kinds


def test_largest_deviations_come_first_and_the_count_is_complete(dirs):
    run, base, _ = dirs
    header, rows = read(base / "traces.csv")
    c = header.index("w[0,0]")
    for k, r in enumerate(rows):
        r[c] = repr(float(r[c]) + 1e-6 * (k + 1))
    write(base / "traces.csv", header, rows)
    res = cmp.compare_dirs(run, base, limit=3)
    assert res.count == len(rows) and len(res.largest) == 3
    assert [d.row for d in res.largest] == [len(rows), len(rows) - 1, len(rows) - 2]


def test_per_column_summary_counts_max_abs_max_rel_and_worst_row(dirs):
    run, base, _ = dirs
    header, rows = read(base / "traces.csv")
    c = header.index("w[0,0]")
    got = [float(r[c]) for r in rows]
    shifts = {1: 1e-6, 3: 4e-6, 5: 2e-6}  # row -> shift of the expected value
    for row, d in shifts.items():
        rows[row - 1][c] = repr(got[row - 1] + d)
    write(base / "traces.csv", header, rows)
    edit_cell(base / "summary.csv", 1, "outcome", lambda s: "none" if s != "none" else "LTP")
    res = cmp.compare_dirs(run, base, limit=1)
    cols = {(x.file, x.column): x for x in res.columns}
    w = cols[("traces.csv", "w[0,0]")]
    assert w.count == 3 and w.max_abs == pytest.approx(4e-6) and w.worst_row == 3
    assert w.max_rel == pytest.approx(max(d / abs(got[r - 1] + d) for r, d in shifts.items()))
    assert float(w.worst_got) == got[2] and float(w.worst_expected) == pytest.approx(got[2] + 4e-6, abs=1e-15)
    o = cols[("summary.csv", "outcome")]
    assert o.count == 1 and o.max_abs is None and o.max_rel is None and o.worst_row == 1 and o.kinds == ["text"]
    assert [x.file for x in res.columns] == ["summary.csv", "traces.csv"]  # file order
    assert sum(x.count for x in res.columns) == res.count == 4


def test_a_drifted_w_final_is_shown_per_column_before_larger_cells(cli, dirs):
    """Spike times far off outrank a small drift of w_final among the largest cells; the table
    per file and column shows both first."""
    run, base, _ = dirs
    header, rows = read(base / "spikes.csv")
    t = header.index("t_ms")
    for r in rows:
        r[t] = repr(float(r[t]) + 5.0)
    write(base / "spikes.csv", header, rows)
    old, new = edit_cell(base / "summary.csv", 2, "w_final", lambda s: repr(float(s) + 1e-3))
    r = cli("compare", run, base, "--limit", "3")
    assert r.exit_code == 1, r.output
    out = r.stdout
    assert out.index("deviations per file and column") < out.index("largest deviations")
    per_column, largest = out.split("largest deviations")
    assert "w_final" in per_column and old in per_column and new in per_column and "0.001" in per_column
    cells = [x for x in largest.splitlines() if x.startswith("\u2502")]  # the table's rows
    assert len(cells) == 3 and not [x for x in cells if "w_final" in x]  # not among the largest cells
    line = next(x for x in per_column.splitlines() if "w_final" in x)
    assert " 1 " in line and " 2 " in line  # one difference, in row 2
    doc = json.loads(cli("compare", run, base, "--limit", "3", "--json").stdout)
    col = next(c for c in doc["columns"] if c["column"] == "w_final")
    assert col == {
        "file": "summary.csv", "column": "w_final", "count": 1, "max_abs": pytest.approx(1e-3), "max_rel": pytest.approx(1e-3 / abs(float(new))),
        "worst_row": 2, "worst_got": old, "worst_expected": new, "kinds": ["value"],
    }
    spikes = next(c for c in doc["columns"] if c["file"] == "spikes.csv")
    assert spikes["count"] == len(rows) and spikes["max_abs"] == pytest.approx(5.0)


def test_changed_protocol_hash_and_versions_only_warn(cli, dirs):
    run, base, _ = dirs
    meta = json.loads((base / "run.json").read_text())
    meta["protocol_sha256"] = "0" * 64
    meta["resolved_sha256"] = "1" * 64
    meta["versions"]["numpy"] = "0.0.1"
    (base / "run.json").write_text(json.dumps(meta))
    r = cli("compare", run, base)
    assert r.exit_code == 0, r.output
    assert "warning: the protocol file changed" in r.stderr
    assert "warning: the resolved protocol changed" in r.stderr
    assert "numpy" in r.stderr and "0.0.1" in r.stderr
    res = cmp.compare_dirs(run, base)
    assert res.ok and len(res.warnings) == 3
    (run / "run.json").unlink()
    res = cmp.compare_dirs(run, base)
    assert res.ok and any("run.json is missing" in w for w in res.warnings)


def test_bad_input_exits_2_with_a_clear_message(cli, dirs, tmp_path):
    run, base, _ = dirs
    r = cli("compare", run, tmp_path / "nowhere")
    assert r.exit_code == 2 and "nowhere: no such baseline folder" in r.output and "Traceback" not in r.output
    r = cli("compare", tmp_path / "nowhere", base)
    assert r.exit_code == 2 and "no such run folder" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("compare", run, empty)
    assert r.exit_code == 2 and "not a plastic output folder" in r.output
    assert cli("compare", run, base, "--rtol", "-1").exit_code == 2
    with pytest.raises(cmp.ProtocolError):
        cmp.compare_dirs(run, base, rtol=float("nan"))


def test_compare_json_report(cli, dirs):
    run, base, _ = dirs
    edit_cell(base / "summary.csv", 3, "dw", lambda s: repr(float(s) + 1.0))
    r = cli("compare", run, base, "--json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False and doc["differences"] == 1 and doc["by_file"] == {"summary.csv": 1}
    assert doc["largest"][0]["column"] == "dw" and doc["largest"][0]["row"] == 3
    assert [(c["file"], c["column"], c["count"], c["worst_row"]) for c in doc["columns"]] == [("summary.csv", "dw", 1, 3)]
    assert doc["columns"][0]["max_abs"] == pytest.approx(1.0)
    assert doc["rtol"] == 1e-9 and doc["atol"] == 1e-12


def test_run_check_passes_and_fails(cli, dirs, tmp_path):
    run, base, proto = dirs
    r = cli("run", proto, "--out", tmp_path / "a", "--check", base, "--jobs", "1")
    assert r.exit_code == 0, r.output
    assert "matches" in r.stdout
    edit_cell(base / "summary.csv", 2, "dw", lambda s: repr(float(s) * 1.01))
    r = cli("run", proto, "--out", tmp_path / "b", "--check", base, "--jobs", "1")
    assert r.exit_code == 1, r.output
    assert "summary.csv" in r.stdout and "dw" in r.stdout and "differs from the baseline" in r.stderr
    assert (tmp_path / "b" / "summary.csv").is_file()  # the run's results are kept for inspection
    assert cli("run", proto, "--out", tmp_path / "c", "--check", base, "--rtol", "0.1").exit_code == 0
    r = cli("run", proto, "--out", tmp_path / "d", "--check", base, "--json")
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["status"] == 1
    check = doc["runs"][0]["check"]
    assert check["ok"] is False and check["differences"] == 1 and check["baseline"] == str(base)


def test_run_check_with_a_missing_baseline_exits_2_before_running(cli, dirs, tmp_path):
    _, _, proto = dirs
    out = tmp_path / "out"
    r = cli("run", proto, "--out", out, "--check", tmp_path / "nope")
    assert r.exit_code == 2 and "nope: no such baseline folder" in r.output
    assert not out.exists()


def test_run_check_refuses_to_overwrite_its_baseline(cli, dirs):
    _, base, proto = dirs
    before = (base / "summary.csv").read_bytes()
    r = cli("run", proto, "--out", base, "--force", "--check", base)
    assert r.exit_code == 2 and "the baseline is the output folder" in r.output
    assert (base / "summary.csv").read_bytes() == before


def test_help_does_not_import_numpy():
    code = "import sys, plastictool.cli; print('numpy' in sys.modules, 'numba' in sys.modules, 'plastictool.results.compare' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]


def test_an_unreadable_table_is_exit_4_naming_it(cli, dirs, monkeypatch):
    import errno
    import os
    from pathlib import Path

    run, base, _ = dirs
    real = Path.read_bytes

    def failing(self):
        if self.name == "traces.csv" and self.parent == run:
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", failing)
    r = cli("compare", run, base)
    assert r.exit_code == 4 and str(run / "traces.csv") in r.stderr and "Input/output error" in r.stderr
    assert "Traceback" not in r.output
