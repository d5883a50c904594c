"""The one place that sets Numba options.

Every kernel in ``plastic`` is decorated with :func:`jit`. Numba is imported lazily:
importing a module that defines kernels costs nothing, so ``plastic --help``,
``plastic validate`` and ``plastic rules`` never load Numba. The first *call* of any
kernel imports Numba and turns every kernel defined so far into a real dispatcher
(patching the module globals, so kernels that call other kernels see dispatchers).

Entry kernels (``jit(entry=True)``: the ones Python calls, such as each rule's ``advance``)
first look for an ahead-of-time compiled twin built by ``pip install`` or ``plastic warmup``
(:mod:`plastictool.core.native`): when it has the call's argument types, no Numba is
imported at all; otherwise the call goes to the JIT.

The few LLVM intrinsics the kernels use (``prefetch``, ``fma``, the bit casts of
:mod:`plastictool.core.expfn` and the unaligned ``store`` of :mod:`plastictool.core.fmt`)
live here too, as stand-ins that are built when Numba loads.

Options: ``cache=True``, ``nogil=True``, ``error_model="numpy"`` (division by zero gives
inf/nan, which the run then reports), no ``fastmath``: results must be identical to the slow
reference twins in the tests.

The cache (:func:`cache_dir`) is never inside the installed package: ``$NUMBA_CACHE_DIR`` if set,
else ``numba/`` in the per-user cache folder (``$PLASTIC_CACHE_DIR``, ``$XDG_CACHE_HOME/plastic``
or ``~/.cache/plastic``). Numba files each source file's entries under a folder named by a hash
of that file's full path and checks a hash of the source's contents, so two installs (a clone
and a ``pip install .``) never share or shadow entries. An entry that cannot be read (a garbled
or truncated file) is treated as missing: the kernel is compiled again and the entry rewritten
(:class:`_HealingCacheFile`, which also appends a sha256 to every data file it writes). When the
folder cannot be written, kernels are compiled without a cache, with a one-line warning.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
import tempfile

OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}

_pending: list["LazyKernel"] = []
ENTRIES: list["LazyKernel"] = []  # every entry kernel, for the ahead-of-time build
_numba = None
_native = None  # {qualname: {argument key: function}} once looked for
USED: set = set()  # "native" and/or "jit": which kernels this process ran (run.json)


def cache_dir() -> str:
    """Where Numba keeps compiled kernels: ``$NUMBA_CACHE_DIR``, else ``<user cache>/numba``."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return os.environ["NUMBA_CACHE_DIR"]
    if os.environ.get("PLASTIC_CACHE_DIR"):
        base = os.environ["PLASTIC_CACHE_DIR"]
    else:
        base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "plastic")
    return os.path.join(base, "numba")


def _writable(folder: str) -> str | None:
    """None when ``folder`` exists (or was made) and a file can be written in it, else why not."""
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _cache_dir() -> bool:
    """Point Numba's cache at :func:`cache_dir` (never the package folder); False when it cannot
    be written (kernels are then compiled without a cache)."""
    global _cache_ok
    if _cache_ok is None:
        folder = cache_dir()
        why = _writable(folder)
        _cache_ok = why is None
        if _cache_ok:
            os.environ["NUMBA_CACHE_DIR"] = folder  # Numba reads it at import; workers inherit it
        else:
            OPTIONS["cache"] = False
            sys.stderr.write(f"warning: cannot write the kernel cache {folder} ({why}); compiling without a cache\n")
    return _cache_ok


_cache_ok: bool | None = None


def _heal_cache(numba) -> None:
    """Make Numba's cache files of this process heal (see :class:`_HealingCacheFile`) and make sure
    Numba uses the folder of :func:`_cache_dir` even when it was imported before us."""
    global _HealingCacheFile
    if _cache_ok:
        numba.config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]
    try:
        from numba.core.caching import IndexDataCacheFile
    except ImportError:  # pragma: no cover - a Numba without it: plain caching
        return
    if _HealingCacheFile is not None:
        return

    class Healing(IndexDataCacheFile):
        """Numba's index/data cache files, where an entry that cannot be read is a miss."""

        def _load_index(self):
            try:
                return super()._load_index()
            except Exception:  # garbled or truncated index: start afresh (it is rewritten on save)
                return {}

        def load(self, key):
            try:
                return super().load(key)
            except Exception:  # garbled data file: compile again (the entry is overwritten)
                return None

        def _load_data(self, name):
            with open(self._data_path(name), "rb") as f:
                blob = f.read()
            body, tail = blob[: -len(_TRAILER) - 32], blob[-len(_TRAILER) - 32 :]
            if len(blob) < len(_TRAILER) + 32 or tail[: len(_TRAILER)] != _TRAILER or hashlib.sha256(body).digest() != tail[len(_TRAILER) :]:
                raise OSError("cache entry fails its checksum")  # load() returns None: recompiled
            return pickle.loads(body)

        def _save_data(self, name, data):
            body = self._dump(data)
            with self._open_for_write(self._data_path(name)) as f:
                f.write(body + _TRAILER + hashlib.sha256(body).digest())

    _HealingCacheFile = Healing


