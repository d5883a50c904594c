"""Compare two output folders (spec section 10): ``plastic compare`` and ``plastic run --check``.

The tables ``summary.csv``, ``traces.csv``, ``spikes.csv``, ``responses.csv`` and ``structure.csv``
are compared column by column, matching columns by their header name. A table of
``record.format: npy`` (a folder of ``.npy`` files, :mod:`plastictool.results.columnar`) stands for its
CSV file: against a CSV file it is compared as the CSV text it would write (12 significant
digits), against another ``.npy`` table column by column at full precision (``%.17g``; identical
files are not parsed). A CSV and an npy folder of one run have no differences, and a protocol
that differs only in ``record.format`` is no warning.

* two cells are equal when their text is equal (so empty cells equal only empty cells, and
  ``LTP``/``pre``/sweep labels must match exactly);
* otherwise, when both parse as numbers, they are equal when
  ``|got - expected| <= atol + rtol * |expected|`` (NumPy's ``isclose`` rule, with the
  baseline as ``expected``); infinities must match exactly;
* anything else is a difference.

A file or column present on one side only, or a different number of rows, is a difference. A
changed protocol (``run.json`` ``protocol_sha256`` / ``resolved_sha256``), seed or package
version (``run.json`` ``versions``) is only a warning: the numbers decide.

The report counts the differences per file and column, with the largest absolute and relative
deviation and the worst row of each (:class:`ColumnDeviation`, shown first: a drifted
``w_final`` is not hidden behind spike times of a larger scale), and keeps the ``limit`` single
cells that are furthest outside the tolerance.

Results are deterministic (the same protocol, seed and versions give byte-identical files), so
the default tolerances are tight: ``rtol = 1e-9``, ``atol = 1e-12``. Loosen them to compare
across machines or library versions.

Only the standard library is used here, so importing this module is cheap.
"""

from __future__ import annotations

import csv
import heapq
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .columnar import DamagedFile, table_dir
from ..errors import ProtocolError

DEFAULT_RTOL = 1e-9
DEFAULT_ATOL = 1e-12
DEFAULT_LIMIT = 20
TABLES = ("summary.csv", "traces.csv", "spikes.csv", "responses.csv", "structure.csv")
RESULT_FILES = TABLES + ("run.json",)

MISSING = "(missing)"
PRESENT = "(present)"


@dataclass(frozen=True)
class Difference:
    """One difference. ``row`` is the data row number (1 = the first row after the header;
    the file's line number is ``row + 1``); ``None`` for a file-, column- or row-count difference."""

    file: str
    column: str
    row: int | None
    got: str
    expected: str
    kind: str  # value, text, missing file, extra file, missing column, extra column, row count
    abs_diff: float | None = None
    excess: float = math.inf  # |got - expected| / (atol + rtol |expected|); inf when not numeric

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "column": self.column,
            "row": self.row,
            "got": self.got,
            "expected": self.expected,
            "kind": self.kind,
            "abs_diff": self.abs_diff,
            "excess": None if math.isinf(self.excess) else self.excess,
        }


@dataclass
class ColumnDeviation:
    """The differences of one column of one file: how many, the largest absolute and relative
    deviation (``|got - expected| / |expected|``; None where no numeric difference, ``inf`` where
    ``expected`` is 0), and the row of the largest absolute deviation (else the first
    difference) with its values. Structural differences (a missing column...) have ``kind``."""

    file: str
    column: str
    count: int = 0
    max_abs: float | None = None
    max_rel: float | None = None
    worst_row: int | None = None
    worst_got: str = ""
    worst_expected: str = ""
    kinds: list = field(default_factory=list)

    def add(self, d: Difference) -> None:
        self.count += 1
        if d.kind not in self.kinds:
            self.kinds.append(d.kind)
        first = self.count == 1
        if d.abs_diff is not None:
            e = _number(d.expected)
            rel = d.abs_diff / abs(e) if e not in (None, 0.0) and math.isfinite(e) else math.inf
            if self.max_rel is None or rel > self.max_rel:
                self.max_rel = rel
            if self.max_abs is None or d.abs_diff > self.max_abs:
                self.max_abs = d.abs_diff
                first = True
        if first:
            self.worst_row, self.worst_got, self.worst_expected = d.row, d.got, d.expected

    def as_dict(self) -> dict:
        def num(x):  # JSON has no infinity
            return "inf" if x is not None and math.isinf(x) else x

        return {
            "file": self.file,
            "column": self.column,
            "count": self.count,
            "max_abs": num(self.max_abs),
            "max_rel": num(self.max_rel),
            "worst_row": self.worst_row,
            "worst_got": self.worst_got,
            "worst_expected": self.worst_expected,
            "kinds": list(self.kinds),
        }


