"""Compare two output folders (spec section 10): ``plastic compare`` and ``plastic run --check``.

The tables ``summary.csv``, ``traces.csv``, ``spikes.csv`` and ``structure.csv`` are compared
column by column, matching columns by their header name:

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

from .errors import ProtocolError

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
    if not any((p / f).is_file() for f in RESULT_FILES):
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


def _compare_table(name: str, got_path: Path, exp_path: Path, rtol: float, atol: float, sink: _Sink, result: Comparison) -> None:
    if got_path.read_bytes() == exp_path.read_bytes():  # the usual case: nothing to parse
        header, rows = _read_table(exp_path)
        result.cells += len(header) * len(rows)
        return
    g_head, g_rows = _read_table(got_path)
    e_head, e_rows = _read_table(exp_path)
    if len(g_rows) != len(e_rows):
        sink.add(Difference(name, "", None, f"{len(g_rows)} rows", f"{len(e_rows)} rows", "row count"))
    n = min(len(g_rows), len(e_rows))
    g_index = {c: i for i, c in reversed(list(enumerate(g_head)))}
    e_index = {c: i for i, c in reversed(list(enumerate(e_head)))}
    for c in e_head:
        if c not in g_index:
            sink.add(Difference(name, c, None, MISSING, PRESENT, "missing column"))
    for c in g_head:
        if c not in e_index:
            sink.add(Difference(name, c, None, PRESENT, MISSING, "extra column"))
    common = [c for c in e_head if c in g_index]
    if [c for c in g_head if c in e_index] != common:
        result.warnings.append(f"{name}: the columns are in a different order")
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
    for key, label in labels.items():
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
        g, e = run / name, base / name
        if not g.is_file() and not e.is_file():
            continue
        if not g.is_file():
            sink.add(Difference(name, "", None, MISSING, PRESENT, "missing file"))
            continue
        if not e.is_file():
            sink.add(Difference(name, "", None, PRESENT, MISSING, "extra file"))
            continue
        result.files.append(name)
        try:
            _compare_table(name, g, e, rtol, atol, sink, result)
        except OSError as exc:  # an I/O error, a file that vanished: the environment (exit 4)
            from .folders import environment_error

            raise environment_error(exc, exc.filename or g, "read") from None
    result.warnings[:0] = _metadata_warnings(run, base)
    result.count = sink.count
    result.largest = sink.largest()
    result.by_column = dict(sink.by_column)
    result.columns = list(sink.columns.values())
    return result
