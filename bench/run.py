#!/usr/bin/env python
"""Benchmark plastic against Brian2 and NEST on the same workloads, in the same run.

    python bench/run.py [--workloads W1,W1D,W2,W3[,W4]] [--runs 3] [--peers auto|none]
                        [--modes warm,installed,cold] [--targets nest,brian2-cpp,...]
                        [--csv bench/results.csv] [--md FILE] [--interleave]

Every measurement is a whole process (interpreter start, imports, building, simulating,
writing results), timed from outside; the table shows the median of ``--runs`` runs and the
ratio peer / plastic. plastic runs with its bytecode compiled, as an installed package has it,
in up to five states (``--modes``), each with caches of its own (``NUMBA_CACHE_DIR``,
``PLASTIC_CACHE_DIR`` in a temporary folder):

``cold``
    the first run on a fresh install: every run starts with empty caches. ``pip install``
    built the ahead-of-time kernels into the package (``plastictool/_native``), so no Numba is
    imported when the run's argument types are among the installed signatures.
``installed``
    later runs of that install (one earlier run of the workload, not timed, filled the caches).
``warm``
    after ``plastic warmup`` (not timed): the ahead-of-time kernels of every signature the
    warmup protocols meet (the install's, and warmup's module of those it lacks in the user's
    cache folder); Numba's cache stays empty (a call no module serves compiles).
``jit-cold``
    an install without the ahead-of-time kernels (no C compiler, or a Numba without
    ``numba.pycc``; ``PLASTIC_NATIVE=0``): every run starts with empty caches and compiles.
``jit``
    the same install, with Numba's cache filled by one earlier run (not timed).

Peers run with ``$PLASTIC_PEERS_PYTHON`` (default /work/peers-venv/bin/python, a
virtual environment with brian2 and nest-simulator, see bench/PEERS.md) via bench/peers.py;
with ``--peers auto`` they are skipped when that interpreter is missing.

The workloads are the protocols in bench/workloads/ (W1 STDP window, 101 conditions, traces
sampled once a minute; W1D the same with the default recording of protocols/stdp_window.yaml,
61 samples of the weight, its mean and both traces per condition; W2 Song, Miller & Abbott
2000, 1000 inputs, 100 s; W3 10,000 x 1,000 plastic synapses, 10 s) and the same models in
bench/peers.py (W1D's peers run W1: they record no traces). Results go to a CSV (one row per run) and optionally to a
Markdown table with the machine described: median wall time, plastic's synaptic updates per
second of simulation (run.json ``profile``) and the peak memory of the process.

W4 (``--workloads W4``, not in the default set) is the large scale point: 10,000 x 10,000
``float32`` plastic synapses (a 0.4 GB weight matrix), LIF, 5 Hz inputs, 10 s; each run writes
a summary.csv of 1e8 rows (8 GB) and takes minutes on 2 cores. plastic only: NEST and Brian2
store each synapse as an object or several arrays with its indices (tens of bytes a synapse,
several GB for 1e8; an estimate, not measured here) and minutes to build the network, so the
peers are not run on it. Its figures to read are the peak memory against the 0.4 GB matrix
(goal: at most 1.3x) and the synaptic updates per second. W4N is W4 with its tables in the
binary format (``--set record.format=npy``): compare the two rows' ``write`` in run.json
``profile`` (the CSV column ``detail``).

Order: by default plastic's runs of every mode and workload come first, then the peers'
(runs G-O were measured so). This machine's speed drifts by up to a third from minute to
minute, and a peer's three W3 runs take a minute and a half, so the ratio of medians then also
measures the drift between the two blocks. ``--interleave`` alternates instead: run k of
plastic (each mode) is followed by run k of each peer, so that both tools meet much the same
minutes; the medians and ratios are computed as before.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = {"W1": "w1_stdp_window.yaml", "W1D": "w1_default.yaml", "W2": "w2_song2000.yaml", "W3": "w3_large.yaml", "W4": "w4_huge.yaml", "W4N": "w4_huge.yaml"}
SET = {"W4N": ["--set", "record.format=npy"]}  # W4N: W4 with its tables in the binary format (record.format: npy)
PEER_WORKLOAD = {"W1D": "W1"}  # the model a peer runs for a workload (default: the same)
MODES = ("warm", "installed", "cold", "jit", "jit-cold")
JIT_MODES = ("jit", "jit-cold")  # PLASTIC_NATIVE=0: no ahead-of-time kernels at all
PEER_PY = os.environ.get("PLASTIC_PEERS_PYTHON", "/work/peers-venv/bin/python")
DEFAULT_TARGETS = {
    "W1": [("nest", 1), ("brian2-cpp", 1), ("brian2-cython", 1)],
    "W1D": [("nest", 1)],
    "W2": [("nest", 1), ("brian2-cpp", 1), ("brian2-cython", 1)],
    "W3": [("nest", 2), ("brian2-cpp", 2)],
    "W4": [],  # plastic only (see the docstring)
    "W4N": [],
}


# Every tool runs as installed software does: with Python's bytecode cache (pip compiles it at
# install time). Some shells and CI images set PYTHONDONTWRITEBYTECODE, which would make every
# run compile plastic's (or a peer's) Python sources again.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(cmd: list[str], env=None) -> tuple[float, int, str]:
    """Wall seconds, peak memory (KiB, of this child alone) and stdout of one whole process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=ENV if env is None else env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.read().decode()[-2000:]}")
        return wall, usage.ru_maxrss, out.read().decode()


