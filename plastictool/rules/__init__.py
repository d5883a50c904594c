"""The rule registry: one line per rule module (kind -> module path).

Modules are imported on demand, so listing rules or validating a protocol never loads Numba.
"""

from __future__ import annotations

import importlib

REGISTRY = {
    "hebb": "plastictool.rules.hebb",
    "oja": "plastictool.rules.oja",
    "bcm": "plastictool.rules.bcm",
    "stdp": "plastictool.rules.stdp",
    "triplet": "plastictool.rules.triplet",
    "calcium": "plastictool.rules.calcium",
    "receptor": "plastictool.rules.receptor",
}


def kinds() -> list[str]:
    return list(REGISTRY)


_LOADED: dict = {}  # kind -> module once imported (a sweep asks for it several times per condition)


def module(kind: str):
    m = _LOADED.get(kind)
    if m is None:
        m = _LOADED[kind] = importlib.import_module(REGISTRY[kind])
    return m


def spec(kind: str):
    return module(kind).SPEC
