#!/usr/bin/env python
"""Benchmark plastic against Brian2 and NEST on the same workloads, in the same run.

    python bench/run.py [--workloads W1,W2,W3] [--runs 3] [--peers auto|none]
                        [--targets nest,brian2-cpp,...] [--csv bench/results.csv] [--md FILE]

Every measurement is a whole process (interpreter start, imports, building, simulating,
writing results), timed from outside; the table shows the median of ``--runs`` runs and the
ratio peer / plastic. plastic runs after ``plastic warmup`` (not timed), which fills Numba's
cache and compiles the kernels ahead of time, and with its bytecode compiled, as an installed
package has it. Peers run with ``$PLASTIC_PEERS_PYTHON`` (default /work/peers-venv/bin/python, a
virtual environment with brian2 and nest-simulator, see bench/PEERS.md) via bench/peers.py;
with ``--peers auto`` they are skipped when that interpreter is missing.

The workloads are the protocols in bench/workloads/ (W1 STDP window, 101 conditions; W2 Song,
Miller & Abbott 2000, 1000 inputs, 100 s; W3 10,000 x 1,000 plastic synapses, 10 s) and the
same models in bench/peers.py. Results go to a CSV (one row per run) and optionally to a
Markdown table with the machine described.
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
WORKLOADS = {"W1": "w1_stdp_window.yaml", "W2": "w2_song2000.yaml", "W3": "w3_large.yaml"}
PEER_PY = os.environ.get("PLASTIC_PEERS_PYTHON", "/work/peers-venv/bin/python")
DEFAULT_TARGETS = {
    "W1": [("nest", 1), ("brian2-cpp", 1), ("brian2-cython", 1)],
    "W2": [("nest", 1), ("brian2-cpp", 1), ("brian2-cython", 1)],
    "W3": [("nest", 2), ("brian2-cpp", 2)],
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


def run_plastic(workload: str, runs: int, tmp: Path) -> list[dict]:
    protocol = HERE / "workloads" / WORKLOADS[workload]
    rows = []
    for k in range(runs):
        out = tmp / f"{workload}-{k}"
        wall, rss, _ = timed(plastic_cmd("run", str(protocol), "--out", str(out), "--force", "--quiet"))
        meta = json.loads((out / "run.json").read_text())
        prof = meta["profile"]
        rows.append({"workload": workload, "tool": "plastic", "threads": max(prof.get("workers") or 1, prof.get("threads") or 1), "run": k + 1,
                     "wall_s": wall, "max_rss_kib": rss, "detail": json.dumps(meta["profile"])})
        # each run finds the same system: no gigabytes of an earlier run's files (W3 writes an
        # 800 MB summary) waiting in the page cache to be written back while it runs
        shutil.rmtree(out)
        time.sleep(1.0)
    return rows


def run_peer(workload: str, target: str, threads: int, runs: int) -> list[dict]:
    rows = []
    for k in range(runs):
        wall, rss, out = timed([PEER_PY, str(HERE / "peers.py"), workload, "--target", target, "--threads", str(threads)])
        line = out.strip().splitlines()[-1]
        info = json.loads(line)
        rows.append({"workload": workload, "tool": target, "threads": threads, "run": k + 1, "wall_s": wall,
                     "max_rss_kib": rss, "detail": json.dumps({k2: info.get(k2) for k2 in ("sim_s", "setup_s", "import_s")})})
    return rows


def table(rows: list[dict]) -> list[dict]:
    out = []
    by = {}
    for r in rows:
        by.setdefault((r["workload"], r["tool"], r["threads"]), []).append(r)
    for (w, tool, threads), rs in by.items():
        out.append({"workload": w, "tool": tool, "threads": threads, "median_s": statistics.median(r["wall_s"] for r in rs),
                    "max_rss_mib": max(r["max_rss_kib"] for r in rs) / 1024, "runs": len(rs)})
    for t in out:
        base = next((x for x in out if x["workload"] == t["workload"] and x["tool"] == "plastic"), None)
        t["ratio"] = t["median_s"] / base["median_s"] if base else float("nan")
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
    lines = ["| workload | tool | threads | median wall (s) | peer / plastic | peak memory (MiB) |", "|---|---|---|---|---|---|"]
    for t in sorted(summary, key=lambda x: (x["workload"], x["tool"] != "plastic", x["median_s"])):
        ratio = "1" if t["tool"] == "plastic" else f"{t['ratio']:.1f}x"
        lines.append(f"| {t['workload']} | {t['tool']} | {t['threads']} | {t['median_s']:.2f} | {ratio} | {t['max_rss_mib']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", default="W1,W2,W3")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--peers", choices=["auto", "none"], default="auto")
    ap.add_argument("--targets", default="", help="peer targets, e.g. nest:1,brian2-cpp:2 (default: per workload)")
    ap.add_argument("--csv", default=str(HERE / "results.csv"))
    ap.add_argument("--md", default="", help="also write the Markdown table here")
    args = ap.parse_args(argv)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    peers = args.peers == "auto" and Path(PEER_PY).exists()
    if args.peers == "auto" and not peers:
        print(f"peers skipped: no interpreter at {PEER_PY} (set PLASTIC_PEERS_PYTHON)", file=sys.stderr)
    # not timed: Python's bytecode of plastic (as `pip install` writes it), then `plastic warmup`
    # (Numba's cache and the ahead-of-time compiled kernels)
    import plastictool

    timed([sys.executable, "-m", "compileall", "-q", str(Path(plastictool.__file__).parent)])
    _, _, log = timed(plastic_cmd("warmup"))
    print(log.strip(), file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in workloads:
            print(f"{w}: plastic ...", file=sys.stderr, flush=True)
            rows += run_plastic(w, args.runs, Path(tmp))
            if peers:
                targets = DEFAULT_TARGETS[w]
                if args.targets:
                    targets = [(t.split(":")[0], int(t.split(":")[1]) if ":" in t else 1) for t in args.targets.split(",")]
                for target, threads in targets:
                    print(f"{w}: {target} ({threads} thread{'s' if threads > 1 else ''}) ...", file=sys.stderr, flush=True)
                    rows += run_peer(w, target, threads, args.runs)
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