_HealingCacheFile = None
_TRAILER = b"plastic-sha256:"


def _heal(disp):
    """Give a dispatcher's cache the healing file class (no-op without a cache)."""
    f = getattr(getattr(disp, "_cache", None), "_cache_file", None)
    if _HealingCacheFile is not None and f is not None and type(f).__name__ == "IndexDataCacheFile":
        f.__class__ = _HealingCacheFile
    return disp


def _load_numba():
    global _numba
    if _numba is None:
        _cache_dir()
        import numba

        _heal_cache(numba)
        _numba = numba
        for lazy in list(_pending):
            lazy._materialize()
        # kernels call kernels imported from other modules: replace every stand-in that a
        # kernel module's globals hold with its dispatcher
        for glb in {id(k.py_func.__globals__): k.py_func.__globals__ for k in _pending}.values():
            _patch(glb)
        _pending.clear()
    return _numba


def _patch(glb: dict) -> None:
    """Replace the stand-ins in a kernel module's globals with Numba's objects."""
    for name, value in list(glb.items()):
        if isinstance(value, LazyKernel):
            glb[name] = value._materialize()
        elif isinstance(value, LazyIntrinsic):
            glb[name] = value.build()


def native_table() -> dict:
    """The ahead-of-time compiled kernels (empty when there are none or they are switched off)."""
    global _native
    if _native is None:
        from . import native

        _native = native.load() or {}
    return _native


def use_native(on: bool) -> None:
    """Switch the ahead-of-time kernels off (``plastic warmup`` compiles with the JIT) or on again."""
    global _native
    _native = None if on else {}
    for k in ENTRIES:
        k._table = None


class LazyKernel:
    """Stands in for a Numba dispatcher until the first call."""

    def __init__(self, func, options, entry=False, disp=None):
        self.options = options
        self.py_func = func
        self.__name__ = func.__name__
        self.__doc__ = func.__doc__
        self.__module__ = func.__module__
        self.__wrapped__ = func
        self.entry = entry
        self._disp = disp
        self._table = None

    def _materialize(self):
        if self._disp is None:
            self._disp = _heal(_numba.njit(**{**self.options, "cache": OPTIONS["cache"]})(self.py_func))
        return self._disp

    @property
    def dispatcher(self):
        _load_numba()
        return self._materialize()

    def __call__(self, *args):
        if self.entry:
            table = self._table
            if table is None:
                table = self._table = native_table().get(self.__module__ + "." + self.py_func.__qualname__, {})
            if table:
                from .native import Deferred, argkey

                key = tuple(argkey(a) for a in args)
                f = table.get(key)
                if type(f) is Deferred:  # its module is imported now (None: damaged, the JIT)
                    f = table[key] = f.get()
                if f is not None:
                    USED.add("native")
                    return f(*args)
        if self.entry and os.environ.get("PLASTIC_NATIVE") == "require":
            why = "with these argument types" if self._table else "(no module for these sources, or it lacks the kernel)"
            raise RuntimeError(f"PLASTIC_NATIVE=require: no ahead-of-time {self.__module__}.{self.__name__} {why}")
        USED.add("jit")
        return self.dispatcher(*args)


class LazyIntrinsic:
    """Stands in for a Numba intrinsic (built from LLVM IR) until Numba is loaded."""

    def __init__(self, make):
        self.make = make
        self.__name__ = make.__name__
        self._built = None

    def build(self):
        if self._built is None:
            self._built = self.make()
        return self._built


