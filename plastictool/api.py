"""Plain functions behind the commands, and the public Python API (:func:`load`, :func:`run`).

``plastic run`` is :func:`run_file`: validate (:func:`validate_file`), run in memory
(:func:`run_validated`, which :func:`run` uses too) into a :class:`~plastictool.results.result.Result`,
then ``Result._write``: one code path for the command line and for Python.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EXIT_DIFFERENT, EXIT_OK, PlasticError, ProtocolError
from .protocol.schema import Experiment, load_experiment

if TYPE_CHECKING:
    from .results.result import Result

DEFAULT_OUT = Path("outputs")


@dataclass
class RunReport:
    file: str
    name: str = ""
    out: str | None = None
    status: int = EXIT_OK
    message: str = ""
    conditions: int = 0
    counts: dict = field(default_factory=dict)
    wall_s: float = 0.0
    profile: dict = field(default_factory=dict)
    workers: int = 0  # worker processes used (0: in-process); Dask worker threads with a scheduler
    check: object = None  # compare.Comparison with the baseline (run --check)
    shard: str | None = None  # "K/N" for run --shard (conditions: this shard's count)
    total_conditions: int = 0  # conditions of the whole protocol (all shards)

    def as_dict(self) -> dict:
        return {
            "file": self.file,
            "name": self.name,
            "out": self.out,
            "status": self.status,
            "message": self.message,
            "conditions": self.conditions,
            "counts": self.counts,
            "wall_s": round(self.wall_s, 6),
            "profile": {k: round(v, 6) for k, v in self.profile.items()},
            "workers": self.workers,
            "check": self.check.as_dict() if self.check is not None else None,
            "shard": self.shard,
            "total_conditions": self.total_conditions,
        }


def output_dir(exp: Experiment, out: str | Path | None, several: bool) -> Path:
    """Spec section 9: one protocol -> --out DIR is its folder; several -> DIR/<name>/."""
    if out is None:
        return DEFAULT_OUT / exp.name
    return Path(out) / exp.name if several else Path(out)


def validate_file(path, overrides=(), seed=None) -> Experiment:
    from .simulation.memory import check_memory

    exp = load_experiment(path, overrides, seed)
    for cond in exp.conditions:
        check_memory(cond.protocol)
    return exp


def load(source, set: dict | None = None, seed: int | None = None) -> Experiment:
    """A protocol, validated: ``source`` is a file path, a YAML string or a dict.

    ``set``: ``{dotted path: value}``, applied in order, as ``plastic run --set PATH=VALUE``
    (``set={"rule.a_plus": 0.02, "stimulus.pairing.delta_t": "10 ms"}``); ``seed`` replaces the
    protocol's seed (``--seed``). The validation is the command line's, including the memory
    estimate; errors raise :class:`~plastictool.errors.ProtocolError` with ``.file`` (the path,
    ``"<string>"`` or ``"<dict>"``), ``.line`` (None for a dict or an override), ``.field`` and
    the command line's message as ``str()``. Nothing is written and Numba is not loaded.
    Returns an :class:`~plastictool.protocol.schema.Experiment` (``.conditions``, ``.base.resolved``)."""
    from .simulation.memory import check_memory

    overrides = _overrides(set)
    exp = load_experiment(_source(source), overrides, seed)
    for cond in exp.conditions:
        check_memory(cond.protocol)
    return exp


def _overrides(set_: dict | None) -> tuple:
    if set_ is None:
        return ()
    if not isinstance(set_, dict):
        raise ProtocolError(f"set= expects a dict of dotted paths to values, got {type(set_).__name__}", "", "set=", None)
    for key in set_:
        if not isinstance(key, str) or not key.strip() or any(not part for part in key.split(".")):
            raise ProtocolError(f"set= keys are dotted paths such as 'rule.a_plus', got {key!r}", "", "set=", None)
    return tuple((key.strip(), value) for key, value in set_.items())


def _source(source):
    """A path, a YAML string or a dict -> a :class:`~plastictool.protocol.yamlsrc.Source`.

    A ``str`` is YAML text when it holds a line break, or when no such file exists and it reads
    as a YAML mapping (``"{rule: {kind: stdp}}"``); otherwise it is a path."""
    import os

    from .protocol.yamlsrc import load_data, load_file, load_text

    if isinstance(source, dict):
        return load_data(source)
    if isinstance(source, os.PathLike):
        return load_file(source)
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    if not isinstance(source, str):
        raise ProtocolError(f"expected a file path, a YAML string or a dict, got {type(source).__name__}", "", "<protocol>", None)
    if "\n" in source:
        return load_text(source, "<string>")
    if not Path(source).exists():
        import yaml

        try:
            looks = isinstance(yaml.safe_load(source), dict)
        except yaml.YAMLError:
            looks = False
        if looks:
            return load_text(source, "<string>")
    return load_file(source)


def run(
    source,
    set: dict | None = None,
    seed: int | None = None,
    jobs: int | None = 1,
    threads: int | None = None,
    progress: bool = False,
) -> Result:
    """Run a protocol in memory and return its :class:`~plastictool.results.result.Result`; nothing is
    written (``result.write(folder)`` writes the files of ``plastic run --out folder``).

    ``source``: an :class:`~plastictool.protocol.schema.Experiment` from :func:`load`, or what
    :func:`load` takes (a path, a YAML string, a dict; with ``set`` and ``seed``). The same
    kernels, seeds and numbers as ``plastic run``. ``jobs``: worker processes for the
    conditions of a sweep (1, the default: in this process; None: all cores; a script that
    passes ``jobs > 1`` needs the ``if __name__ == "__main__":`` guard); ``threads``: threads
    per run (``plastic run --threads``). ``progress=True`` prints the progress on stderr;
    otherwise nothing is printed. Raises :class:`~plastictool.errors.ProtocolError` (bad
    input) or :class:`~plastictool.errors.SimulationError` (a value became NaN or infinite)."""
    t0 = time.perf_counter()
    if isinstance(source, Experiment):
        if set or seed is not None:
            raise ProtocolError("set= and seed= apply when a protocol is loaded: pass them to load(), or give run() the file, string or dict", "", "<protocol>", None)
        exp = source
    else:
        exp = load(source, set, seed)
    load_s = time.perf_counter() - t0
    with _TextProgress(exp, progress) as cb:
        return run_validated(exp, t0, load_s, cb, jobs, threads)


def run_validated(exp: Experiment, t0: float, load_s: float, progress=None, jobs: int | None = 1, threads: int | None = None, *, shard=None, scheduler=None, notify=None, whole: Experiment | None = None, info: dict | None = None) -> Result:
    """Run the conditions of a validated ``exp`` into a Result (nothing written), with the
    profile ``plastic run`` records. ``t0``: when the run began (``time.perf_counter()``; the
    wall time runs from it); ``load_s``: the seconds loading took. ``shard``/``whole``: ``exp``
    holds shard ``(K, N)`` of the experiment ``whole`` (``run.json`` records it); ``info``
    receives ``workers`` (see :func:`run_experiment`)."""
    from .results.result import Result

    info = {} if info is None else info
    results = run_experiment(exp, progress, jobs, info, scheduler, notify, threads)
    workers = info.get("workers", 0)
    profile = {
        "load_s": load_s,
        "build_s": sum(r.timings["build_s"] for r in results),
        "compile_or_load_kernels_s": max((r.timings["first_call_s"] for r in results), default=0.0),
        "simulate_s": sum(r.timings["simulate_s"] for r in results),
        "workers": workers,
        "threads": max((r.timings.get("threads", 1) for r in results), default=1),
    }
    wall = time.perf_counter() - t0
    return Result(experiment=whole if whole is not None else exp, results=results, wall_s=wall, profile=profile, shard=shard)


class _TextProgress:
    """``progress=True`` of :func:`run`: one line on stderr, rewritten at most 5 times a second."""

    def __init__(self, exp: Experiment, on: bool):
        self.on = on
        self.exp = exp
        self.last = 0.0
        self.shown = False

    def __enter__(self):
        return self if self.on else None

    def __call__(self, condition, step, total):
        import sys

        now = time.perf_counter()
        if now - self.last < 0.2 and step < total:
            return
        self.last = now
        n = len(self.exp.conditions)
        if isinstance(condition, str):  # worker processes report "done/total" conditions
            where = f"conditions {condition}, "
        else:
            where = f"condition {condition + 1}/{n}, " if n > 1 else ""
        sys.stderr.write(f"\r{self.exp.name}: {where}{100.0 * step / max(1, total):5.1f} %")
        sys.stderr.flush()
        self.shown = True

    def __exit__(self, *exc):
        if self.shown:
            import sys

            sys.stderr.write("\n")
            sys.stderr.flush()
        return False


def baseline_dir(exp: Experiment, check: str | Path, several: bool) -> Path:
    """``--check DIR`` follows the ``--out`` rule: one protocol -> DIR; several -> DIR/<name>/."""
    return Path(check) / exp.name if several else Path(check)


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` (1 <= K <= N) -> ``(K, N)``; bad input (exit 2) otherwise."""
    k, sep, n = str(text).strip().partition("/")
    try:
        kk, nn = int(k), int(n)
    except ValueError:
        kk = nn = 0
    if not sep or nn < 1 or not 1 <= kk <= nn:
        raise PlasticError(f"--shard: expected K/N with 1 <= K <= N (shard K of N), got {text!r}")
    return kk, nn


