"""Many small conditions (a sweep of tiny networks) run in batches (:func:`run_conditions`):
the conditions of a worker that share their kernel types (:func:`batch_key`: rule, neuron
model, dtype, argument types, phases, block masks, recording plan) are built, then run in one
kernel call (:mod:`plastictool.core.batch`), with the results, and errors, of one by one;
``PLASTIC_BATCH=0`` runs each on its own.

What a window of conditions needs of each is made for all at once where that gives the same
arrays: their spike events (``stimulus.spike_events_many``: one conversion and one sort),
their spike tables (``engine.spike_tables``: one sort); conditions equal but for their
stimulus share what their build draws nothing for (``engine.build(shared=)``), their batch key
(``_key_like``) and their Recorder's plan (``Recorder.like``). bench/sweep_overhead.py measures
what remains per condition (W1D against the same pairings as one network of 101 synapses).
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import numpy as np

from .. import rules as rule_registry
from ..errors import PlasticError, SimulationError
from ..protocol.schema import Protocol
from .engine import (
    ConditionSeeds,
    _check_finite,
    _finish,
    _named,
    _prepare,
    build,
    recorded_events,
    run_events,
    run_condition,
    simulate_built,
    spike_tables,
)
from .memory import estimate_memory
from .recorder import Recorder
from .stimulus import spike_events_many
from .threads import Stepper, plan_blocks

if TYPE_CHECKING:
    from .engine import Built


# ---------------------------------------------------------------------------- batches
BATCH_ENV = "PLASTIC_BATCH"  # 0: every condition on its own (the twin of the batched runs)
BATCH_SYNAPSES = 4096  # conditions of at most this many synapses are batched ...
BATCH_BYTES = 256 << 20  # ... and at most this much estimated memory of them built at once
BATCH_MAX = 4096  # ... and at most this many conditions


def batching() -> bool:
    """Whether the conditions of a worker may run in batches (``core.batch``): not with
    ``PLASTIC_BATCH=0`` nor ``PLASTIC_RECORD=python``."""
    return os.environ.get(BATCH_ENV, "1").strip().lower() not in ("0", "false", "no", "off") and os.environ.get("PLASTIC_RECORD") != "python"


def batchable(p: Protocol) -> bool:
    """Whether a condition may join a batch, from its protocol alone (before it is built)."""
    spec = rule_registry.spec(p.rule.kind)
    s = p.synapses
    return (
        spec.post_blocks
        and spec.inputs == "spikes"
        and s.n_pre * s.n_post <= BATCH_SYNAPSES
        and s.release is None
        and s.structure is None
        and not s.inhibitory
        and not any(t.kind in ("patterns", "gaussian") for ph in p.phases for t in ph.pre)
    )


def batch_key(b: Built, rec: Recorder, stepper: Stepper):
    """What conditions must share to run in one batch (``core.batch``), or None where this one
    cannot: the kernels' argument types, the phases and block masks, the recording plan."""
    from ..core import batch, record

    if not hasattr(b.module, "advance_block") or b.rel is not None or b.structure is not None or b.inh is not None:
        return None
    if record.supported(b, rec, stepper) is not None or not batch.sources_ok(b, rec):
        return None
    p = b.protocol
    phases = tuple((a, e, bl.tobytes()) for a, e, bl, rate in b.phases if rate is None)
    if len(phases) != len(b.phases):
        return None
    try:
        types = batch.signature((b.w, b.net, b.state, b.params))
    except TypeError:  # a value the batch cannot pack
        return None
    sel = tuple((name, shape, None if x is None else np.asarray(x).tobytes()) for name, shape, x in rec.state)
    return (b.module.SPEC.kind, types, phases, p.n_steps, rec.every, tuple(rec.columns), rec.rows.shape[0], rec.wi.tobytes(), rec.wj.tobytes(), sel, p.record.stats)


CHECK_KEYS = False  # True: every shortcut key (_key_like) is checked against batch_key (tests)


