"""``plastic``: thin Typer commands over :mod:`plastictool.api`.

Only Typer is imported at start-up; NumPy, Numba and the engine load inside the commands
that need them, so ``plastic --help`` stays instant.
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .errors import EXIT_BAD_INPUT, EXIT_DIFFERENT, EXIT_ENVIRONMENT, EXIT_INTERRUPTED, EXIT_OK, PlasticError

# the defaults of plastictool.results.compare (repeated here so that start-up imports nothing more;
# tests/test_compare.py checks that they agree)
DEFAULT_RTOL, DEFAULT_ATOL = 1e-9, 1e-12

app = typer.Typer(
    name="plastic",
    help="A command-line laboratory for synaptic plasticity: YAML protocols in, CSV traces and summary tables out.",
    add_completion=False,
    no_args_is_help=True,
    # rich help on a terminal; plain click help when piped (keeps `plastic --help` ~0.1 s)
    rich_markup_mode="rich" if sys.stdout.isatty() else None,
    pretty_exceptions_enable=False,
)


def _err(message: str) -> None:
    typer.echo(f"error: {message}", err=True)


def _fail(exc: PlasticError) -> None:
    _err(str(exc))
    raise typer.Exit(exc.exit_code)


@app.command()
def run(
    protocols: List[str] = typer.Argument(..., help="protocol files (YAML); shell globs welcome", metavar="PROTOCOL..."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="output folder (several protocols: DIR/<name>/)"),
    set_: List[str] = typer.Option([], "--set", help="override a dotted path, e.g. --set rule.a_plus=0.02", metavar="PATH=VALUE"),
    seed: Optional[int] = typer.Option(None, "--seed", help="override the protocol's seed", min=0),
    force: bool = typer.Option(False, "--force", help="replace existing output folders"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress and no summary"),
    json_: bool = typer.Option(False, "--json", help="print a machine-readable report on stdout"),
    jobs: Optional[int] = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        help="at most N worker processes for sweep conditions (default: all cores; 1: in-process). "
        "Workers are used only for several conditions with enough work to pay for their start-up "
        "(about 2 s of estimated simulation each); the files are identical whatever N",
    ),
    threads: Optional[int] = typer.Option(
        None,
        "--threads",
        min=0,
        help="threads per run: the post neurons of a big feed-forward network (pair or triplet STDP, clamped or LIF neurons) are "
        "split into blocks simulated in parallel. Default ($PLASTIC_THREADS, else 0 = automatic): all cores for runs of "
        "at least 1e5 synapses that run in-process, one thread in --jobs worker processes; 1: one thread. The files are "
        "identical whatever N",
    ),
    check: Optional[str] = typer.Option(
        None, "--check", help="compare the results with this baseline folder (several protocols: DIR/<name>/); exit 1 when they differ", metavar="BASELINE_DIR"
    ),
    rtol: float = typer.Option(DEFAULT_RTOL, "--rtol", min=0.0, help="relative tolerance for --check"),
    atol: float = typer.Option(DEFAULT_ATOL, "--atol", min=0.0, help="absolute tolerance for --check"),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="stop after the first protocol that fails (or differs from its baseline)"),
    plot_: bool = typer.Option(
        False, "--plot", help="also draw each written output folder into RUN_DIR/plot.png (as `plastic plot RUN_DIR`; needs matplotlib: pip install '.[plot]' in the clone)"
    ),
    scheduler: Optional[str] = typer.Option(
        None,
        "--scheduler",
        help="run the conditions as tasks on a Dask cluster: tcp://HOST:PORT of a running scheduler, or `local` for a "
        "LocalCluster of --jobs worker processes on 127.0.0.1; the files are identical to --jobs 1. "
        "Needs pip install '.[dask]' in the clone",
        metavar="tcp://HOST:PORT|local",
    ),
    shard: Optional[str] = typer.Option(
        None,
        "--shard",
        help="run only shard K of N (1 <= K <= N): the conditions i with i % N == K-1; run.json records it and "
        "`plastic merge` joins the N folders into the files of a single run (SLURM arrays, shell loops)",
        metavar="K/N",
    ),
) -> None:
    """Run protocols and write summary.csv, traces.csv, spikes.csv and run.json.

    The exit status is the worst of the runs: 0 ok, 1 differs from the --check baseline,
    2 bad input, 3 simulation failed, 4 the environment failed (disk full, read-only or
    unwritable folder), 130 interrupted.
    """
    import json

    from . import api

    several = len(protocols) > 1
    reports = []
    worst = EXIT_OK
    argv = ["plastic"] + sys.argv[1:]
    skipped: list = []
    if jobs is None:
        from .simulation.parallel import default_jobs

        jobs = default_jobs()
    if plot_:
        _require_plotting()  # before any run: no long run that then cannot be drawn
    session = None
    try:
        shard_kn = api.parse_shard(shard) if shard is not None else None
        if scheduler is not None:
            from .simulation.distributed import Session

            session = Session(scheduler, jobs, None if quiet else (lambda m: typer.echo(m, err=True)))
    except PlasticError as exc:
        _fail(exc)
    try:
        for k, path in enumerate(protocols):
            try:
                with _progress(quiet or json_) as progress:
                    report = api.run_file(
                        path, out, set_, seed, force, several, progress, argv, jobs=jobs, check=check, rtol=rtol, atol=atol, shard=shard_kn, scheduler=session,
                        threads=threads,
                    )
            except (Exception, RecursionError, MemoryError) as exc:  # the net, per protocol: --json still reports
                if _debug():
                    raise
                report = api.RunReport(file=str(path), status=EXIT_ENVIRONMENT, message=internal_error_message(exc))
            reports.append(report)
            worst = max(worst, report.status)
            if report.check is not None:
                _print_warnings(report.check)
                if not report.check.ok and not quiet and not json_:
                    _print_comparison(report.check)
            if report.status:
                _err(report.message)
            elif not quiet and not json_:
                _print_done(report)
            if plot_ and report.out and report.status in (EXIT_OK, EXIT_DIFFERENT):
                worst = max(worst, _plot_folder(report.out, None, quiet or json_))
            if report.status and fail_fast and k + 1 < len(protocols):
                skipped = list(protocols[k + 1 :])
                _err(f"--fail-fast: stopped after {path}; not run: {', '.join(skipped)}")
                break
    except KeyboardInterrupt:
        _err("interrupted; no result folder was written for the unfinished run")
        raise typer.Exit(EXIT_INTERRUPTED)
    finally:
        if session is not None:
            session.close()  # a local cluster is shut down
    if json_:
        typer.echo(json.dumps({"status": worst, "runs": [r.as_dict() for r in reports], "skipped": skipped}, indent=2))
    raise typer.Exit(worst)


def _print_done(report) -> None:
    c = report.counts
    checked = f"; matches {report.check.baseline_dir}" if report.check is not None and report.check.ok else ""
    typer.echo(
        f"{report.name}: {report.conditions} condition{'s' if report.conditions != 1 else ''}"
        f"{f' (shard {report.shard} of {report.total_conditions})' if report.shard else ''}, "
        f"{c.get('steps', 0)} steps, {c.get('pre_spikes', 0) + c.get('post_spikes', 0)} spikes, "
        f"{report.wall_s:.2f} s -> {report.out}{checked}"
    )


def _print_warnings(result) -> None:
    for w in result.warnings:
        typer.echo(f"warning: {w}", err=True)


def _print_comparison(result) -> None:
    """The deviations per file and column (count, max absolute and relative deviation, the
    worst row), then the largest single deviations, as rich tables, then the count (stdout).
    The per-column table comes first because the largest deviations rank cells across columns
    of different scale (a drifted w_final could hide behind spike times)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    if result.ok:
        console.print(
            f"{result.run_dir} matches {result.baseline_dir}: {result.cells} values in "
            f"{', '.join(result.files) or 'no tables'} within rtol={result.rtol:g}, atol={result.atol:g}",
            markup=False,
        )
        return
    per_column = Table(title="deviations per file and column", title_justify="left")
    for name, justify in (
        ("file", "left"), ("column", "left"), ("differences", "right"), ("max |got - expected|", "right"), ("max relative", "right"),
        ("worst row", "right"), ("got", "right"), ("expected", "right"),
    ):
        per_column.add_column(name, justify=justify, overflow="fold")
    for c in result.columns:
        structural = "; ".join(k for k in c.kinds if k not in ("value", "text"))
        per_column.add_row(
            c.file, c.column, str(c.count), "" if c.max_abs is None else f"{c.max_abs:.3g}",
            "" if c.max_rel is None else f"{c.max_rel:.3g}", structural or ("" if c.worst_row is None else str(c.worst_row)),
            c.worst_got, c.worst_expected,
        )
    console.print(per_column)
    table = Table(title=f"largest deviations (rtol={result.rtol:g}, atol={result.atol:g})", title_justify="left")
    for name, justify in (("file", "left"), ("column", "left"), ("row", "right"), ("got", "right"), ("expected", "right"), ("|got - expected|", "right")):
        table.add_column(name, justify=justify, overflow="fold")
    for d in result.largest:
        diff = f"{d.abs_diff:.3g}" if d.abs_diff is not None else d.kind
        table.add_row(d.file, d.column, "" if d.row is None else str(d.row), d.got, d.expected, diff)
    console.print(table)
    per_file = ", ".join(f"{f}: {n}" for f, n in result.by_file().items())
    shown = f"; the {len(result.largest)} largest shown" if len(result.largest) < result.count else ""
    console.print(
        f"{result.count} difference{'s' if result.count != 1 else ''} ({per_file}) between {result.run_dir} "
        f"and the baseline {result.baseline_dir}{shown}",
        markup=False,
    )


