"""Ahead-of-time compiled kernels: start-up without Numba.

Importing Numba and loading kernels from its cache costs about half a second in every process
(Numba's import, then its typing and lowering registries on the first call), which dominates
short runs. So the entry kernels (the ones Python calls: each rule's ``advance``, the recording
drivers, the table formatters, the event sort; see ``jit(entry=True)``) are compiled ahead of time with Numba's
``numba.pycc``, for the argument types committed in ``signatures.json`` (those the warmup
protocols of every rule, neuron model and weight dtype meet; ``python -m
plastictool.core.native --write-signatures`` regenerates it), into C extension modules. Later
processes import a module (a millisecond, no Numba) when they first call one of its kernels and
call its functions; a call whose argument types no module has, a changed source file, or a
missing module fall back to the Numba JIT and its cache, so the results never depend on
whether a module is there. A module's size and sha256 are recorded in its index at build time
and checked before it is imported: a truncated or garbled module (which would crash the
process on import) is skipped with a one-line warning.

The modules are compiled from the same Python functions, by the same Numba and LLVM, with the
same options as the JIT (``error_model="numpy"``, the GIL released, no fastmath, code for
this machine's CPU and its features), so their results are identical bit for bit (the tests
check it on the golden files, float32 runs included).

Two places, both named by a fingerprint that hashes the kernel sources (``plastictool/core``,
``plastictool/rules``), Python's and NumPy's versions and this CPU's model and features (the
code uses its instruction set), and used only with the Numba that compiled them:

* ``pip install .`` (and ``-e .``; setup.py) compiles the float64 signatures (the default dtype;
  ``PLASTIC_BUILD_NATIVE=all``: float32 too) into ``plastictool/_native/``: modules compiled side
  by side, each in a folder with its index, and an index with the fingerprint, the Numba that
  compiled them and what the fingerprint is made of. A failed build leaves its reason there.
* ``plastic warmup`` (:func:`warmup_build`) compiles the committed signatures that the
  package's module lacks (float32; all of them where the install built none, or built them with
  another Numba, as pip's isolated build can) into ``native/<fingerprint>/`` of the cache folder
  (``$PLASTIC_CACHE_DIR`` or ``$XDG_CACHE_HOME/plastic`` or ``~/.cache/plastic``).

A process looks up the cache's modules first, then the package's. ``plastic warmup --check``
(:func:`check`) says which of them a run would use and why not. ``PLASTIC_NATIVE=0`` ignores
them, ``PLASTIC_NATIVE=cache`` the package's, ``PLASTIC_NATIVE=require`` makes a call that no
module serves an error.
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
SIGNATURES = Path(__file__).with_name("signatures.json")  # what the package's module is built from
PACKAGE = Path(__file__).resolve().parent.parent / "_native"  # where pip install builds it


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


def environment() -> dict:
    """What the fingerprint is made of, one by one: kept in a module's index so that
    ``plastic warmup --check`` can say why a module does not serve this process."""
    h = hashlib.sha256()
    for f in kernel_sources():
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return {"sources": h.hexdigest()[:20], "python": sys.version.split()[0], "numpy": np.__version__, "cpu": f"{platform.machine()} {cpu_id()}"}


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
    """False with ``PLASTIC_NATIVE=0`` (no module); ``PLASTIC_NATIVE=cache`` uses only the module of
    ``plastic warmup``, not the package's; ``PLASTIC_NATIVE=require`` makes a kernel call that no
    module has an error."""
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


def keytype(key):
    """The Numba type of a key: the inverse of :func:`typekey` (``typekey(keytype(k)) == k``).
    A named tuple's class is imported by its qualified name; a tuple of one type is a UniTuple
    (NamedUniTuple), as ``numba.typeof`` makes it."""
    from numba.core import types

    if isinstance(key, str):
        if key == "bool":
            return types.boolean
        if key == "none":
            return types.none
        t = getattr(types, key, None)
        if isinstance(t, (types.Integer, types.Float)):
            return t
        raise ValueError(f"no Numba type for the key {key!r}")
    key = _tuples(key)
    if key[0] == "a":
        from numba.np.numpy_support import from_dtype

        _, char, ndim, layout, mutable, aligned = key
        return types.Array(from_dtype(np.dtype(char)), ndim, layout, readonly=not mutable, aligned=aligned)
    items = [keytype(k) for k in key[1:]]
    if key[0] == "tuple":
        return types.BaseTuple.from_types(items)
    import importlib

    parts = key[0].split(".")
    for n in range(len(parts) - 1, 0, -1):  # the longest importable prefix is the module
        try:
            cls = importlib.import_module(".".join(parts[:n]))
        except ImportError:
            continue
        for name in parts[n:]:
            cls = getattr(cls, name)
        return types.BaseTuple.from_types(items, cls)
    raise ValueError(f"no class {key[0]!r}")


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


# ---------------------------------------------------------------------------- loading
def load(where: Path | None = None) -> dict | None:
    """``{kernel qualname: {argument key: function}}`` from the compiled modules, or None.

    With ``where``: the module of that folder, imported now. By default: the modules of the
    cache folder (``plastic warmup``: what the package's module lacks) and the package's
    (built at install), when they were built for these sources and this Numba, the cache's
    first; a module is imported (a dlopen and a sha256 of its file) only when one of its kernels
    is first called: its entries are :class:`Deferred` until then (``jit.LazyKernel``)."""
    if not enabled():
        return None
    if where is not None:
        return _load_folder(where)
    try:
        fp = fingerprint()
    except OSError:
        return None
    table: dict = {}
    parts = cache_parts(fp)
    if os.environ.get("PLASTIC_NATIVE", "").strip().lower() != "cache":
        parts += package_parts(fp)
    for w in parts:
        for name, keys in (_load_folder(w, lazy=True) or {}).items():
            mine = table.setdefault(name, {})
            for key, f in keys.items():
                mine.setdefault(key, f)
    return table or None


def _read_index(where: Path) -> dict | None:
    try:
        index = json.loads((where / INDEX).read_text())
    except (OSError, ValueError):
        return None
    return index if isinstance(index, dict) else None


def _usable_parts(where: Path, fp: str) -> list[Path]:
    """The part folders of a module folder whose index (``build_package``) matches the
    fingerprint and this Numba; else []."""
    index = _read_index(where)
    try:
        if index["fingerprint"] != fp or index["numba"] != numba_version():
            return []
        return [where / part for part in index["parts"]]
    except (KeyError, TypeError):
        return []


def package_parts(fp: str | None = None) -> list[Path]:
    """The folders of the package's module (built by ``pip install``), when it was built from
    these kernel sources, with this NumPy and Numba, for this CPU (the fingerprint), else []."""
    return _usable_parts(PACKAGE, fp or fingerprint())


def cache_parts(fp: str | None = None) -> list[Path]:
    """The folders of the module of ``plastic warmup`` in the cache folder, for these sources and
    this Numba; [] without one. (A module of an older warmup, one folder with ``file`` in its
    index, is that folder.)"""
    where = cache_root() / "native" / (fp or fingerprint())
    index = _read_index(where)
    if index is not None and "file" in index and "kernels" in index:
        return [where]
    return _usable_parts(where, fp or fingerprint())


def module_keys(parts: list[Path]) -> dict:
    """``{stable kernel name: {argument key, ...}}`` that the modules of ``parts`` hold (read from
    their indexes; nothing is imported)."""
    out: dict = {}
    for w in parts:
        index = _read_index(w) or {}
        for qual, entries in (index.get("kernels") or {}).items():
            out.setdefault(stable_name(qual), set()).update(_tuples(key) for key, _ in entries)
    return out


def lacking(sigs: dict, have: dict) -> dict:
    """The signatures of ``sigs`` (``{name: [key, ...]}``) that ``have`` (``module_keys``) lacks."""
    out = {}
    for name, keys in sigs.items():
        rest = [k for k in keys if k not in have.get(name, ())]
        if rest:
            out[name] = rest
    return out


def numba_version() -> str | None:
    """The installed Numba's version, read from its files (importing Numba takes half a second):
    the package's module is used only with the Numba that compiled it, the one the JIT uses."""
    import importlib.util
    import re

    try:
        spec = importlib.util.find_spec("numba")
        text = Path(spec.submodule_search_locations[0], "_version.py").read_text()
    except (ImportError, AttributeError, TypeError, IndexError, OSError):
        return None
    m = re.search(r'"version": "([^"]+)"', text)
    return m.group(1) if m else None


def _load_folder(where: Path, lazy: bool = False) -> dict | None:
    """The table of the module in ``where``; ``lazy``: its entries are :class:`Deferred` (the
    module is imported on the first call of one of them), else it is imported now."""
    index = _read_index(where)
    if index is None or not isinstance(index.get("kernels"), dict) or "file" not in index:
        return None
    part = _Module(where, index)
    if not lazy and part.get() is None:
        return None
    table: dict = {}
    try:
        for name, entries in index["kernels"].items():
            table[name] = {_tuples(key): (Deferred(part, sym) if lazy else getattr(part.get(), sym)) for key, sym in entries}
    except (AttributeError, TypeError, ValueError):
        return None
    return table


class _Module:
    """A compiled module, imported on first use (after its size and sha256 check)."""

    def __init__(self, where: Path, index: dict):
        import threading

        self.where, self.index, self._mod = where, index, False
        self._lock = threading.Lock()  # a run's threads may call its first kernels at once

    def get(self):
        """The imported module, or None when it is damaged or cannot be imported."""
        if self._mod is False:
            with self._lock:
                if self._mod is False:
                    self._mod = _import(self.where, self.index)
        return self._mod


class Deferred:
    """A kernel of a module not imported yet; ``get()`` imports it and returns the function (None
    when the module is damaged: the call goes to the JIT)."""

    __slots__ = ("module", "symbol")

    def __init__(self, module: _Module, symbol: str):
        self.module, self.symbol = module, symbol

    def get(self):
        mod = self.module.get()
        return None if mod is None else getattr(mod, self.symbol, None)


def _import(where: Path, index: dict):
    try:
        import importlib.machinery
        import importlib.util

        path = where / index["file"]
        if not intact(path, index):
            return None
        name = index.get("module", MODULE)
        spec = importlib.util.spec_from_file_location(name, path, loader=importlib.machinery.ExtensionFileLoader(name, str(path)))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    except (OSError, ImportError, ValueError, KeyError, TypeError):
        return None


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
def qualname(func) -> str:
    return func.__module__ + "." + func.__qualname__


def _install(make, where: Path) -> Path:
    """``make(tmp)`` fills a temporary sibling folder of ``where``, which then replaces ``where``."""
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=where.parent))
    try:
        make(tmp)
        if where.exists():
            shutil.rmtree(where)
        os.replace(tmp, where)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return where