_FIELDS: list = []  # the Protocol fields _same_but_stimulus compares (all but the stimulus's)


def _same_but_stimulus(p: Protocol, q: Protocol) -> bool:
    """Whether ``p`` and ``q`` are equal but for their phases (stimulus) and duration (a sweep
    over the stimulus: W1D's delta_t). Sections a sweep does not reach are the same objects
    (``schema.Sections``), so this is mostly identity checks."""
    if not _FIELDS:
        import dataclasses

        _FIELDS.extend(f.name for f in dataclasses.fields(Protocol) if f.name not in ("phases", "duration", "resolved"))
    for f in _FIELDS:
        a, b = getattr(p, f), getattr(q, f)
        if a is not b and a != b:
            return False
    return True


def _key_like(key: tuple, b: Built, rec: Recorder):
    """The ``batch_key`` of ``b`` from ``key``, that of a condition equal to it but for the
    stimulus (``_same_but_stimulus``: the same kernel argument types, recording plan and
    selection): only its phases, steps and rows differ. None where ``b`` has rate input."""
    if any(rate is not None for _a, _e, _bl, rate in b.phases):
        return None
    phases = tuple((a, e, bl.tobytes()) for a, e, bl, _rate in b.phases)
    return key[:2] + (phases, b.protocol.n_steps, rec.every, tuple(rec.columns), rec.rows.shape[0]) + key[7:]


def run_conditions(conds, progress=None, threads: int | None = None):
    """Run conditions in order, small ones of equal kernel types in batches (``core.batch``):
    returns ``(results, error)``, the results before the first failing condition and its error
    (a ``PlasticError``, as :func:`run_condition` raises it) or None. The results, and the
    error, are those of :func:`run_condition` one by one. ``progress(condition, step, total)``."""
    conds = list(conds)
    out: list = []
    more = {} if threads is None else {"threads": threads}
    if not batching() or len(conds) < 2:
        for cond in conds:
            try:
                out.append(run_condition(cond, _progress_of(progress, cond), **more))
            except PlasticError as exc:
                return out, exc
        return out, None
    k = 0
    while k < len(conds):
        window = []
        size = 0
        while k < len(conds) and len(window) < BATCH_MAX:
            p = conds[k].protocol
            if not batchable(p):
                break
            size += estimate_memory(p)["total"]
            if window and size > BATCH_BYTES:
                break
            window.append(conds[k])
            k += 1
        if not window:
            try:
                out.append(run_condition(conds[k], _progress_of(progress, conds[k]), **more))
            except PlasticError as exc:
                return out, exc
            k += 1
            continue
        got, err = _run_window(window, progress, threads)
        out += got
        if err is not None:
            return out, err
    return out, None


def _progress_of(progress, cond):
    if progress is None:
        return None

    def cb(step):
        progress(cond.index, step, cond.protocol.n_steps)

    return cb


