"""``fit``: a protocol's free parameters from measured data (spec section 13), and its outputs.

``fit(...)`` returns a typed :class:`FitResult`; ``write_fit`` writes its folder (``fit.json``,
``fitted.yaml``, ``predictions.csv``, ``timing.json``, and ``plot.png`` on request) through
``plastictool.results.folders.write_folder`` (atomic). ``fit.json`` and ``fitted.yaml`` hold no timings
and are the same bytes for the same protocol, data, seed and versions; the evaluation speed is
in ``timing.json`` (and ``FitResult.evaluations_per_s``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ProtocolError
from .data import Data, FreeParam, make_param, parse_param, read_data

METHODS = ("least_squares", "cmaes")


@dataclass
class FitResult:
    name: str
    file: str
    method: str
    optimizer: str
    seed: int
    params: tuple[FreeParam, ...]
    x: dict  # path -> best value (canonical units)
    se: dict  # path -> standard error
    ci95: dict  # path -> (low, high)
    correlation: list  # k x k
    chi2: float
    n_data: int
    dof: int
    reduced_chi2: float | None
    aic: float
    bic: float
    covariance_scaled: bool  # no sem in the data: scaled by the reduced chi2
    converged: bool
    message: str
    warnings: list
    evaluations: int
    wall_s: float
    evaluations_per_s: float
    data: Data
    model: list  # model dw_percent per data row
    starts: list
    protocol_sha256: str
    resolved_sha256: str
    raw: dict = field(repr=False)  # the protocol data (no sweep, no fit)
    out: str | None = None

    def write(self, folder, force: bool = False, plot: bool = False) -> Path:
        """Write ``fit.json``, ``fitted.yaml``, ``predictions.csv`` (and ``plot.png``) into
        ``folder``, as ``plastic fit --out folder``."""
        return write_fit(self, Path(folder), force, plot)

    @property
    def residuals(self) -> list:
        return [m - y for m, y in zip(self.model, self.data.y)]

    def as_dict(self) -> dict:
        """The content of fit.json (no timings: the same bytes for the same inputs)."""
        from ..results.output import versions

        v = versions()
        v.pop("kernels", None)
        try:
            import scipy

            v["scipy"] = scipy.__version__
        except ImportError:  # pragma: no cover
            pass
        names = [q.path for q in self.params]
        return {
            "tool": "plastic fit",
            "protocol_file": self.file,
            "name": self.name,
            "method": self.method,
            "optimizer": self.optimizer,
            "seed": self.seed,
            "converged": self.converged,
            "message": self.message,
            "parameters": {
                q.path: {
                    "value": _num(self.x[q.path]),
                    "se": _num(self.se[q.path]),
                    "ci95": [_num(self.ci95[q.path][0]), _num(self.ci95[q.path][1])],
                    "lo": q.lo,
                    "hi": q.hi,
                    "start": q.start,
                    "log_space": q.log,
                    "unit": {"time": "ms", "rate": "Hz", "voltage": "mV"}.get(q.dim, ""),
                }
                for q in self.params
            },
            "correlation": {"order": names, "matrix": [[_num(c) for c in row] for row in self.correlation]},
            "chi2": _num(self.chi2),
            "n_data": self.n_data,
            "n_params": len(self.params),
            "dof": self.dof,
            "reduced_chi2": _num(self.reduced_chi2),
            "sem_given": self.data.sem is not None,
            "covariance_scaled": self.covariance_scaled,
            "covariance_note": (
                "no sem column: every sem taken as 1, covariance scaled by the reduced chi2, 95% intervals from Student's t"
                if self.covariance_scaled
                else "covariance (J^T J)^-1 of the residuals (model - data) / sem, not scaled; 95% intervals x +- 1.96 se"
            ),
            "aic": _num(self.aic),
            "bic": _num(self.bic),
            "evaluations": self.evaluations,
            "warnings": list(self.warnings),
            "starts": self.starts,
            "data_file": self.data.file,
            "data_sha256": self.data.sha256,
            "protocol_sha256": self.protocol_sha256,
            "resolved_sha256": self.resolved_sha256,
            "versions": v,
        }


def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _load(experiment_or_path):
    """(raw data without sweep and fit, lines, file, name, fit section, protocol sha256).

    ``experiment_or_path``: a loaded ``Experiment`` (its ``set=``/``--set`` overrides and seed
    are applied again to its raw data), a protocol file path, a YAML string, a dict or a
    ``yamlsrc.Source``."""
    from ..protocol.schema import Experiment, _stem, parse_set, set_path
    from ..protocol.yamlsrc import Source

    if isinstance(experiment_or_path, Experiment):
        exp = experiment_or_path
        raw = copy.deepcopy(exp.raw)
        file = exp.file
        lines = {}
        for expr in exp.overrides:
            path, value = parse_set(expr)

            def fail(msg):
                raise ProtocolError(msg, "", "--set", None)

            set_path(raw, path, value, fail)
        if isinstance(raw, dict):
            raw["seed"] = exp.base.seed
    else:
        if isinstance(experiment_or_path, Source):
            src = experiment_or_path
        else:
            from ..api import _source

            src = _source(experiment_or_path)
        raw, lines, file = copy.deepcopy(src.data), src.lines, src.file
    path = Path(file)
    sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else hashlib.sha256(
        json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    if not isinstance(raw, dict):
        raise ProtocolError("a protocol is a mapping", "", file, None)
    section = raw.pop("fit", None)
    raw.pop("sweep", None)
    name = raw.get("name") if isinstance(raw.get("name"), str) else _stem(file)
    return raw, lines, file, name, section, sha


def _section(section, file, lines):
    """The ``fit:`` section: data path (relative to the protocol's folder), params, method."""
    if section is None:
        return None, None, None
    if not isinstance(section, dict):
        raise ProtocolError("expected a mapping with data, params and method", "fit", file, lines.get(("fit",)))
    extra = set(section) - {"data", "params", "method"}
    if extra:
        key = sorted(map(str, extra))[0]
        raise ProtocolError(f"unknown key {key!r}; fit has data, params, method", f"fit.{key}", file, lines.get(("fit", key)))
    data = section.get("data")
    if data is not None:
        if not isinstance(data, str):
            raise ProtocolError("expected a file name", "fit.data", file, lines.get(("fit", "data")))
        data = str(Path(file).parent / data)
    params = section.get("params")
    if params is not None and not isinstance(params, dict):
        raise ProtocolError("expected a mapping PATH: [LO, HI] or [LO, START, HI]", "fit.params", file, lines.get(("fit", "params")))
    return data, params, section.get("method")


def fit(experiment_or_path, data=None, params=None, method=None, seed=None, jobs=1, scheduler=None, progress=None,
        n_starts=None) -> FitResult:
    """Fit the free ``params`` of a protocol to ``data``.

    ``experiment_or_path``: a protocol file or a loaded ``Experiment``. ``data``: a DATA.csv path
    or a :class:`Data` (None: the protocol's ``fit.data``). ``params``: ``PATH=LO:HI`` strings,
    a mapping ``{PATH: [LO, HI] | [LO, START, HI]}`` or :class:`FreeParam` s (None: ``fit.params``;
    given ones replace the section's). ``method``: ``least_squares`` (default) or ``cmaes``.
    ``seed``: of the optimiser's starts (default: the protocol's seed; the model's random numbers
    always come from the protocol's seed). ``jobs``: worker processes; ``scheduler``: a Dask
    address or ``local``. ``progress(evaluations)`` after each batch. Raises ProtocolError on
    bad input."""
    import numpy as np

    from .. import rules
    from . import methods, uncertainty
    from .objective import Evaluator, make_plan

    t0 = time.perf_counter()
    raw, lines, file, name, section, sha = _load(experiment_or_path)
    s_data, s_params, s_method = _section(section, file, lines)
    method = method or s_method or "least_squares"
    if method not in METHODS:
        raise ProtocolError(f"unknown method {method!r}; one of {', '.join(METHODS)}", "--method", "--method" if s_method is None else file, None)
    data = data if data is not None else s_data
    if data is None:
        raise ProtocolError("no data: give --data DATA.csv or fit.data in the protocol", "--data", file, None)
    if not isinstance(data, Data):
        data = read_data(data)
    kind = raw.get("rule", {}).get("kind") if isinstance(raw.get("rule"), dict) else None
    if kind not in rules.kinds():
        kind = None
    free = _params(params if params is not None else s_params, kind, file, lines)
    if not free:
        raise ProtocolError("no free parameters: give --param PATH=LO:HI or fit.params", "--param", file, None)
    if len({q.path for q in free}) != len(free):
        raise ProtocolError("a parameter is given twice", "--param", "--param", None)
    if data.n < len(free):
        raise ProtocolError(f"{data.n} data rows for {len(free)} free parameters: not enough data", "--data", data.file, None)
    plan = make_plan(raw, lines, file, name, data, free)
    base = plan.rows[0].protocol
    seed = int(base.seed if seed is None else seed)
    resolved = dict(base.resolved)
    resolved_sha = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()
    lo = np.array([q.lo for q in free])
    hi = np.array([q.hi for q in free])
    space = methods.Space(lo, hi, np.array([q.log for q in free]))
    mid = space.to_x(0.5 * (space.ulo + space.uhi))
    starts = np.array([q.start if q.start is not None else mid[k] for k, q in enumerate(free)])
    y = np.array(data.y)
    sem_given = data.sem is not None
    sem = np.array(data.sem) if sem_given else np.ones(data.n)
    with Evaluator(plan, jobs, scheduler, progress) as ev:
        if method == "least_squares":
            opt = methods.least_squares_fit(ev, space, starts, y, sem, seed, n_starts or methods.N_STARTS)
        else:
            opt = methods.cmaes_fit(ev, space, starts, y, sem, seed)
        many = methods._residual_fn(ev, space, y, sem)
        # the Jacobian in natural units at the optimum (many() maps u -> x: pass u)
        J = uncertainty.jacobian(lambda X: many([space.to_u(x) for x in X]), opt.x, lo, hi)
        model = [float(v) for v in ev.model([opt.x])[0]]
        evaluations, seconds = ev.evaluations, ev.seconds
    r = (np.array(model) - y) / sem
    chi2 = float(np.sum(r * r))
    n, k = data.n, len(free)
    dof = n - k
    scaled = not sem_given
    cov, se, corr, q, singular = uncertainty.errors(J, chi2, n, k, scaled)
    aic, bic = uncertainty.information(chi2, n, k, scaled)
    names = [p.path for p in free]
    warns = uncertainty.warnings_for(names, opt.x, se, corr, singular)
    if any(not math.isfinite(m) for m in model):
        warns.append("the simulation failed (non-finite values) for some data rows at the optimum")
    for a, p in enumerate(free):
        span = p.hi - p.lo
        if abs(opt.x[a] - p.lo) <= 1e-6 * span or abs(opt.x[a] - p.hi) <= 1e-6 * span:
            warns.append(f"{p.path}: the optimum {opt.x[a]:.6g} is at a bound of [{p.lo:g}, {p.hi:g}]")
    if not opt.converged:
        warns.append(f"not converged: {opt.message}")
    wall = time.perf_counter() - t0
    return FitResult(
        name=name, file=file, method=method, optimizer=opt.optimizer, seed=seed, params=tuple(free),
        x={p.path: float(opt.x[a]) for a, p in enumerate(free)},
        se={p.path: float(se[a]) for a, p in enumerate(free)},
        ci95={p.path: (float(opt.x[a] - q * se[a]), float(opt.x[a] + q * se[a])) for a, p in enumerate(free)},
        correlation=corr.tolist(), chi2=chi2, n_data=n, dof=dof, reduced_chi2=chi2 / dof if dof > 0 else None,
        aic=aic, bic=bic, covariance_scaled=scaled, converged=bool(opt.converged), message=opt.message, warnings=warns,
        evaluations=evaluations, wall_s=wall, evaluations_per_s=evaluations / seconds if seconds > 0 else 0.0,
        data=data, model=model, starts=opt.starts, protocol_sha256=sha, resolved_sha256=resolved_sha, raw=raw,
    )


def _params(given, kind, file, lines) -> list[FreeParam]:
    if given is None:
        return []
    if isinstance(given, dict):
        out = []
        for path, rng in given.items():
            line = lines.get(("fit", "params", path))
            if not isinstance(rng, (list, tuple)):
                raise ProtocolError("expected [LO, HI] or [LO, START, HI]", str(path), file, line)
            out.append(make_param(str(path), list(rng), kind, file, line))
        return out
    out = []
    for p in given:
        out.append(p if isinstance(p, FreeParam) else parse_param(str(p), kind))
    return out


# ---------------------------------------------------------------------------- outputs
def fitted_yaml(res: FitResult) -> str:
    """The protocol with the best values and the data rows as a zip sweep: ``plastic run`` on it
    gives, per condition, the mean dw_percent of predictions.csv's ``model`` column."""
    import yaml

    from ..protocol.schema import set_path, split_path

    data = copy.deepcopy(res.raw)
    for p in res.params:
        def fail(msg):  # pragma: no cover - validated by the fit
            raise ProtocolError(msg, p.path, res.file, None)

        set_path(data, split_path(p.path), float(res.x[p.path]), fail)
    data["name"] = f"{res.name}-fitted"
    if res.data.keys:
        sweep = {key: [float(row[a]) for row in res.data.x] for a, key in enumerate(res.data.keys)}
        sweep["mode"] = "zip"
        data["sweep"] = sweep
    head = [
        f"# {res.name} with the parameters fitted by plastic fit ({res.method}, seed {res.seed}) to",
        f"# {res.data.file} (sha256 {res.data.sha256[:16]}...): "
        + ", ".join(f"{p.path} = {res.x[p.path]:.6g} +- {res.se[p.path]:.3g}" for p in res.params),
        f"# chi2 {res.chi2:.6g} for {res.n_data} data, {len(res.params)} parameters; converged: {str(res.converged).lower()}.",
        "# The sweep holds the data rows: `plastic run` on this file reproduces predictions.csv (mean dw_percent per condition).",
    ]
    head += [f"# data: {c}" for c in res.data.comments if c]
    return "\n".join(head) + "\n" + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def predictions_csv(res: FitResult) -> str:
    from ..results.output import csv_field, fmt

    cols = list(res.data.keys) + ["dw_percent"] + (["sem"] if res.data.sem is not None else []) + ["label", "model", "residual"]
    lines = [",".join(csv_field(c) for c in cols)]
    for a in range(res.data.n):
        cells = [fmt(v) for v in res.data.x[a]] + [fmt(res.data.y[a])]
        if res.data.sem is not None:
            cells.append(fmt(res.data.sem[a]))
        label = res.data.labels[a]
        cells.append(csv_field(label) if label else "")
        cells += [fmt(res.model[a]), fmt(res.model[a] - res.data.y[a])]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def fit_json(res: FitResult) -> str:
    return json.dumps(res.as_dict(), indent=2) + "\n"


def timing_json(res: FitResult) -> str:
    return json.dumps({"wall_s": round(res.wall_s, 6), "evaluations": res.evaluations,
                       "evaluations_per_s": round(res.evaluations_per_s, 3),
                       "conditions_per_evaluation": res.data.n}, indent=2) + "\n"


def output_dir(res_or_name, out, several: bool) -> Path:
    """``outputs/<name>-fit`` or ``--out DIR`` (several protocols: ``DIR/<name>-fit``)."""
    name = res_or_name if isinstance(res_or_name, str) else res_or_name.name
    if out is None:
        return Path("outputs") / f"{name}-fit"
    return Path(out) / f"{name}-fit" if several else Path(out)


def protocol_name(path) -> str:
    """The name a fit of this protocol file gets (its ``name``, else the file name)."""
    return _load(path)[3]


def write_fit(res: FitResult, out: Path, force: bool = False, plot: bool = False) -> Path:
    """Write the fit's folder atomically; ``plot``: also ``plot.png`` (needs matplotlib)."""
    from ..results.folders import check_target, write_folder

    check_target(Path(out), force, res.file)
    writers = [
        ("fit.json", "w", lambda fh: fh.write(fit_json(res))),
        ("fitted.yaml", "w", lambda fh: fh.write(fitted_yaml(res))),
        ("predictions.csv", "w", lambda fh: fh.write(predictions_csv(res))),
        ("timing.json", "w", lambda fh: fh.write(timing_json(res))),
    ]
    if plot:
        png = plot_png(res)
        writers.append(("plot.png", "wb", lambda fh: fh.write(png)))
    path = write_folder(Path(out), writers, force, res.file)
    res.out = str(path)
    return path


def plot_png(res: FitResult) -> bytes:
    """Data with error bars and the fitted model, one panel; x: the first data column (groups
    by the others), else the row number."""
    import io

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ProtocolError("--plot needs matplotlib: pip install 'plastictool[plot]'", "--plot", res.file, None) from None
    matplotlib.rcParams["svg.hashsalt"] = "plastic"
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    d = res.data
    groups: dict = {}
    for a in range(d.n):
        key = tuple(d.x[a][1:]) if d.keys else ()
        groups.setdefault(key, []).append(a)
    for gi, (g, idx) in enumerate(sorted(groups.items())):
        xs = [d.x[a][0] if d.keys else a for a in idx]
        order = sorted(range(len(idx)), key=lambda t: xs[t])
        xs = [xs[t] for t in order]
        idx = [idx[t] for t in order]
        label = ", ".join(f"{k} = {v:g}" for k, v in zip(d.keys[1:], g)) or "data"
        ax.errorbar(xs, [d.y[a] for a in idx], yerr=[d.sem[a] for a in idx] if d.sem else None, fmt="o", capsize=3,
                    color=f"C{gi % 10}", label=f"data ({label})")
        ax.plot(xs, [res.model[a] for a in idx], "-", marker="x", color=f"C{gi % 10}", alpha=0.8, label=f"model ({label})")
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.set_xlabel(d.keys[0] if d.keys else "data row")
    ax.set_ylabel("dw_percent")
    ax.set_title(f"{res.name}: " + ", ".join(f"{p.path.split('.')[-1]} = {res.x[p.path]:.3g}" for p in res.params), fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
