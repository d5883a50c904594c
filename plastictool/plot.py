"""Figures of a finished run (``plastic plot RUN_DIR`` and ``plastic run --plot``).

Only the files of the run folder are read (``summary.csv``, ``traces.csv``, ``spikes.csv``,
``run.json``; nothing is re-run), and what is drawn follows from what they hold:

* a run without a sweep: the weights over time (``w_mean`` with a +-``w_std`` band when
  recorded, ``w_min``/``w_max`` as an envelope, each recorded ``w[i,j]``; beside it the
  histogram of ``w_initial`` and ``w_final`` when the run has 20 synapses or more), one axes per
  recorded state variable (``ca[0,0]``, ``theta[0]``, ``v[0]``, ``x_pre_mean``...; at most 8,
  the others are named in a note), a spike raster from ``spikes.csv`` (populations with at
  most 200 spikes per neuron; at most 40 neurons each) and the population rate in Hz
  (populations with at least 20 spikes per neuron); phases are shaded on every time axis and
  named at the top with the components blocked in that phase (hatched), from ``run.json``
  (``protocol.phases`` or ``protocol.stimulus``, and ``blocks``); components blocked in every
  phase are named once, in the title. The time unit (ms, s, min, h) follows the run's length;
* a sweep: ``dw_percent`` (``dw`` where ``dw_percent`` is empty) against the swept value (one
  curve per synapse up to 6 synapses, else their mean +- std; a ``zip`` sweep against its
  first key); two swept keys (grid) as a family of curves over the key with more values, or a
  heat map when both have 8 values or more; more keys as one curve per combination of the
  others (at most 12). With several synapses per condition a family or heat map shows their
  mean. Values that are not numbers (``rule.weight_dependence``) are placed evenly.

Reference points (published data) are overlaid on a sweep when the protocol ships them: a file
``<protocol stem>.reference.csv`` next to the protocol file named in ``run.json``
(``protocol_file``; a relative path is taken from the current folder, then from the run
folder's parents). Its format:

    # lines starting with '#' are comments: cite the source here
    stimulus.pairing.delta_t,stimulus.pairing.frequency,dw_percent,sem,label
    10,0.1,-4,5,Sjostrom et al. 2001

columns: swept key(s) (the dotted path, or its last part when that is unambiguous; values in
canonical units, ms / Hz / mV), ``dw_percent``, and optionally ``sem`` (error bar, percent) and
``label`` (legend text). Every swept key needs its column; in a family of curves each point
takes the marker and colour of the curve with its values. A malformed file is an error
(exit 2) naming its line.

Output is deterministic: the same run folder gives the same bytes (PNG, SVG and PDF carry no
date or software version, SVG ids use a fixed salt, matplotlib's defaults replace any user
``matplotlibrc``). Figures are 8 in wide at 100 dpi (800 px); 5 in high, plus 1.3 in for each
time axis beyond three. ``plastic run --plot`` writes ``RUN_DIR/plot.png``.

Matplotlib is an optional dependency (``pip install '.[plot]'`` from the clone) imported only here,
inside the functions.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import PlasticError

WIDTH_IN = 8.0
HEIGHT_IN = 5.0
PANEL_IN = 1.3  # extra height for each time axis beyond BASE_PANELS
BASE_PANELS = 3
DPI = 100
FORMATS = (".png", ".svg", ".pdf")
DEFAULT_NAME = "plot.png"

MAX_STATE_PANELS = 8  # state variables beyond this are listed in a note, not drawn
MAX_LEGEND = 8  # series in a legend; more are drawn without one
RASTER_MAX_PER_NEURON = 200  # raster for populations with at most this many spikes per neuron
RATE_MIN_PER_NEURON = 20  # rate panel for populations with at least this many
RASTER_NEURONS = 40  # neurons shown per population in the raster
HEATMAP_MIN = 8  # two swept keys with at least this many values each: a heat map
MAX_CURVES = 12  # curves in a family; more are left out with a note
HIST_MIN_SYNAPSES = 20
HIST_WIDTH = 0.16  # of the weights axes' width

# plastic is installed from a clone (it is not on the package index): the extra from there
INSTALL_HINT = "pip install '.[plot]' in the clone of plastic (pip install -e '.[plot]' for an editable install), or: pip install 'matplotlib>=3.7'"

# Greyscale-readable series: colour-blind-safe colours (Okabe & Ito) with distinct line styles
# and markers, so that no series is told apart by its colour alone.
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999933")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 2, 1, 2)))
MARKERS = ("o", "s", "^", "D", "v", "x", "*", "P")

WEIGHT_STATS = ("w_mean", "w_std", "w_min", "w_max")
STATE_COLUMN = re.compile(r"^(?P<var>.+?)(?:\[(?P<idx>[0-9,]+)\]|_(?P<stat>mean))$")

# units of recorded state variables (everything else is dimensionless)
STATE_UNITS = {"v": "mV", "g": "rel. to leak", "pool": "receptors", "free": "receptors", "bound": "receptors", "slots": "number", "n_synapses": "present synapses"}
# units of swept values (canonical units), by the last part of the dotted path
_TIME_KEYS = {"delta_t", "duration", "interval", "start", "stop", "dt", "t_ref", "presentation", "burst_interval", "train_interval", "delay", "substep"}
_RATE_KEYS = {"frequency", "rate", "pre_frequency", "post_frequency", "formation_rate", "elimination_rate"}
_VOLT_KEYS = {"v_rest", "v_thresh", "v_reset", "e_syn"}
_PER_S_KEYS = {"eta", "decay"}


class PlotError(PlasticError):
    """Bad input for plotting (exit 2): no run folder, unreadable files, matplotlib missing."""


# ----------------------------------------------------------------------------------- reading


@dataclass
class Run:
    """What a run folder holds, read once."""

    path: Path
    meta: dict | None
    name: str
    summary_cols: list = field(default_factory=list)
    summary: list = field(default_factory=list)  # rows (lists of str)
    sweep_keys: list = field(default_factory=list)
    trace_cols: list = field(default_factory=list)
    traces: object = None  # numpy array, rows x columns (first column t_ms), or None
    spikes: dict | None = None  # population -> (t_ms array, index array); None: no spikes.csv
    responses: dict | None = None  # condition (None without a sweep) -> {(pre, post): amplitudes}; None: no responses.csv

    @property
    def protocol(self) -> dict:
        p = (self.meta or {}).get("protocol")
        return p if isinstance(p, dict) else {}


def read_run(run_dir) -> Run:
    """Read a run folder (``summary.csv`` or ``traces.csv`` must be there, or, with
    ``record.format: npy``, their folders of ``.npy`` files; the rest is optional)."""
    import numpy as np

    path = Path(run_dir)
    if not path.is_dir():
        raise PlotError(f"{str(path)!r} is not a run folder (expected the output folder of `plastic run`)")
    from .results import columnar

    npy = {stem: columnar.table_dir(path, stem) for stem in columnar.TABLES}  # record.format: npy
    have = [n for n in ("summary.csv", "traces.csv") if (path / n).is_file() or npy[n[:-4]] is not None]
    if not have:
        raise PlotError(f"{str(path)!r} holds neither summary.csv nor traces.csv: is it the output folder of `plastic run`?")
    meta = None
    if (path / "run.json").is_file():
        try:
            meta = json.loads((path / "run.json").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise PlotError(f"{path / 'run.json'}: not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise PlotError(f"{path / 'run.json'}: expected a JSON object")
    run = Run(path, meta, "")
    run.name = str(run.protocol.get("name") or path.resolve().name)
    if (path / "summary.csv").is_file() or npy["summary"] is not None:
        rows = _read_csv(path / "summary.csv") if npy["summary"] is None else _npy_rows(path, "summary")
        if rows:
            run.summary_cols, run.summary = rows[0], rows[1:]
            for k, row in enumerate(run.summary):
                if len(row) != len(run.summary_cols):
                    raise PlotError(f"{path / 'summary.csv'}: row {k + 1}: {len(row)} values for {len(run.summary_cols)} columns")
            if "pre" in run.summary_cols:
                run.sweep_keys = run.summary_cols[: run.summary_cols.index("pre")]
    if meta is not None and isinstance(meta.get("sweep"), dict):
        keys = [str(k) for k in meta["sweep"].get("keys") or []]
        if keys:
            run.sweep_keys = keys
    if npy["traces"] is not None:
        try:
            run.trace_cols = columnar.column_names(npy["traces"])
            cols = [np.asarray(columnar.load(npy["traces"], c), dtype=float) for c in run.trace_cols]
        except (OSError, ValueError) as exc:
            raise PlotError(f"{npy['traces']}: cannot read ({exc})") from None
        run.traces = np.column_stack(cols) if cols else None
    elif (path / "traces.csv").is_file():
        import warnings

        file = path / "traces.csv"
        _check_complete(file)
        try:
            with open(file, encoding="utf-8") as fh:
                header = fh.readline().strip()
                run.trace_cols = split_header(header)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # "input contained no data": a header only is fine
                    data = np.loadtxt(fh, delimiter=",", ndmin=2)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise PlotError(f"{file}: cannot read ({exc})") from None
        except ValueError as exc:  # NumPy's message, without its advice on `usecols`
            raise PlotError(f"{file}: cannot read the numbers ({str(exc).split(';')[0].strip()})") from None
        if run.trace_cols and data.size and data.shape[1] != len(run.trace_cols):
            raise PlotError(f"{path / 'traces.csv'}: {data.shape[1]} values per row for {len(run.trace_cols)} columns")
        run.traces = data.reshape(-1, len(run.trace_cols)) if run.trace_cols else None
    if npy["spikes"] is not None and not run.sweep_keys:
        try:
            t, pop, idx = (columnar.load(npy["spikes"], c) for c in ("t_ms", "population", "index"))
        except (OSError, ValueError) as exc:
            raise PlotError(f"{npy['spikes']}: cannot read ({exc})") from None
        run.spikes = {p: (np.asarray(t[pop == p.encode()], dtype=float), np.asarray(idx[pop == p.encode()], dtype=np.int64)) for p in ("pre", "post") if (pop == p.encode()).any()}
    elif (path / "spikes.csv").is_file() and not run.sweep_keys:
        run.spikes = _read_spikes(path / "spikes.csv")
    if npy["responses"] is not None:
        try:
            tab = columnar.load_all(npy["responses"])
        except (OSError, ValueError) as exc:
            raise PlotError(f"{npy['responses']}: cannot read ({exc})") from None
        run.responses = {}
        cond = tab["condition"].tolist() if "condition" in tab else [None] * len(tab["t_ms"])
        for c, i, j, amp in zip(cond, tab["pre"].tolist(), tab["post"].tolist(), tab["amplitude"].tolist()):
            run.responses.setdefault(c, {}).setdefault((i, j), []).append(amp)
    elif (path / "responses.csv").is_file():
        run.responses = _read_responses(path / "responses.csv")
    return run


def _npy_rows(path: Path, stem: str) -> list:
    """A table of ``.npy`` files (``record.format: npy``) as the rows of its CSV file (text cells)."""
    import io

    from .results.result import read_table

    try:
        text = read_table(path, stem).to_csv_bytes().decode("ascii")
    except (OSError, ValueError) as exc:
        raise PlotError(f"{path / stem}: cannot read ({exc})") from None
    return [row for row in csv.reader(io.StringIO(text)) if row]


def _read_responses(file: Path) -> dict:
    """responses.csv (transmitter release) as condition -> {(pre, post): amplitudes in time order}."""
    out: dict = {}
    with open(file, encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
        sweep = "condition" in header
        for lineno, line in enumerate(fh, start=2):
            parts = line.strip().split(",")
            if len(parts) < 4:
                continue
            try:
                cond = int(parts[4]) if sweep else None
                out.setdefault(cond, {}).setdefault((int(parts[1]), int(parts[2])), []).append(float(parts[3]))
            except (ValueError, IndexError):
                raise PlotError(f"{file}:{lineno}: cannot read {line.strip()!r}") from None
    return out


def _responses_axes(ax, run: Run) -> None:
    """Response amplitudes (responses.csv) against pulse number: one curve per recorded synapse
    (at most 6), or, in a sweep, one per condition (its first recorded synapse; at most MAX_CURVES)."""
    conds = sorted(run.responses, key=lambda c: -1 if c is None else c)
    labels = {}
    for c in ((run.meta or {}).get("sweep") or {}).get("conditions") or []:
        labels[c.get("condition")] = ", ".join(f"{str(k).rsplit('.', 1)[-1]} {_value_text(k, v)}" for k, v in c.items() if k != "condition")
    series = []
    if conds == [None]:
        for (i, j), amps in list(run.responses[None].items())[:6]:
            series.append((f"w[{i},{j}]", amps))
    else:
        for c in conds[:MAX_CURVES]:
            (i, j), amps = next(iter(run.responses[c].items()))
            series.append((labels.get(c, f"condition {c}"), amps))
    for k, (label, amps) in enumerate(series):
        ax.plot(range(1, len(amps) + 1), amps, label=label, **_style(k, len(amps)))
    ax.set_xlabel("pulse number")
    ax.set_ylabel("response (w r_n)")
    if series:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)


def split_header(line: str) -> list:
    """Column names of traces.csv, quoted as CSV (``"w[0,1]"``) or not (a comma inside brackets
    does not separate)."""
    line = line.rstrip("\r\n")
    if not line:
        return []
    cols: list = []
    depth = 0
    for cell in next(csv.reader([line])):
        if depth > 0:
            cols[-1] += "," + cell
        else:
            cols.append(cell)
        depth += cell.count("[") - cell.count("]")
    return cols


def _check_complete(file: Path) -> None:
    """The tables of ``plastic run`` have a header and end with a line break: an empty file or
    one cut in the middle of a line (a copy that stopped, a full disk) is bad input."""
    try:
        with open(file, "rb") as fh:
            fh.seek(0, 2)
            if fh.tell() == 0:
                raise PlotError(f"{file}: empty (no header line); is the run folder complete?")
            fh.seek(-1, 2)
            last = fh.read(1)
    except OSError as exc:
        raise PlotError(f"{file}: cannot read ({exc.strerror or exc})") from None
    if last != b"\n":
        raise PlotError(f"{file}: truncated: its last line is incomplete (the tables of `plastic run` end with a line break)")


def _read_csv(file: Path) -> list:
    _check_complete(file)
    try:
        with open(file, newline="", encoding="utf-8") as fh:
            return [row for row in csv.reader(fh) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PlotError(f"{file}: cannot read ({exc})") from None


def _read_spikes(file: Path) -> dict:
    """population -> (t_ms, index) as arrays; one pass over the file, no per-row objects kept."""
    import numpy as np
    from array import array

    times: dict = {}
    index: dict = {}
    _check_complete(file)
    try:
        with open(file, encoding="utf-8") as fh:
            header = fh.readline().rstrip("\n").split(",")
            if header[:3] != ["t_ms", "population", "index"]:
                raise PlotError(f"{file}:1: expected the header t_ms,population,index[,condition], got {','.join(header)[:80]!r}")
            n = len(header)
            for lineno, line in enumerate(fh, start=2):
                parts = line.rstrip("\n").split(",")
                pop = parts[1] if len(parts) == n else ""
                if pop not in times:
                    if pop not in ("pre", "post"):
                        raise PlotError(f"{file}:{lineno}: cannot read {line.strip()[:80]!r} (expected {n} values, population pre or post)")
                    times[pop], index[pop] = array("d"), array("q")
                try:
                    t, i = float(parts[0]), int(parts[2])
                except ValueError:
                    i = -1
                if i < 0:
                    raise PlotError(f"{file}:{lineno}: cannot read {line.strip()[:80]!r} (expected a time and an index >= 0)")
                times[pop].append(t)
                index[pop].append(i)
    except (OSError, UnicodeDecodeError) as exc:
        raise PlotError(f"{file}: cannot read ({exc})") from None
    return {p: (np.frombuffer(times[p], dtype=float), np.frombuffer(index[p], dtype=np.int64)) for p in sorted(times, key=_pop_order)}


def _pop_order(pop: str):
    return ({"pre": 0, "post": 1}.get(pop, 2), pop)


def _num(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def find_reference(run: Run) -> Path | None:
    """``<protocol stem>.reference.csv`` next to the protocol file of ``run.json``, if there is one."""
    pf = (run.meta or {}).get("protocol_file")
    if not pf:
        return None
    proto = Path(pf)
    name = proto.stem + ".reference.csv"
    candidates = [proto.with_name(name)]
    if not proto.is_absolute():
        candidates += [parent / proto.with_name(name) for parent in run.path.resolve().parents]
    for c in candidates:
        if c.is_file():
            return c
    return None


@dataclass
class Reference:
    file: Path
    keys: dict  # sweep key -> list of values (float or str); only the keys the file has
    dw: list
    sem: list
    label: list


def read_reference(file: Path, sweep_keys) -> Reference:
    """Read a reference file (format in the module docstring) for a run swept over ``sweep_keys``."""
    lines = []
    try:
        with open(file, newline="", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip() and not line.lstrip().startswith("#"):
                    lines.append((lineno, line))
    except (OSError, UnicodeDecodeError) as exc:
        raise PlotError(f"{file}: cannot read ({exc})") from None
    if not lines:
        raise PlotError(f"{file}: no header (expected the swept key(s), dw_percent, and optionally sem, label)")
    rows = list(csv.reader([ln for _, ln in lines]))
    header = [h.strip() for h in rows[0]]
    head_line = lines[0][0]
    last = {}
    for k in sweep_keys:
        last.setdefault(k.rsplit(".", 1)[-1], []).append(k)
    mapping = {}
    for col in header:
        if col in ("dw_percent", "sem", "label"):
            continue
        if col in sweep_keys:
            mapping[col] = col
        elif len(last.get(col, [])) == 1:
            mapping[col] = last[col][0]
        else:
            known = ", ".join(list(sweep_keys) + ["dw_percent", "sem", "label"])
            raise PlotError(f"{file}:{head_line}: unknown column {col!r} (expected one of: {known})")
    if "dw_percent" not in header:
        raise PlotError(f"{file}:{head_line}: no dw_percent column")
    missing = [k for k in sweep_keys if k not in mapping.values()]
    if missing:
        raise PlotError(f"{file}:{head_line}: no column for the swept key(s) {', '.join(missing)} (found: {', '.join(header)})")
    ref = Reference(file, {k: [] for k in mapping.values()}, [], [], [])
    for (lineno, _), row in zip(lines[1:], rows[1:]):
        if len(row) != len(header):
            raise PlotError(f"{file}:{lineno}: {len(row)} values for {len(header)} columns")
        cells = dict(zip(header, (c.strip() for c in row)))
        for col, key in mapping.items():
            v = _num(cells[col])
            ref.keys[key].append(cells[col] if math.isnan(v) else v)
        dw = _num(cells["dw_percent"])
        if math.isnan(dw):
            raise PlotError(f"{file}:{lineno}: dw_percent {cells['dw_percent']!r} is not a number")
        ref.dw.append(dw)
        sem = _num(cells.get("sem", "")) if cells.get("sem", "") != "" else math.nan
        ref.sem.append(sem)
        ref.label.append(cells.get("label") or "reference")
    return ref


# ----------------------------------------------------------------------------------- drawing


def require_matplotlib():
    """Import matplotlib (Agg canvas only) or raise a PlotError with the install hint."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        raise PlotError(f"plotting needs matplotlib, an optional dependency that is not installed: {INSTALL_HINT}") from None
    return matplotlib


