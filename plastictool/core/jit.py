"""The one place that sets Numba options.

Every kernel in ``plastic`` is decorated with :func:`jit`. Numba is imported lazily:
importing a module that defines kernels costs nothing, so ``plastic --help``,
``plastic validate`` and ``plastic rules`` never load Numba. The first *call* of any
kernel imports Numba and turns every kernel defined so far into a real dispatcher
(patching the module globals, so kernels that call other kernels see dispatchers).

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
_numba = None


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


class LazyKernel:
    """Stands in for a Numba dispatcher until the first call."""

    def __init__(self, func, options):
        self.options = options
        self.py_func = func
        self.__name__ = func.__name__
        self.__doc__ = func.__doc__
        self.__module__ = func.__module__
        self.__wrapped__ = func
        self._disp = None

    def _materialize(self):
        if self._disp is None:
            self._disp = _numba.njit(**self.options)(self.py_func)
        return self._disp

    @property
    def dispatcher(self):
        _load_numba()
        return self._materialize()

    def __call__(self, *args):
        return self.dispatcher(*args)


def jit(func):
    """Decorate a kernel: plain arrays and floats in, arrays and floats out."""
    options = OPTIONS
    if _numba is not None:
        return _numba.njit(**options)(func)
    lazy = LazyKernel(func, options)
    _pending.append(lazy)
    return lazy
