"""Spike times of the stimulus: trains (regular, Poisson, bursts, explicit), pairings and
phases become sorted (step, index) events, drawn once from the condition's seed; rate inputs
are generated a chunk of rows at a time (``RateInput``). ``spike_events_many``: the events of
many small conditions (a sweep's window, ``simulation.batches``) converted and sorted at once."""

from __future__ import annotations

import math

import numpy as np

from ..protocol.schema import Protocol, Train

PRE, POST = 0, 1
MAX_CHUNK_ROWS = 4096  # rows of rate input generated at once


# ---------------------------------------------------------------------------- stimulus
def train_times(t: Train, duration: float, n: int, rng: np.random.Generator):
    """Spike times (ms from the phase start) and neuron indices of one train."""
    q = t.params
    neurons = np.arange(n) if t.neurons is None else np.asarray(t.neurons, dtype=np.int64)
    if t.kind == "times":
        if "all" in q:
            base = np.asarray(q["all"], dtype=float)
            return np.tile(base, neurons.size), np.repeat(neurons, base.size)
        ts, ix = [], []
        for i, lst in q["per"].items():
            ts.append(np.asarray(lst, dtype=float))
            ix.append(np.full(len(lst), i, dtype=np.int64))
        return np.concatenate(ts), np.concatenate(ix)
    if t.kind == "poisson":
        stop = duration if q["stop"] is None else min(q["stop"], duration)
        span = max(0.0, stop - q["start"])
        counts = rng.poisson(q["rate"] * span / 1000.0, size=neurons.size)
        idx = np.repeat(neurons, counts)
        times = q["start"] + rng.random(idx.size) * span
        return times, idx
    if t.kind == "regular":
        period = 1000.0 / q["frequency"]
        if q["pulses"] is not None:
            k = np.arange(q["pulses"])
        else:
            stop = duration if q["stop"] is None else min(q["stop"], duration)
            k = np.arange(max(0, int(math.ceil((stop - q["start"]) / period - 1e-9))))
        base = q["start"] + k * period
    elif t.kind == "tetanus":
        period = 1000.0 / q["frequency"]
        pulses = int(round(q["duration"] / period))
        base = (q["start"] + np.arange(q["trains"])[:, None] * q["interval"] + np.arange(pulses)[None, :] * period).ravel()
    elif t.kind == "theta_burst":
        period = 1000.0 / q["frequency"]
        base = (
            q["start"]
            + np.arange(q["trains"])[:, None, None] * q["train_interval"]
            + np.arange(q["bursts"])[None, :, None] * q["burst_interval"]
            + np.arange(q["pulses"])[None, None, :] * period
        ).ravel()
    else:  # pragma: no cover - rate trains have no spikes
        raise AssertionError(t.kind)
    return np.tile(base, neurons.size), np.repeat(neurons, base.size)


def pairing_times(p: dict, n_pre: int, n_post: int):
    """Pair k puts the earlier spike at start + k/frequency and the other |delta_t| later."""
    k = np.arange(p["pairs"])
    base = p["start"] + k * 1000.0 / p["frequency"]
    d = p["delta_t"]
    t_pre = base + (0.0 if d >= 0 else -d)
    t_post = base + (d if d >= 0 else 0.0)
    return _spread(t_pre, p["pre_spikes"], p["pre_frequency"], n_pre), _spread(t_post, p["post_spikes"], p["post_frequency"], n_post)


def _spread(t, spikes: int, frequency: float, n: int):
    """The bursts of ``spikes`` spikes at ``frequency`` from the times ``t``, for each of ``n``
    neurons: (times, indices). One spike and one neuron (a sweep of tiny networks builds
    hundreds) take no NumPy call: the same values (t + 0.0 is t for the times here, >= 0)."""
    if spikes == 1:
        times = t
    else:
        times = (t[:, None] + np.arange(spikes)[None, :] * 1000.0 / frequency).ravel()
    if n == 1:
        return times, np.zeros(times.size, np.int64)
    return np.tile(times, n), np.repeat(np.arange(n), times.size)


def phase_steps(p: Protocol) -> list[tuple[int, int]]:
    """First and end step of each phase, clipped to the run's duration."""
    n = p.n_steps
    out = []
    for ph in p.phases:
        a = min(n, int(round(ph.start / p.dt)))
        b = min(n, int(round((ph.start + ph.duration) / p.dt)))
        out.append((a, b))
    return out


