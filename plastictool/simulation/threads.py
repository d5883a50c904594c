"""Threads over blocks of post neurons: how many (``run_threads``, ``plan_blocks``: only where
the work between two samples is worth it) and the ``Stepper`` that advances each block on its
own thread between two chunk ends, with results identical bit for bit to one block."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from ..errors import PlasticError, SimulationError
from .stimulus import sort_events

if TYPE_CHECKING:
    from .engine import Built


# ---------------------------------------------------------------------------- threads
THREADS_ENV = "PLASTIC_THREADS"
SPLIT_MIN_SYNAPSES = 100_000  # automatic threads only for networks this big ...
SPLIT_MIN_POSTS = 64  # ... with this many post neurons per block at least ...
SPLIT_MIN_CHUNK_S = 2e-3  # ... and this much estimated work between two samples (a chunk)
BLOCK_ALIGN = 8  # block bounds are multiples of 8 post neurons (a 64-byte cache line of float64)


def run_threads(threads: int | None = None) -> tuple[int, bool]:
    """How many threads one run may use, and whether that was asked for explicitly.

    ``threads`` (``plastic run --threads``), else ``$PLASTIC_THREADS``; 0 or neither: automatic,
    the cores this process may use, but 1 in a worker process (``--jobs``, Dask), whose
    siblings already use the cores."""
    if threads is None:
        env = os.environ.get(THREADS_ENV, "").strip()
        if env:
            try:
                threads = int(env)
            except ValueError:
                threads = -1
            if threads < 0:
                raise PlasticError(f"{THREADS_ENV}={env!r}: expected a number of threads (0: automatic)")
    if threads:
        return max(1, int(threads)), True
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        return 1, False
    from .parallel import default_jobs

    return default_jobs(), False


def block_bounds(n_post: int, blocks: int) -> list[tuple[int, int]]:
    """Post neurons ``0..n_post`` as at most ``blocks`` contiguous ranges ``(j0, j1)`` of equal
    size rounded up to a multiple of BLOCK_ALIGN (the last one takes the rest)."""
    size = -(-n_post // max(1, blocks))
    size = max(BLOCK_ALIGN, -(-size // BLOCK_ALIGN) * BLOCK_ALIGN)
    return [(j, min(j + size, n_post)) for j in range(0, n_post, size)] or [(0, n_post)]


def plan_blocks(b: Built, threads: int | None = None) -> list[tuple[int, int]]:
    """The blocks of post neurons that threads advance separately (one block: one thread).

    Only rules with ``SPEC.post_blocks`` and spiking neurons (clamped, LIF) are split. With an
    explicit thread count (``threads`` or ``$PLASTIC_THREADS``) always, into that many blocks
    (fewer when there are not 8 post neurons for each); automatically only networks of at least
    SPLIT_MIN_SYNAPSES synapses, SPLIT_MIN_POSTS post neurons a block and SPLIT_MIN_CHUNK_S of
    estimated work between two samples, where threads pay for their synchronisation."""
    from ..core.net import CLAMPED, LIF

    p = b.protocol
    n_pre, n_post = b.w.shape
    if not b.module.SPEC.post_blocks or b.net.model not in (CLAMPED, LIF) or n_post < 2 or b.rel is not None:
        return [(0, n_post)]  # (before run_threads: a sweep of small networks asks nothing more)
    n, explicit = run_threads(threads)
    if n <= 1:
        return [(0, n_post)]
    if not explicit:
        n = min(n, n_post // SPLIT_MIN_POSTS)
        if n <= 1 or n_pre * n_post < SPLIT_MIN_SYNAPSES:
            return [(0, n_post)]
        from .parallel import estimate_seconds

        every = max(1, int(round(p.record.interval / p.dt)))
        if estimate_seconds(p) * min(every, p.n_steps) / max(1, p.n_steps) < SPLIT_MIN_CHUNK_S:
            return [(0, n_post)]
    return block_bounds(n_post, n)


class Stepper:
    """Advances a built network over chunks of steps: one call of the rule's kernel (for rules
    with blocks, ``advance_block`` over all post neurons: the kernel that threads call too, so a
    first run compiles one entry kernel, not two), or blocks of post neurons (``plan_blocks``) by
    threads, each with its own ``block_net`` and ``block_state`` and each draining its own out
    buffer of LIF post spikes. Block 0 runs on the calling thread with ``b.net`` and ``b.state``
    themselves; every block computes the same pre traces, so ``b.state`` is complete for the
    Recorder after each chunk. The weights, neuron arrays and post traces are shared, each block
    writing its own columns."""

    def __init__(self, b: Built, bounds: list[tuple[int, int]]):
        from ..core.net import block_net

        self.b = b
        self.bounds = bounds
        self.spikes = [([], []) for _ in bounds]  # per block: LIF post spike steps, indices
        self.compiled_at = None
        self.pool = None
        self.nets = [b.net]
        self.states = [b.state]
        if len(bounds) > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.nets += [block_net(b.net) for _ in bounds[1:]]
            self.states += [b.module.block_state(b.state) for _ in bounds[1:]]
            self.pool = ThreadPoolExecutor(len(bounds) - 1, thread_name_prefix="plastic-block")

    @property
    def threads(self) -> int:
        return len(self.bounds)

    def run(self, s: int, nxt: int, blocked) -> None:
        """Advance every block from step ``s`` to ``nxt``."""
        if self.pool is None:
            self._run(0, s, nxt, blocked)
            return
        if self.compiled_at is None:  # compile (or load) on this thread, before the others call it
            from ..core.net import lif_arg

            b = self.b
            b.module.advance_block(b.w, b.net, b.state, b.params, s, s, blocked, 0, 0, lif_arg(b.net), b.rel, b.present, b.inh)
            self.compiled_at = time.perf_counter()
        from concurrent.futures import wait

        futures = [self.pool.submit(self._run, k, s, nxt, blocked) for k in range(1, len(self.bounds))]
        try:
            self._run(0, s, nxt, blocked)
        finally:
            wait(futures)  # the other blocks write shared arrays: never leave them running
        for f in futures:
            f.result()

    def _run(self, k: int, s: int, nxt: int, blocked) -> None:
        from ..core.net import OUT_N, lif_arg

        b = self.b
        net, st = self.nets[k], self.states[k]
        j0, j1 = self.bounds[k]
        steps, idx = self.spikes[k]
        whole = self.pool is None
        # a rule with blocks runs one block like many: one kernel (and signature) to compile
        blocks = b.module.SPEC.post_blocks
        while s < nxt:
            if blocks:
                reached = b.module.advance_block(b.w, net, st, b.params, s, nxt, blocked, j0, j1, lif_arg(net), b.rel, b.present, b.inh)
            else:  # rel and present explicit (None: compiled away), one signature for the AOT build
                reached = b.module.advance(b.w, net, st, b.params, s, nxt, blocked, b.rel, b.present)
            if whole and self.compiled_at is None:
                self.compiled_at = time.perf_counter()
            n = net.cursor[OUT_N]
            if n:
                steps.append(net.out_step[:n].copy())
                idx.append(net.out_idx[:n].copy())
                net.cursor[OUT_N] = 0
            if reached < s:  # pragma: no cover - defensive
                raise SimulationError(f"kernel went backwards at step {s}")
            if reached == s and reached < nxt:  # out buffer too small for one step
                net = net._replace(out_step=np.zeros(2 * net.out_step.size, np.int64), out_idx=np.zeros(2 * net.out_idx.size, np.int64))
                self.nets[k] = net
                if k == 0:
                    b.net = net
            s = reached

    def post_spikes(self) -> tuple[np.ndarray, np.ndarray]:
        """The LIF post spikes in (step, index) order, as one call gives them. Empties the
        per-block lists as it goes (no second copy of every spike at the peak)."""
        steps = [x for blk in self.spikes for x in blk[0]]
        idx = [x for blk in self.spikes for x in blk[1]]
        for blk in self.spikes:
            blk[0].clear()
            blk[1].clear()
        if len(self.bounds) > 1:  # blocks in index order, each in time order: by step, then index
            return sort_events(steps, idx, self.b.w.shape[1])
        if not steps:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        out = np.concatenate(steps)
        steps.clear()
        return out, np.concatenate(idx)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
