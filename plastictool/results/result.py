"""``Result``: a finished run in memory (from :func:`plastictool.run`) or read back from its
folder (:func:`read`), with one :class:`~plastictool.results.table.Table` per result file.

The result files are listed once, in :data:`TABLES`: a new file (say ``responses.csv``) is one
:class:`TableSpec` entry, naming the attribute, the file, how to build its Table from the
engine's :class:`~plastictool.simulation.engine.RunResult` list, and which columns hold integers, text, or
NaN written empty (so that :func:`read` gives the file's numbers back with the right types).

Numbers. A Result from :func:`plastictool.run` holds the simulation's own float64 numbers; the
files hold them with 12 significant digits. ``a == b`` for Results (and Tables) means: the
same resolved protocol and the same tables, where tables are equal when they write the same
CSV bytes. So ``read(folder) == result`` holds exactly for the folder ``result.write(folder)``
(or ``plastic run``) wrote, while ``read(folder).summary["w_final"]`` differs from
``result.summary["w_final"]`` by the rounding to 12 digits (relative 5e-13 at most).

Memory. A run's Result keeps what ``plastic run`` keeps before writing (final weights, trace
rows, spike times); the Tables' columns are computed from them on first access, as NumPy arrays
(a summary column of a 1e8-synapse run is one 800 MB array, never Python objects), and
:meth:`Result.write` writes the files from the engine's results in bounded chunks, exactly as
``plastic run`` does. :func:`read` counts rows first and loads each column on first access.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ProtocolError
from .table import Table


# ---------------------------------------------------------------------------- the result files
@dataclass(frozen=True)
class TableSpec:
    """One result file: ``Result.<attr>`` is its Table.

    ``build(experiment, results)``: the Table from the engine's results (None where the run
    writes no such file); ``ints``/``labels``: integer and text columns (others are float64;
    a column not listed that holds non-numbers is read as text); ``empty_nan``: float columns
    whose NaN is written as an empty cell."""

    attr: str
    file: str
    build: Callable
    ints: tuple = ()
    labels: tuple = ()
    empty_nan: tuple = ()


def _cat(parts: list, dtype) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


def _condition_column(results, sizes) -> np.ndarray:
    from .output import condition_index

    return _cat([np.full(n, condition_index(r, k), np.int64) for k, (r, n) in enumerate(zip(results, sizes))], np.int64)


def _sweep_column(results, key_index: int, sizes) -> np.ndarray:
    """A sweep key's value per row, as summary.csv writes it (numbers as float64, else text)."""
    values = [r.condition[key_index][1] for r in results]
    if all(isinstance(v, (int, float)) for v in values):
        return _cat([np.full(n, float(v)) for v, n in zip(values, sizes)], np.float64)
    from .output import fmt

    text = [fmt(v) if isinstance(v, (int, float)) else str(v) for v in values]
    return np.repeat(np.array(text, dtype=str), sizes) if text else np.zeros(0, dtype=str)


def _outcome(t: Table, results, sizes) -> np.ndarray:
    """LTP / LTD / none, as ``format_summary`` decides it (threshold per condition)."""
    thr = _cat([np.full(n, float(r.protocol.record.outcome_threshold)) for r, n in zip(results, sizes)], np.float64)
    pct, dw = t["dw_percent"], t["dw"]
    empty = np.isnan(pct)
    ltp = np.where(empty, dw > 0, pct > thr)
    ltd = np.where(empty, dw < 0, pct < -thr)
    out = np.full(len(pct), "none", dtype="<U4")
    out[ltp] = "LTP"
    out[ltd & ~ltp] = "LTD"
    return out


def _dw_percent(t: Table) -> np.ndarray:
    w0, dw = t["w_initial"], t["dw"]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * dw / np.abs(w0)
    pct[w0 == 0] = np.nan
    return pct