def default_output(run_dir) -> Path:
    return Path(run_dir) / DEFAULT_NAME


def plot_run(run_dir, out_file=None) -> Path:
    """Draw the figure of a run folder into ``out_file`` (``.png``, ``.svg`` or ``.pdf``;
    default ``RUN_DIR/plot.png``) and return its path. Raises PlotError (exit 2)."""
    out = Path(out_file) if out_file is not None else default_output(run_dir)
    if out.suffix.lower() not in FORMATS:
        raise PlotError(f"{str(out)!r}: unknown image format {out.suffix or '(none)'!r}; use one of {', '.join(FORMATS)}")
    mpl = require_matplotlib()
    run = read_run(run_dir)
    with _style_context(mpl):
        fig = _draw_checked(run)
        _make_parent(out)
        _save(fig, out)
    return out


def _make_parent(out: Path) -> None:
    from .results.folders import _not_a_folder, environment_error

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        raise _not_a_folder(out, "the image") from None
    except OSError as exc:
        raise environment_error(exc, exc.filename or out.parent, "create the folder") from None


def _draw_checked(run: Run):
    """``draw``, with files that read well but do not fit together (hand-edited, mixed from
    several runs) as bad input naming the folder rather than a traceback."""
    try:
        return draw(run)
    except PlotError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise PlotError(
            f"{str(run.path)!r}: cannot draw its files; they do not fit together (edited, or from several runs?): {type(exc).__name__}: {exc}"
        ) from None


