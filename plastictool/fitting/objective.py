"""The model side of a fit: data rows become conditions, parameter vectors become mean
``dw_percent`` per condition, computed in-process (no files) by ``plastictool.simulation.engine``.

Each data row is validated once, as a protocol with that row's values set (exactly as a sweep
condition: its random numbers depend only on the seed and the row's values, so every evaluation
uses the same random numbers: common random numbers for stochastic rules). What does not
depend on the free parameters is prepared once per row and reused by every evaluation: the
validated protocol, and the spike trains (``engine.stimulus_events``) when no free parameter
lies outside ``rule``. A free rule parameter is set straight into the validated rule values
(its bounds were validated once, at LO and at HI); any other path re-validates that row's
protocol per evaluation. Recording is reduced to the weights' mean (nothing is written).

Evaluations run the (parameter vector, row) pairs of a batch in worker processes
(``jobs > 1``: a process pool whose workers keep their own prepared rows; ``scheduler``: a Dask
cluster) or in this process; the kernels compile once per process (Numba's cache).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time

from ..errors import PlasticError, ProtocolError
from ..protocol.schema import Protocol, set_path, split_path, validate
from ..protocol.yamlsrc import Source

FAILED = 1e6  # residual (in sem) of a condition whose simulation failed (NaN or infinite values)


@dataclasses.dataclass(frozen=True)
class Row:
    """One data row as a condition: its values (for the seed) and its validated protocol."""

    index: int
    values: tuple  # ((path, value), ...) as a sweep condition's
    protocol: Protocol


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything a worker needs to evaluate rows: picklable, no open resources."""

    rows: tuple[Row, ...]
    paths: tuple[str, ...]  # free parameters
    fast: tuple[str | None, ...]  # per parameter: the rule parameter's name, or None (re-validate)
    raw: dict  # the protocol data (no sweep, no fit): for re-validation
    lines: dict
    file: str
    name: str


def _lean(p: Protocol) -> Protocol:
    """The protocol recording nothing but the weight statistics (a fit reads only w)."""
    rec = dataclasses.replace(p.record, weights=(), state=(), spikes=False, stats=("mean",))
    return dataclasses.replace(p, record=rec)


def row_protocol(raw: dict, lines: dict, file: str, name: str, keys, xs, params=(), origin_note=""):
    """Validate the protocol with ``keys = xs`` and ``params`` ((path, value), ...) set."""
    data = copy.deepcopy(raw)
    origin = {}
    for key, value in list(zip(keys, xs)) + list(params):
        p = split_path(key)

        def fail(msg, key=key):
            raise ProtocolError(msg + origin_note, key, file, None)

        set_path(data, p, value, fail)
        origin[p] = (file, None, f" ({key} = {value!r}{origin_note})")
    return validate(Source(data, lines, file), origin, name)


def make_plan(raw: dict, lines: dict, file: str, name: str, data, params) -> Plan:
    """Validate every data row (with the free parameters at their starts) and both bounds of
    every free parameter; ProtocolError (exit 2) names the data file and row."""
    from .. import rules

    rows = []
    starts = [(q.path, q.start if q.start is not None else 0.5 * (q.lo + q.hi)) for q in params]
    for k, xs in enumerate(data.x):
        try:
            p = row_protocol(raw, lines, file, name, data.keys, xs, starts)
        except ProtocolError as exc:
            raise ProtocolError(f"data row {k + 1} ({', '.join(f'{a} = {b:g}' for a, b in zip(data.keys, xs))}): {exc.message}",
                                exc.field, data.file, None) from None
        vals = tuple((key, float(x)) for key, x in zip(data.keys, xs))
        rows.append(Row(k, vals, _lean(p)))
    kind = rows[0].protocol.rule.kind
    spec = rules.spec(kind)
    for q in params:
        for label, x in (("LO", q.lo), ("HI", q.hi)):
            others = [(a, b) for a, b in starts if a != q.path] + [(q.path, x)]
            try:
                row_protocol(raw, lines, file, name, data.keys, data.x[0], others)
            except ProtocolError as exc:
                raise ProtocolError(f"--param {q.path}: {label} = {x:g} is rejected: {exc.message}", q.path, "--param", None) from None
        p0 = rows[0].protocol
        got = _get(p0.resolved, q.path)
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            raise ProtocolError(f"--param {q.path}: not a number in the protocol (resolved value {got!r})", q.path, "--param", None)
    fast = []
    for q in params:
        parts = q.path.split(".")
        ok = len(parts) == 2 and parts[0] == "rule" and parts[1] in spec.param_names and spec.param(parts[1]).dim != "init"
        fast.append(parts[1] if ok else None)
    return Plan(tuple(rows), tuple(q.path for q in params), tuple(fast), raw, lines, file, name)