def _summary(experiment, results) -> Table:
    sizes = [int(r.w_final.size) for r in results]
    cols: dict = {}
    for k, key in enumerate(experiment.sweep_keys):
        cols[key] = partial(_sweep_column, results, k, sizes)
    cols["pre"] = lambda: _cat([np.repeat(np.arange(r.w_final.shape[0], dtype=np.int64), r.w_final.shape[1]) for r in results], np.int64)
    cols["post"] = lambda: _cat([np.tile(np.arange(r.w_final.shape[1], dtype=np.int64), r.w_final.shape[0]) for r in results], np.int64)
    cols["w_initial"] = lambda: _cat([np.asarray(r.w_initial, dtype=np.float64).reshape(-1) for r in results], np.float64)
    cols["w_final"] = lambda: _cat([np.asarray(r.w_final, dtype=np.float64).reshape(-1) for r in results], np.float64)
    cols["dw"] = lambda: t["w_final"] - t["w_initial"]
    cols["dw_percent"] = lambda: _dw_percent(t)
    cols["outcome"] = lambda: _outcome(t, results, sizes)
    rel = experiment.base.synapses.release
    if rel is not None:  # transmitter release: U_initial, U_final (core.release.utilisation)
        from ..core.release import utilisation

        cols["U_initial"] = lambda: _cat([np.full(n, float(r.protocol.synapses.release.U)) for r, n in zip(results, sizes)], np.float64)
        cols["U_final"] = lambda: _cat(
            [utilisation(r.protocol.synapses.release.U, r.protocol.rule.expression == "presynaptic", r.w_initial, r.w_final).reshape(-1) for r in results], np.float64
        )
    if results and results[0].structure is not None:  # (the lambdas above read this t)
        t = _structure_summary(cols, results, sizes)
        return t
    t = Table(cols, rows=sum(sizes), name="summary", empty_nan=("dw_percent",))
    return t


STRUCTURE_EMPTY = ("w_initial", "w_final", "dw", "dw_percent")


def _structure_summary(cols: dict, results, sizes) -> Table:
    """summary.csv of a run with ``synapses.structure`` (as ``output._structure_summary_tasks``
    writes it): ``w_initial`` NaN (empty) where absent at the start, ``w_final`` where absent at
    the end, ``dw``/``dw_percent`` where either; ``outcome`` formed/eliminated/absent there;
    ``present_initial, present_final`` last."""
    plain = Table(dict(cols), rows=sum(sizes), name="summary")
    p0 = lambda: _cat([r.structure.present_initial.reshape(-1) for r in results], np.int64)  # noqa: E731
    p1 = lambda: _cat([r.structure.present_final.reshape(-1) for r in results], np.int64)  # noqa: E731
    out = {k: v for k, v in cols.items() if k not in STRUCTURE_EMPTY + ("outcome",)}

    def masked(name):
        a, b = t["present_initial"] == 1, t["present_final"] == 1
        keep = {"w_initial": a, "w_final": b}.get(name, a & b)
        return np.where(keep, plain[name], np.nan)

    def outcome():
        a, b = t["present_initial"] == 1, t["present_final"] == 1
        o = plain["outcome"].astype("<U10")
        o[~a & b] = "formed"
        o[a & ~b] = "eliminated"
        o[~a & ~b] = "absent"
        return o

    for name in STRUCTURE_EMPTY:
        out[name] = partial(masked, name)
    out["outcome"] = outcome
    out["present_initial"] = p0
    out["present_final"] = p1
    order = [k for k in cols if k not in ("outcome",)] + ["outcome", "present_initial", "present_final"]
    t = Table({k: out[k] for k in order}, rows=sum(sizes), name="summary", empty_nan=STRUCTURE_EMPTY)
    return t