def spike_events(p: Protocol, rng: np.random.Generator):
    """All pre and post events as sorted (steps, indices) arrays; spikes past a phase's end are dropped.

    Each train becomes steps right after it is drawn, in place where it can, so that runs with
    millions of input spikes need less memory at the peak (benchmark W2, 1.5 million spikes:
    97 instead of 132 MiB for the whole process)."""
    pre_s, pre_i, post_s, post_i = [], [], [], []

    def add(pop, times, idx, a, b):
        x = np.divide(times, p.dt)  # the step of each spike: rint(t / dt), as integers, + a
        del times
        np.rint(x, out=x)
        steps = x.astype(np.int64)
        del x
        steps += a
        idx = np.asarray(idx, dtype=np.int64)
        if steps.size and steps.max() >= b:
            keep = steps < b
            steps, idx = steps[keep], idx[keep]
        (pre_s if pop == PRE else post_s).append(steps)
        (pre_i if pop == PRE else post_i).append(idx)

    for train in _trains(p, rng):
        add(*train)
        del train  # (its times, before the next train is drawn and the sort)

    return sort_events(pre_s, pre_i, p.synapses.n_pre), sort_events(post_s, post_i, p.synapses.n_post)


def _trains(p: Protocol, rng: np.random.Generator):
    """Each spike train of ``p`` as ``(population, times in ms from the phase start, indices,
    the phase's first step, its end step)``, drawn from ``rng`` one after the other, in the order
    that fixes the draws (phase by phase: pre trains, post trains, the pairing), lazily."""
    for ph, (a, b) in zip(p.phases, phase_steps(p)):
        for t in ph.pre:
            if t.kind in ("patterns", "gaussian"):
                continue
            yield (PRE, *train_times(t, ph.duration, p.synapses.n_pre, rng), a, b)
        for t in ph.post:
            yield (POST, *train_times(t, ph.duration, p.synapses.n_post, rng), a, b)
        if ph.pairing:
            (tp, ip), (tq, iq) = pairing_times(ph.pairing, p.synapses.n_pre, p.synapses.n_post)
            yield PRE, tp, ip, a, b
            yield POST, tq, iq, a, b


def spike_events_many(runs) -> list:
    """``[spike_events(p, rng) for p, rng in runs]``, the same arrays, with the NumPy work of all
    runs done at once: each run's trains are drawn as ``spike_events`` draws them (in the same
    order, from its own ``rng``), then the times of all become steps in one pass (the same
    division, rounding and phase offset per spike), the spikes past their phase's end are
    dropped, and one sort orders them by run, step and neuron (``sort_events``'s order), split
    into each run's arrays (views). For many small runs (a sweep of tiny networks, built by
    ``simulation.batches``: W1D's 101 pairings), not for big ones (``spike_events`` converts
    train by train to bound its memory)."""
    runs = list(runs)
    if len(runs) < 2:
        return [spike_events(p, rng) for p, rng in runs]
    times, idx, pop, dts, offs, ends, counts, run_of = [], [], [], [], [], [], [], []
    sizes = []  # (n_pre, n_post) per run

    def add(r, which, t, i, a, b, dt):
        t = np.asarray(t, dtype=np.float64)
        times.append(t)
        idx.append(np.asarray(i, dtype=np.int64))
        counts.append(t.size)
        pop.append(which)
        dts.append(dt)
        offs.append(a)
        ends.append(b)
        run_of.append(r)

    for r, (p, rng) in enumerate(runs):
        sizes.append((p.synapses.n_pre, p.synapses.n_post))
        for which, t, i, a, b in _trains(p, rng):
            add(r, which, t, i, a, b, p.dt)
    n = np.array(counts, np.int64)
    empty = np.zeros(0, np.int64)
    if not n.size:
        return [((empty, empty), (empty, empty)) for _ in runs]
    # the step of each spike as spike_events computes it: rint(t / dt) as int64, + its phase start
    x = np.divide(np.concatenate(times), np.repeat(np.array(dts, np.float64), n))
    np.rint(x, out=x)
    steps = x.astype(np.int64)
    del x
    steps += np.repeat(np.array(offs, np.int64), n)
    neuron = np.concatenate(idx)
    chunk_run = np.array(run_of, np.int64)
    group = np.repeat(2 * chunk_run + np.array(pop, np.int64), n)  # (run, population)
    keep = steps < np.repeat(np.array(ends, np.int64), n)
    if not keep.all():
        steps, neuron, group = steps[keep], neuron[keep], group[keep]
    order = np.lexsort((neuron, steps, group))  # sort_events's order within each (run, population)
    steps, neuron, group = steps[order], neuron[order], group[order]
    bounds = np.searchsorted(group, np.arange(2 * len(runs) + 1)).tolist()
    out = []
    for r, (n_pre, n_post) in enumerate(sizes):
        pair = []
        for which, size in ((PRE, n_pre), (POST, n_post)):
            a, b = bounds[2 * r + which], bounds[2 * r + which + 1]
            # (one neuron: sort_events gives fresh zeros, as here)
            pair.append((steps[a:b], neuron[a:b] if size != 1 else np.zeros(b - a, np.int64)))
        out.append(tuple(pair))
    return out