@dataclass
class Comparison:
    """The outcome of comparing ``run_dir`` against ``baseline_dir``."""

    run_dir: str
    baseline_dir: str
    rtol: float
    atol: float
    count: int = 0  # differences found
    largest: list[Difference] = field(default_factory=list)  # the largest, at most ``limit``
    by_column: dict = field(default_factory=dict)  # (file, column) -> number of differences
    columns: list[ColumnDeviation] = field(default_factory=list)  # per file and column, in file order
    warnings: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # tables present on both sides
    cells: int = 0  # cells compared

    @property
    def ok(self) -> bool:
        return self.count == 0

    def by_file(self) -> dict:
        out: dict = {}
        for (f, _), n in self.by_column.items():
            out[f] = out.get(f, 0) + n
        return out

    def as_dict(self) -> dict:
        return {
            "run": self.run_dir,
            "baseline": self.baseline_dir,
            "ok": self.ok,
            "rtol": self.rtol,
            "atol": self.atol,
            "differences": self.count,
            "by_file": self.by_file(),
            "columns": [c.as_dict() for c in self.columns],
            "largest": [d.as_dict() for d in self.largest],
            "warnings": list(self.warnings),
            "files": list(self.files),
            "cells": self.cells,
        }


class _Sink:
    """Counts differences and keeps the ``limit`` largest (structural ones first, then by
    how many tolerances a value is off; ties in the order found)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.heap: list = []
        self.seq = 0
        self.count = 0
        self.by_column: dict = {}
        self.columns: dict = {}  # (file, column) -> ColumnDeviation, in the order found

    def add(self, d: Difference) -> None:
        self.count += 1
        key = (d.file, d.column)
        self.by_column[key] = self.by_column.get(key, 0) + 1
        if key not in self.columns:
            self.columns[key] = ColumnDeviation(d.file, d.column)
        self.columns[key].add(d)
        self.seq += 1
        item = (d.excess, -self.seq, d)
        if len(self.heap) < self.limit:
            heapq.heappush(self.heap, item)
        elif self.limit and item[:2] > self.heap[0][:2]:
            heapq.heapreplace(self.heap, item)

    def largest(self) -> list[Difference]:
        return [d for _, _, d in sorted(self.heap, key=lambda it: (it[0], it[1]), reverse=True)]


def check_folder(path: str | Path, what: str = "output") -> Path:
    """A folder that exists and holds at least one result file; bad input (exit 2) otherwise."""
    p = Path(path)
    if not p.exists():
        raise ProtocolError(f"no such {what} folder", "", str(p))
    if not p.is_dir():
        raise ProtocolError(f"{what} folder expected, found a file", "", str(p))
    if not any((p / f).is_file() for f in RESULT_FILES) and not any(table_dir(p, t[:-4]) is not None for t in TABLES):
        raise ProtocolError(f"not a plastic output folder (none of {', '.join(RESULT_FILES)})", "", str(p))
    return p


def split_line(line: str) -> list[str]:
    """One CSV line into cells (headers such as ``"w[0,1]"`` are quoted)."""
    if '"' not in line:
        return line.split(",")
    return next(csv.reader([line]))


def _read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    rows = [split_line(line) for line in text.splitlines()]
    if not rows:
        return [], []
    return rows[0], rows[1:]


def _number(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _compare_cells(file: str, column: str, got: list[str], exp: list[str], rtol: float, atol: float, sink: _Sink) -> None:
    if got == exp:
        return
    for k, (g, e) in enumerate(zip(got, exp)):
        if g == e:
            continue
        gf, ef = _number(g), _number(e)
        if gf is None or ef is None:
            sink.add(Difference(file, column, k + 1, g, e, "text"))
            continue
        if math.isfinite(gf) and math.isfinite(ef):
            diff = abs(gf - ef)
            tol = atol + rtol * abs(ef)
            if diff <= tol:
                continue
            sink.add(Difference(file, column, k + 1, g, e, "value", diff, diff / tol if tol > 0 else math.inf))
        elif gf == ef or (math.isnan(gf) and math.isnan(ef)):
            continue
        else:
            sink.add(Difference(file, column, k + 1, g, e, "value", abs(gf - ef) if not math.isnan(gf - ef) else None))


def _table(folder: Path, name: str) -> Path | None:
    """The table ``name`` (``summary.csv``) of a run folder: the CSV file, or the folder of
    ``.npy`` files of ``record.format: npy`` (``summary/``); None where there is neither."""
    if (folder / name).is_file():
        return folder / name
    return table_dir(folder, name[: -len(".csv")])


def _npy_as_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """A table of ``.npy`` files as the cells of the CSV file that ``record.format: csv`` writes."""
    from .result import read_table

    text = read_table(path.parent, path.name).to_csv_bytes().decode("ascii")
    rows = [split_line(line) for line in text.splitlines()]
    return (rows[0], rows[1:]) if rows else ([], [])


def _npy_cells(path: Path, column: str, empty_nan: bool) -> list[str]:
    """A column of a ``.npy`` table as text at full precision (``%.17g``; NaN empty where the CSV
    file leaves it empty)."""
    from . import columnar

    a = columnar.load(path, column)
    if a.dtype.kind == "S":
        return [x.decode("ascii", "replace") for x in a.tolist()]
    if a.dtype.kind in "iub":
        return ["%d" % x for x in a.tolist()]
    return ["" if (x != x and empty_nan) else "%.17g" % x for x in a.astype(float).tolist()]


def _same_npy_table(got: Path, exp: Path) -> bool:
    """Two ``.npy`` tables with byte-identical files."""
    from . import columnar

    if (got / columnar.COLUMNS_FILE).read_bytes() != (exp / columnar.COLUMNS_FILE).read_bytes():
        return False
    return all((got / columnar.column_file(c)).read_bytes() == (exp / columnar.column_file(c)).read_bytes() for c in columnar.column_names(exp))


def _common_columns(name: str, g_head: list, e_head: list, sink: "_Sink", result: "Comparison") -> list:
    """The columns both tables have, in the baseline's order; a missing or extra column is a
    difference, the same columns in another order a warning."""
    for c in e_head:
        if c not in g_head:
            sink.add(Difference(name, c, None, MISSING, PRESENT, "missing column"))
    for c in g_head:
        if c not in e_head:
            sink.add(Difference(name, c, None, PRESENT, MISSING, "extra column"))
    common = [c for c in e_head if c in g_head]
    if [c for c in g_head if c in e_head] != common:
        result.warnings.append(f"{name}: the columns are in a different order")
    return common


def _compare_npy_tables(name: str, got: Path, exp: Path, rtol: float, atol: float, sink: _Sink, result: Comparison) -> None:
    """Two ``.npy`` tables, column by column at full precision (identical files need no parsing)."""
    from . import columnar
    from .result import _spec

    g_head, e_head = columnar.column_names(got), columnar.column_names(exp)
    g_n, e_n = columnar.rows(got), columnar.rows(exp)
    if g_n != e_n:
        sink.add(Difference(name, "", None, f"{g_n} rows", f"{e_n} rows", "row count"))
    common = _common_columns(name, g_head, e_head, sink, result)
    n = min(g_n, e_n)
    empty = _spec(exp.name).empty_nan
    for c in common:
        result.cells += n
        if (got / columnar.column_file(c)).read_bytes() == (exp / columnar.column_file(c)).read_bytes():
            continue
        got_cells, exp_cells = _npy_cells(got, c, c in empty)[:n], _npy_cells(exp, c, c in empty)[:n]
        _compare_cells(name, c, got_cells, exp_cells, rtol, atol, sink)


def _compare_table(name: str, got_path: Path, exp_path: Path, rtol: float, atol: float, sink: _Sink, result: Comparison) -> None:
    g_npy, e_npy = got_path.is_dir(), exp_path.is_dir()
    if g_npy and e_npy:
        if _same_npy_table(got_path, exp_path):
            from . import columnar

            result.cells += len(columnar.column_names(exp_path)) * columnar.rows(exp_path)
            return
        return _compare_npy_tables(name, got_path, exp_path, rtol, atol, sink, result)
    if not g_npy and not e_npy and got_path.read_bytes() == exp_path.read_bytes():  # the usual case: nothing to parse
        header, rows = _read_table(exp_path)
        result.cells += len(header) * len(rows)
        return
    # a CSV file and a table of .npy files: the latter as the CSV file it stands for
    g_head, g_rows = _npy_as_csv(got_path) if g_npy else _read_table(got_path)
    e_head, e_rows = _npy_as_csv(exp_path) if e_npy else _read_table(exp_path)
    if len(g_rows) != len(e_rows):
        sink.add(Difference(name, "", None, f"{len(g_rows)} rows", f"{len(e_rows)} rows", "row count"))
    n = min(len(g_rows), len(e_rows))
    g_index = {c: i for i, c in reversed(list(enumerate(g_head)))}
    e_index = {c: i for i, c in reversed(list(enumerate(e_head)))}
    common = _common_columns(name, g_head, e_head, sink, result)
    for c in dict.fromkeys(common):
        gi, ei = g_index[c], e_index[c]
        got = [r[gi] if gi < len(r) else "" for r in g_rows[:n]]
        exp = [r[ei] if ei < len(r) else "" for r in e_rows[:n]]
        _compare_cells(name, c, got, exp, rtol, atol, sink)
        result.cells += n


def _load_run_json(path: Path, side: str, warnings: list[str]) -> dict | None:
    if not path.is_file():
        warnings.append(f"run.json is missing from the {side} folder: protocol and versions not checked")
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        warnings.append(f"run.json in the {side} folder is unreadable ({exc}): protocol and versions not checked")
        return None
    return doc if isinstance(doc, dict) else None


def _without_format(protocol) -> dict | None:
    if not isinstance(protocol, dict):
        return None
    p = json.loads(json.dumps(protocol, sort_keys=True))
    if isinstance(p.get("record"), dict):
        p["record"].pop("format", None)
    return p


def _short(x) -> str:
    s = str(x)
    return s[:12] + "..." if len(s) > 15 else s


def _metadata_warnings(run_dir: Path, base_dir: Path) -> list[str]:
    out: list[str] = []
    got = _load_run_json(run_dir / "run.json", "run", out)
    exp = _load_run_json(base_dir / "run.json", "baseline", out)
    if got is None or exp is None:
        return out
    labels = {"protocol_sha256": "protocol file", "resolved_sha256": "resolved protocol"}
    gp, ep = got.get("protocol"), exp.get("protocol")
    same_but_format = gp != ep and gp is not None and _without_format(gp) == _without_format(ep)
    for key, label in labels.items():
        if key == "resolved_sha256" and same_but_format:
            continue  # only record.format differs: how the tables are stored
        if got.get(key) != exp.get(key):
            out.append(f"the {label} changed ({key} {_short(got.get(key))} here, {_short(exp.get(key))} in the baseline)")
    if got.get("seed") != exp.get("seed"):
        out.append(f"the seed changed ({got.get('seed')} here, {exp.get('seed')} in the baseline)")
    gv, ev = got.get("versions") or {}, exp.get("versions") or {}
    changed = [f"{k} {gv.get(k, 'absent')} (baseline {ev.get(k, 'absent')})" for k in sorted(set(gv) | set(ev)) if gv.get(k) != ev.get(k)]
    if changed:
        out.append("package versions differ: " + ", ".join(changed))
    return out


def compare_dirs(
    run_dir: str | Path,
    baseline_dir: str | Path,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    limit: int = DEFAULT_LIMIT,
) -> Comparison:
    """Compare the tables of ``run_dir`` with those of ``baseline_dir`` (the expected values).

    Raises :class:`ProtocolError` (exit 2) when a folder is missing or holds no result files, or
    a tolerance is negative or not a number."""
    for name, v in (("rtol", rtol), ("atol", atol)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ProtocolError(f"{name} must be a finite number >= 0, got {v!r}", name)
    if limit < 0:
        raise ProtocolError(f"limit must be >= 0, got {limit!r}", "limit")
    base = check_folder(baseline_dir, "baseline")
    run = check_folder(run_dir, "run")
    result = Comparison(str(run_dir), str(baseline_dir), float(rtol), float(atol))
    sink = _Sink(limit)
    for name in TABLES:
        g, e = _table(run, name), _table(base, name)
        if g is None and e is None:
            continue
        if g is None:
            sink.add(Difference(name, "", None, MISSING, PRESENT, "missing file"))
            continue
        if e is None:
            sink.add(Difference(name, "", None, PRESENT, MISSING, "extra file"))
            continue
        result.files.append(name)
        try:
            _compare_table(name, g, e, rtol, atol, sink, result)
        except OSError as exc:  # an I/O error, a file that vanished: the environment (exit 4)
            from .folders import environment_error

            raise environment_error(exc, exc.filename or g, "read") from None
        except DamagedFile as exc:  # a garbled or truncated file of a .npy table: name it
            raise ProtocolError(f"damaged result file: {exc.why}", "", str(exc.path)) from None
        except (ValueError, SyntaxError) as exc:  # pragma: no cover - DamagedFile covers what we know of
            raise ProtocolError(f"cannot read {name} of one of the folders: {exc}", "", f"{run} / {base}") from None
    result.warnings[:0] = _metadata_warnings(run, base)
    result.count = sink.count
    result.largest = sink.largest()
    result.by_column = dict(sink.by_column)
    result.columns = list(sink.columns.values())
    return result