@LazyIntrinsic
def prefetch():
    """``prefetch(a, i, j)``: ask the CPU to bring the cache line of ``a[i, j]`` (a 2-d array)
    into its caches, for writing (``llvm.prefetch``; a hint, no effect on results). Takes the
    array and indices, not a row: a view of a row would update its reference count."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def prefetch(typingctx, a, i, j):
        def codegen(context, builder, sig, args):
            aryty = sig.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            idx = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], sig.args[1:])]
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx, wraparound=False, boundscheck=False)
            i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
            fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]))
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(1), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(a, i, j), codegen

    return prefetch


@LazyIntrinsic
def fma():
    """``fma(a, b, c)``: a * b + c with one rounding (``llvm.fma.f64``)."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def fma(typingctx, a, b, c):
        def codegen(context, builder, sig, args):
            d = ir.DoubleType()
            fn = builder.module.declare_intrinsic("llvm.fma", [d], ir.FunctionType(d, [d, d, d]))
            return builder.call(fn, [context.cast(builder, v, t, types.float64) for v, t in zip(args, sig.args)])

        return types.float64(types.float64, types.float64, types.float64), codegen

    return fma


@LazyIntrinsic
def store():
    """``store(buf, pos, v)``: the bytes of the unsigned integer ``v`` (uint16, uint32 or uint64)
    into the uint8 array ``buf`` at ``buf[pos:]``, in the machine's byte order, as one unaligned
    store (``core.fmt`` writes 4 or 8 digits at once). No bounds check, like the kernels'
    indexing."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    @intrinsic
    def store(typingctx, a, i, v):
        if not isinstance(v, types.Integer) or v.bitwidth not in (16, 32, 64):
            return None

        def codegen(context, builder, sig, args):
            aryty = sig.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            idx = context.cast(builder, args[1], sig.args[1], types.intp)
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [idx], wraparound=False, boundscheck=False)
            builder.store(args[2], builder.bitcast(ptr, ir.IntType(v.bitwidth).as_pointer()), align=1)
            return context.get_dummy_value()

        return types.void(a, i, v), codegen

    return store


def _bitcast(to: str):
    """An intrinsic that reads the bits of a float64 as a uint64 (``to="uint64"``) or back."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    src, dst, llvm_type = (types.float64, types.uint64, ir.IntType(64)) if to == "uint64" else (types.uint64, types.float64, ir.DoubleType())

    @intrinsic
    def bitcast(typingctx, x):
        def codegen(context, builder, sig, args):
            return builder.bitcast(args[0], llvm_type)

        return dst(src), codegen

    return bitcast


@LazyIntrinsic
def as_uint64():
    """``as_uint64(x)``: the bits of a float64 as a uint64."""
    return _bitcast("uint64")


@LazyIntrinsic
def as_float64():
    """``as_float64(u)``: the float64 with the bits of a uint64."""
    return _bitcast("float64")


def jit(func=None, *, entry: bool = False, inline: bool = False):
    """Decorate a kernel: plain arrays and floats in, arrays and floats out.

    ``entry=True`` marks a kernel that Python code calls (not only other kernels): ``plastic
    warmup`` compiles it ahead of time (:mod:`plastictool.core.native`).

    ``inline=True``, for small helpers: Numba inlines the function into its callers' IR
    (``inline="always"``) instead of compiling it on its own. Compile time (a first run compiles
    its rule's kernels): a function compiled on its own is typed once, but its LLVM module is
    optimised and turned into machine code on its own and again inside every module that calls
    it (0.1-0.3 s each); an inlined one is typed again at every call site, which costs more for
    big helpers or several call sites. So: inline helpers with one call site and the small ones
    of hot loops (compiled apart, Numba's calls cost speed there: a W2 run 7-20 % slower);
    compile once helpers with several call sites off the hot path. Never call a helper with
    a constant argument that would make Numba compile it once per value (an int constant is
    typed as a literal: pass ``np.int64(0)``). ``plastic warmup``'s JIT pass and a first run
    both gain (``core/record.py`` notes the measurements)."""
    if func is None:
        return lambda f: jit(f, entry=entry, inline=inline)
    options = {**OPTIONS, "inline": "always"} if inline else OPTIONS
    if _numba is not None:
        _patch(func.__globals__)
        disp = _heal(_numba.njit(**{**options, "cache": OPTIONS["cache"]})(func))
        if entry:  # defined after Numba was loaded: still listed for the ahead-of-time build
            ENTRIES.append(LazyKernel(func, options, entry, disp))
        return disp
    lazy = LazyKernel(func, options, entry)
    _pending.append(lazy)
    if entry:
        ENTRIES.append(lazy)
    return lazy