def shard_conditions(conditions, shard: tuple[int, int] | None) -> list:
    """The conditions of shard ``(K, N)``: those with index i where ``i % N == K - 1``
    (round robin, so neighbouring sweep values, often of similar cost, spread over the shards).
    ``None``: all of them."""
    if shard is None:
        return list(conditions)
    k, n = shard
    return [c for c in conditions if c.index % n == k - 1]


def run_experiment(exp: Experiment, progress=None, jobs: int | None = 1, info: dict | None = None, scheduler=None, notify=None, threads: int | None = None):
    """Run every condition of an experiment; returns the list of RunResult, in condition order.

    ``scheduler``: run the conditions on a Dask cluster instead (:mod:`plastictool.simulation.distributed`):
    ``"local"``, a scheduler address ``"tcp://HOST:PORT"``, a ``distributed.Session`` or a
    ``distributed.Client``; ``jobs`` is then the number of workers of a ``"local"`` cluster, and
    ``notify(message)`` receives the dashboard's address.

    ``jobs``: at most this many worker processes (``None``: all cores; 1: in-process). Workers
    are used only when there are several conditions and they pay off (see
    :mod:`plastictool.simulation.parallel`); the results are the same either way. ``info["workers"]`` is
    set to the number of workers used (0 = in-process). Workers start with ``forkserver`` or
    ``spawn``: a script that passes ``jobs > 1`` needs the ``if __name__ == "__main__":`` guard.

    ``threads``: threads per in-process run, over blocks of post neurons (``simulation.threads.plan_blocks``;
    None: ``$PLASTIC_THREADS`` or automatic; worker processes run one thread each unless
    ``$PLASTIC_THREADS`` says otherwise); the results are identical whatever it is."""
    from .simulation.batches import run_conditions
    from .simulation.parallel import plan_workers
    from .simulation.parallel import run_conditions as run_in_workers

    if scheduler is not None:
        if not exp.conditions:
            return []
        from .simulation import distributed

        client, own = distributed.client_of(scheduler, jobs, notify)
        try:
            return distributed.run_conditions(exp.conditions, client, progress, info=info)
        finally:
            if own is not None:
                own.close()
    workers = plan_workers(exp.conditions, jobs)
    if info is not None:
        info["workers"] = workers
    if workers:
        return run_in_workers(exp.conditions, workers, progress)
    # small conditions of equal kernel types run in batches, one kernel call each (core.batch)
    results, error = run_conditions(exp.conditions, progress, threads)
    if error is not None:
        raise error
    return results