def _run_window(conds, progress, threads):
    """Build ``conds`` (all ``batchable``), run those with equal ``batch_key`` together and the
    rest one by one; ``(results in order, first error)``."""
    from ..core import batch

    built, keys, errors = {}, {}, {}
    groups: dict = {}
    template = None  # (protocol, batch_key, Recorder) of the last condition whose key was computed whole
    shared: dict = {}  # what the conditions equal to the template but for their stimulus build alike
    with np.errstate(all="ignore"):
        # the spike events of all conditions at once (their own streams: child 1 of each
        # condition's seed, as build draws them); the time counts as the builds'
        t0 = time.perf_counter()
        try:
            events = spike_events_many((c.protocol, ConditionSeeds(c.protocol.seed, c.values).rng(1)) for c in conds)
        except PlasticError:  # (none is known) each build draws its own and fails in sweep order
            events = [None] * len(conds)
        t_events = (time.perf_counter() - t0) / max(1, len(conds))
        for cond, ev in zip(conds, events):
            t0 = time.perf_counter() - t_events
            like = template is not None and _same_but_stimulus(cond.protocol, template[0])
            if not like:
                shared = {}
            try:
                b = build(cond.protocol, cond.values, ev, shared=shared)
            except PlasticError as exc:
                errors[cond.index] = exc
                shared, template = {}, None  # (what it shared may be its own)
                continue
            t1 = time.perf_counter()
            w_initial, rec = _prepare(b, template[2] if like else None)
            stepper = Stepper(b, plan_blocks(b, threads))
            if like and template[1] is not None and stepper.threads == 1:
                key = _key_like(template[1], b, rec)
                if CHECK_KEYS:
                    assert key == batch_key(b, rec, stepper), (key, batch_key(b, rec, stepper))
                    fresh = Recorder(b)
                    assert fresh.columns == rec.columns and fresh.every == rec.every and fresh.rows.shape == rec.rows.shape, "Recorder.like"
                    assert all(a[0] == c[0] and a[1] == c[1] and np.array_equal(a[2], c[2]) for a, c in zip(fresh.state, rec.state)), "Recorder.like"
                    assert np.array_equal(fresh.wi, rec.wi) and np.array_equal(fresh.wj, rec.wj) and len(fresh.state) == len(rec.state), "Recorder.like"
            else:
                key = batch_key(b, rec, stepper)
                template = (b.protocol, key, rec)
            # (build_s: the build alone; the batch's own Python per condition counts as simulation)
            built[cond.index] = (b, w_initial, rec, stepper, t1 - t0, time.perf_counter() - t1)
            keys[cond.index] = key
            if key is not None:
                groups.setdefault(key, []).append(cond.index)
        results: dict = {}
        by_index = {c.index: c for c in conds}
        for key, members in groups.items():
            if len(members) < 2:
                continue
            parts = [built[i] for i in members]
            t1 = time.perf_counter()
            bad = batch.run([x[0] for x in parts], [x[2] for x in parts], [x[3] for x in parts])
            # the events of every condition that ran through, and the spike tables of all at once
            events = {i: run_events(x[0], x[3]) for i, x, step in zip(members, parts, bad) if step is None}
            spiking = [i for i, x in zip(members, parts) if i in events and x[0].protocol.record.spikes]
            tables = dict(zip(spiking, spike_tables([recorded_events(by_index[i].protocol, *events[i]) + (by_index[i].protocol.dt,) for i in spiking])))
            t_sim = (time.perf_counter() - t1) / len(members)
            for i, x, step in zip(members, parts, bad):
                b, w_initial, rec, stepper, t_build, t_prep = x
                cond = by_index[i]
                try:
                    if step is not None:
                        _check_finite(b, step, rec)
                        raise AssertionError("the kernel found a non-finite value that the check did not")  # pragma: no cover
                    r = _finish(b, cond.values, w_initial, rec, stepper, t_build, t1, stepper.compiled_at, t_sim + t_prep, events[i], tables.get(i))
                    r.index = i
                    results[i] = r
                    if progress is not None:
                        progress(i, cond.protocol.n_steps, cond.protocol.n_steps)
                except SimulationError as exc:
                    errors[i] = _named(cond, exc)
                built[i] = None  # (its arrays live on in the result)
    out = []
    for cond in conds:
        i = cond.index
        if i in errors:
            return out, errors[i]
        if i not in results:  # not batched: on its own, as run_condition does, with what build made
            b, w_initial, rec, stepper, t_build, _ = built[i]
            built[i] = None
            try:
                with np.errstate(all="ignore"):
                    stepper.close()
                    r = simulate_built(b, cond.values, t_build, _progress_of(progress, cond), threads)
                r.index = i
                results[i] = r
            except SimulationError as exc:
                return out, _named(cond, exc)
            except PlasticError as exc:
                return out, exc
        out.append(results.pop(i))
    return out, None
