"""Exponential traces that are updated only at spikes (event-driven, exact decays).

A trace is stored as its value ``x`` right after its last spike at step ``t``; its value at a
later step ``s`` is ``x * exp(-(s - t) dt / tau)``. ``decay`` reads the factor from a table of
exact ``exp(-k dt / tau)`` for the first ~50 time constants and computes it beyond.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..core.jit import jit

TABLE_TAUS = 50.0
TABLE_MAX = 1 << 20


@functools.lru_cache(maxsize=32)
def decay_table(tau: float, dt: float) -> np.ndarray:
    """exp(-k dt / tau) for k = 0 .. 50 tau / dt. Shared between runs with the same tau and dt
    (sweeps build hundreds of conditions): kernels only read it."""
    n = int(min(TABLE_MAX, math.ceil(TABLE_TAUS * tau / dt) + 1))
    return np.exp(-np.arange(n) * dt / tau)


@jit(inline=True)
def decay(table, k, dt, tau):
    """exp(-k dt / tau) for an integer number of steps k >= 0."""
    if k < table.shape[0]:
        return table[k]
    return np.exp(-k * dt / tau)


def probe_trace(x, t, step, dt, tau):
    """The value of stored traces at ``step`` (numpy, for recording)."""
    return x * np.exp(-(step - t) * dt / tau)