def run_file(
    path,
    out=None,
    overrides=(),
    seed=None,
    force=False,
    several=False,
    progress=None,
    argv=(),
    *,
    jobs: int | None = 1,
    check: str | Path | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    shard: tuple[int, int] | None = None,
    scheduler=None,
    notify=None,
    threads: int | None = None,
) -> RunReport:
    """Validate, run and write one protocol file. Errors are reported in the RunReport.

    ``shard=(K, N)`` runs only shard K of N (:func:`shard_conditions`) and records it in
    ``run.json`` (``plastic merge`` joins the shards' folders). ``scheduler`` and ``notify``: see
    :func:`run_experiment`, as ``threads``.

    With ``check`` (a baseline folder, see :func:`baseline_dir`) the written folder is compared
    with it (:func:`plastictool.results.compare.compare_dirs`): ``report.check`` holds the comparison and
    the status is 1 when they differ."""
    import numpy as np

    with np.errstate(all="ignore"):  # overflows end as inf/nan, which the run reports (exit 3)
        return _run_file(path, out, overrides, seed, force, several, progress, argv, jobs, check, rtol, atol, shard, scheduler, notify, threads)


def _run_file(path, out, overrides, seed, force, several, progress, argv, jobs, check, rtol, atol, shard, scheduler, notify, threads) -> RunReport:
    from .results.folders import check_target

    t0 = time.perf_counter()
    report = RunReport(file=str(path))
    info: dict = {}
    try:
        t_load = time.perf_counter()
        exp = validate_file(path, overrides, seed)
        report.name = exp.name
        target = output_dir(exp, out, several)
        report.out = str(target)
        check_target(target, force, str(path))
        baseline = None
        if check is not None:
            from .results.compare import check_folder

            baseline = check_folder(baseline_dir(exp, check, several), "baseline")  # before the run
            if baseline.resolve() == target.resolve():
                raise PlasticError(f"{str(baseline)!r}: the baseline is the output folder; write the run elsewhere with --out")
        load_s = time.perf_counter() - t_load
        report.total_conditions = len(exp.conditions)
        run_exp = exp
        if shard is not None:
            report.shard = f"{shard[0]}/{shard[1]}"
            run_exp = dataclasses.replace(exp, conditions=tuple(shard_conditions(exp.conditions, shard)))
        result = run_validated(run_exp, t0, load_s, progress, jobs, threads, shard=shard, scheduler=scheduler, notify=notify, whole=exp, info=info)
        results = result._results
        report.workers = result._profile["workers"]
        profile = result._profile
        result._write(target, force, argv)
        report.conditions = len(results)
        for r in results:
            for k, v in r.counts.items():
                report.counts[k] = report.counts.get(k, 0) + v
        report.profile = profile
        if baseline is not None:
            from .results.compare import DEFAULT_ATOL, DEFAULT_RTOL, compare_dirs

            rtol = DEFAULT_RTOL if rtol is None else rtol
            atol = DEFAULT_ATOL if atol is None else atol
            report.check = compare_dirs(target, baseline, rtol, atol)
            if not report.check.ok:
                n = report.check.count
                report.status = EXIT_DIFFERENT
                report.message = f"{target} differs from the baseline {baseline}: {n} difference{'s' if n != 1 else ''}"
    except PlasticError as exc:
        report.status = exc.exit_code
        report.message = str(exc)
        report.workers = info.get("workers", 0)
    except OSError as exc:  # an environment failure outside the writing (which maps its own)
        from .results.folders import environment_error

        err = environment_error(exc, exc.filename or report.out or path, "use")
        report.status = err.exit_code
        report.message = str(err)
        report.workers = info.get("workers", 0)
    report.wall_s = time.perf_counter() - t0
    return report