def plastic_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", "from plastictool.cli import main; main()", *args]


def cache_env(folder: Path) -> dict:
    """The environment of plastic with its caches (Numba's, the native module's) in ``folder``."""
    return {**ENV, "NUMBA_CACHE_DIR": str(folder / "numba"), "PLASTIC_CACHE_DIR": str(folder / "plastic")}


def prepare(mode: str, folder: Path, workloads: list[str], tmp: Path) -> None:
    """Bring the caches in ``folder`` to the state of ``mode`` (not timed)."""
    env = cache_env(folder)
    if mode == "warm":
        _, _, log = timed(plastic_cmd("warmup"), env)
        print(log.strip(), file=sys.stderr)
        # the warmup wrote its modules and freed gigabytes: let the system settle (dirty pages
        # written back) before the timed runs, as a user's runs come long after the warmup
        os.sync()
        time.sleep(10)
    elif mode in ("installed", "jit"):  # one run of each workload fills the caches, as a user's first run
        for w in workloads:
            out = tmp / f"prepare-{w}"
            timed(plastic_cmd("run", str(HERE / "workloads" / WORKLOADS[w]), *SET.get(w, []), "--out", str(out), "--force", "--quiet"), mode_env(env, mode))
            shutil.rmtree(out)


def mode_env(env: dict, mode: str) -> dict:
    return {**env, "PLASTIC_NATIVE": "0"} if mode in JIT_MODES else env


def run_plastic(workload: str, runs: int, tmp: Path, mode: str = "warm", caches: Path | None = None, first: int = 0) -> list[dict]:
    """Runs ``first + 1 .. first + runs`` of plastic on ``workload``."""
    protocol = HERE / "workloads" / WORKLOADS[workload]
    rows = []
    for k in range(first, first + runs):
        out = tmp / f"{workload}-{k}"
        if mode in ("cold", "jit-cold"):  # empty caches for every run
            caches = tmp / f"{mode}-{workload}-{k}"
            shutil.rmtree(caches, ignore_errors=True)
        env = mode_env(cache_env(caches), mode) if caches is not None else None
        wall, rss, _ = timed(plastic_cmd("run", str(protocol), *SET.get(workload, []), "--out", str(out), "--force", "--quiet"), env)
        meta = json.loads((out / "run.json").read_text())
        prof = meta["profile"]
        rows.append({"workload": workload, "tool": "plastic", "mode": mode, "threads": max(prof.get("workers") or 1, prof.get("threads") or 1), "run": k + 1,
                     "wall_s": wall, "max_rss_kib": rss, "updates_per_s": prof.get("synaptic_updates_per_s") or "", "kernels": meta.get("versions", {}).get("kernels", ""), "detail": json.dumps(meta["profile"])})
        # each run finds the same system: no gigabytes of an earlier run's files (W3 writes an
        # 800 MB summary) waiting in the page cache to be written back while it runs
        shutil.rmtree(out)
        if mode in ("cold", "jit-cold"):
            shutil.rmtree(caches, ignore_errors=True)
        time.sleep(1.0)
    return rows


def run_peer(workload: str, target: str, threads: int, runs: int, first: int = 0) -> list[dict]:
    rows = []
    for k in range(first, first + runs):
        wall, rss, out = timed([PEER_PY, str(HERE / "peers.py"), PEER_WORKLOAD.get(workload, workload), "--target", target, "--threads", str(threads)])
        line = out.strip().splitlines()[-1]
        info = json.loads(line)
        rows.append({"workload": workload, "tool": target, "mode": "", "threads": threads, "run": k + 1, "wall_s": wall,
                     "max_rss_kib": rss, "updates_per_s": "", "kernels": "", "detail": json.dumps({k2: info.get(k2) for k2 in ("sim_s", "setup_s", "import_s")})})
    return rows


