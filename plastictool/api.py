"""Plain functions behind the commands: load, validate, run, write. Results are typed values."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import EXIT_OK, PlasticError
from .protocol import Experiment, load_experiment

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
        }


def output_dir(exp: Experiment, out: str | Path | None, several: bool) -> Path:
    """Spec section 9: one protocol -> --out DIR is its folder; several -> DIR/<name>/."""
    if out is None:
        return DEFAULT_OUT / exp.name
    return Path(out) / exp.name if several else Path(out)


def validate_file(path, overrides=(), seed=None) -> Experiment:
    from .engine import check_memory

    exp = load_experiment(path, overrides, seed)
    for cond in exp.conditions:
        check_memory(cond.protocol)
    return exp


def run_experiment(exp: Experiment, progress=None):
    """Run every condition of an experiment; returns the list of RunResult."""
    from .engine import run_condition

    results = []
    for cond in exp.conditions:
        cb = None
        if progress is not None:
            cb = _offset_progress(progress, cond)
        results.append(run_condition(cond, cb))
    return results


def _offset_progress(progress, cond):
    def cb(step):
        progress(cond.index, step, cond.protocol.n_steps)

    return cb


def run_file(path, out=None, overrides=(), seed=None, force=False, several=False, progress=None, argv=()) -> RunReport:
    """Validate, run and write one protocol file. Errors are reported in the RunReport."""
    from .output import check_target, write_outputs

    t0 = time.perf_counter()
    report = RunReport(file=str(path))
    try:
        t_load = time.perf_counter()
        exp = validate_file(path, overrides, seed)
        report.name = exp.name
        target = output_dir(exp, out, several)
        report.out = str(target)
        check_target(target, force, str(path))
        load_s = time.perf_counter() - t_load
        results = run_experiment(exp, progress)
        sim = sum(r.timings["simulate_s"] for r in results)
        first = max((r.timings["first_call_s"] for r in results), default=0.0)
        build = sum(r.timings["build_s"] for r in results)
        profile = {"load_s": load_s, "build_s": build, "compile_or_load_kernels_s": first, "simulate_s": sim}
        wall = time.perf_counter() - t0
        write_outputs(target, exp, results, wall, argv, profile, force)
        report.conditions = len(results)
        for r in results:
            for k, v in r.counts.items():
                report.counts[k] = report.counts.get(k, 0) + v
        report.profile = profile
    except PlasticError as exc:
        report.status = exc.exit_code
        report.message = str(exc)
    report.wall_s = time.perf_counter() - t0
    return report
