"""The LIF kernel (``core.net.lif_block``) against a one-neuron-at-a-time twin, bit for bit.

``lif_block`` updates a chunk of neurons in a vectorised loop and finishes the neurons that
spike or need the C library's ``exp`` in a second one. The twin is the plain loop of the
equations. The states include conductances so large that ``exp``'s argument leaves the range
of ``exp_core`` (|x| >= 512), a NaN, refractory neurons and neurons at threshold.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from plastictool.core.expfn import exp
from plastictool.core.net import LIF_CHUNK, OUT_N, lif_block

LIF = np.array([10.0, -74.0, -54.0, -60.0, 2.0, 5.0, 0.0])  # tau_m v_rest v_thresh v_reset t_ref tau_syn e_syn


def twin(v, g, ref_until, s, dt, j0, j1):
    tau_m, v_rest, v_thresh, v_reset, t_ref, tau_syn, e_syn = LIF.tolist()
    spikes = []
    for j in range(j0, j1):
        gj = g[j]
        if s >= ref_until[j]:
            v_inf = (v_rest + gj * e_syn) / (1.0 + gj)
            v[j] = v_inf + (v[j] - v_inf) * exp(-dt * (1.0 + gj) / tau_m)
        g[j] = gj * math.exp(-dt / tau_syn)  # the C library, as in the kernel
        if v[j] >= v_thresh:
            v[j] = v_reset
            ref_until[j] = s + 1 + round(t_ref / dt)
            spikes.append(j)
    return spikes


def state(n, seed):
    rng = np.random.default_rng(seed)
    v = rng.uniform(-75.0, -50.0, n)
    g = rng.exponential(0.3, n)
    g[rng.random(n) < 0.05] = 6e4  # -dt (1 + g) / tau_m < -512: the C library's exp
    g[7] = np.nan
    ref_until = np.where(rng.random(n) < 0.2, rng.integers(0, 40, n), 0).astype(np.int64)
    return v, g, ref_until


@pytest.mark.parametrize("j0, j1", [(0, 3 * LIF_CHUNK + 5), (5, 2 * LIF_CHUNK + 1), (LIF_CHUNK - 1, LIF_CHUNK + 1)])
def test_lif_block_equals_the_one_neuron_loop(j0, j1):
    n, dt = 3 * LIF_CHUNK + 9, 0.1
    v, g, ref_until = state(n, seed=j0 + j1)
    tv, tg, tref = v.copy(), g.copy(), ref_until.copy()
    out_step, out_idx = np.zeros(100 * n, np.int64), np.zeros(100 * n, np.int64)
    cursor, post_now = np.zeros(3, np.int64), np.zeros(n, np.int64)
    fired = 0
    for s in range(30):
        k = lif_block(v, g, ref_until, LIF, out_step, out_idx, cursor, post_now, s, dt, j0, j1)
        want = twin(tv, tg, tref, s, dt, j0, j1)
        assert post_now[:k].tolist() == want
        assert out_idx[cursor[OUT_N] - k : cursor[OUT_N]].tolist() == want
        fired += k
        np.testing.assert_array_equal(v, tv)  # bit for bit (NaN where the twin has NaN)
        np.testing.assert_array_equal(g, tg)
        np.testing.assert_array_equal(ref_until, tref)
        g[j0:j1] += 0.02 * (s % 3)  # some input between steps
        tg[j0:j1] += 0.02 * (s % 3)
    assert (fired > 0 or j1 - j0 <= 2) and np.isnan(v[7]) == (j0 <= 7 < j1)
