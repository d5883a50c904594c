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

Installing builds one too. ``pip install .`` (and ``-e .``; setup.py) compiles the entry kernels
for the argument types committed in ``signatures.json`` (the ones the warmup protocols meet;
``python -m plastictool.core.native --write-signatures`` regenerates that file), by default
those with float64 weights only (``--dtypes d``: half the compile time), into
``plastictool/_native/``: two modules compiled side by side, each in a folder with its index,
and an index with the fingerprint and the Numba version that compiled them. A process uses
them only when that fingerprint is its own and the installed Numba is that Numba (so an edited
source, another NumPy, another CPU, as for a wheel copied to another machine, or another Numba
fall back to the JIT). The cache's module of ``plastic warmup``, when there is one, is looked
up first. A failed build leaves no module (and its reason in ``_native/index.json``): the JIT
gives the same results.
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
    """``{kernel qualname: {argument key: function}}`` from the compiled modules, or None: the
    module of the folder ``where``, or by default the cache's module of ``plastic warmup`` (it
    has every signature of the warmup protocols, float32 too: a superset of the package's), else
    the package's module (built at install). Only one of them is loaded: each costs a dlopen and
    a sha256 of its file (after ``plastic warmup``, runs loaded the package's two parts too)."""
    if not enabled():
        return None
    if where is not None:
        return _load_folder(where)
    try:
        fp = fingerprint()
    except OSError:
        return None
    cache = cache_root() / "native" / fp
    if (cache / INDEX).is_file():
        table = _load_folder(cache)
        if table:
            return table
    table: dict = {}
    if os.environ.get("PLASTIC_NATIVE", "").strip().lower() != "cache":
        for w in package_parts(fp):
            for name, keys in (_load_folder(w) or {}).items():
                table.setdefault(name, {}).update(keys)
    return table or None


def package_parts(fp: str | None = None) -> list[Path]:
    """The folders of the package's module (built by ``pip install``), when it was built from
    these kernel sources, with this NumPy and Numba, for this CPU (the fingerprint), else []."""
    try:
        index = json.loads((PACKAGE / INDEX).read_text())
        if index["fingerprint"] != (fp or fingerprint()) or index["numba"] != numba_version():
            return []
        return [PACKAGE / part for part in index["parts"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


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


def _load_folder(where: Path) -> dict | None:
    try:
        index = json.loads((where / INDEX).read_text())
        import importlib.machinery
        import importlib.util

        path = where / index["file"]
        if not intact(path, index):
            return None
        name = index.get("module", MODULE)
        spec = importlib.util.spec_from_file_location(name, path, loader=importlib.machinery.ExtensionFileLoader(name, str(path)))
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
    where = folder() if where is None else where
    entries = [(qual, sym, func, sig.args) for qual, sym, func, sig in _entries(kernels)]
    if not entries:
        raise RuntimeError("no compiled kernel signatures to build (run the kernels first)")
    where.parent.mkdir(parents=True, exist_ok=True)
    return _install(lambda tmp: _compile(entries, tmp, MODULE), where)


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
    the batch driver (``core.batch``) of each rule that has one, the table formatters (CSV and npy)."""
    from .. import rules as registry
    from . import batch, columns, fmt, record  # noqa: F401  (columns and fmt list their entry kernels)
    from .jit import ENTRIES

    for kind in registry.kinds():
        m = registry.module(kind)
        if hasattr(m, "advance_block"):
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


def build_package(where: Path = PACKAGE, jobs: int = 2, dtypes: tuple[str, ...] | None = None) -> Path:
    """Compile the committed signatures into ``where`` (``plastictool/_native``): ``jobs`` modules
    compiled side by side in new processes, and an index with the fingerprint. Raises on failure."""
    import subprocess
    import sys
    import tempfile

    _toolchain()
    fp = fingerprint()  # of the sources compiled; checked again at the end
    sigs = signatures(dtypes=dtypes)
    n = len(_parts(sigs, entry_kernels(), jobs))

    def make(tmp: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2])] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
        errs = [tempfile.TemporaryFile("w+") for _ in range(n)]
        procs = [subprocess.Popen([sys.executable, "-m", "plastictool.core.native", "--build-part", f"{i}/{n}", str(tmp / str(i)), ",".join(dtypes or ())], env=env, stderr=errs[i])
                 for i in range(n)]
        codes = [p.wait() for p in procs]
        for code, err in zip(codes, errs):
            err.seek(0)
            text = err.read().strip()
            if code:  # the last line of the first failure: the exception
                raise RuntimeError(f"compiling the module failed: {(text.splitlines() or [f'exit {code}'])[-1]}")
        if fingerprint() != fp:
            raise RuntimeError("the kernel sources changed during the build")
        (tmp / INDEX).write_text(json.dumps({"fingerprint": fp, "numba": numba_version(), "numpy": np.__version__, "parts": [str(i) for i in range(n)]}, indent=1))

    where.parent.mkdir(parents=True, exist_ok=True)
    return _install(make, where)


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


def _build_part(spec: str, out: str, dtypes: str) -> None:
    from .jit import OPTIONS

    OPTIONS["cache"] = False  # nothing for Numba's cache: these are the build's own sources
    i, n = (int(x) for x in spec.split("/"))
    part = _parts(signatures(dtypes=tuple(dtypes.split(",")) if dtypes else None), entry_kernels(), n)[i]
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