def figure(run_dir):
    """The matplotlib Figure of a run folder, not saved (for notebooks and tests)."""
    mpl = require_matplotlib()
    run = read_run(run_dir)
    with _style_context(mpl):
        return draw(run)


def draw(run: Run):
    """A new Figure (Agg canvas, no pyplot) for ``run``: a sweep or a time-series figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    # constrained layout; the right 1 % is spare room for legends beside the axes
    fig.set_layout_engine("constrained", rect=(0.0, 0.0, 0.99, 1.0))
    FigureCanvasAgg(fig)
    if run.sweep_keys and run.summary:
        _sweep_figure(fig, run)
    else:
        _time_figure(fig, run)
    return fig


class _style_context:
    """matplotlib's own defaults (any user matplotlibrc ignored) plus ours, restored on exit."""

    def __init__(self, mpl):
        self.mpl = mpl
        self.ctx = None

    def __enter__(self):
        self.ctx = self.mpl.rc_context()
        self.ctx.__enter__()
        self.mpl.rcdefaults()
        self.mpl.rcParams.update(_RC)
        return self

    def __exit__(self, *exc):
        return self.ctx.__exit__(*exc)


_RC = {
    "svg.hashsalt": "plastic",
    "svg.fonttype": "path",
    "pdf.compression": 6,
    "path.simplify": True,
    "axes.grid": True,
    "grid.color": "0.88",
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "lines.linewidth": 1.3,
    "lines.markersize": 4.5,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}


