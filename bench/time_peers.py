#!/usr/bin/env python
"""Time bench/peers.py configurations as whole processes (import + build + run).

    python bench/time_peers.py [--only W1,W2] [--targets nest,brian2-cpp] [--runs 3]
                               [--once-above 180] [--config W3:brian2-cpp:1 ...]

Any python >= 3.8 can run this; it launches peers.py with $PLASTIC_PEERS_PYTHON
(default /work/peers-venv/bin/python).  Runs are sequential (one heavy job at a
time).  Each configuration is run once; when that run took more than --once-above
seconds it is not repeated, otherwise it is repeated up to --runs runs.  For
brian2-cython an unmeasured warm-up run first fills Brian2's Cython cache (short
duration for W2/W3), so measured runs are "cython warm" as in the issue.

Appends rows to bench/peer_times.csv (workload,target,threads,run,wall_s) and the
full JSON line of every run (plus wall_s and max RSS) to bench/peer_results.jsonl.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers.py")
PY = os.environ.get("PLASTIC_PEERS_PYTHON", "/work/peers-venv/bin/python")
CSV = os.path.join(HERE, "peer_times.csv")
JSONL = os.path.join(HERE, "peer_results.jsonl")

DEFAULT_CONFIGS = [
    ("W1", "nest", 1), ("W1", "brian2-cpp", 1), ("W1", "brian2-cython", 1), ("W1", "brian2-numpy", 1),
    ("W2", "nest", 1), ("W2", "nest", 2), ("W2", "brian2-cpp", 1), ("W2", "brian2-cython", 1),
    ("W2", "brian2-numpy", 1),
    ("W3", "brian2-cpp", 1), ("W3", "nest", 1),
]
WARMUP_MS = {"W2": 10_000.0, "W3": 1100.0}


def run_once(workload, target, threads, extra=()):
    cmd = [PY, PEERS, workload, "--target", target, "--threads", str(threads), *extra]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode()
        stderr = err.read().decode()
    if proc.returncode != 0:
        sys.stderr.write(stderr[-3000:])
        raise RuntimeError(f"{cmd} failed with {proc.returncode}")
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one JSON line, got {len(lines)}"
    rec = json.loads(lines[0])
    rec["process_wall_s"] = wall
    rec["loadavg_1min_after"] = os.getloadavg()[0]
    rec["max_rss_mb"] = ru.ru_maxrss / 1024.0
    return rec


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=None, help="comma-separated workloads")
    ap.add_argument("--targets", default=None, help="comma-separated targets")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--once-above", type=float, default=180.0)
    ap.add_argument("--config", action="append", default=[],
                    help="WORKLOAD:TARGET:THREADS, replaces the default list")
    args = ap.parse_args()
    configs = DEFAULT_CONFIGS
    if args.config:
        configs = [(c.split(":")[0], c.split(":")[1], int(c.split(":")[2])) for c in args.config]
    if args.only:
        keep = set(args.only.split(","))
        configs = [c for c in configs if c[0] in keep]
    if args.targets:
        keep = set(args.targets.split(","))
        configs = [c for c in configs if c[1] in keep]

    new_csv = not os.path.exists(CSV)
    with open(CSV, "a", newline="") as fcsv, open(JSONL, "a") as fj:
        wr = csv.writer(fcsv)
        if new_csv:
            wr.writerow(["workload", "target", "threads", "run", "wall_s"])
        for workload, target, threads in configs:
            if target == "brian2-cython":
                extra = () if workload == "W1" else ("--duration-ms", str(WARMUP_MS[workload]))
                rec = run_once(workload, target, threads, extra)
                rec["run"] = "warmup"
                fj.write(json.dumps(rec) + "\n")
                fj.flush()
                print(f"{workload} {target} t{threads} warm-up {rec['process_wall_s']:.1f} s", flush=True)
            for r in range(1, args.runs + 1):
                rec = run_once(workload, target, threads)
                rec["run"] = r
                fj.write(json.dumps(rec) + "\n")
                fj.flush()
                wr.writerow([workload, target, rec["threads"], r, f"{rec['process_wall_s']:.3f}"])
                fcsv.flush()
                print(f"{workload} {target} t{rec['threads']} run {r}: {rec['process_wall_s']:.1f} s "
                      f"rss {rec['max_rss_mb']:.0f} MB", flush=True)
                if rec["process_wall_s"] > args.once_above:
                    break


if __name__ == "__main__":
    main()