def _compile(entries, out: Path, module: str) -> None:
    """Compile ``(qualname, symbol, python function, argument types)`` entries with numba.pycc
    into the extension module ``module`` in the folder ``out``, with its index."""
    import numba.pycc.compiler as pycc_compiler
    from numba.core.codegen import AOTCPUCodegen
    from numba.pycc import CC

    from .jit import OPTIONS, _load_numba

    _load_numba()  # kernels calling kernels see dispatchers

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
        cc = CC(module)
        cc.output_dir = str(out)
        cc.target_cpu = "host"
        cc.verbose = False
        index: dict = {}
        for qual, sym, func, args in entries:
            cc.export(sym, tuple(args))(func)  # the return type inferred, as the JIT does
            index.setdefault(qual, []).append([[typekey(t) for t in args], sym])
        cc.compile()
        size, digest = file_digest(out / cc.output_file)
        (out / INDEX).write_text(json.dumps({"file": cc.output_file, "module": module, "size": size, "sha256": digest, "kernels": index}, indent=1))
    finally:
        pycc_compiler.Flags, AOTCPUCodegen._customize_tm_features = saved_flags, saved_features


def typekey_json(args):
    return [typekey(t) for t in args]


# ---------------------------------------------------------------------------- the package's module
# ``pip install`` builds a module from the signatures committed in ``signatures.json`` (setup.py),
# so the first run of a fresh install needs neither Numba's compiler nor ``plastic warmup``.
# ``python -m plastictool.core.native --write-signatures`` regenerates that file (after a change
# of an entry kernel's arguments); tests/test_native.py fails when a run meets a key it lacks.
def stable_name(qual: str) -> str:
    """A kernel's name without the source hash that a recording driver's name carries
    (``plastictool.core.record.drive_stdp_<hash>`` -> ``...drive_stdp``)."""
    import re

    return re.sub(r"(\.drive_\w+?)_[0-9a-f]{12}$", r"\1", qual)