def _save(fig, out: Path) -> None:
    fmt = out.suffix.lower()[1:]
    metadata = {
        "png": {"Software": None},
        "svg": {"Date": None, "Creator": None},
        "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
    }[fmt]
    from .results.folders import write_file

    extra = {"pil_kwargs": {"compress_level": 9}} if fmt == "png" else {}
    # atomic, and an OSError (no space, read-only...) is exit 4 with the path and the cause
    write_file(out, lambda fh: fig.savefig(fh, format=fmt, dpi=DPI, metadata=metadata, **extra))


def _style(k: int, n_points: int = 0) -> dict:
    s = {"color": COLORS[k % len(COLORS)], "linestyle": LINESTYLES[k % len(LINESTYLES)], "marker": MARKERS[k % len(MARKERS)]}
    if n_points > 12:  # a few markers per line, staggered between series
        step = max(1, n_points // 8)
        s["markevery"] = ((k * step) // 5 % step, step)
    return s


def _title(run: Run, extra: str = "") -> str:
    p = run.protocol
    bits = []
    rule = (p.get("rule") or {}).get("kind")
    if rule:
        bits.append(f"rule {rule}")
    neuron = (p.get("neuron") or {}).get("model")
    if neuron:
        bits.append(f"{neuron} neuron")
    syn = p.get("synapses") or {}
    if syn.get("n_pre") and syn.get("n_post"):
        bits.append(f"{syn['n_pre']} x {syn['n_post']} synapses")
    if extra:
        bits.append(extra)
    return run.name + (f"  ({', '.join(bits)})" if bits else "")


def _note(fig, text: str) -> None:
    fig.supxlabel(text, x=0.01, ha="left", fontsize=7, color="0.35")


# ------------------------------------------------------------------------------ time series


def time_unit(t_end_ms: float) -> tuple[str, float]:
    """The unit of the time axis for a run of ``t_end_ms``: ms below 1 s, s up to 5 min,
    min up to 3 h, h beyond; returns (unit, ms per unit)."""
    if t_end_ms < 1e3:
        return "ms", 1.0
    if t_end_ms <= 300e3:
        return "s", 1e3
    if t_end_ms <= 3 * 3600e3:
        return "min", 60e3
    return "h", 3600e3


def phases_of(run: Run) -> tuple[list, list]:
    """([(name, start_ms, duration_ms, blocks)], blocked throughout) from run.json: components
    blocked in every phase (a top-level ``block:``) are listed once, not per phase; the phase
    list is empty when there is nothing to show (one phase without its own blocks)."""
    p = run.protocol
    entries = p.get("phases")
    if not isinstance(entries, list):
        entries = [p["stimulus"]] if isinstance(p.get("stimulus"), dict) else []
    blocks = (run.meta or {}).get("blocks") or {}
    out, t = [], 0.0
    for k, e in enumerate(entries):
        if not isinstance(e, dict):
            continue
        name = str(e.get("name") or f"phase{k}")
        dur = _num(e.get("duration"))
        if not math.isfinite(dur) or dur <= 0:
            continue
        out.append((name, t, dur, list(blocks.get(name) or e.get("block") or [])))
        t += dur
    common = [b for b in out[0][3] if all(b in ph[3] for ph in out)] if out else []
    out = [(n, t0, d, [b for b in bl if b not in common]) for n, t0, d, bl in out]
    if len(out) == 1:
        out = []
    return out, common


def _state_groups(cols) -> dict:
    """Recorded state columns grouped by variable, in file order: {"ca": ["ca[0,0]", ...]}."""
    groups: dict = {}
    for c in cols:
        if c in ("t_ms", "condition") or c.startswith("w[") or c in WEIGHT_STATS:
            continue
        m = STATE_COLUMN.match(c)
        var = m.group("var") if m else c
        groups.setdefault(var, []).append(c)
    return groups


def _state_label(var: str) -> str:
    return f"{var}\n({STATE_UNITS.get(var, 'dimensionless')})"


def _time_figure(fig, run: Run) -> None:
    import numpy as np

    cols = run.trace_cols
    data = run.traces if run.traces is not None else np.zeros((0, max(1, len(cols))))
    t_ms = data[:, 0] if data.size else np.zeros(0)
    phases, common = phases_of(run)
    t_end = max(
        [float(t_ms[-1]) if t_ms.size else 0.0, _num(run.protocol.get("duration")) if run.protocol.get("duration") is not None else 0.0]
        + [s + d for _, s, d, _ in phases]
    )
    unit, scale = time_unit(t_end if t_end > 0 else 1.0)
    groups = _state_groups(cols)
    states = list(groups)[:MAX_STATE_PANELS]
    hidden = list(groups)[MAX_STATE_PANELS:]
    raster, rate = _spike_panels(run)
    n_syn = len(run.summary)
    hist = n_syn >= HIST_MIN_SYNAPSES and "w_final" in run.summary_cols
    panels = ["weights"] + [("state", v) for v in states] + (["raster"] if raster else []) + (["rate"] if rate else [])
    resp = bool(run.responses)
    extra = max(0, len(panels) + int(resp) - BASE_PANELS)
    fig.set_size_inches(WIDTH_IN, HEIGHT_IN + PANEL_IN * extra)
    gs = fig.add_gridspec(len(panels) + int(resp), 1)
    if resp:  # responses against pulse number, below the time axes (its own x axis)
        _responses_axes(fig.add_subplot(gs[len(panels)]), run)
    axes = []
    for k, panel in enumerate(panels):
        ax = fig.add_subplot(gs[k], sharex=axes[0] if axes else None)
        axes.append(ax)
        if panel == "weights":
            _weights_axes(ax, cols, data, t_ms / scale)
        elif panel == "raster":
            _raster_axes(ax, run, raster, scale)
        elif panel == "rate":
            _rate_axes(ax, run, rate, scale, t_end)
        else:
            _state_axes(ax, panel[1], groups[panel[1]], cols, data, t_ms / scale)
        if k < len(panels) - 1:
            ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel(f"time ({unit})")
    if t_end > 0:
        axes[0].set_xlim(0, t_end / scale)
    for k, ax in enumerate(axes):
        _shade_phases(ax, phases, scale, label=(k == 0))
    legend_x = 1.01
    if hist:  # beside the weights over time, sharing their axis (constrained layout keeps it in)
        _hist_axes(axes[0].inset_axes([1.02, 0.0, HIST_WIDTH, 1.0], sharey=axes[0]), run)
        legend_x = 1.02 + HIST_WIDTH + 0.03
    _legend_outside(axes[0], legend_x)
    fig.suptitle(_title(run, f"blocked: {', '.join(common)}" if common else ""), fontsize=11)
    if hidden:
        _note(fig, f"not shown: state {', '.join(hidden)} (at most {MAX_STATE_PANELS} state axes)")


def _weights_axes(ax, cols, data, t) -> None:
    idx = {c: k for k, c in enumerate(cols)}
    singles = [c for c in cols if c.startswith("w[")]
    n = len(t)
    for k, c in enumerate(singles):
        label = c if len(singles) <= MAX_LEGEND else (f"w[i,j] ({len(singles)} synapses)" if k == 0 else None)
        style = _style(k, n) if len(singles) <= MAX_LEGEND else {"color": "0.55", "linestyle": "-", "linewidth": 0.6}
        ax.plot(t, data[:, idx[c]], label=label, **style)
    if "w_mean" in idx:
        mean = data[:, idx["w_mean"]]
        if "w_std" in idx:
            std = data[:, idx["w_std"]]
            ax.fill_between(t, mean - std, mean + std, color="0.6", alpha=0.35, linewidth=0, label="w_mean ± w_std")
        ax.plot(t, mean, color="black", linewidth=2.0, linestyle="-", label="w_mean")
    if "w_min" in idx and "w_max" in idx:
        ax.plot(t, data[:, idx["w_min"]], color="0.3", linestyle=(0, (1, 1.5)), linewidth=1.0, label="w_min, w_max")
        ax.plot(t, data[:, idx["w_max"]], color="0.3", linestyle=(0, (1, 1.5)), linewidth=1.0)
    ax.set_ylabel("weight w\n(dimensionless)")
    if not n:
        ax.text(0.5, 0.5, "no traces recorded", transform=ax.transAxes, ha="center", va="center", color="0.4")


def _state_axes(ax, var, group, cols, data, t) -> None:
    idx = {c: k for k, c in enumerate(cols)}
    many = len(group) > MAX_LEGEND
    for k, c in enumerate(group):
        style = {"color": "0.45", "linestyle": "-", "linewidth": 0.6} if many else _style(k, len(t))
        label = (f"{var} ({len(group)} series)" if k == 0 else None) if many else c
        ax.plot(t, data[:, idx[c]], label=label, **style)
    ax.set_ylabel(_state_label(var))
    _legend_outside(ax)


def _legend_outside(ax, x: float = 1.01) -> None:
    """Legends of time axes sit to the right of the axes, never over the data (with the
    weights, the histogram's entries join the legend)."""
    handles, labels = ax.get_legend_handles_labels()
    for child in ax.child_axes:
        h, lab = child.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(x, 1.0), borderaxespad=0.0)


def _spike_panels(run: Run) -> tuple[list, list]:
    """Populations for the raster (sparse ones) and for the rate panel (dense ones)."""
    if not run.spikes:
        return [], []
    raster, rate = [], []
    for pop, (t, i) in run.spikes.items():
        n = _pop_size(run, pop, i)
        per = len(t) / max(n, 1)
        if len(t) and per <= RASTER_MAX_PER_NEURON:
            raster.append(pop)
        if per >= RATE_MIN_PER_NEURON:
            rate.append(pop)
    return raster, rate


def _pop_size(run: Run, pop: str, idx) -> int:
    syn = run.protocol.get("synapses") or {}
    n = syn.get("n_pre" if pop == "pre" else "n_post" if pop == "post" else "")
    if isinstance(n, int) and n > 0:
        return n
    return int(idx.max()) + 1 if len(idx) else 1


def _raster_axes(ax, run: Run, pops, scale) -> None:
    ticks, labels, row0 = [], [], 0
    notes = []
    for k, pop in enumerate(pops):
        t, i = run.spikes[pop]
        n = _pop_size(run, pop, i)
        shown = min(n, RASTER_NEURONS)
        keep = i < shown
        x, y = t[keep] / scale, i[keep] + row0
        ax.plot(
            x,
            y,
            linestyle="none",
            marker="|",
            markersize=max(2.0, min(8.0, 60.0 / max(shown * len(pops), 1))),
            markeredgewidth=0.8 if k == 0 else 1.2,
            color="black" if k == 0 else COLORS[1],
            rasterized=bool(x.size > 5000),
        )
        ticks.append(row0 + (shown - 1) / 2)
        labels.append(f"{pop}\n({shown} of {n})" if shown < n else pop)
        if shown < n:
            notes.append(pop)
        if k:
            ax.axhline(row0 - 0.75, color="0.3", linewidth=0.6)
        row0 += shown + 1
    ax.set_yticks(ticks, labels)
    ax.set_ylim(-0.75, row0 - 0.25)
    ax.grid(False, axis="y")
    ax.set_ylabel("spikes\n(neuron)")


def _rate_axes(ax, run: Run, pops, scale, t_end) -> None:
    import numpy as np

    width = _nice_bin(t_end / 100.0)
    edges = np.arange(0.0, t_end + width, width)
    if edges.size < 2:
        edges = np.array([0.0, max(t_end, 1.0)])
    for k, pop in enumerate(pops):
        t, i = run.spikes[pop]
        n = _pop_size(run, pop, i)
        counts, _ = np.histogram(t, bins=edges)
        hz = counts / (n * np.diff(edges) / 1000.0)
        ax.stairs(hz, edges / scale, color="black" if k == 0 else COLORS[1], linestyle=LINESTYLES[k], linewidth=1.3, label=f"{pop} ({n} neuron{'s' if n != 1 else ''})")
    ax.set_ylabel(f"rate (Hz)\nper neuron, {_fmt_ms(width)} bins")
    ax.set_ylim(bottom=0)
    _legend_outside(ax)


def _nice_bin(x: float) -> float:
    if x <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(x))
    for m in (1, 2, 5, 10):
        if x <= m * e:
            return float(m * e)
    return float(10 * e)  # pragma: no cover


