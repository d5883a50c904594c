"""``plastic``: thin Typer commands over :mod:`plastictool.api`.

Only Typer is imported at start-up; NumPy, Numba and the engine load inside the commands
that need them, so ``plastic --help`` stays instant.
"""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from .errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, PlasticError

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
) -> None:
    """Run protocols and write summary.csv, traces.csv, spikes.csv and run.json."""
    import json

    from . import api

    several = len(protocols) > 1
    reports = []
    worst = EXIT_OK
    argv = ["plastic"] + sys.argv[1:]
    try:
        for path in protocols:
            with _progress(quiet or json_) as progress:
                report = api.run_file(path, out, set_, seed, force, several, progress, argv)
            reports.append(report)
            worst = max(worst, report.status)
            if report.status:
                _err(report.message)
            elif not quiet and not json_:
                _print_done(report)
    except KeyboardInterrupt:
        _err("interrupted; no result folder was written for the unfinished run")
        raise typer.Exit(EXIT_INTERRUPTED)
    if json_:
        typer.echo(json.dumps({"status": worst, "runs": [r.as_dict() for r in reports]}, indent=2))
    raise typer.Exit(worst)


def _print_done(report) -> None:
    c = report.counts
    typer.echo(
        f"{report.name}: {report.conditions} condition{'s' if report.conditions != 1 else ''}, "
        f"{c.get('steps', 0)} steps, {c.get('pre_spikes', 0) + c.get('post_spikes', 0)} spikes, "
        f"{report.wall_s:.2f} s -> {report.out}"
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
def rules(kind: Optional[str] = typer.Argument(None, help="a rule kind; all rules when omitted")) -> None:
    """Rules: equations, parameters with units and defaults, presets with citations, state, blockers."""
    from . import docs

    try:
        typer.echo(docs.rules_text(kind))
    except PlasticError as exc:
        _fail(exc)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the protocol format (for editors)."""
    import json

    from . import docs

    typer.echo(json.dumps(docs.json_schema(), indent=2))


def main() -> None:  # console script entry point
    try:
        app()
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = ["app", "main", "EXIT_BAD_INPUT"]