def entry_kernels() -> dict:
    """``{stable name: LazyKernel}`` of every entry kernel: each rule's, the recording driver and
    the batch driver (``core.batch``) of each rule that has one, the table formatters (CSV and npy),
    the sort of big inputs' events (``core.sort``)."""
    from .. import rules as registry
    from . import batch, columns, fmt, record, sort  # noqa: F401  (columns, fmt and sort list their entry kernels)
    from .jit import ENTRIES

    for kind in registry.kinds():
        m = registry.module(kind)
        if record.has_driver(m):
            record.driver(m)
            batch.driver(m)
    return {stable_name(qualname(k.py_func)): k for k in ENTRIES}


def write_signatures(path: Path = SIGNATURES) -> dict:
    """Run the warmup protocols (``api.warmup_runs``) through the JIT and write every entry
    kernel's compiled argument types to ``path``; returns ``{kernel: number of signatures}``."""
    import tempfile

    from .. import api
    from . import jit

    kernels = entry_kernels()
    jit.use_native(False)
    try:
        with tempfile.TemporaryDirectory(prefix="plastic-signatures-") as tmp:
            api.warmup_runs(Path(tmp))
        from .sort import radix_sort_u32  # (the warmup protocols' events are too few for it)

        radix_sort_u32(np.zeros(3, np.uint32), np.zeros(3, np.uint32))
    finally:
        jit.use_native(True)
    out = {}
    for name in sorted(kernels):
        keys = sorted({json.dumps(typekey_json(sig.args)) for sig in kernels[name].dispatcher.nopython_signatures})
        for k in keys:
            if tuple(typekey(keytype(a)) for a in json.loads(k)) != _tuples(json.loads(k)):
                raise RuntimeError(f"{name}: the key {k} does not survive a round trip through keytype")
        if keys:
            out[name] = keys
    lines = ",\n".join(f"  {json.dumps(name)}: [\n" + ",\n".join(f"   {k}" for k in keys) + "\n  ]" for name, keys in out.items())
    path.write_text('{\n "comment": "argument types of the entry kernels that the warmup protocols call; made by '
                    'python -m plastictool.core.native --write-signatures",\n "kernels": {\n' + lines + "\n }\n}\n")
    return {name: len(keys) for name, keys in out.items()}