def _fmt_ms(ms: float) -> str:
    if ms >= 60e3 and ms % 60e3 == 0:
        return f"{ms / 60e3:g} min"
    if ms >= 1e3:
        return f"{ms / 1e3:g} s"
    return f"{ms:g} ms"


def _shade_phases(ax, phases, scale, label: bool) -> None:
    from matplotlib.transforms import blended_transform_factory

    if not phases:
        return
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    total = sum(d for _, _, d, _ in phases)
    for k, (name, start, dur, blocks) in enumerate(phases):
        a, b = start / scale, (start + dur) / scale
        if blocks:
            ax.axvspan(a, b, facecolor="0.85" if k % 2 else "0.93", edgecolor="0.55", hatch="///", linewidth=0, zorder=0)
        elif k % 2:
            ax.axvspan(a, b, facecolor="0.9", linewidth=0, zorder=0)
        if k:
            ax.axvline(a, color="0.35", linestyle="--", linewidth=0.8, zorder=0.5)
        if label:
            text = name + (f"\nblocked: {', '.join(blocks)}" if blocks else "")
            narrow = dur < 0.12 * total  # a slanted label from the phase's start
            ax.text(
                a if narrow else (a + b) / 2,
                1.02,
                text,
                transform=trans,
                ha="left" if narrow else "center",
                va="bottom",
                fontsize=7.5,
                rotation=45 if narrow else 0,
                rotation_mode="anchor",
                clip_on=False,
            )