def _traces(experiment, results) -> Table | None:
    if not results:
        return None
    names = list(results[0].columns)
    for r in results:
        if list(r.columns) != names:
            raise ProtocolError("sweep conditions record different columns; sweep values that change sizes are not supported", "sweep")
    sizes = [int(r.traces.shape[0]) for r in results]
    cols: dict = {name: partial(lambda j: _cat([r.traces[:, j] for r in results], np.float64), j) for j, name in enumerate(names)}
    if experiment.sweep_keys:
        cols["condition"] = partial(_condition_column, results, sizes)
    return Table(cols, rows=sum(sizes), name="traces")


def _spikes(experiment, results) -> Table | None:
    if not experiment.base.record.spikes:
        return None
    sizes = [int(r.spikes[0].size) for r in results]
    cols: dict = {
        "t_ms": lambda: _cat([r.spikes[0] for r in results], np.float64),
        "population": lambda: np.array(["pre", "post"])[_cat([r.spikes[1] for r in results], np.int64)],
        "index": lambda: _cat([r.spikes[2] for r in results], np.int64),
    }
    if experiment.sweep_keys:
        cols["condition"] = partial(_condition_column, results, sizes)
    return Table(cols, rows=sum(sizes), name="spikes")


def _responses(experiment, results) -> Table | None:
    """responses.csv (transmitter release): ``t_ms, pre, post, amplitude`` (``condition`` in a sweep)."""
    if not experiment.base.record.responses:
        return None
    parts = [r.responses if r.responses is not None else (np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)) for r in results]
    sizes = [int(q[0].size) for q in parts]
    cols: dict = {
        "t_ms": lambda: _cat([q[0] for q in parts], np.float64),
        "pre": lambda: _cat([q[1] for q in parts], np.int64),
        "post": lambda: _cat([q[2] for q in parts], np.int64),
        "amplitude": lambda: _cat([q[3] for q in parts], np.float64),
    }
    if experiment.sweep_keys:
        cols["condition"] = partial(_condition_column, results, sizes)
    return Table(cols, rows=sum(sizes), name="responses")