def signatures(path: Path = SIGNATURES, dtypes: tuple[str, ...] | None = None) -> dict:
    """``{stable name: [argument key, ...]}`` from the committed file; with ``dtypes`` (NumPy type
    characters such as ``("d",)``), only the signatures whose float arrays are of those types."""
    doc = json.loads(path.read_text())["kernels"]
    if dtypes is None:
        return {name: [_tuples(k) for k in keys] for name, keys in doc.items()}

    def floats(key):
        if isinstance(key, list) and key and key[0] == "a":
            return {key[1]} & {"f", "d"}
        return set().union(*(floats(k) for k in key[1:])) if isinstance(key, list) else set()

    out = {}
    for name, keys in doc.items():
        keep = [_tuples(k) for k in keys if set().union(*(floats(a) for a in k)) <= set(dtypes)]
        if keep:
            out[name] = keep
    return out


def _parts(sigs: dict, kernels: dict, n: int) -> list[list]:
    """The signatures split into ``n`` lists of entries of about equal compile time (a kernel's
    signatures in one list: they share the compiled kernels they call)."""
    weight = {name: len(keys) * (4 if ("drive_" in name or "advance" in name) else 1) for name, keys in sigs.items()}
    parts: list[list] = [[] for _ in range(n)]
    load = [0] * n
    for name in sorted(sigs, key=lambda x: -weight[x]):
        k = kernels.get(name)
        if k is None:
            raise KeyError(f"signatures.json names {name}, which is no entry kernel (regenerate it)")
        i = load.index(min(load))
        load[i] += weight[name]
        qual = qualname(k.py_func)
        for j, key in enumerate(sigs[name]):
            parts[i].append((qual, f"{qual.replace('.', '_')}__{j}", k.py_func, [keytype(a) for a in key]))
    return [p for p in parts if p]