def _hist_axes(ax, run: Run) -> None:
    import numpy as np

    cols = run.summary_cols
    w0 = np.array([_num(r[cols.index("w_initial")]) for r in run.summary]) if "w_initial" in cols else np.zeros(0)
    w1 = np.array([_num(r[cols.index("w_final")]) for r in run.summary])
    both = np.concatenate([w0[np.isfinite(w0)], w1[np.isfinite(w1)]])
    if not both.size:
        return
    lo, hi = float(both.min()), float(both.max())
    if hi <= lo:
        hi = lo + 1.0
    bins = np.linspace(lo, hi, 26)
    if w0.size:
        ax.hist(w0[np.isfinite(w0)], bins=bins, orientation="horizontal", histtype="step", color="0.2", linestyle="--", linewidth=1.0, label="w_initial (hist.)")
    ax.hist(w1[np.isfinite(w1)], bins=bins, orientation="horizontal", histtype="stepfilled", color="0.25", alpha=0.6, label=f"w_final (hist.,\n{int(np.isfinite(w1).sum())} synapses)")
    ax.tick_params(labelleft=False, labelbottom=False, left=False, bottom=False)
    ax.grid(False)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)


# ----------------------------------------------------------------------------------- sweeps


def key_unit(key: str) -> str:
    last = key.rsplit(".", 1)[-1]
    if last in _TIME_KEYS or last.startswith("tau"):
        return "ms"
    if last in _RATE_KEYS:
        return "Hz"
    if last in _VOLT_KEYS:
        return "mV"
    if last in _PER_S_KEYS:
        return "1/s"
    return ""


def key_label(key: str) -> str:
    unit = key_unit(key)
    pretty = {"delta_t": "delta_t = t_post - t_pre"}.get(key.rsplit(".", 1)[-1])
    return key + (f" ({unit})" if unit else "") + (f", {pretty}" if pretty else "")


def _value_text(key: str, v) -> str:
    unit = key_unit(key)
    if isinstance(v, float):
        return f"{v:g}" + (f" {unit}" if unit else "")
    return str(v)


@dataclass
class SweepTable:
    keys: list
    values: dict  # key -> sorted distinct values
    numeric: dict  # key -> bool
    conditions: list  # [(value tuple, [(pre, post, y)])] in file order
    metric: str  # dw_percent or dw


def sweep_table(run: Run) -> SweepTable:
    cols = run.summary_cols
    keys = [k for k in run.sweep_keys if k in cols]
    if not keys:
        raise PlotError(f"{run.path / 'summary.csv'}: the sweep columns {', '.join(run.sweep_keys)} are missing")
    ci = {c: k for k, c in enumerate(cols)}
    metric = "dw_percent" if "dw_percent" in ci and any(r[ci["dw_percent"]] != "" for r in run.summary) else "dw"
    if metric not in ci:
        raise PlotError(f"{run.path / 'summary.csv'}: no dw_percent or dw column")
    numeric = {k: all(not math.isnan(_num(r[ci[k]])) for r in run.summary) for k in keys}
    conds: dict = {}
    for r in run.summary:
        vals = tuple(_num(r[ci[k]]) if numeric[k] else r[ci[k]] for k in keys)
        conds.setdefault(vals, []).append((r[ci["pre"]] if "pre" in ci else "", r[ci["post"]] if "post" in ci else "", _num(r[ci[metric]])))
    values = {}
    for j, k in enumerate(keys):
        distinct = []
        for vals in conds:
            if vals[j] not in distinct:
                distinct.append(vals[j])
        values[k] = sorted(distinct) if numeric[k] else distinct
    return SweepTable(keys, values, numeric, list(conds.items()), metric)


