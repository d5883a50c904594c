"""Inhibitory inputs of LIF neurons: a second conductance with its own reversal potential.

``synapses.inhibitory`` names the presynaptic neurons whose spikes open the inhibitory
conductance ``g_inh`` of the LIF neurons instead of the excitatory ``g``::

    tau_m dv/dt = (v_rest - v) + g (e_syn - v) + g_inh (e_syn_inh - v)
    tau_syn dg/dt = -g,   tau_syn_inh dg_inh/dt = -g_inh

A weight is a conductance magnitude (>= 0, in units of the leak conductance) whatever the
sign of its effect: the sign comes from the presynaptic neuron (its row), so a plasticity rule
acts on ``|w|`` exactly as on an excitatory weight. NEST stores an inhibitory weight as a
negative number and applies its STDP rules to ``|w|`` (keeping the sign); plastic's ``w`` is
NEST's ``|w|`` (docs/stdp-variants.md).

Everything the kernels need is one argument, ``inh``: an ``Inh`` (below) with inhibitory inputs,
else None. The rule kernels test ``inh is None``; Numba removes the branch an argument of that
type cannot take before it compiles, so a run without inhibitory inputs compiles the code it
compiled before this module existed (no new ``Net`` fields, no new tests per step or spike).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .expfn import exp_core, exp_core_ok
from .jit import jit
from .net import LIF_CHUNK, OUT_N


class Inh(NamedTuple):
    g: np.ndarray  # float64[n_post] inhibitory conductance (units of the leak conductance)
    mask: np.ndarray  # uint8[n_pre]: 1 for an inhibitory presynaptic neuron
    par: np.ndarray  # float64[2]: tau_syn_inh (ms), e_syn_inh (mV)


def build(inhibitory, n_pre: int, n_post: int, tau_syn_inh: float, e_syn_inh: float) -> Inh | None:
    """The kernels' ``inh`` argument: None without inhibitory presynaptic neurons."""
    idx = np.asarray(inhibitory, np.int64)
    if idx.size == 0:
        return None
    mask = np.zeros(n_pre, np.uint8)
    mask[idx] = 1
    return Inh(g=np.zeros(n_post), mask=mask, par=np.array([float(tau_syn_inh), float(e_syn_inh)]))


@jit(inline=True)
def open_row(inh, i, rb, gb, j0, j1):
    """A spike of presynaptic neuron ``i``: its weights ``rb`` (the block's columns ``j0 <= j <
    j1``, indexed from 0) open ``g_inh`` if ``i`` is inhibitory, else ``g`` (``gb``)."""
    if inh.mask[i] != 0:
        gib = inh.g[j0:j1]
        for k in range(rb.shape[0]):
            gib[k] += rb[k]
    else:
        for k in range(rb.shape[0]):
            gb[k] += rb[k]


@jit
def lif_block_inh(v, g, inh, ref_until, lif, out_step, out_idx, cursor, post_now, s, dt, j0, j1):
    """``core.net.lif_block`` with the inhibitory conductance ``inh.g`` (reversal ``e_syn_inh``,
    decay ``tau_syn_inh``; Vogels et al. 2011 use -80 mV and 10 ms): ``v`` relaxes exactly towards
    ``(v_rest + g e_syn + g_inh e_syn_inh) / (1 + g + g_inh)`` for the conductances held at the
    start of the step, then both decay exactly. The same two-loop structure as ``lif_block``
    (a vectorised pass, then a walk of the chunks where a neuron spiked or needs the C library's
    ``exp``). A separate kernel, so that ``lif_block`` (every run without inhibitory inputs)
    stays exactly as it was."""
    n = 0
    tau_m = lif[0]
    v_rest = lif[1]
    v_thresh = lif[2]
    v_reset = lif[3]
    e_syn = lif[6]
    e_inh = inh.par[1]
    dec_g = np.exp(-dt / lif[5])
    dec_i = np.exp(-dt / inh.par[0])
    ref_steps = np.int64(np.rint(lif[4] / dt))
    g_inh = inh.g
    o = cursor[OUT_N]
    for c0 in range(j0, j1, LIF_CHUNK):
        c1 = min(c0 + LIF_CHUNK, j1)
        vb, gb, ib, rb = v[c0:c1], g[c0:c1], g_inh[c0:c1], ref_until[c0:c1]
        look = False
        for k in range(vb.shape[0]):  # vectorised: no branches, no calls
            gj = gb[k]
            gi = ib[k]
            vk = vb[k]
            gt = 1.0 + gj + gi
            a = -dt * gt / tau_m
            ok = exp_core_ok(a)
            v_inf = (v_rest + gj * e_syn + gi * e_inh) / gt
            vn = v_inf + (vk - v_inf) * exp_core(a)
            vn = vn if (s >= rb[k]) & ok else vk
            vb[k] = vn
            gb[k] = gj * dec_g if ok else gj
            ib[k] = gi * dec_i if ok else gi
            look |= (not ok) | (vn >= v_thresh)
        if look:
            for k in range(vb.shape[0]):
                gj = gb[k]
                gi = ib[k]
                gt = 1.0 + gj + gi
                if not exp_core_ok(-dt * gt / tau_m):  # left as it was above
                    if s >= rb[k]:
                        v_inf = (v_rest + gj * e_syn + gi * e_inh) / gt
                        vb[k] = v_inf + (vb[k] - v_inf) * np.exp(-dt * gt / tau_m)
                    gb[k] = gj * dec_g
                    ib[k] = gi * dec_i
                if vb[k] >= v_thresh:
                    vb[k] = v_reset
                    rb[k] = s + 1 + ref_steps
                    post_now[n] = c0 + k
                    n += 1
                    out_step[o] = s
                    out_idx[o] = c0 + k
                    o += 1
    cursor[OUT_N] = o
    return n
