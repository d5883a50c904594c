#!/usr/bin/env python
"""Where the time of a sweep of tiny networks goes, in-process (issue 15).

    python bench/sweep_overhead.py [--runs 9] [--warm 3] [--workloads W1D,NET101]
                                   [--cprofile] [--compare OTHER_TREE] [--json]

Runs each workload through the plain function behind ``plastic run`` (``api.run_file``,
writing its folder under a temporary directory with ``force``), first ``--warm`` times
untimed (imports, the kernels from Numba's cache or the ahead-of-time module, the format
caches), then ``--runs`` times, and prints the median of each phase:

``cpu_ms``
    CPU time of the process for the whole call (``time.process_time``: the machine is shared,
    and CPU time is less disturbed by other processes than wall time).
``wall_ms``, ``load``, ``build``, ``simulate``, ``write``
    the call's wall time and the run.json ``profile`` fields (``load_s``, ``build_s``,
    ``simulate_s``, ``write_s``), in ms.
``other``
    ``wall_ms`` less the four phases (checking the target, the counts, removing the previous
    folder and renaming the new one into place).
``no_load``
    ``wall_ms`` less ``load``: what to compare between the workloads (NET101's load is mostly
    PyYAML parsing its 6,120 explicit spike times, about 140 ms, which has nothing to do with
    the cost of a network).

The workloads:

``W1D``
    bench/workloads/w1_default.yaml (= protocols/stdp_window.yaml): 101 sweep conditions of
    one synapse, 60 pre/post pairings each, traces of w, w_mean, x_pre and x_post every second
    (61 rows per condition: 6,161 trace rows, 12,120 spike rows).
``NET101``
    bench/workloads/w1_net101.yaml: what W1D computes as ONE network: one presynaptic neuron
    onto 101 clamped postsynaptic neurons, the pre neuron firing at the 60 pairing times and
    post neuron j at those times + delta_t_j (delta_t_j = -100 + 2 j ms, j = 0..100: W1D's
    conditions; the times are shifted by 100 ms so that every spike is at t >= 0), the same
    pair STDP rule and parameters, 60.1 s, and the same trace interval with every weight,
    w_mean, x_pre and x_post recorded (61 rows of 205 columns). Its 101 synapses see the
    same pairings as W1D's conditions (the weights end the same, see tests/test_sweep_overhead),
    with 60 pre spikes instead of 101 x 60 (one pre neuron serves all). It is the lower bound
    the issue names: "a sweep of 101 one-synapse conditions should cost about one network of
    101 synapses". ``--write-net101`` writes that file again (from W1D's values).

``--cprofile`` adds, per workload, the functions with the most own time under cProfile over
the timed runs, per run and (for W1D) per condition, to attribute what remains per condition.
``--compare TREE`` measures another checkout (e.g. main in a folder of its own, with its own
``.venv``) in the same session: each round runs this script once with ``--runs 1`` there and
once here, alternating, so that both see the same load; medians over the rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = {"W1D": HERE / "workloads" / "w1_default.yaml", "NET101": HERE / "workloads" / "w1_net101.yaml"}
PHASES = ("cpu_ms", "wall_ms", "load", "build", "simulate", "write", "other", "no_load")


def net101_yaml() -> str:
    """The text of bench/workloads/w1_net101.yaml (see the module docstring)."""
    shift = 100.0  # ms: the earliest post spike (delta_t = -100 ms) at t = 0
    pairs, period = 60, 1000.0
    pre = [shift + k * period for k in range(pairs)]
    post = {j: [round(t + (-100.0 + 2.0 * j), 6) for t in pre] for j in range(101)}
    lines = [
        "# W1D (w1_default.yaml, 101 one-synapse conditions) as ONE network of 101 synapses, the",
        "# lower bound of what the sweep may cost (issue 15; bench/sweep_overhead.py, which writes",
        "# this file: --write-net101). One pre neuron fires at the 60 pairing times (1 Hz, from",
        "# 100 ms); clamped post neuron j fires at those times + delta_t_j, delta_t_j = -100 + 2 j ms:",
        "# synapse (0, j) sees the pairings of W1D's condition j. Same rule, parameters, duration",
        "# and trace interval; every weight, w_mean, x_pre and x_post recorded (61 rows).",
        "name: w1_net101",
        "seed: 1",
        "dt: 0.1 ms",
        "synapses: {n_pre: 1, n_post: 101, w_init: 0.5, w_min: 0, w_max: 1}",
        "neuron: {model: clamped}",
        "stimulus:",
        "  duration: 60100 ms",
        "  pre:",
        "    times: [" + ", ".join(f"{t:g}" for t in pre) + "]",
        "  post:",
        "    times:",
    ]
    lines += [f"      {j}: [" + ", ".join(f"{t:g}" for t in ts) + "]" for j, ts in post.items()]
    lines += [
        "rule:",
        "  kind: stdp",
        "  preset: bi_poo_1998",
        "  a_plus: 0.01",
        "  a_minus: 0.0105",
        "record:",
        "  interval: 1 s",
        "  weights: all",
        "  state: [x_pre, x_post]",
    ]
    return "\n".join(lines) + "\n"


def measure(path: Path, runs: int, warm: int, cprofile: bool):
    """``runs`` timed calls of ``api.run_file(path)`` after ``warm`` untimed ones: a list of
    dicts of PHASES (ms), and the cProfile statistics (or None)."""
    from plastictool import api

    out = Path(tempfile.mkdtemp(prefix="sweep-overhead-")) / "run"
    prof = None
    if cprofile:
        import cProfile

        prof = cProfile.Profile()
    rows = []
    for k in range(warm + runs):
        c0, w0 = time.process_time(), time.perf_counter()
        if prof is not None and k >= warm:
            prof.enable()
        report = api.run_file(str(path), out, force=True)
        if prof is not None and k >= warm:
            prof.disable()
        c1, w1 = time.process_time(), time.perf_counter()
        if report.status:
            raise SystemExit(f"{path}: {report.message}")
        if k < warm:
            continue
        p = json.loads((out / "run.json").read_text())["profile"]
        row = {"cpu_ms": (c1 - c0) * 1e3, "wall_ms": (w1 - w0) * 1e3}
        for name in ("load", "build", "simulate", "write"):
            row[name] = p[f"{name}_s"] * 1e3
        row["other"] = row["wall_ms"] - sum(row[n] for n in ("load", "build", "simulate", "write"))
        row["no_load"] = row["wall_ms"] - row["load"]
        rows.append(row)
    import shutil

    shutil.rmtree(out.parent, ignore_errors=True)
    return rows, prof


def medians(rows) -> dict:
    return {k: statistics.median(r[k] for r in rows) for k in PHASES}


def show(name: str, med: dict, n: int) -> None:
    print(f"{name:<10} " + "  ".join(f"{k} {med[k]:7.2f}" for k in PHASES) + f"   (median of {n}, ms)")


def show_profile(prof, runs: int, conditions: int, top: int = 25) -> None:
    import pstats

    st = pstats.Stats(prof)
    items = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:top]
    print(f"  own time per run (us), and per condition ({conditions}), under cProfile:")
    for (file, line, func), (_cc, nc, tt, _ct, _callers) in items:
        where = f"{Path(file).name}:{line}({func})" if line else func
        print(f"  {tt / runs * 1e6:9.0f} {tt / runs / conditions * 1e6:8.1f}  calls/run {nc / runs:7.0f}  {where}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--warm", type=int, default=3)
    ap.add_argument("--workloads", default="W1D,NET101")
    ap.add_argument("--cprofile", action="store_true")
    ap.add_argument("--compare", metavar="TREE", help="another checkout with its own .venv: interleaved rounds")
    ap.add_argument("--json", action="store_true", help="print the runs as one JSON line (used by --compare)")
    ap.add_argument("--write-net101", action="store_true", help="write bench/workloads/w1_net101.yaml and exit")
    a = ap.parse_args(argv)
    if a.write_net101:
        WORKLOADS["NET101"].write_text(net101_yaml())
        return 0
    names = [w.strip() for w in a.workloads.split(",") if w.strip()]
    if a.compare:
        return compare(Path(a.compare), names, a.runs, a.warm)
    got = {}
    for name in names:
        rows, prof = measure(WORKLOADS[name], a.runs, a.warm, a.cprofile)
        got[name] = rows
        if not a.json:
            show(name, medians(rows), len(rows))
            if prof is not None:
                show_profile(prof, a.runs, 101 if name == "W1D" else 1)
    if a.json:
        print(json.dumps(got))
    return 0


def compare(other: Path, names, rounds: int, warm: int) -> int:
    """Rounds of (this script in ``other`` with its .venv, then here), ``--runs 1`` each: the
    workload files are this checkout's, so both measure the same protocols."""
    sides = {"other": (other, Path(other) / ".venv" / "bin" / "python"), "this": (HERE.parent, Path(sys.executable))}
    got = {s: {n: [] for n in names} for s in sides}
    for _ in range(rounds):
        for side, (tree, python) in sides.items():
            cmd = [str(python), str(Path(__file__).resolve()), "--runs", "1", "--warm", str(warm), "--workloads", ",".join(names), "--json"]
            proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
            if proc.returncode:
                raise SystemExit(f"{tree}: {proc.stderr.strip()[-2000:]}")
            doc = json.loads(proc.stdout.strip().splitlines()[-1])
            for n in names:
                got[side][n] += doc[n]
    for n in names:
        for side in sides:
            show(f"{n} {side}", medians(got[side][n]), len(got[side][n]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