def _metric_label(metric: str) -> str:
    return "weight change dw_percent (%)" if metric == "dw_percent" else "weight change dw (dimensionless)"


def _sweep_figure(fig, run: Run) -> None:
    tab = sweep_table(run)
    ref_file = find_reference(run)
    ref = read_reference(ref_file, tab.keys) if ref_file is not None else None
    mode = ((run.meta or {}).get("sweep") or {}).get("mode", "grid")
    survival = "present_final" in run.summary_cols and "present_initial" in run.summary_cols
    if run.responses:  # responses against pulse number below the sweep
        fig.set_size_inches(WIDTH_IN, HEIGHT_IN + PANEL_IN * 2)
        gs = fig.add_gridspec(2, 1)
        ax = fig.add_subplot(gs[0])
        _responses_axes(fig.add_subplot(gs[1]), run)
    elif survival:  # synapses.structure: survival by initial weight below the sweep's curve
        fig.set_size_inches(WIDTH_IN, HEIGHT_IN + PANEL_IN)
        gs = fig.add_gridspec(2, 1, height_ratios=(3, 2))
        ax = fig.add_subplot(gs[0])
        _survival_axes(fig.add_subplot(gs[1]), run, tab)
    else:
        ax = fig.add_subplot()
    n = len(tab.conditions)
    extra = f"{n} condition{'s' if n != 1 else ''}"
    if len(tab.keys) == 1 or mode == "zip":
        _sweep_curve(ax, tab, ref)
    elif len(tab.keys) == 2 and all(len(tab.values[k]) >= HEATMAP_MIN for k in tab.keys):
        _sweep_heatmap(fig, ax, tab, ref)
    else:
        _sweep_family(fig, ax, tab, ref)
    fig.suptitle(_title(run, extra), fontsize=11)
    if ref is not None:
        _note(fig, f"reference points: {ref.file.name}")


SURVIVAL_BINS = 10


def _survival_axes(ax, run: Run, tab: SweepTable) -> None:
    """``synapses.structure``: the fraction of the synapses present at the start that are present
    at the end, by initial weight (SURVIVAL_BINS bins), one curve per sweep condition."""
    import numpy as np

    cols = run.summary_cols
    ci = {c: k for k, c in enumerate(cols)}
    by_cond: dict = {}
    for r in run.summary:
        if r[ci["present_initial"]] != "1":
            continue
        key = tuple(r[ci[k]] for k in tab.keys)
        by_cond.setdefault(key, []).append((_num(r[ci["w_initial"]]), r[ci["present_final"]] == "1"))
    allw = np.array([w for rows in by_cond.values() for w, _ in rows])
    allw = allw[np.isfinite(allw)]
    if not allw.size:
        ax.text(0.5, 0.5, "no synapse present at the start", transform=ax.transAxes, ha="center", va="center", color="0.4")
        return
    lo, hi = float(allw.min()), float(allw.max())
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, SURVIVAL_BINS + 1)
    mids = 0.5 * (edges[1:] + edges[:-1])
    many = len(by_cond) > MAX_LEGEND
    for k, (key, rows) in enumerate(by_cond.items()):
        w = np.array([x for x, _ in rows])
        alive = np.array([a for _, a in rows], dtype=float)
        b = np.clip(np.searchsorted(edges, w, side="right") - 1, 0, SURVIVAL_BINS - 1)
        n = np.bincount(b, minlength=SURVIVAL_BINS)
        frac = np.where(n > 0, np.bincount(b, weights=alive, minlength=SURVIVAL_BINS) / np.maximum(n, 1), np.nan)
        label = ", ".join(f"{kk.rsplit('.', 1)[-1]} = {_value_text(kk, _num(v))}" for kk, v in zip(tab.keys, key))
        style = {"color": "0.45", "linestyle": "-", "linewidth": 0.6} if many else _style(k, SURVIVAL_BINS)
        ax.plot(mids, frac, label=None if many and k else (f"{len(by_cond)} conditions" if many else label), **style)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("initial weight w_initial (dimensionless)")
    ax.set_ylabel("surviving fraction\n(present at the end)")
    _legend_outside(ax)


def _xpos(tab: SweepTable, key: str, v) -> float:
    return v if tab.numeric[key] else float(tab.values[key].index(v))


def _set_xaxis(ax, tab: SweepTable, key: str) -> None:
    ax.set_xlabel(key_label(key))
    if not tab.numeric[key]:
        vals = tab.values[key]
        ax.set_xticks(range(len(vals)), [str(v) for v in vals])


def _zero_line(ax) -> None:
    ax.axhline(0.0, color="0.3", linewidth=0.8, linestyle="-", zorder=1)