def warmup_protocols() -> list[dict]:
    """One tiny protocol per rule and neuron model (and with transmitter release for the rules
    that have it, and with ``synapses.structure``: the kernels' ``present`` argument as a
    matrix; and a sweep of two conditions for the rules whose conditions run in batches,
    ``core.batch``): running them compiles every kernel."""
    import json

    from . import rules as registry
    from .core.release import RULES as RELEASE_RULES

    out = []
    for kind in registry.kinds():
        spec = registry.spec(kind)
        for model in spec.neurons:
            p = {"name": f"warmup-{kind}-{model}", "synapses": {"n_pre": 2, "n_post": 2}, "neuron": {"model": model}, "rule": {"kind": kind}}
            if model == "rate":
                p["stimulus"] = {"duration": 5.0, "pre": {"patterns": {"vectors": [[1, 0], [0, 1]], "presentation": 1.0}}}
                p["rule"]["eta"] = 1.0
            elif model == "clamped":
                p["stimulus"] = {"pairing": {"pairs": 2, "frequency": 50.0, "delta_t": 5.0}}
            else:  # strong enough for the LIF neurons to fire
                p["stimulus"] = {"duration": 50.0, "pre": {"poisson": {"rate": 100.0}}}
                p["synapses"]["w_init"] = 1.0
            out.append(p)
            if spec.post_blocks and model != "rate":  # a sweep of small conditions: core.batch's driver
                q = json.loads(json.dumps(p))
                q["name"] += "-sweep"
                w = q["synapses"].get("w_init", 0.5)
                q["sweep"] = {"synapses.w_init": [w, 0.9 * w]}
                out.append(q)
            if kind in RELEASE_RULES:  # the same with transmitter release (the kernels' rel argument)
                q = json.loads(json.dumps(p))
                q["name"] += "-release"
                q["synapses"]["release"] = {"U": 0.5, "tau_rec": 100.0, "tau_fac": 50.0}
                out.append(q)
            q = json.loads(json.dumps(p))
            q["name"] += "-structure"
            q["synapses"]["structure"] = {"present": [[1, 0], [1, 1]], "formation_rate": 100.0, "elimination_rate": 50.0}
            out.append(q)
    return out


