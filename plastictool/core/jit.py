"""The one place that sets Numba options.

Every kernel in ``plastic`` is decorated with :func:`jit`. Numba is imported lazily:
importing a module that defines kernels costs nothing, so ``plastic --help``,
``plastic validate`` and ``plastic rules`` never load Numba. The first *call* of any
kernel imports Numba and turns every kernel defined so far into a real dispatcher
(patching the module globals, so kernels that call other kernels see dispatchers).

Entry kernels (``jit(entry=True)``: the ones Python calls, such as each rule's ``advance``)
first look for an ahead-of-time compiled twin built by ``plastic warmup``
(:mod:`plastictool.core.native`): when it has the call's argument types, no Numba is
imported at all; otherwise the call goes to the JIT.

Options: ``cache=True`` (compiled code is kept on disk; when the package folder is not
writable the cache goes to a per-user folder), ``nogil=True``, ``error_model="numpy"``
(division by zero gives inf/nan, which the run then reports), no ``fastmath``: results must
be identical to the slow reference twins in the tests.
"""

from __future__ import annotations

import os
from pathlib import Path

OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}

_pending: list["LazyKernel"] = []
ENTRIES: list["LazyKernel"] = []  # every entry kernel, for the ahead-of-time build
_numba = None
_native = None  # {qualname: {argument key: function}} once looked for
USED: set = set()  # "native" and/or "jit": which kernels this process ran (run.json)


def _cache_dir() -> None:
    """Point Numba's cache at a per-user folder when the package folder is read-only."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = Path(__file__).resolve().parent
    if os.access(here, os.W_OK) and os.access(here / "__pycache__", os.W_OK) or (
        not (here / "__pycache__").exists() and os.access(here, os.W_OK)
    ):
        return
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(base, "plastic", "numba")


def _load_numba():
    global _numba
    if _numba is None:
        _cache_dir()
        import numba

        _numba = numba
        for lazy in list(_pending):
            lazy._materialize()
        # kernels call kernels imported from other modules: replace every stand-in that a
        # kernel module's globals hold with its dispatcher
        for glb in {id(k.py_func.__globals__): k.py_func.__globals__ for k in _pending}.values():
            for name, value in list(glb.items()):
                if isinstance(value, LazyKernel):
                    glb[name] = value._disp
        _pending.clear()
    return _numba


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
            self._disp = _numba.njit(**self.options)(self.py_func)
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
                from .native import argkey

                f = table.get(tuple(argkey(a) for a in args))
                if f is not None:
                    USED.add("native")
                    return f(*args)
        if self.entry and os.environ.get("PLASTIC_NATIVE") == "require":
            why = "with these argument types" if self._table else "(no module for these sources, or it lacks the kernel)"
            raise RuntimeError(f"PLASTIC_NATIVE=require: no ahead-of-time {self.__module__}.{self.__name__} {why}")
        USED.add("jit")
        return self.dispatcher(*args)


def jit(func=None, *, entry: bool = False):
    """Decorate a kernel: plain arrays and floats in, arrays and floats out.

    ``entry=True`` marks a kernel that Python code calls (not only other kernels): ``plastic
    warmup`` compiles it ahead of time (:mod:`plastictool.core.native`)."""
    if func is None:
        return lambda f: jit(f, entry=entry)
    options = OPTIONS
    if _numba is not None:
        disp = _numba.njit(**options)(func)
        if entry:  # defined after Numba was loaded: still listed for the ahead-of-time build
            ENTRIES.append(LazyKernel(func, options, entry, disp))
        return disp
    lazy = LazyKernel(func, options, entry)
    _pending.append(lazy)
    if entry:
        ENTRIES.append(lazy)
    return lazy