def _sweep_curve(ax, tab: SweepTable, ref) -> None:
    import numpy as np

    key = tab.keys[0]
    conds = sorted(tab.conditions, key=lambda c: _xpos(tab, key, c[0][0]))
    x = np.array([_xpos(tab, key, vals[0]) for vals, _ in conds])
    per = max(len(rows) for _, rows in conds)
    n = len(x)
    if per <= 6:
        synapses = []
        for _, rows in conds:
            for pre, post, _ in rows:
                if (pre, post) not in synapses:
                    synapses.append((pre, post))
        for k, (pre, post) in enumerate(synapses):
            y = np.array([next((v for a, b, v in rows if (a, b) == (pre, post)), np.nan) for _, rows in conds])
            label = "model" if len(synapses) == 1 else f"w[{pre},{post}]"
            style = _style(k)  # a marker on every condition, up to 40 of them
            if n > 40:
                style["marker"] = None if len(synapses) == 1 else style["marker"]
                if style["marker"]:
                    style["markevery"] = (k, max(1, n // 10))
            ax.plot(x, y, label=label, **style)
    else:
        ys = [np.array([v for _, _, v in rows], dtype=float) for _, rows in conds]
        mean = np.array([np.nanmean(y) if np.isfinite(y).any() else np.nan for y in ys])
        std = np.array([np.nanstd(y) if np.isfinite(y).any() else np.nan for y in ys])
        ax.fill_between(x, mean - std, mean + std, color="0.6", alpha=0.35, linewidth=0, label="± std over synapses")
        ax.plot(x, mean, color="black", marker="o" if n <= 40 else None, label=f"mean of {per} synapses")
    others = tab.keys[1:]
    label = key_label(key) + (f"; zipped with {', '.join(others)}" if others else "")
    ax.set_xlabel(label)
    if not tab.numeric[key]:
        _set_xaxis(ax, tab, key)
    _zero_line(ax)
    if ref is not None and key in ref.keys:
        _overlay(ax, tab, ref, key, None)
    ax.set_ylabel(_metric_label(tab.metric))
    ax.legend(loc="best")


def _family_value(vals, tab, fam_keys):
    return tuple(vals[tab.keys.index(k)] for k in fam_keys)


def _sweep_family(fig, ax, tab: SweepTable, ref) -> None:
    import numpy as np

    # x: the key with the most values (the first such); one curve per combination of the others
    xkey = max(tab.keys, key=lambda k: (len(tab.values[k]), -tab.keys.index(k)))
    fam_keys = [k for k in tab.keys if k != xkey]
    xi = tab.keys.index(xkey)
    curves: dict = {}
    for vals, rows in tab.conditions:
        y = np.array([v for _, _, v in rows], dtype=float)
        yv = float(np.nanmean(y)) if np.isfinite(y).any() else np.nan
        curves.setdefault(_family_value(vals, tab, fam_keys), []).append((_xpos(tab, xkey, vals[xi]), yv))
    order = sorted(curves, key=lambda f: tuple((0, v, "") if isinstance(v, float) else (1, 0.0, v) for v in f))
    shown = order[:MAX_CURVES]
    per = max(len(rows) for _, rows in tab.conditions)
    styles = {}
    for k, fam in enumerate(shown):
        pts = sorted(curves[fam])
        style = _style(k) if len(pts) <= 40 else _style(k, len(pts))
        styles[fam] = style
        label = ", ".join(f"{fk.rsplit('.', 1)[-1]} = {_value_text(fk, v)}" for fk, v in zip(fam_keys, fam))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=label, **style)
    _set_xaxis(ax, tab, xkey)
    _zero_line(ax)
    if ref is not None and xkey in ref.keys:
        _overlay(ax, tab, ref, xkey, (fam_keys, styles))
    ax.set_ylabel(_metric_label(tab.metric) + (f"\nmean of {per} synapses" if per > 1 else ""))
    ax.legend(loc="best", title=", ".join(fam_keys) if len(fam_keys) > 1 else fam_keys[0], title_fontsize=7.5)
    if len(order) > MAX_CURVES:
        _note(fig, f"{len(order) - MAX_CURVES} more curves not shown")


def _overlay(ax, tab: SweepTable, ref: Reference, xkey: str, family) -> None:
    """Reference points: open markers with error bars, one group per (label, curve)."""
    import numpy as np

    groups: dict = {}
    for r in range(len(ref.dw)):
        fam = None
        if family is not None:
            fam_keys, _ = family
            if all(k in ref.keys for k in fam_keys):
                fam = tuple(ref.keys[k][r] for k in fam_keys)
        groups.setdefault((ref.label[r], fam), []).append(r)
    if family is not None:  # legend entries in the order of the curves
        rank = {f: k for k, f in enumerate(family[1])}
        groups = dict(sorted(groups.items(), key=lambda kv: (kv[0][0], rank.get(kv[0][1], len(rank)))))
    for g, ((label, fam), rows) in enumerate(groups.items()):
        xs = []
        for r in rows:
            v = ref.keys[xkey][r]
            if tab.numeric[xkey] and isinstance(v, float):
                xs.append(v)
            elif not tab.numeric[xkey] and v in tab.values[xkey]:
                xs.append(float(tab.values[xkey].index(v)))
            else:
                xs.append(np.nan)
        ys = [ref.dw[r] for r in rows]
        sem = [ref.sem[r] for r in rows]
        style = family[1].get(fam) if family is not None and fam is not None else None
        color = style["color"] if style else "black"
        marker = style["marker"] if style else MARKERS[(g + 1) % len(MARKERS)]
        text = label
        if fam is not None:
            text += ": " + ", ".join(f"{k.rsplit('.', 1)[-1]} = {_value_text(k, v)}" for k, v in zip(family[0], fam))
        has_err = any(math.isfinite(s) for s in sem)
        ax.errorbar(
            xs,
            ys,
            yerr=[s if math.isfinite(s) else 0.0 for s in sem] if has_err else None,
            linestyle="none",
            marker=marker,
            markersize=6.5,
            markerfacecolor="none",
            markeredgecolor=color,
            markeredgewidth=1.4,
            ecolor=color,
            elinewidth=1.0,
            capsize=3,
            zorder=5,
            label=text + (" (± sem)" if has_err else ""),
        )


def _sweep_heatmap(fig, ax, tab: SweepTable, ref) -> None:
    import numpy as np

    kx, ky = tab.keys[1], tab.keys[0]  # the first key on the y axis (rows), the second along x
    vx, vy = tab.values[kx], tab.values[ky]
    z = np.full((len(vy), len(vx)), np.nan)
    for vals, rows in tab.conditions:
        y = np.array([v for _, _, v in rows], dtype=float)
        if np.isfinite(y).any():
            z[vy.index(vals[0]), vx.index(vals[1])] = np.nanmean(y)
    mesh = ax.pcolormesh(np.arange(len(vx) + 1) - 0.5, np.arange(len(vy) + 1) - 0.5, z, cmap="viridis", shading="flat", rasterized=True)
    if np.nanmin(z) < 0 < np.nanmax(z):
        cs = ax.contour(np.arange(len(vx)), np.arange(len(vy)), z, levels=[0.0], colors="white", linewidths=1.5, linestyles="--")
        ax.clabel(cs, fmt={0.0: "0"}, fontsize=7)
    cb = fig.colorbar(mesh, ax=ax)
    cb.set_label(_metric_label(tab.metric))
    for axis, key, vals in ((ax.xaxis, kx, vx), (ax.yaxis, ky, vy)):
        step = max(1, math.ceil(len(vals) / 10))
        pos = list(range(0, len(vals), step))
        axis.set_ticks(pos, [f"{vals[p]:g}" if isinstance(vals[p], float) else str(vals[p]) for p in pos])
    ax.set_xlabel(key_label(kx))
    ax.set_ylabel(key_label(ky))
    ax.grid(False)
    if ref is not None and kx in ref.keys and ky in ref.keys:
        def frac(vals, v, numeric):
            if numeric and isinstance(v, float):
                return float(np.interp(v, vals, np.arange(len(vals))))
            return float(vals.index(v)) if v in vals else np.nan

        xs = [frac(vx, v, tab.numeric[kx]) for v in ref.keys[kx]]
        ys = [frac(vy, v, tab.numeric[ky]) for v in ref.keys[ky]]
        ax.scatter(xs, ys, c=ref.dw, cmap="viridis", norm=mesh.norm, marker="o", s=45, edgecolors="white", linewidths=1.5, zorder=5, label="reference (same colour scale)")
        ax.legend(loc="upper right")