class _progress:
    """A rich progress bar on a terminal for runs longer than a second; nothing otherwise."""

    def __init__(self, off: bool):
        self.off = off or not sys.stderr.isatty()
        self.bar = None
        self.task = None
        self.t0 = None

    def __enter__(self):
        if self.off:
            return None
        import time

        self.t0 = time.perf_counter()
        return self

    def __call__(self, condition, step, total):
        import time

        if self.bar is None:
            if time.perf_counter() - self.t0 < 1.0:
                return
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("condition {task.fields[cond]}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeRemainingColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("run", total=total, cond=condition)
        self.bar.update(self.task, completed=step, total=total, cond=condition)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False


@app.command()
def validate(
    protocols: List[str] = typer.Argument(..., help="protocol files", metavar="PROTOCOL..."),
    set_: List[str] = typer.Option([], "--set", help="override a dotted path", metavar="PATH=VALUE"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only the exit code and errors"),
) -> None:
    """Check protocols and print each resolved protocol (defaults filled, units canonical)."""
    import yaml

    from . import api

    worst = EXIT_OK
    for path in protocols:
        try:
            exp = api.validate_file(path, set_)
        except PlasticError as exc:
            _err(str(exc))
            worst = max(worst, exc.exit_code)
            continue
        if not quiet:
            doc = dict(exp.base.resolved)
            if exp.sweep_keys:
                doc["sweep"] = {"mode": exp.sweep_mode, "keys": list(exp.sweep_keys), "conditions": len(exp.conditions)}
            typer.echo(f"# {path}: valid; canonical units: ms, Hz, mV")
            typer.echo(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100).rstrip())
    raise typer.Exit(worst)


@app.command()
def merge(
    shards: List[str] = typer.Argument(..., help="the output folders of `plastic run --shard K/N`, all N of them", metavar="SHARD_DIR..."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="merged folder (default: outputs/<name>)"),
    force: bool = typer.Option(False, "--force", help="replace an existing output folder"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print nothing on success"),
) -> None:
    """Join the folders of `plastic run --shard K/N` into the folder a single run writes.

    summary.csv, traces.csv and spikes.csv are byte-identical to a single `--jobs 1` run with the
    same protocol and seed; run.json has the counts summed. Exit 2 (nothing written) for shards of
    different runs (protocol, --set, seed, sweep, N), a missing or repeated shard, or a folder
    that is not a shard.
    """
    from .results.merge import merge_shards

    try:
        report = merge_shards(shards, out, force, ["plastic"] + sys.argv[1:])
    except PlasticError as exc:
        _fail(exc)
    for w in report.warnings:
        typer.echo(f"warning: {w}", err=True)
    if not quiet:
        shards, conds = report.shards, report.conditions
        typer.echo(f"{report.name}: merged {shards} shard{'s' if shards != 1 else ''}, {conds} condition{'s' if conds != 1 else ''} -> {report.out}")


@app.command()
def compare(
    run_dir: str = typer.Argument(..., help="output folder of the run to check", metavar="RUN_DIR"),
    baseline_dir: str = typer.Argument(..., help="output folder with the expected results", metavar="BASELINE_DIR"),
    rtol: float = typer.Option(DEFAULT_RTOL, "--rtol", min=0.0, help="relative tolerance: |got - expected| <= atol + rtol |expected|"),
    atol: float = typer.Option(DEFAULT_ATOL, "--atol", min=0.0, help="absolute tolerance"),
    limit: int = typer.Option(20, "--limit", min=0, help="rows in the table of largest single deviations (the table per column is complete)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only warnings, errors and the exit code"),
    json_: bool = typer.Option(False, "--json", help="print a machine-readable report on stdout"),
) -> None:
    """Compare summary.csv, traces.csv and spikes.csv of two output folders, column by column.

    Prints, per file and column, the number of differing values, the largest absolute and
    relative deviation and the worst row; then the --limit largest single deviations.

    Numbers are equal when |got - expected| <= atol + rtol |expected| (defaults rtol 1e-9,
    atol 1e-12: results are deterministic); other cells must match exactly. A missing file or
    column, or a different number of rows, is a difference. A changed protocol or package
    version (run.json) is only a warning. Exit 0 equal, 1 different, 2 bad input.
    """
    import json

    from .results.compare import compare_dirs

    try:
        result = compare_dirs(run_dir, baseline_dir, rtol, atol, limit)
    except PlasticError as exc:
        _fail(exc)
    _print_warnings(result)
    if json_:
        typer.echo(json.dumps(result.as_dict(), indent=2))
    elif not quiet:
        _print_comparison(result)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_DIFFERENT)


@app.command()
def plot(
    run_dir: str = typer.Argument(..., help="output folder of `plastic run`", metavar="RUN_DIR"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="image file, .png, .svg or .pdf (default: RUN_DIR/plot.png)", metavar="FILE"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="do not print the path of the image"),
) -> None:
    """Draw a run folder from its files (nothing is re-run): weights, state and spikes over time
    with the phases shaded, or a sweep's dw_percent against the swept value(s), with published
    points from PROTOCOL.reference.csv when the protocol ships them. Needs matplotlib
    (pip install '.[plot]' in the clone); exit 2 without it.
    """
    raise typer.Exit(_plot_folder(run_dir, out, quiet))


def _require_plotting() -> None:
    from .plot import require_matplotlib

    try:
        require_matplotlib()
    except PlasticError as exc:
        _fail(exc)


def _plot_folder(run_dir, out, quiet: bool) -> int:
    """Draw one folder; prints the image's path (stdout) or the error (stderr); returns the exit status."""
    from .plot import plot_run

    try:
        path = plot_run(run_dir, out)
    except PlasticError as exc:
        _err(str(exc))
        return exc.exit_code
    if not quiet:
        typer.echo(f"plot: {path}")
    return EXIT_OK


@app.command()
def rules(kind: Optional[str] = typer.Argument(None, help="a rule kind; all rules when omitted")) -> None:
    """Rules: equations, parameters with units and defaults, presets with citations, state, blockers."""
    from .protocol import docs

    try:
        typer.echo(docs.rules_text(kind))
    except PlasticError as exc:
        _fail(exc)


@app.command()
def warmup(
    jit_only: bool = typer.Option(False, "--jit-only", help="Only fill Numba's cache (runs the warmup protocols through the JIT); compile nothing ahead of time."),
    check: bool = typer.Option(False, "--check", help="Compile nothing: say which compiled kernels a run would use (per weight dtype) and why not the ahead-of-time ones."),
) -> None:
    """Compile ahead of time what the installed kernels lack, so that runs start at once.

    pip install compiles the kernels for float64 weights into the package (when it can); this
    compiles the rest (float32 weights, or all of them when the install's are missing or were
    built with another Numba than this environment's) into the user cache folder
    ($PLASTIC_CACHE_DIR, else ~/.cache/plastic; needs a C compiler), then checks in a new
    process that the warmup protocols of every rule, neuron model and weight dtype run on them
    alone, without Numba. Without a C compiler it fills Numba's cache instead. PLASTIC_NATIVE=0
    makes runs ignore the compiled kernels. --check changes nothing and says what runs use.
    """
    from . import api
    from .results.folders import environment_error

    if check:
        from .core import native

        for line in native.check():
            typer.echo(line)
        return
    try:
        report = api.warmup(native=not jit_only)
    except PlasticError as exc:
        _fail(exc)
    except OSError as exc:  # the temporary folder of the warmup runs, the cache folder
        _fail(environment_error(exc, exc.filename or "the temporary or cache folder", "write"))
    if report.native_error:
        typer.echo(f"no ahead-of-time kernels ({report.native_error}); runs use Numba's JIT and its cache", err=True)
    elif not jit_only:
        n, pkg = report.signatures, report.package
        if report.compiled:
            typer.echo(f"compiled the kernels ahead of time in {report.native_s:.1f} s: the {report.compiled} of {n} kernel signatures that the installed kernels lack: {report.native}")
        else:
            typer.echo(f"nothing to compile: the ahead-of-time kernels serve all {n} kernel signatures (installed: {pkg}, earlier warmup: {report.cached})")
        typer.echo(f"checked in {report.check_s:.1f} s: the {report.runs} warmup runs (every rule, neuron model and weight dtype) use only ahead-of-time kernels, without Numba")
    if report.jit_s:
        typer.echo(f"filled Numba's cache: compiled or loaded the kernels of {report.runs} warmup runs (every rule, neuron model and weight dtype) in {report.jit_s:.1f} s")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the protocol format (for editors)."""
    import json

    from .protocol import docs

    typer.echo(json.dumps(docs.json_schema(), indent=2))


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"plastic {_version()}")
        raise typer.Exit(EXIT_OK)


def _version() -> str:
    """The installed distribution's version (its ``*.dist-info``, :mod:`plastictool.dists`),
    else the source's."""
    from .dists import version

    ver = version("plastictool")
    if ver:
        return ver
    from . import __version__

    return __version__


@app.callback()
def _options(
    version: bool = typer.Option(False, "--version", help="print the version and exit", is_eager=True, callback=_version_callback),
) -> None:
    pass


INTERNAL_HINT = "please report this; PLASTIC_DEBUG=1 shows the traceback"


def _debug() -> bool:
    import os

    return os.environ.get("PLASTIC_DEBUG", "") not in ("", "0")


def internal_error_message(exc: BaseException) -> str:
    """One line for an exception nothing else handled."""
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"internal error: {type(exc).__name__}: {text} ({INTERNAL_HINT})"


def main() -> None:  # console script entry point
    """Run the CLI. The net under every command: an exception that no command turned into its
    own message (a bug) becomes one line and exit 4; ``PLASTIC_DEBUG=1`` shows the traceback."""
    import gc
    import os

    # Python's cyclic garbage collector, tuned for a process that lives for one command: its
    # start-up (Typer, NumPy, Numba: about 120,000 objects that live until the end) would
    # otherwise run a collection every 700 new objects, and the exit a last one over all of
    # them. Collections now come every 50,000 objects (cyclic garbage stays bounded in long
    # sweeps and fits), and the objects alive at the end are frozen (``gc.freeze``), so that
    # the exit does not walk them (files are closed by then: nothing waits on a collection).
    # A JIT run (the Numba import) 0.3 s faster; with the ahead-of-time kernels about 0.03 s.
    gc.set_threshold(50_000, 20, 10)
    # NumPy's OpenBLAS starts a thread per core when NumPy is imported, and each spins about 2^28
    # cycles (~0.1 s of a core) waiting for work before it sleeps; plastic makes few, big BLAS
    # calls (correlated rate inputs), so its threads sleep at once (2^4 cycles) and are woken by
    # the next call: W2 0.41-0.44 -> 0.31-0.34 s of CPU time (the spin ran on the other core).
    # Set before NumPy loads (the commands import it), inherited by worker processes; a user's
    # own OPENBLAS_THREAD_TIMEOUT is kept.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    try:
        app()
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except SystemExit:
        raise
    except (Exception, RecursionError, MemoryError) as exc:
        if _debug():
            raise
        try:
            _err(internal_error_message(exc))
        except Exception:  # stderr itself failed
            pass
        sys.exit(EXIT_ENVIRONMENT)
    finally:
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = ["app", "main", "EXIT_BAD_INPUT"]


class _fit_progress:
    """A rich counter of model evaluations on a terminal (after a second); nothing otherwise."""

    def __init__(self, off: bool, name: str):
        self.off = off or not sys.stderr.isatty()
        self.name = name
        self.bar = None
        self.t0 = None

    def __enter__(self):
        import time

        self.t0 = time.perf_counter()
        return None if self.off else self

    def __call__(self, evaluations: int) -> None:
        import time

        if self.bar is None:
            if time.perf_counter() - self.t0 < 1.0:
                return
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(SpinnerColumn(), TextColumn("fit {task.fields[name]}: {task.completed} evaluations"), TimeElapsedColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("fit", total=None, name=self.name)
        self.bar.update(self.task, completed=evaluations)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False


@app.command()
def fit(
    protocols: List[str] = typer.Argument(..., help="protocol files (YAML); several: the same data, ranked by AIC", metavar="PROTOCOL..."),
    data: Optional[str] = typer.Option(None, "--data", help="measured data, the format of protocols/*.reference.csv (default: the protocol's fit.data)", metavar="DATA.csv"),
    param: List[str] = typer.Option([], "--param", "-p", help="a free parameter and its bounds in its units: rule.tau_y=10ms:500ms, or LO:START:HI", metavar="PATH=LO:HI"),
    method: Optional[str] = typer.Option(None, "--method", help="least_squares (default) or cmaes (global: differential evolution, then least squares)"),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="output folder (default outputs/<name>-fit; several protocols: DIR/<name>-fit/)"),
    force: bool = typer.Option(False, "--force", help="replace existing output folders"),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="worker processes evaluating the data's conditions side by side"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="evaluate on a Dask cluster: local or tcp://HOST:PORT", metavar="ADDR"),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="seed of the optimiser's starts (default: the protocol's seed)"),
    plot_: bool = typer.Option(False, "--plot", help="also draw plot.png: the data with error bars and the fitted model"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress and no summary"),
    json_: bool = typer.Option(False, "--json", help="print a machine-readable report on stdout"),
) -> None:
    """Fit a protocol's free parameters to measured data (each data row is a condition; the model
    value is its mean dw_percent; chi2 weighted by sem). Writes fit.json (values, standard
    errors, 95% intervals, correlations, chi2, AIC, BIC), fitted.yaml (runnable), predictions.csv.
    Exit 0 converged, 3 not converged (after writing), 2 bad input."""
    import json

    from .errors import EXIT_SIM_FAILED
    from .fitting import output_dir, write_fit
    from .fitting import fit as fit_fn
    from .fitting.core import protocol_name
    from .results.folders import check_target

    results = []
    several = len(protocols) > 1
    worst = EXIT_OK
    try:
        for path in protocols:
            try:
                target = output_dir(protocol_name(path), out, several)
                check_target(target, force, path)  # before the work, not after it
                with _fit_progress(quiet or json_, path) as progress:
                    res = fit_fn(path, data, param or None, method, seed, jobs, scheduler, progress)
                write_fit(res, target, force, plot_)
            except PlasticError as exc:
                if several:
                    _err(str(exc))
                    worst = max(worst, exc.exit_code)
                    continue
                _fail(exc)
            results.append(res)
            status = EXIT_OK if res.converged else EXIT_SIM_FAILED
            worst = max(worst, status)
            if not quiet and not json_:
                _print_fit(res)
    except KeyboardInterrupt:
        _err("interrupted; no fit folder was written for the unfinished fit")
        raise typer.Exit(EXIT_INTERRUPTED)
    ranked = sorted(results, key=lambda r: (r.aic, r.name))
    if json_:
        docs = [{**r.as_dict(), "out": r.out, "wall_s": round(r.wall_s, 6), "evaluations_per_s": round(r.evaluations_per_s, 3)} for r in ranked]
        typer.echo(json.dumps({"status": worst, "fits": docs}, indent=2))
    elif several and not quiet and results:
        best = ranked[0].aic
        typer.echo(f"\n{'rank':>4}  {'protocol':<36} {'AIC':>10} {'dAIC':>8} {'BIC':>10} {'chi2':>10} {'k':>2}  converged")
        for k, r in enumerate(ranked, 1):
            typer.echo(f"{k:>4}  {r.name:<36} {r.aic:>10.4g} {r.aic - best:>8.3g} {r.bic:>10.4g} {r.chi2:>10.4g} {len(r.params):>2}  {str(r.converged).lower()}")
    raise typer.Exit(worst)


def _print_fit(res) -> None:
    typer.echo(f"{res.name}: {res.method}, {res.evaluations} evaluations in {res.wall_s:.1f} s "
               f"({res.evaluations_per_s:.1f}/s), converged: {str(res.converged).lower()} -> {res.out}")
    for p in res.params:
        lo, hi = res.ci95[p.path]
        typer.echo(f"  {p.path:<28} {res.x[p.path]:<12.6g} +- {res.se[p.path]:<10.3g} 95%: [{lo:.6g}, {hi:.6g}]")
    red = f", reduced {res.reduced_chi2:.4g}" if res.reduced_chi2 is not None else ""
    typer.echo(f"  chi2 {res.chi2:.6g} ({res.n_data} data, {res.dof} dof{red}{'; no sem: errors scaled by it' if res.covariance_scaled else ''}); AIC {res.aic:.6g}, BIC {res.bic:.6g}")
    for w in res.warnings:
        typer.echo(f"  warning: {w}", err=True)
