"""The kernels' exp (plastictool.core.expfn): glibc's exp, bit for bit, and within 0.52 ulp of
the exact value everywhere."""

from __future__ import annotations

import math
import platform
from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np
import pytest

from plastictool.core.expfn import exp
from plastictool.core.jit import jit


@jit
def exp_all(x, out):
    for k in range(x.shape[0]):
        out[k] = exp(x[k])


def kernel_exp(x):
    out = np.empty_like(x)
    exp_all(x, out)
    return out


def arguments(n, seed=7):
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            -rng.uniform(0.0, 0.05, n),  # the LIF neuron's -dt (1 + g) / tau_m
            rng.uniform(-745.0, 709.0, n),
            np.sign(rng.uniform(-1, 1, n)) * np.exp(rng.uniform(-130.0, 6.5, n)),  # every scale
            np.array([0.0, -0.0, 1e-300, -1e-17, 2.0**-54, -(2.0**-54), 511.999, 512.0, -512.0, 700.0, -740.0, 709.78]),
            np.array([-745.2, -1000.0, 710.0, np.inf, -np.inf, np.nan]),
        ]
    )


def libm_exp(x):
    out = np.empty_like(x)
    for k, v in enumerate(x.tolist()):
        try:
            out[k] = math.exp(v)
        except OverflowError:
            out[k] = math.inf
    return out


def glibc_with_fma() -> bool:
    libc, version = platform.libc_ver()
    if libc != "glibc" or tuple(int(p) for p in version.split(".")[:2]) < (2, 28) or platform.machine() != "x86_64":
        return False
    try:
        return " fma " in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not glibc_with_fma(), reason="the port is of glibc's FMA build (glibc >= 2.28 on x86-64 with FMA)")
def test_identical_to_glibc_exp():
    x = arguments(400_000)
    got, want = kernel_exp(x), libm_exp(x)
    same = (got.view(np.int64) == want.view(np.int64)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), f"{(~same).sum()} differ, first at x = {x[~same][0]!r}: {got[~same][0]!r} != {want[~same][0]!r}"


def test_error_below_half_an_ulp_and_a_bit():
    """glibc bounds its exp's error by 0.5 + 1.11/128 + (polynomial) ulp; measured against exp in
    60-digit decimal arithmetic."""
    x = arguments(1500, seed=11)
    x = x[np.isfinite(x) & (x > -708.0) & (x < 709.0)]
    got = kernel_exp(x)
    worst = 0.0
    with localcontext() as ctx:
        ctx.prec = 60
        for xi, yi in zip(x.tolist(), got.tolist()):
            exact = Decimal(xi).exp()
            err = abs(Decimal(yi) - exact) / Decimal(math.ulp(float(exact)))
            worst = max(worst, float(err))
    assert worst < 0.52, worst


def test_special_values_follow_the_c_library():
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-300, 1000.0, -1000.0])
    got = kernel_exp(x)
    assert got[0] == np.inf and got[1] == 0.0 and np.isnan(got[2])
    assert got[3] == 1.0 and got[4] == 1.0 and got[5] == 1.0
    assert got[6] == np.inf and got[7] == 0.0