def build_package(where: Path = PACKAGE, jobs: int = 2, dtypes: tuple[str, ...] | None = None, sigs: dict | None = None) -> Path:
    """Compile the committed signatures (those of ``dtypes``, or ``sigs``: ``{name: [key, ...]}``)
    into ``where`` (``plastictool/_native``, or the cache folder for ``plastic warmup``): ``jobs``
    modules compiled side by side in new processes, and an index with the fingerprint, the Numba
    that compiled them and what the fingerprint is made of. Raises on failure."""
    import subprocess
    import sys
    import tempfile

    _toolchain()
    fp = fingerprint()  # of the sources compiled; checked again at the end
    sigs = signatures(dtypes=dtypes) if sigs is None else sigs
    if not sigs:
        raise RuntimeError("no kernel signatures to compile")
    n = len(_parts(sigs, entry_kernels(), jobs))

    def make(tmp: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2])] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
        wanted = tmp / "signatures.json"  # what the parts compile (each takes its share)
        wanted.write_text(json.dumps({"kernels": sigs}))
        errs = [tempfile.TemporaryFile("w+") for _ in range(n)]
        procs = [subprocess.Popen([sys.executable, "-m", "plastictool.core.native", "--build-part", f"{i}/{n}", str(tmp / str(i)), str(wanted)], env=env, stderr=errs[i])
                 for i in range(n)]
        codes = [p.wait() for p in procs]
        for code, err in zip(codes, errs):
            err.seek(0)
            text = err.read().strip()
            if code:  # the last line of the first failure: the exception
                raise RuntimeError(f"compiling the module failed: {(text.splitlines() or [f'exit {code}'])[-1]}")
        wanted.unlink()
        if fingerprint() != fp:
            raise RuntimeError("the kernel sources changed during the build")
        index = {"fingerprint": fp, "numba": numba_version(), **environment(), "parts": [str(i) for i in range(n)]}
        (tmp / INDEX).write_text(json.dumps(index, indent=1))

    where.parent.mkdir(parents=True, exist_ok=True)
    return _install(make, where)


def _count(sigs: dict) -> int:
    return sum(len(keys) for keys in sigs.values())


def _ignore_package() -> bool:
    return os.environ.get("PLASTIC_NATIVE", "").strip().lower() == "cache"


def build_jobs() -> int:
    """Modules compiled side by side: ``$PLASTIC_BUILD_JOBS``, else the CPUs this process may
    use, at most 4."""
    try:
        return max(1, int(os.environ["PLASTIC_BUILD_JOBS"]))
    except (KeyError, ValueError):
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, min(4, cpus))