def _structure(experiment, results) -> Table | None:
    """structure.csv (``synapses.structure``): ``t_ms, pre, post, event`` (``condition`` in a sweep)."""
    if experiment.base.synapses.structure is None:
        return None
    from ..core.structure import EVENT_LABELS

    sizes = [r.structure.n_events for r in results]
    cols: dict = {
        "t_ms": lambda: _cat([r.structure.ev_step * r.protocol.dt for r in results], np.float64),
        "pre": lambda: _cat([r.structure.ev_syn // r.w_final.shape[1] for r in results], np.int64),
        "post": lambda: _cat([r.structure.ev_syn % r.w_final.shape[1] for r in results], np.int64),
        "event": lambda: np.array(EVENT_LABELS)[_cat([r.structure.ev_kind for r in results], np.int64)],
    }
    if experiment.sweep_keys:
        cols["condition"] = partial(_condition_column, results, sizes)
    return Table(cols, rows=sum(sizes), name="structure")


TABLES: list[TableSpec] = [
    TableSpec(
        "summary", "summary.csv", _summary, ints=("pre", "post", "present_initial", "present_final"), labels=("outcome",), empty_nan=("w_initial", "w_final", "dw", "dw_percent")
    ),
    TableSpec("traces", "traces.csv", _traces, ints=("condition",)),
    TableSpec("spikes", "spikes.csv", _spikes, ints=("index", "condition"), labels=("population",)),
    TableSpec("responses", "responses.csv", _responses, ints=("pre", "post", "condition")),
    TableSpec("structure", "structure.csv", _structure, ints=("pre", "post", "condition"), labels=("event",)),
]


def _spec(attr: str) -> TableSpec | None:
    return next((s for s in TABLES if s.attr == attr), None)


# ---------------------------------------------------------------------------- Result
class Result:
    """A finished run: its tables, its resolved protocol and what ``run.json`` holds.

    ``summary``, ``traces``, ``spikes`` (and any other result file of :data:`TABLES`, such as
    ``responses``) are :class:`~plastictool.results.table.Table` objects with the columns of the CSV
    files, in their order; an attribute is None where the run has no such file (``spikes``
    with ``record.spikes: false``). ``protocol`` is the resolved protocol (defaults filled,
    canonical units), ``info`` the content of ``run.json``, ``experiment`` the validated
    :class:`~plastictool.protocol.schema.Experiment` (None for a Result read from a folder).

    ``write(folder)`` writes the files ``plastic run --out folder`` writes; ``==`` compares
    the protocols and the tables at the files' precision (see the module docstring).
    """

    def __init__(self, *, experiment=None, results=None, info: dict | None = None, folder: Path | None = None, tables: dict | None = None, wall_s: float = 0.0, profile: dict | None = None, shard=None):
        self.experiment = experiment
        self._results = results
        self._info = info
        self.folder = folder
        self._tables: dict = dict(tables or {})
        self._wall_s = wall_s
        self._profile = dict(profile or {})
        self._shard = shard

    def __getstate__(self) -> dict:
        """Picklable (multiprocessing, Dask): a run's arrays as they are (its tables are built
        again from them on the other side); a Result read from a folder as its tables' numbers
        (:meth:`Table.__getstate__ <plastictool.table.Table.__getstate__>`) and run.json, so the
        copy needs no access to the folder."""
        state = dict(self.__dict__)
        if self._results is not None:
            state["_tables"] = {}
        else:
            state["_info"] = self.info
            state["_tables"] = {s.attr: self.table(s.attr) for s in TABLES}
        return state

    # ------------------------------------------------------------------ contents
    @property
    def protocol(self) -> dict:
        """The resolved protocol (every default filled in, every unit canonical: ms, Hz, mV)."""
        if self.experiment is not None:
            return self.experiment.base.resolved
        return self.info.get("protocol", {})

    @property
    def name(self) -> str:
        """The protocol's name (its output folder's default name)."""
        return self.experiment.name if self.experiment is not None else self.protocol.get("name", "")

    @property
    def info(self) -> dict:
        """What ``run.json`` holds: versions, resolved protocol and its sha256, seed, sweep
        conditions, blocks per phase, counts, wall time and profile."""
        if self._info is None:
            from .output import run_json

            self._info = json.loads(run_json(self.experiment, self._results, self._wall_s, (), self._profile, self._shard))
        return self._info

    @property
    def counts(self) -> dict:
        """Steps, spikes and synaptic updates, summed over the conditions (as in ``run.json``)."""
        return dict(self.info.get("counts", {}))

    def table(self, attr: str) -> Table | None:
        """The Table of the result file ``attr`` (``"summary"``, ``"traces"``, ...), or None
        where this run has no such file."""
        if attr not in self._tables:
            spec = _spec(attr)
            if spec is None:
                raise KeyError(f"{attr!r}: no such result table; known: {', '.join(s.attr for s in TABLES)}")
            if self._results is not None:
                self._tables[attr] = spec.build(self.experiment, self._results)
            else:
                self._tables[attr] = None
        return self._tables[attr]

    @property
    def tables(self) -> dict[str, Table]:
        """``{attr: Table}`` for every result file this run has, in file order."""
        return {s.attr: t for s in TABLES if (t := self.table(s.attr)) is not None}

    @property
    def summary(self) -> Table:
        """summary.csv: one row per synapse (and condition): sweep columns, ``pre, post,
        w_initial, w_final, dw, dw_percent, outcome``."""
        return self.table("summary")

    @property
    def traces(self) -> Table | None:
        """traces.csv: ``t_ms``, the recorded weights and state (``condition`` in a sweep)."""
        return self.table("traces")

    @property
    def spikes(self) -> Table | None:
        """spikes.csv: ``t_ms, population, index`` (``condition`` in a sweep); None when not recorded."""
        return self.table("spikes")

    def __getattr__(self, attr: str):
        if not attr.startswith("_") and _spec(attr) is not None:
            return self.table(attr)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    # ------------------------------------------------------------------ writing
    def write(self, folder, force: bool = False) -> Path:
        """Write the result files into ``folder``: the files of ``plastic run --out folder``,
        byte for byte (run.json apart from timings, the command line and versions.kernels).
        An existing folder is replaced only with ``force``; files appear complete or not at
        all. Raises :class:`~plastictool.errors.ProtocolError` for an existing folder and
        :class:`~plastictool.errors.OutputError` when the file system fails."""
        from .folders import check_target

        target = Path(folder)
        check_target(target, force, self.experiment.file if self.experiment is not None else None)
        return self._write(target, force)

    def _write(self, target: Path, force: bool, argv=(), wall_s: float | None = None) -> Path:
        # folders.write_folder (the one module that writes) turns file-system failures into
        # OutputError naming the path and the cause
        if self._results is not None:
            from .output import write_outputs

            wall = self._wall_s if wall_s is None else wall_s
            return write_outputs(target, self.experiment, self._results, wall, argv, self._profile, force, self._shard)
        from .folders import write_folder

        from . import columnar

        writers = []
        for s in TABLES:
            t = self.table(s.attr)
            npy = columnar.table_dir(self.folder, s.attr) if self.folder is not None else None
            if npy is not None:  # a table of record.format npy: its files as they are
                writers.append((s.attr, "columns", partial(_copy_npy_table, npy)))
            elif t is not None:
                writers.append((s.file, "wb", t.write_csv))
        text = json.dumps(self.info, indent=2, sort_keys=False) + "\n"
        writers.append(("run.json", "w", lambda fh: fh.write(text)))
        return write_folder(target, writers, force)

    # ------------------------------------------------------------------ comparing, display
    def __eq__(self, other) -> bool:
        """Same resolved protocol (``record.format`` aside) and the same tables, compared at the files' precision
        (:meth:`Table.__eq__ <plastictool.results.table.Table.__eq__>`: the same CSV bytes)."""
        if not isinstance(other, Result):
            return NotImplemented
        if _without_format(self.protocol) != _without_format(other.protocol):
            return False
        mine, theirs = self.tables, other.tables
        return list(mine) == list(theirs) and all(mine[k] == theirs[k] for k in mine)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = []
        for attr, t in self.tables.items():
            parts.append(f"{attr} {len(t)}x{len(t.columns)}")
        where = f" from {self.folder}" if self.folder is not None else ""
        return f"<Result {self.name}{where}: {', '.join(parts)}>"


def _plain_json(x):
    return json.loads(json.dumps(x, sort_keys=True))


def _without_format(protocol: dict) -> dict:
    """The protocol as plain JSON without ``record.format``: how the tables are stored, not what
    was run (a CSV and an npy folder of one run are equal)."""
    p = _plain_json(protocol)
    if isinstance(p, dict) and isinstance(p.get("record"), dict):
        p["record"].pop("format", None)
    return p


# ---------------------------------------------------------------------------- reading a folder
def read(folder) -> Result:
    """A finished run folder (of ``plastic run`` or :meth:`Result.write`) as a Result.

    Each column is read on first access; numbers are those of the files (12 significant
    digits in CSV files, the simulation's own numbers with ``record.format: npy``). ``read(folder) == result`` for the Result that wrote it. Raises
    :class:`~plastictool.errors.ProtocolError` when ``folder`` is not a finished run folder."""
    folder = Path(folder)
    meta = folder / "run.json"
    if not folder.is_dir():
        raise ProtocolError("no such folder" if not folder.exists() else "not a folder", "", str(folder), None)
    if not meta.is_file():
        raise ProtocolError("not a result folder of plastic (no run.json)", "", str(folder), None)
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"run.json is not valid JSON: {exc}", "", str(meta), None) from None
    if not isinstance(info, dict) or info.get("tool") != "plastic":
        raise ProtocolError("run.json was not written by plastic", "", str(meta), None)
    tables = {s.attr: read_table(folder, s.attr) for s in TABLES}
    return Result(info=info, folder=folder, tables=tables)


def read_table(folder, attr: str) -> Table | None:
    """The table ``attr`` (``"summary"``, ...) of a run folder, from its CSV file or its folder of
    ``.npy`` files (``record.format: npy``), with the same column types either way (integers
    int64, text str, numbers float64); None where the folder has no such table."""
    from . import columnar

    spec = _spec(attr)
    folder = Path(folder)
    if (folder / spec.file).is_file():
        return _read_table(folder / spec.file, spec)
    npy = columnar.table_dir(folder, spec.attr)
    if npy is not None:
        return _read_npy_table(npy, spec)
    return None


def _read_npy_table(path: Path, spec: TableSpec) -> Table:
    from . import columnar

    cols = {name: partial(_npy_column, path, name) for name in columnar.column_names(path)}
    return Table(cols, rows=columnar.rows(path), name=spec.attr, empty_nan=spec.empty_nan)


def _copy_npy_table(path: Path, cw) -> None:
    """Write the table of ``.npy`` files at ``path`` again, byte for byte (``folders.ColumnWriter``)."""
    from . import columnar

    names = columnar.column_names(path)
    heads = []
    for name in names:
        heads.append(columnar.column_header(path / columnar.column_file(name)))
    cw.begin([(n, h[0]) for n, h in zip(names, heads)], heads[0][1] if heads else 0)
    for k, (name, (descr, rows, offset)) in enumerate(zip(names, heads)):
        with open(path / columnar.column_file(name), "rb") as fh:
            fh.seek(offset)
            left = rows * columnar.itemsize(descr)
            while left > 0:
                block = fh.read(min(left, 1 << 24))
                if not block:
                    raise ProtocolError("truncated column", "", str(path / columnar.column_file(name)), None)
                cw.write(k, block)
                left -= len(block)


def _npy_column(path: Path, name: str) -> np.ndarray:
    """A column of a ``.npy`` table with the types of a column read from CSV."""
    from . import columnar

    a = columnar.load(path, name)
    if a.dtype.kind == "S":
        return a.astype(str)
    if a.dtype.kind in "iub":
        return a.astype(np.int64)
    return a.astype(np.float64, copy=False)  # float64 columns stay memory-mapped (read-only)


def _read_table(path: Path, spec: TableSpec) -> Table:
    import csv

    with open(path, "rb") as fh:
        header = fh.readline().decode("ascii")
        rows = 0
        while True:
            block = fh.read(1 << 22)
            if not block:
                break
            rows += block.count(b"\n")
    names = next(csv.reader([header.rstrip("\n")]))
    cols = {name: partial(_read_column, path, k, name, spec, rows) for k, name in enumerate(names)}
    return Table(cols, rows=rows, name=spec.attr, empty_nan=spec.empty_nan)


def _loadtxt(path: Path, k: int, dtype, rows: int) -> np.ndarray:
    if rows == 0:
        return np.zeros(0, dtype=dtype)
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=k, dtype=dtype, ndmin=1, comments=None, encoding="ascii", quotechar='"')


def _read_column(path: Path, k: int, name: str, spec: TableSpec, rows: int) -> np.ndarray:
    if name in spec.ints:
        return _loadtxt(path, k, np.int64, rows)
    if name in spec.labels:
        return _loadtxt(path, k, str, rows)
    if name not in spec.empty_nan:
        try:
            return _loadtxt(path, k, np.float64, rows)
        except ValueError:
            pass
    text = _loadtxt(path, k, str, rows)
    empty = text == ""
    try:
        out = np.where(empty, "nan", text).astype(np.float64)
    except ValueError:
        return text  # a text column (a sweep over names)
    return out