def table(rows: list[dict]) -> list[dict]:
    """Medians per (workload, tool, mode, threads); ``ratio``: {plastic mode: median / that
    mode's plastic median} (peers: how many times slower than plastic in each mode)."""
    out = []
    by = {}
    for r in rows:
        by.setdefault((r["workload"], r["tool"], r.get("mode", ""), r["threads"]), []).append(r)
    for (w, tool, mode, threads), rs in by.items():
        ups = [r["updates_per_s"] for r in rs if r.get("updates_per_s")]
        out.append({"workload": w, "tool": tool, "mode": mode, "threads": threads, "median_s": statistics.median(r["wall_s"] for r in rs),
                    "max_rss_mib": max(r["max_rss_kib"] for r in rs) / 1024, "runs": len(rs), "updates_per_s": statistics.median(ups) if ups else None})
    for t in out:
        t["ratio"] = {b["mode"]: t["median_s"] / b["median_s"] for b in out if b["workload"] == t["workload"] and b["tool"] == "plastic"}
    return out


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def markdown(summary: list[dict]) -> str:
    modes = [m for m in MODES if any(t["tool"] == "plastic" and t["mode"] == m for t in summary)]
    head = " | ".join(f"peer / plastic {m}" for m in modes)
    lines = [f"| workload | tool | threads | median wall (s) | {head} | peak memory (MiB) | synaptic updates/s |", "|---|---|---|---|" + "---|" * len(modes) + "---|---|"]
    order = {m: k for k, m in enumerate(MODES)}
    for t in sorted(summary, key=lambda x: (x["workload"], x["tool"] != "plastic", order.get(x["mode"], 9), x["median_s"])):
        name = f"plastic ({t['mode']})" if t["tool"] == "plastic" else t["tool"]
        if t["tool"] == "plastic":
            ratios = " | ".join("1" if m == t["mode"] else "" for m in modes)
        else:
            ratios = " | ".join(f"{t['ratio'][m]:.1f}x" if m in t["ratio"] else "" for m in modes)
        ups = f"{t['updates_per_s']:.3g}" if t.get("updates_per_s") else ""
        lines.append(f"| {t['workload']} | {name} | {t['threads']} | {t['median_s']:.2f} | {ratios} | {t['max_rss_mib']:.0f} | {ups} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", default="W1,W1D,W2,W3")
    ap.add_argument("--modes", default=",".join(MODES), help="plastic's cache states: warm,installed,cold")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peers", choices=["auto", "none"], default="auto")
    ap.add_argument("--targets", default="", help="peer targets, e.g. nest:1,brian2-cpp:2 (default: per workload)")
    ap.add_argument("--csv", default=str(HERE / "results.csv"))
    ap.add_argument("--md", default="", help="also write the Markdown table here")
    ap.add_argument("--interleave", action="store_true", help="alternate plastic's and the peers' runs (run k of each, then run k + 1)")
    args = ap.parse_args(argv)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    peers = args.peers == "auto" and Path(PEER_PY).exists()
    if args.peers == "auto" and not peers:
        print(f"peers skipped: no interpreter at {PEER_PY} (set PLASTIC_PEERS_PYTHON)", file=sys.stderr)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        ap.error(f"unknown mode(s) {', '.join(bad)}; valid: {', '.join(MODES)}")
    # not timed: Python's bytecode of plastic (as `pip install` writes it)
    import plastictool

    timed([sys.executable, "-m", "compileall", "-q", str(Path(plastictool.__file__).parent)])

    def targets_of(w):
        targets = DEFAULT_TARGETS[w] if peers else []
        if args.targets and targets:  # not W4/W4N: no peer runs them (see the docstring)
            targets = [(t.split(":")[0], int(t.split(":")[1]) if ":" in t else 1) for t in args.targets.split(",")]
        return targets

    def peer_runs(w, runs, first=0):
        out = []
        for target, threads in targets_of(w):
            print(f"{w}: {target} ({threads} thread{'s' if threads > 1 else ''}) ...", file=sys.stderr, flush=True)
            out += run_peer(w, target, threads, runs, first)
        return out

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache_of = {}
        for mode in modes:  # each mode with caches of its own, brought to its state first
            caches = cache_of[mode] = tmp / f"caches-{mode}"
            print(f"plastic {mode}: preparing the caches ...", file=sys.stderr, flush=True)
            prepare(mode, caches, workloads, tmp)
            if not args.interleave:
                for w in workloads:
                    print(f"{w}: plastic ({mode}) ...", file=sys.stderr, flush=True)
                    rows += run_plastic(w, args.runs, tmp, mode, caches)
        if not args.interleave:
            for w in workloads:
                rows += peer_runs(w, args.runs)
        else:
            for w in workloads:
                for k in range(args.runs):
                    for mode in modes:
                        print(f"{w}: plastic ({mode}), run {k + 1} ...", file=sys.stderr, flush=True)
                        rows += run_plastic(w, 1, tmp, mode, cache_of[mode], first=k)
                    rows += peer_runs(w, 1, first=k)
    with open(args.csv, "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    summary = table(rows)
    md = markdown(summary)
    print(md)
    if args.md:
        Path(args.md).write_text(f"Machine: {machine()}\n\n{md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
