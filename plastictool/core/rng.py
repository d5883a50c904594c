"""Deterministic random numbers inside kernels, with their state in the rule's ``State``.

A generator is two arrays that a rule keeps in its ``State`` NamedTuple:

``state``  uint64[2], the xoroshiro128+ state (Blackman & Vigna 2018, "Scrambled linear
           pseudorandom number generators", ACM TOMS 47:36; constants a=24, b=16, c=37);
``spare``  float64[2], ``(flag, value)``: the second normal of the last Box-Muller pair.

Because everything the generator remembers lives in these arrays, a run split into several
``advance`` calls draws exactly the same numbers as one call (chunk invariance), and the same
seed gives the same numbers on every machine (integer arithmetic, then IEEE-754 ``log``,
``sqrt``, ``cos``, ``sin``). ``new_generator(rng)`` seeds a generator from the rule's
``numpy.random.Generator`` (one 63-bit draw, expanded by splitmix64).

Kernels call ``uniform(state)`` (a double in [0, 1) from the top 53 bits) and
``normal(state, spare)`` (a standard normal, Box-Muller: ``r = sqrt(-2 log(1 - u1))``,
``z0 = r cos(2 pi u2)``, ``z1 = r sin(2 pi u2)``; ``z0`` is returned, ``z1`` kept in ``spare``).
"""

from __future__ import annotations

import math

import numpy as np

from .jit import jit

_MASK = (1 << 64) - 1
_U11 = np.uint64(11)
_U16 = np.uint64(16)
_U24 = np.uint64(24)
_U40 = np.uint64(40)  # 64 - 24
_U37 = np.uint64(37)
_U27 = np.uint64(27)  # 64 - 37
_TWO_M53 = 1.0 / 9007199254740992.0  # 2**-53
_TWO_PI = 2.0 * math.pi


def splitmix64(x: int) -> tuple[int, int]:
    """One splitmix64 step on a Python int: (new state, output)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return x, z ^ (z >> 31)


def seed_generator(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(state, spare)`` for an integer seed (splitmix64 expansion; never the all-zero state)."""
    x = int(seed) & _MASK
    x, a = splitmix64(x)
    x, b = splitmix64(x)
    if a == 0 and b == 0:  # pragma: no cover - probability 2**-128
        b = 1
    return np.array([a, b], dtype=np.uint64), np.zeros(2)


def new_generator(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A generator seeded by one draw from ``rng`` (so it derives from the protocol seed)."""
    return seed_generator(int(rng.integers(0, 1 << 63)))


@jit(inline=True)
def next_u64(state):
    """The next 64-bit output of xoroshiro128+ (state updated in place)."""
    s0 = state[0]
    s1 = state[1]
    result = s0 + s1
    s1 = s1 ^ s0
    state[0] = ((s0 << _U24) | (s0 >> _U40)) ^ s1 ^ (s1 << _U16)
    state[1] = (s1 << _U37) | (s1 >> _U27)
    return result


@jit(inline=True)
def uniform(state):
    """A double in [0, 1): the top 53 bits of the next output times 2**-53."""
    return np.float64(next_u64(state) >> _U11) * _TWO_M53


@jit(inline=True)
def normal(state, spare):
    """A standard normal deviate (Box-Muller, the second deviate of a pair kept in ``spare``)."""
    if spare[0] != 0.0:
        spare[0] = 0.0
        return spare[1]
    u1 = 1.0 - uniform(state)  # in (0, 1]
    u2 = uniform(state)
    r = np.sqrt(-2.0 * np.log(u1))
    a = _TWO_PI * u2
    spare[0] = 1.0
    spare[1] = r * np.sin(a)
    return r * np.cos(a)


@jit
def fill_normal(state, spare, out):
    """Fill ``out`` (1-D float64) with standard normals; used by tests and benchmarks."""
    for k in range(out.shape[0]):
        out[k] = normal(state, spare)


@jit
def fill_uniform(state, out):
    for k in range(out.shape[0]):
        out[k] = uniform(state)