WARMUP_DTYPES = ("float64", "float32")


def warmup_runs(folder: Path) -> dict[str, str]:
    """Run every warmup protocol with float64 and float32 weights (and, for rules that split
    post neurons over threads, with two threads too), writing its result folder under
    ``folder``; returns ``{run name: sha256 of its CSV files}``. Every table goes through the
    formatting kernels, as a big run's do (small tables are otherwise written by Python)."""
    from .results import output
    from . import rules as registry

    runs = []
    for p in warmup_protocols():
        for dtype in WARMUP_DTYPES:
            runs.append((p, dtype, None))
            if registry.spec(p["rule"]["kind"]).post_blocks and "structure" not in p["synapses"] and "sweep" not in p:  # the kernels of threaded runs too
                runs.append((p, dtype, 2))
    runs += [(warmup_protocols()[0], dtype, "npy") for dtype in WARMUP_DTYPES]  # record.format npy: core.columns
    cells, npy_rows = output.PYTHON_CELLS, output.NPY_KERNEL_ROWS
    output.PYTHON_CELLS = output.NPY_KERNEL_ROWS = 0
    try:
        return dict(_warmup_run(folder, p, dtype, threads) for p, dtype, threads in runs)
    finally:
        output.PYTHON_CELLS, output.NPY_KERNEL_ROWS = cells, npy_rows


def _warmup_run(folder: Path, p: dict, dtype: str, threads) -> tuple[str, str]:
    """Run one warmup protocol; (its name, sha256 of its CSV files). ``threads="npy"``: one
    thread, the tables written with ``record.format: npy``."""
    import copy
    import hashlib
    import json

    q = copy.deepcopy(p)
    q["name"] = f"{q['name']}-{dtype}" + (f"-threads{threads}" if isinstance(threads, int) else f"-{threads}" if threads else "")
    q["synapses"]["dtype"] = dtype
    q["record"] = {"weights": "all", "spikes": True, **({"format": "npy"} if threads == "npy" else {})}
    threads = threads if isinstance(threads, int) else None
    if threads:
        q["synapses"]["n_post"] = 16  # two blocks of 8
    src = folder / f"{q['name']}.yaml"
    src.write_text(json.dumps(q))  # JSON is YAML
    report = run_file(src, folder / q["name"], force=True, threads=threads)
    if report.status:
        err = PlasticError(f"warmup protocol {q['name']}: {report.message}")
        err.exit_code = report.status  # exit 4 when the disk is full, 3 for a failed run
        raise err
    h = hashlib.sha256()
    for name in ("summary.csv", "traces.csv", "spikes.csv", "structure.csv"):
        if (folder / q["name"] / name).is_file():
            h.update((folder / q["name"] / name).read_bytes())
    for f in sorted((folder / q["name"]).glob("*/*")):  # record.format npy
        h.update(f.read_bytes())
    return q["name"], h.hexdigest()


