"""Where the compile time of a first run goes: one ``plastic run`` in this process on an empty
Numba cache (``PLASTIC_NATIVE=0``), with Numba's compile events timed per kernel.

    python bench/compile_profile.py protocols/stdp_window.yaml [more plastic run options]
    SIGS=1 ...   also the tree of compilations with their argument types

Prints the process CPU time and, per kernel, the thread CPU seconds of its compilations without
those of the kernels it calls ("excl", of which LLVM: optimisation and machine code, under
Numba's LLVM lock), with them ("incl"), and how many signatures were compiled ("x2": one
kernel compiled for two argument types, say a literal constant). CPU time, not wall time: on a
shared machine it varies less (still some 10 %: compare variants interleaved).
"""

from __future__ import annotations

import collections
import os
import sys
import tempfile
import time


def main(argv: list[str]) -> None:
    if not os.environ.get("KEEP_CACHE"):
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-cache-")
    os.environ["PLASTIC_NATIVE"] = "0"
    c0 = time.process_time()
    from numba.core import event

    stack: list[list[float]] = []  # per compilation in progress: start, children's time, LLVM time
    recs = []  # (kernel, argument types, inclusive, exclusive, depth, LLVM)

    class Compile(event.Listener):
        def on_start(self, ev):
            stack.append([time.thread_time(), 0.0, 0.0])

        def on_end(self, ev):
            t, child, llvm = stack.pop()
            dt = time.thread_time() - t
            if stack:
                stack[-1][1] += dt
            f = getattr(ev.data["dispatcher"], "py_func", ev.data["dispatcher"])
            recs.append((f"{f.__module__}.{f.__qualname__}", str(ev.data["args"]), dt, dt - child, len(stack), llvm))

    lock = [0, 0.0]

    class Llvm(event.Listener):
        def on_start(self, ev):
            lock[0] += 1
            if lock[0] == 1:
                lock[1] = time.thread_time()

        def on_end(self, ev):
            lock[0] -= 1
            if lock[0] == 0 and stack:
                stack[-1][2] += time.thread_time() - lock[1]

    event.register("numba:compile", Compile())
    event.register("numba:llvm_lock", Llvm())
    from plastictool import cli

    out = tempfile.mkdtemp(prefix="compile-profile-")
    sys.argv = ["plastic", "run", *argv, "--out", os.path.join(out, "o"), "-q", "--jobs", "1"]
    try:
        cli.main()
    except SystemExit as exc:
        if exc.code not in (0, None):
            print("plastic run: exit", exc.code)
    cpu = time.process_time() - c0
    top = sum(r[2] for r in recs if r[4] == 0)
    print(f"process CPU {cpu:.2f} s, of which compiling {top:.2f} s ({len(recs)} compilations, LLVM {sum(r[5] for r in recs):.2f} s)")
    agg: dict = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for name, _sig, inc, exc, _depth, llvm in recs:
        a = agg[name]
        a[0] += 1
        a[1] += inc
        a[2] += exc
        a[3] += llvm
    for name, (n, inc, exc, llvm) in sorted(agg.items(), key=lambda kv: -kv[1][2]):
        if exc > 0.02:
            print(f"{exc:6.2f} excl ({llvm:5.2f} LLVM) {inc:6.2f} incl x{n} {name}")
    if os.environ.get("SIGS"):
        for name, sig, inc, exc, depth, _llvm in recs:  # callees end first: read bottom-up
            print(f"{'  ' * depth}{inc:.2f}/{exc:.2f} {name} {sig[:300]}")


if __name__ == "__main__":
    main(sys.argv[1:])
