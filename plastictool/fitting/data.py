"""Measured data and free parameters of a fit (spec section 13): reading and checking, no NumPy.

``DATA.csv`` has the format of ``protocols/<name>.reference.csv``: ``#`` comment lines (the
citation), a header, one column per varied key (a dotted protocol path, values in canonical
units), ``dw_percent``, optional ``sem`` (percent) and ``label``. Each row is a condition.

A free parameter is ``PATH=LO:HI`` or ``PATH=LO:START:HI``, the bounds in the parameter's units
(``rule.tau_y=10ms:500ms``; a bare number is in the canonical unit), or in a protocol's
``fit.params`` a list ``[LO, HI]`` / ``[LO, START, HI]``. Mistakes are ProtocolErrors (exit 2).
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import ProtocolError
from ..protocol.units import ONE, UnitError, parse_quantity

RESERVED = ("dw_percent", "sem", "label")
MAX_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Data:
    file: str
    keys: tuple[str, ...]  # the varied protocol paths, in column order
    x: tuple[tuple[float, ...], ...]  # per row, the value of each key (canonical units)
    y: tuple[float, ...]  # dw_percent
    sem: tuple[float, ...] | None  # None: no sem column (every sem 1, chi2 scaled)
    labels: tuple[str, ...]
    comments: tuple[str, ...]
    sha256: str

    @property
    def n(self) -> int:
        return len(self.y)


def read_data(path: str | Path) -> Data:
    """Read and check ``DATA.csv``; every mistake names the file and line."""
    path = Path(path)
    file = str(path)
    if not path.is_file():
        raise ProtocolError("no such data file", "--data", file, None)
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        raise ProtocolError(f"data file above {MAX_BYTES // 2**20} MiB", "--data", file, None)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("not a UTF-8 text file", "--data", file, None) from None
    comments, lines = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            comments.append(line[1:].strip())
        elif line.strip():
            lines.append((number, line))
    if not lines:
        raise ProtocolError("the data file is empty (no header, no rows)", "--data", file, None)
    head_line, header = lines[0][0], [c.strip() for c in next(csv.reader([lines[0][1]]))]
    if "dw_percent" not in header:
        raise ProtocolError("no dw_percent column in the header", "dw_percent", file, head_line)
    if len(set(header)) != len(header):
        dup = next(c for c in header if header.count(c) > 1)
        raise ProtocolError(f"column {dup!r} appears twice", dup, file, head_line)
    keys = tuple(c for c in header if c not in RESERVED)
    for k in keys:
        if not k or "." not in k:
            raise ProtocolError(f"column {k!r} is not a dotted protocol path (such as stimulus.pairing.delta_t)", k, file, head_line)
    if len(lines) == 1:
        raise ProtocolError("the data file has a header but no rows", "--data", file, head_line)
    has_sem = "sem" in header
    xs, ys, sems, labels = [], [], [], []
    for number, line in lines[1:]:
        cells = [c.strip() for c in next(csv.reader([line]))]
        if len(cells) != len(header):
            raise ProtocolError(f"{len(cells)} cells, the header has {len(header)}", "--data", file, number)
        row = dict(zip(header, cells))

        def num(col, row=row, number=number):
            try:
                x = float(row[col])
            except ValueError:
                raise ProtocolError(f"{row[col]!r} is not a number", col, file, number) from None
            if not math.isfinite(x):
                raise ProtocolError(f"{row[col]!r} is not a finite number", col, file, number)
            return x

        xs.append(tuple(num(k) for k in keys))
        ys.append(num("dw_percent"))
        if has_sem:
            s = num("sem")
            if s <= 0:
                raise ProtocolError(f"sem must be > 0, got {row['sem']}", "sem", file, number)
            sems.append(s)
        labels.append(row.get("label", ""))
    return Data(file, keys, tuple(xs), tuple(ys), tuple(sems) if has_sem else None, tuple(labels), tuple(comments),
                hashlib.sha256(raw).hexdigest())


@dataclass(frozen=True)
class FreeParam:
    path: str  # dotted protocol path, e.g. rule.a3_plus
    lo: float  # canonical units
    hi: float
    start: float | None  # None: drawn (least_squares starts) or the middle
    dim: str  # unit dimension of the value (units.TIME, ...)

    @property
    def log(self) -> bool:
        """Positive bounds: searched in log space."""
        return self.lo > 0.0


def dim_of(path: str, rule_kind: str | None) -> str:
    """The unit dimension of a protocol path: a rule parameter's from its SPEC, else any unit."""
    parts = path.split(".")
    if parts[0] == "rule" and len(parts) == 2 and rule_kind is not None:
        from .. import rules

        spec = rules.spec(rule_kind)
        if parts[1] in spec.param_names:
            d = spec.param(parts[1]).dim
            if d in ("init",):
                return ONE
            return d
    return "any"


def _quantity(text, dim: str, where: str, file: str, line) -> float:
    from ..protocol.units import RATE, TIME, VOLTAGE

    try:
        if dim == "any":
            if isinstance(text, (int, float)) and not isinstance(text, bool):
                return float(text)
            for d in (ONE, TIME, RATE, VOLTAGE):
                try:
                    return parse_quantity(text, d)
                except UnitError:
                    pass
            raise UnitError(f"cannot read {text!r} as a number with a unit")
        return parse_quantity(text.strip() if isinstance(text, str) else text, dim)
    except UnitError as exc:
        raise ProtocolError(str(exc), where, file, line) from None


def make_param(path: str, parts: list, rule_kind: str | None, file: str = "--param", line=None) -> FreeParam:
    """``parts``: [LO, HI] or [LO, START, HI] (strings with units or numbers)."""
    if not path or "." not in path:
        raise ProtocolError(f"{path!r} is not a dotted protocol path (such as rule.a_plus)", path or "--param", file, line)
    if len(parts) not in (2, 3):
        raise ProtocolError(f"expected LO:HI or LO:START:HI, got {len(parts)} values", path, file, line)
    dim = dim_of(path, rule_kind)
    nums = [_quantity(p, dim, path, file, line) for p in parts]
    lo, hi = nums[0], nums[-1]
    start = nums[1] if len(nums) == 3 else None
    if not lo < hi:
        raise ProtocolError(f"LO must be below HI, got {lo:g} and {hi:g}", path, file, line)
    if start is not None and not lo <= start <= hi:
        raise ProtocolError(f"START {start:g} is outside [{lo:g}, {hi:g}]", path, file, line)
    return FreeParam(path, lo, hi, start, dim)


def parse_param(expr: str, rule_kind: str | None) -> FreeParam:
    """``PATH=LO:HI`` or ``PATH=LO:START:HI`` from the command line."""
    if "=" not in expr:
        raise ProtocolError(f"--param expects PATH=LO:HI or PATH=LO:START:HI, got {expr!r}", "--param", "--param", None)
    path, rng = expr.split("=", 1)
    return make_param(path.strip(), [x.strip() for x in rng.split(":")], rule_kind)