def warmup_build(jobs: int | None = None) -> dict:
    """What ``plastic warmup`` compiles: the committed signatures of every weight dtype (float64
    and float32) that the package's module lacks (all of them where it has none for these
    sources and this Numba: a failed or skipped build, pip's isolated build with another Numba),
    into ``native/<fingerprint>/`` of the cache folder; nothing where the modules there have them
    already. Returns ``{"signatures", "package", "cached", "compiled", "folder", "seconds"}``:
    the committed signatures, those the package's module serves, those an earlier warmup
    compiled, those compiled now, and where."""
    import time

    fp = fingerprint()
    sigs = signatures()
    need = lacking(sigs, {} if _ignore_package() else module_keys(package_parts(fp)))
    where = cache_root() / "native" / fp
    out = {"signatures": _count(sigs), "package": _count(sigs) - _count(need), "cached": 0, "compiled": 0, "folder": None, "seconds": 0.0}
    if not need:
        return out
    if not lacking(need, module_keys(cache_parts(fp))):
        out.update(cached=_count(need), folder=str(where))
        return out
    t0 = time.perf_counter()
    build_package(where, jobs or build_jobs(), sigs=need)
    out.update(compiled=_count(need), folder=str(where), seconds=time.perf_counter() - t0)
    return out


# ---------------------------------------------------------------------------- plastic warmup --check
DTYPES = ("float64", "float32")


def by_dtype(sigs: dict, dtype: str) -> dict:
    """The signatures of runs with ``dtype`` weights: those with a float32 array for float32
    (a run's other arrays are float64), the others for float64."""
    def has_f(key):
        if isinstance(key, tuple) and key and key[0] == "a":
            return key[1] == "f"
        return isinstance(key, tuple) and any(has_f(k) for k in key[1:])

    want = dtype == "float32"
    out = {}
    for name, keys in sigs.items():
        keep = [k for k in keys if any(has_f(a) for a in k) == want]
        if keep:
            out[name] = keep
    return out


def why_unused(index: dict | None, fp: str) -> str | None:
    """Why the module of a folder with this index does not serve this process; None when it does."""
    if index is None:
        return "none"
    if "error" in index:
        return f"not built: {index['error']}"
    env = environment()
    numba = numba_version()
    if "file" not in index and index.get("numba") != numba:  # (an older warmup's module has no Numba version)
        return f"built with Numba {index.get('numba')}, this environment has Numba {numba}"
    if index.get("fingerprint", fp) == fp:
        return None
    diffs = [f"built with {label} {index[key]}, this environment has {label} {env[key]}" for key, label in (("numpy", "NumPy"), ("python", "Python")) if key in index and index[key] != env[key]]
    if index.get("sources", env["sources"]) != env["sources"]:
        diffs.append("built from other kernel sources (plastictool/core or plastictool/rules changed since)")
    if index.get("cpu", env["cpu"]) != env["cpu"]:
        diffs.append("built for another CPU")
    return "; ".join(diffs) or "built from other kernel sources, for another Python or another CPU"