def _get(resolved: dict, path: str):
    from ..protocol.schema import lookup

    got = lookup(resolved, split_path(path))
    if got is None and path.startswith("stimulus."):
        got = lookup(resolved, ("phases", 0) + split_path(path)[1:])
    return got


# ---------------------------------------------------------------------------- evaluation
_EVENTS: dict = {}  # per process: (id of the plan's row, ...) -> spike events


def condition_protocol(plan: Plan, row: Row, x) -> Protocol:
    if all(f is not None for f in plan.fast):
        values = dict(row.protocol.rule.values)
        for name, v in zip(plan.fast, x):
            values[name] = float(v)
        return dataclasses.replace(row.protocol, rule=dataclasses.replace(row.protocol.rule, values=values))
    keys = [k for k, _ in row.values]
    xs = [v for _, v in row.values]
    return _lean(row_protocol(plan.raw, plan.lines, plan.file, plan.name, keys, xs, list(zip(plan.paths, map(float, x)))))


def mean_dw_percent(w_initial, w_final) -> float:
    import numpy as np

    wi = np.asarray(w_initial, dtype=float)
    wf = np.asarray(w_final, dtype=float)
    m = wi != 0.0
    if not m.any():
        raise PlasticError("every initial weight is 0: dw_percent is undefined")
    return float(np.mean(100.0 * (wf[m] - wi[m]) / wi[m]))


def evaluate_row(plan: Plan, k: int, x) -> float:
    """Mean dw_percent of data row ``k`` at parameters ``x`` (NaN where the simulation failed)."""
    from ..simulation.engine import simulate, stimulus_events
    from ..errors import SimulationError

    row = plan.rows[k]
    p = condition_protocol(plan, row, x)
    events = None
    if all(f is not None for f in plan.fast):  # the stimulus does not depend on the parameters
        key = (plan.file, k, row.values)
        events = _EVENTS.get(key)
        if events is None:
            events = _EVENTS[key] = stimulus_events(p, row.values)
    try:
        res = simulate(p, row.values, threads=1, events=events)
    except SimulationError:
        return math.nan
    return mean_dw_percent(res.w_initial, res.w_final)


_PLAN: Plan | None = None


def _init_worker(plan: Plan) -> None:
    import signal

    global _PLAN
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _PLAN = plan


def _worker_task(task):
    k, x = task
    return evaluate_row(_PLAN, k, x)


def _dask_task(plan, k, x):
    return evaluate_row(plan, k, x)


class Evaluator:
    """Evaluates batches of parameter vectors: ``model(X)`` -> one list of row values per vector.
    Counts evaluations (one vector over every row) and their time; ``progress(n)`` after each."""

    def __init__(self, plan: Plan, jobs: int = 1, scheduler=None, progress=None):
        self.plan = plan
        self.jobs = max(1, int(jobs or 1))
        self.scheduler = scheduler
        self.progress = progress
        self.evaluations = 0
        self.seconds = 0.0
        self.pool = None
        self.client = None
        self.session = None
        self.cache: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
        if self.session is not None:
            self.session.close()
            self.session = None

    def _map(self, tasks: list) -> list:
        if self.scheduler is not None:
            if self.client is None:
                from ..simulation.distributed import Session

                self.session = Session(self.scheduler, self.jobs, None)
                self.client = self.session.client
                self.plan_future = self.client.scatter(self.plan, broadcast=True)
            futures = [self.client.submit(_dask_task, self.plan_future, k, x, pure=False) for k, x in tasks]
            return self.client.gather(futures)
        if self.jobs > 1 and len(tasks) > 1:
            if self.pool is None:
                from concurrent.futures import ProcessPoolExecutor

                from ..simulation.parallel import _context

                self.pool = ProcessPoolExecutor(self.jobs, mp_context=_context(), initializer=_init_worker, initargs=(self.plan,))
            return list(self.pool.map(_worker_task, tasks, chunksize=max(1, len(tasks) // (4 * self.jobs))))
        return [evaluate_row(self.plan, k, x) for k, x in tasks]

    def model(self, X) -> list[list[float]]:
        """Row values for each parameter vector of ``X`` (repeated vectors are computed once)."""
        t0 = time.perf_counter()
        n = len(self.plan.rows)
        keys = [tuple(float(v) for v in x) for x in X]
        todo = [key for key in dict.fromkeys(keys) if key not in self.cache]
        if todo:
            values = self._map([(k, key) for key in todo for k in range(n)])
            if len(self.cache) > 4096:
                self.cache = {key: self.cache[key] for key in keys if key in self.cache}
            for a, key in enumerate(todo):
                self.cache[key] = values[a * n:(a + 1) * n]
            self.evaluations += len(todo)
        self.seconds += time.perf_counter() - t0
        if self.progress is not None and todo:
            self.progress(self.evaluations)
        return [self.cache[key] for key in keys]
