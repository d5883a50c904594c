"""Versions of installed distributions, read from the names of their ``*.dist-info`` folders.

``importlib.metadata`` costs about 10 ms to import and scans every folder on ``sys.path`` per
question; ``plastic --version`` and every ``run.json`` (``versions``) ask for a few names.
Here each folder on ``sys.path`` is listed once per process (the first folder that has a
distribution wins, as for imports); a name not found there is asked of ``importlib.metadata``.
No NumPy: ``plastic --version`` stays as light as ``plastic --help``.
"""

from __future__ import annotations

import os
import sys

_FOUND: dict | None = None


def _dist_infos() -> dict:
    """``{normalised distribution name: version}`` of the ``*.dist-info`` folders on ``sys.path``."""
    global _FOUND
    if _FOUND is None:
        found: dict = {}
        for path in sys.path:
            try:
                names = os.listdir(path or ".")
            except OSError:
                continue
            for name in names:
                if name.endswith(".dist-info"):
                    base, _, ver = name[: -len(".dist-info")].partition("-")
                    if ver:
                        found.setdefault(base.lower().replace("_", "-"), ver)
        _FOUND = found
    return _FOUND


def version(dist: str) -> str:
    """The installed version of distribution ``dist`` (``pyyaml``, ``numba``), or ``""``."""
    ver = _dist_infos().get(dist.lower().replace("_", "-"))
    if ver:
        return ver
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""
