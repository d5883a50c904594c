"""Synaptic delays (``synapses.delay: {axonal: D1, dendritic: D2}``), for every spike rule.

Both delays are whole numbers of steps (the protocol refuses delays that are not multiples of
``dt``). They shift event streams; no rule kernel computes with them:

axonal ``D1``
    a presynaptic spike emitted at step ``s`` reaches the synapse (the rule, and the LIF
    conductance ``g``) at step ``s + D1``: the presynaptic event list the kernels read is the
    emitted one shifted by ``D1`` steps (:func:`shift`). ``spikes.csv`` keeps the emission times.
dendritic ``D2``
    a postsynaptic spike emitted at step ``s`` reaches the synapse (the rule only; it has no
    other effect) at step ``s + D2``. Imposed post spikes (clamped neurons) are shifted like
    the pre spikes; spikes that LIF neurons emit while the kernel runs go through a ring of
    ``D2`` slots (:func:`dendritic_posts`, state ``Net.dq_n``, ``Net.dq_idx``).

Spikes that would arrive after the end of the run never arrive (as in NEST and Brian2). The
rule sees ``delta_t = (t_post + D2) - (t_pre + D1)``.

Cost: nothing when both delays are 0. The shifted lists replace the emitted ones in the
``Net`` (one array copy at build time); a rule kernel calls :func:`dendritic_posts` only in its
LIF branch and only when ``Net.dq_n`` is not empty (one test per step).
"""

from __future__ import annotations

import numpy as np

from .jit import jit


def steps_of(delay_ms: float, dt: float) -> int:
    """A delay in ms as a whole number of steps (the protocol checked it is a multiple of dt)."""
    return int(round(delay_ms / dt))


def shift(events: tuple[np.ndarray, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """An event list ``(steps, indices)`` delayed by ``k`` steps (the same arrays when k is 0)."""
    if not k:
        return events
    return events[0] + np.int64(k), events[1]


def ring(k: int, n_post: int) -> tuple[np.ndarray, np.ndarray]:
    """The state of :func:`dendritic_posts` for a dendritic delay of ``k`` steps: per slot the
    number of waiting spikes (``k`` slots; empty when k is 0), and their post neurons (a row
    per slot plus one scratch row)."""
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros((1, 0), np.int64)
    return np.zeros(k, np.int64), np.zeros((k + 1, n_post), np.int64)


@jit(inline=True)
def dendritic_posts(dq_n, dq_idx, post_now, n, s):
    """The post spikes that reach the synapses at step ``s``: those emitted at ``s - D2``.

    ``post_now[:n]`` holds the spikes emitted at step ``s``; they go into slot ``s % D2`` of the
    ring, whose spikes (emitted ``D2`` steps ago) come out into ``post_now``. Returns how many
    came out. Every step must be visited once (LIF neurons step through every step)."""
    kd = dq_n.shape[0]
    slot = s % kd
    m = dq_n[slot]
    row = dq_idx[slot]
    tmp = dq_idx[kd]
    for b in range(m):
        tmp[b] = row[b]
    for b in range(n):
        row[b] = post_now[b]
    dq_n[slot] = n
    for b in range(m):
        post_now[b] = tmp[b]
    return m