def check() -> list[str]:
    """Lines for ``plastic warmup --check``: the package's module and the cache's (used or why
    not, how many signatures of which weight dtype), then, per weight dtype, which compiled code
    a run would use. Imports neither the modules nor Numba."""
    fp = fingerprint()
    sigs = signatures()
    lines = []
    on = enabled()
    if not on:
        lines.append("PLASTIC_NATIVE=0: runs ignore the ahead-of-time kernels and use Numba's JIT")
    pkg, cache = PACKAGE, cache_root() / "native" / fp
    pkg_parts, cache_parts_ = package_parts(fp), cache_parts(fp)
    for label, where, parts, hint in (
        ("installed kernels", pkg, pkg_parts, "pip install builds them; PLASTIC_BUILD_NATIVE=0 skips that"),
        ("plastic warmup's kernels", cache, cache_parts_, "plastic warmup compiles what the installed ones lack"),
    ):
        index = _read_index(where)
        why = why_unused(index, fp)
        if why is None and label.startswith("installed") and _ignore_package():
            why = "ignored (PLASTIC_NATIVE=cache)"
        if why is None:
            have = module_keys(parts)
            counts = ", ".join(f"{_count(by_dtype(sigs, d)) - _count(lacking(by_dtype(sigs, d), have))} {d}" for d in DTYPES)
            lines.append(f"{label}: {where}: used ({counts} signatures; Numba {index.get('numba') or numba_version()})")
        elif why == "none":
            lines.append(f"{label}: none for these kernel sources in {where} ({hint})")
        else:
            if "Numba" in why and label.startswith("installed"):
                why += " (pip's isolated build compiled them with another Numba than this environment's: `pip install --no-build-isolation` builds with this one, or `plastic warmup` compiles them for it)"
            lines.append(f"{label}: {where}: not used: {why}")
    have = module_keys((cache_parts_ + ([] if _ignore_package() else pkg_parts)) if on else [])
    for name in DTYPES:
        n, miss = _count(by_dtype(sigs, name)), _count(lacking(by_dtype(sigs, name), have))
        if not miss:
            lines.append(f"runs with {name} weights: ahead-of-time kernels ({n} of {n} signatures), without Numba")
        else:
            what = "Numba's JIT" if miss == n else f"ahead-of-time kernels for {n - miss} of {n} signatures, Numba's JIT for the others"
            lines.append(f"runs with {name} weights: {what} (`plastic warmup` compiles the missing ones ahead of time)" if on else f"runs with {name} weights: {what}")
    return lines


def _toolchain() -> None:
    """Raise at once (not after minutes of compiling) when numba.pycc or a C compiler is missing."""
    import shlex
    import shutil
    import sysconfig

    try:
        import numba.pycc  # noqa: F401  (pending deprecation in Numba)
    except ImportError as exc:
        raise RuntimeError(f"this Numba has no numba.pycc ({exc})") from None
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    exe = (shlex.split(cc) or ["cc"])[0]
    if not shutil.which(exe):
        raise RuntimeError(f"no C compiler ({exe} not found)")


def _build_part(spec: str, out: str, wanted: str) -> None:
    from .jit import OPTIONS

    OPTIONS["cache"] = False  # nothing for Numba's cache: these are the build's own sources
    i, n = (int(x) for x in spec.split("/"))
    part = _parts(signatures(Path(wanted)), entry_kernels(), n)[i]
    Path(out).mkdir(parents=True)
    _compile(part, Path(out), f"{MODULE}_{i}")


def main(argv: list[str]) -> int:
    """``--write-signatures``: regenerate signatures.json; ``--build-package [DIR] [--jobs N]
    [--dtypes d]``: compile it (what ``pip install`` does)."""
    import time

    if argv[:1] == ["--write-signatures"]:
        t0 = time.perf_counter()
        counts = write_signatures()
        print(f"wrote {SIGNATURES}: {sum(counts.values())} signatures of {len(counts)} kernels in {time.perf_counter() - t0:.0f} s")
        return 0
    if argv[:1] == ["--build-part"]:
        _build_part(*argv[1:4])
        return 0
    if argv[:1] == ["--build-package"]:
        args = argv[1:]
        jobs = int(args[args.index("--jobs") + 1]) if "--jobs" in args else 2
        dtypes = tuple(args[args.index("--dtypes") + 1].split(",")) if "--dtypes" in args else None
        where = Path(args[0]) if args and not args[0].startswith("--") else PACKAGE
        t0 = time.perf_counter()
        build_package(where, jobs, dtypes)
        print(f"compiled the kernels of {SIGNATURES.name} into {where} in {time.perf_counter() - t0:.0f} s")
        return 0
    print(main.__doc__)
    return 2


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