@dataclass
class WarmupReport:
    runs: int = 0  # warmup runs (of the check, or of the JIT pass)
    jit_s: float = 0.0  # the JIT pass, which fills Numba's cache (0.0: none)
    native: str | None = None  # the folder of warmup's ahead-of-time kernels (None: none needed)
    native_s: float = 0.0  # compiling them
    native_error: str = ""  # why there are no ahead-of-time kernels (then the JIT pass ran)
    signatures: int = 0  # the committed kernel signatures (plastictool/core/signatures.json)
    package: int = 0  # ... that the installed kernels (pip install) serve
    cached: int = 0  # ... that an earlier warmup compiled
    compiled: int = 0  # ... compiled now
    check_s: float = 0.0  # the check: the warmup runs on the ahead-of-time kernels alone


def warmup(native: bool = True) -> WarmupReport:
    """Make later runs start at once. With ``native``: compile ahead of time
    (:func:`plastictool.core.native.warmup_build`) the committed kernel signatures of every
    weight dtype that the installed kernels lack, into the cache folder, and check, in a new
    process, that the warmup protocols of every rule, neuron model and weight dtype then run on
    ahead-of-time kernels alone, without importing Numba. Numba's cache serves only runs that
    no module serves: it is filled (the warmup protocols through the JIT) with ``native=False``
    or when no module can be built (no C compiler, a Numba without ``numba.pycc``)."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    report = WarmupReport()
    if native:
        from .core import native as aot

        t1 = time.perf_counter()
        try:
            got = aot.warmup_build()
        except Exception as exc:  # no C compiler, no setuptools, a Numba without pycc, ...
            report.native_error = f"{type(exc).__name__}: {exc}".strip()
        else:
            report.native, report.signatures, report.package = got["folder"], got["signatures"], got["package"]
            report.cached, report.compiled, report.native_s = got["cached"], got["compiled"], time.perf_counter() - t1
            t2 = time.perf_counter()
            env = {**os.environ, "PLASTIC_NATIVE": "require"}
            proc = subprocess.run([sys.executable, "-c", "import plastictool.api as a; a._warmup_check()"], env=env, capture_output=True, text=True)
            report.check_s = time.perf_counter() - t2
            try:
                doc = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
            except (ValueError, IndexError):
                doc = None
            why = ""
            if doc is None:
                why = (proc.stderr.strip().splitlines() or ["no result"])[-1]
            elif doc.get("numba_imported"):
                why = "Numba was imported"
            elif doc.get("folder") != str(aot.cache_root() / "native" / aot.fingerprint()):
                why = "the kernel sources changed during the warmup"
            if why:
                if report.compiled and report.native:
                    shutil.rmtree(report.native, ignore_errors=True)
                report.native = None
                report.native_error = f"the ahead-of-time kernels failed their check{' and were removed' if report.compiled else ''}: {why}"
            else:
                report.runs = len(doc["digests"])
    if not native or report.native_error:  # Numba's cache: what runs use without modules
        from .core import jit

        t0 = time.perf_counter()
        jit.use_native(False)
        try:
            with tempfile.TemporaryDirectory(prefix="plastic-warmup-") as tmp:
                report.runs = len(warmup_runs(Path(tmp)))
        finally:
            jit.use_native(True)
        report.jit_s = time.perf_counter() - t0
    return report


def _warmup_check() -> None:
    """Run the warmup protocols in this (new) process; print their digests as JSON."""
    import json
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="plastic-check-") as tmp:
        digests = warmup_runs(Path(tmp))
    from .core.native import folder

    print(json.dumps({"digests": digests, "numba_imported": "numba" in sys.modules, "folder": str(folder())}))
