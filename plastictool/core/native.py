"""Ahead-of-time compiled kernels: start-up without Numba.

Importing Numba and loading kernels from its cache costs about half a second in every process
(Numba's import, then its typing and lowering registries on the first call), which dominates
short runs. ``plastic warmup`` therefore also compiles every entry kernel (the ones Python
calls: each rule's ``advance``, the CSV formatters; see ``jit(entry=True)``) for every
argument type it met, with Numba's ahead-of-time compiler (``numba.pycc``), into one C
extension module in the user's cache folder. Later processes import that module (a
millisecond, no Numba) and call its functions; a call whose argument types the module does not
have, a changed source file, or a missing module fall back to the Numba JIT and its cache, so
the results never depend on whether the module is there. The module's size and sha256 are
recorded in its index at build time and checked before it is imported: a truncated or garbled
module (which would crash the process on import) is skipped with a one-line warning.

The module is compiled from the same Python functions, by the same Numba and LLVM, with the
same options as the JIT (``error_model="numpy"``, the GIL released, no fastmath, code for
this machine's CPU and its features), so its results are identical bit for bit; ``warmup``
checks that on its protocols before it keeps the module.

Where: ``$PLASTIC_CACHE_DIR`` or ``$XDG_CACHE_HOME/plastic`` or ``~/.cache/plastic``, in
``native/<fingerprint>/``; the fingerprint hashes the kernel sources (``plastictool/core``,
``plastictool/rules``), Python's and NumPy's versions and the machine, so an upgrade or an edit
simply makes a new one. The CPU's model and feature flags are part of the fingerprint too (the code
uses this CPU's instruction set). ``PLASTIC_NATIVE=0`` ignores the module.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

MODULE = "plastic_kernels"
INDEX = "index.json"


# ---------------------------------------------------------------------------- where
def cache_root() -> Path:
    if os.environ.get("PLASTIC_CACHE_DIR"):
        return Path(os.environ["PLASTIC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "plastic"


def kernel_sources() -> list[Path]:
    pkg = Path(__file__).resolve().parent.parent
    return sorted(list((pkg / "core").glob("*.py")) + list((pkg / "rules").glob("*.py")))


def fingerprint() -> str:
    h = hashlib.sha256()
    for f in kernel_sources():
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    h.update(f"{sys.version}|{sys.implementation.cache_tag}|{np.__version__}|{platform.machine()}|{cpu_id()}".encode())
    return h.hexdigest()[:20]


def cpu_id() -> str:
    """The CPU model and its feature flags: the module is compiled for this CPU's instruction set,
    so a home folder shared by machines with different CPUs holds one module per CPU."""
    try:
        with open("/proc/cpuinfo", "rb") as fh:
            info = fh.read(65536).decode("ascii", "replace")
    except OSError:  # not Linux
        return platform.processor() or platform.machine()
    keep = [line for line in info.splitlines()[:64] if line.startswith(("model name", "flags", "Features", "CPU part", "vendor_id"))]
    return hashlib.sha256("\n".join(keep).encode()).hexdigest()[:16]


def folder() -> Path:
    return cache_root() / "native" / fingerprint()


def enabled() -> bool:
    return os.environ.get("PLASTIC_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


# ---------------------------------------------------------------------------- argument keys
# A key says what Numba's typeof would say of an argument, in plain tuples of strings; the
# runtime computes it from values (``argkey``), the build from Numba types (``typekey``).
def argkey(x):
    if isinstance(x, np.ndarray):
        f = x.flags
        return ("a", x.dtype.char, x.ndim, "C" if f.c_contiguous else ("F" if f.f_contiguous else "A"), f.writeable, f.aligned)
    if isinstance(x, tuple):
        return (type(x).__module__ + "." + type(x).__qualname__ if hasattr(x, "_fields") else "tuple",) + tuple(argkey(v) for v in x)
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, int):
        return "int64" if -(2**63) <= x < 2**63 else "?"
    if isinstance(x, float):
        return "float64"
    if isinstance(x, np.generic):
        return x.dtype.name
    if x is None:
        return "none"
    return "?"


def typekey(t):
    from numba.core import types

    if isinstance(t, types.Array):
        from numba.np.numpy_support import as_dtype

        return ("a", as_dtype(t.dtype).char, t.ndim, t.layout, bool(t.mutable), bool(t.aligned))
    if isinstance(t, types.BaseNamedTuple):
        return (t.instance_class.__module__ + "." + t.instance_class.__qualname__,) + tuple(typekey(v) for v in t.types)
    if isinstance(t, types.BaseTuple):
        return ("tuple",) + tuple(typekey(v) for v in t.types)
    if isinstance(t, types.Boolean):
        return "bool"
    if isinstance(t, (types.Integer, types.Float)):
        return str(t)
    if isinstance(t, types.NoneType):
        return "none"
    return "?" + str(t)


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


# ---------------------------------------------------------------------------- loading
def load(where: Path | None = None) -> dict | None:
    """``{kernel qualname: {argument key: function}}`` from the compiled module, or None."""
    if not enabled():
        return None
    try:
        where = folder() if where is None else where
        index = json.loads((where / INDEX).read_text())
        import importlib.machinery
        import importlib.util

        path = where / index["file"]
        if not intact(path, index):
            return None
        spec = importlib.util.spec_from_file_location(MODULE, path, loader=importlib.machinery.ExtensionFileLoader(MODULE, str(path)))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    except (OSError, ImportError, ValueError, KeyError):
        return None
    table: dict = {}
    for name, entries in index["kernels"].items():
        table[name] = {_tuples(key): getattr(mod, sym) for key, sym in entries}
    return table


def file_digest(path: Path) -> tuple[int, str]:
    """Size and sha256 of a file."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def intact(path: Path, index: dict) -> bool:
    """Whether the module file has the size and sha256 recorded when it was built. Importing a
    truncated or garbled extension module can crash the process (SIGBUS, segfault), so a module
    that fails the check is never imported: the run falls back to the JIT, with a warning."""
    try:
        ok = file_digest(path) == (index["size"], index["sha256"])
    except (OSError, KeyError, TypeError):
        ok = False
    if not ok:
        sys.stderr.write(
            f"warning: the ahead-of-time kernel module {path} is damaged or incomplete; using the JIT "
            "(run `plastic warmup` to rebuild it)\n"
        )
    return ok