def sort_events(steps: list, idx: list, n: int):
    """Concatenate event chunks and sort them by step, then neuron (one integer sort). Empties
    the lists (their arrays are reused in place)."""
    if not steps:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if n == 1:  # one neuron (index 0): the steps sorted are the keys sorted
        key = steps[0] if len(steps) == 1 else np.concatenate(steps)
        steps.clear()
        idx.clear()
        key.sort()
        return key, np.zeros(key.size, np.int64)
    key = steps[0] if len(steps) == 1 else np.concatenate(steps)
    steps.clear()
    key *= np.int64(n)
    key += idx[0] if len(idx) == 1 else np.concatenate(idx)
    idx.clear()
    if key.size > 1 << 16 and 0 <= key.min() and key.max() < 1 << 32:
        # the same sorted integers from a radix sort of 32-bit keys (core.sort; benchmark W2:
        # 1.5 million events, about 9 ms against 48 for NumPy's sort of them as uint32, and 80
        # as int64)
        from ..core.sort import radix_sort_u32

        k32 = key.astype(np.uint32)
        radix_sort_u32(k32, np.empty_like(k32))
        key[...] = k32
        del k32
    else:
        key.sort()
    neuron = key % n
    key //= n
    return key, neuron


class RateInput:
    """Presynaptic rates of one phase, generated in chunks identically to one draw."""

    def __init__(self, trains, n_pre: int, dt: float, duration: float, rng: np.random.Generator):
        self.parts = []
        self.n_pre = n_pre
        self.dt = dt
        for t in trains:
            q = t.params
            if t.kind == "patterns":
                vecs = np.asarray(q["vectors"], dtype=float)
                n_pres = int(math.ceil(duration / q["presentation"] - 1e-9)) + 1
                if q["order"] == "cyclic":
                    seq = np.arange(n_pres) % len(vecs)
                else:
                    probs = None if q["probabilities"] is None else np.asarray(q["probabilities"])
                    seq = rng.choice(len(vecs), size=n_pres, p=probs)
                self.parts.append(("patterns", vecs, seq, q["presentation"]))
            elif t.kind == "gaussian":
                mean = np.asarray(q["mean"], dtype=float)
                cov = np.asarray(q["cov"], dtype=float)
                vals, vecs = np.linalg.eigh(cov)
                root = vecs * np.sqrt(np.clip(vals, 0.0, None))
                self.parts.append(("gaussian", mean, root, np.random.Generator(np.random.PCG64(rng.integers(2**63)))))

    def fill(self, out: np.ndarray, k0: int, n: int) -> None:
        """Rows for phase-local steps k0 .. k0+n-1 into out[:n]."""
        self.fill_blocks(out, k0, (n,))

    def fill_blocks(self, out: np.ndarray, k0: int, sizes) -> None:
        """``fill(out[o:], k0 + o, m)`` for consecutive blocks of ``m`` rows in ``sizes``, with the
        same values (the kernels' own recording fills a chunk of several samples at once with the
        fills the Python path makes, sample by sample): the Gaussian draws of one call are those
        of the blocks' calls, but a matrix product's rounding depends on its number of rows, so
        it is made block by block."""
        n = int(sum(sizes))
        out[:n] = 0.0
        for part in self.parts:
            if part[0] == "patterns":
                _, vecs, seq, pres = part
                k = np.arange(k0, k0 + n)
                which = np.minimum((k * self.dt / pres + 1e-9).astype(np.int64), seq.size - 1)
                out[:n] += vecs[seq[which]]
            else:
                _, mean, root, gen = part
                z = gen.standard_normal((n, self.n_pre))
                o = 0
                for m in sizes:
                    out[o : o + m] += mean + z[o : o + m] @ root.T
                    o += m
