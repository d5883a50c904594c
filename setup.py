"""Installing builds the ahead-of-time kernel module (plastictool/core/native.py).

``pip install .`` and ``pip install -e .`` compile the entry kernels, for the argument types listed
in ``plastictool/core/signatures.json`` that have float64 weights (the default dtype;
``PLASTIC_BUILD_NATIVE=all``: float32 too), with ``numba.pycc`` for this machine's CPU into
``plastictool/_native/``, so that the first run of a fresh install neither compiles nor imports
Numba. The compilation runs in new processes (two modules side by side); when it fails (no C
compiler, a Numba without ``numba.pycc``, a signature that no longer compiles) the install goes
on without the module, with one warning (``pip install -v`` shows it; the reason is kept in
``plastictool/_native/index.json``), and runs use the JIT, with identical results.
``PLASTIC_BUILD_NATIVE=0`` skips the build; ``PLASTIC_BUILD_JOBS`` sets the number of modules
compiled side by side (default: the CPUs, at most 4).

An editable install (``pip install -e .``) also writes the package's bytecode (``__pycache__``),
as pip does for every file of a regular install: where ``PYTHONDONTWRITEBYTECODE`` is set (many
container images and CI machines set it) Python would otherwise compile every module of the
package from source in every process, 60-110 ms of each run's start-up. A module edited later is
recompiled by Python as usual (its bytecode is checked against the source).
"""

from __future__ import annotations

import compileall
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithNative(build_py):
    """build_py, then the native module into the built (or, for an editable install, the source)
    package folder."""

    def run(self):
        super().run()
        editable = getattr(self, "editable_mode", False)
        pkg = ROOT / "plastictool" if editable else Path(self.build_lib) / "plastictool"
        build_native(pkg / "_native")
        if editable:  # (a regular install's bytecode is written by pip)
            try:
                compileall.compile_dir(str(pkg), quiet=1)
            except OSError as exc:  # (a folder it may not write: runs compile from source, as before)
                print(f"plastic: no bytecode written ({exc})")


def build_native(where: Path) -> None:
    mode = os.environ.get("PLASTIC_BUILD_NATIVE", "1").strip().lower()
    if mode in ("0", "false", "no", "off"):
        print("plastic: PLASTIC_BUILD_NATIVE=0: not building the ahead-of-time kernels")
        return
    jobs = os.environ.get("PLASTIC_BUILD_JOBS") or str(max(1, min(4, os.cpu_count() or 1)))
    dtypes = [] if mode == "all" else ["--dtypes", "d"]  # the default: float64 weights only
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    env.pop("PLASTIC_NATIVE", None)
    t0 = time.perf_counter()
    try:
        r = subprocess.run([sys.executable, "-m", "plastictool.core.native", "--build-package", str(where), "--jobs", jobs, *dtypes],
                           env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=3600)
        ok = r.returncode == 0 and (where / "index.json").is_file()
        why = "" if ok else (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
    except (OSError, subprocess.SubprocessError) as exc:
        ok, why = False, f"{type(exc).__name__}: {exc}"
    if ok:
        print(f"plastic: compiled the ahead-of-time kernels in {time.perf_counter() - t0:.0f} s into {where}")
        return
    print(f"WARNING: plastic: no ahead-of-time kernels ({why}); runs compile the kernels with Numba's JIT instead (`plastic warmup` compiles them later; `plastic warmup --check` says which kernels runs use)", file=sys.stderr)
    try:
        where.mkdir(parents=True, exist_ok=True)
        (where / "index.json").write_text(json.dumps({"error": why}) + "\n")
    except OSError:
        pass


class BinaryDistribution(Distribution):
    """The wheel holds a module compiled for this platform (and CPU): not a pure-Python wheel."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithNative}, distclass=BinaryDistribution)