# ---------------------------------------------------------------------------- building
def _entries(kernels) -> list[tuple[str, str, object, object]]:
    """(qualname, symbol, python function, Numba signature) for every compiled signature."""
    out = []
    for k in kernels:
        disp = k.dispatcher
        for n, sig in enumerate(disp.nopython_signatures):
            qual = qualname(k.py_func)
            out.append((qual, f"{qual.replace('.', '_')}__{n}", k.py_func, sig))
    return out


def qualname(func) -> str:
    return func.__module__ + "." + func.__qualname__


def build(kernels, where: Path | None = None) -> Path:
    """Compile the signatures the JIT has compiled for ``kernels`` into the module at ``where``
    (written to a temporary sibling folder and renamed into place). Raises on failure."""
    import shutil
    import tempfile

    import numba.pycc.compiler as pycc_compiler
    from numba.core.codegen import AOTCPUCodegen
    from numba.pycc import CC

    from .jit import OPTIONS

    where = folder() if where is None else where
    entries = _entries(kernels)
    if not entries:
        raise RuntimeError("no compiled kernel signatures to build (run the kernels first)")
    where.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=where.parent))

    class Flags(pycc_compiler.Flags):
        """The JIT's options (jit.OPTIONS) for the ahead-of-time compiler."""

        def __init__(self, *args, **kws):
            super().__init__(*args, **kws)
            self.error_model = OPTIONS["error_model"]
            self.release_gil = bool(OPTIONS["nogil"])

    saved_flags, saved_features = pycc_compiler.Flags, AOTCPUCodegen._customize_tm_features
    # the JIT compiles for this CPU with its exact features; do the same (a CPU name alone can
    # imply features that a virtual machine masks)
    AOTCPUCodegen._customize_tm_features = lambda self: self._get_host_cpu_features() if self._cpu_name == "host" else ""
    pycc_compiler.Flags = Flags
    try:
        cc = CC(MODULE)
        cc.output_dir = str(tmp)
        cc.target_cpu = "host"
        cc.verbose = False
        index: dict = {}
        for qual, sym, func, sig in entries:
            cc.export(sym, sig)(func)
            index.setdefault(qual, []).append([typekey_json(sig.args), sym])
        cc.compile()
        size, digest = file_digest(tmp / cc.output_file)
        (tmp / INDEX).write_text(json.dumps({"file": cc.output_file, "size": size, "sha256": digest, "kernels": index}, indent=1))
        if where.exists():
            shutil.rmtree(where)
        os.replace(tmp, where)
    finally:
        pycc_compiler.Flags, AOTCPUCodegen._customize_tm_features = saved_flags, saved_features
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return where


def typekey_json(args):
    return [typekey(t) for t in args]
