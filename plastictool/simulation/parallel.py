"""Sweep conditions over worker processes (``plastic run --jobs N``).

Every condition draws its random numbers from its own stream (``engine.condition_seed``: only
the protocol's ``seed`` and that condition's swept values), so where a condition runs does not
change its result: ``--jobs N`` writes byte-identical files to ``--jobs 1``. Results are
gathered in condition order.

When processes are used (the rule, documented in ``docs/ci.md`` and ``plastic run --help``):

* ``--jobs 1``, or a protocol with one condition: in-process, no workers;
* otherwise the sweep's simulation time is estimated from its size (:func:`estimate_seconds`:
  steps, neurons, synapses, expected spikes). A worker process costs about a second to start
  (a fresh interpreter imports NumPy and Numba and loads the cached kernels), so each worker
  must get at least :data:`WORKER_MIN_S` seconds of estimated work:
  ``workers = min(jobs, conditions, estimate // WORKER_MIN_S, memory limit // one condition's
  memory)``; with fewer than 2 workers the sweep runs in-process.

Workers are started with the ``forkserver`` method where the platform has it, else ``spawn``
(never a plain ``fork``: forking a process that has started Numba or BLAS threads is unsafe).
Conditions are sent in chunks (about four per worker, to balance conditions of different
lengths while paying the per-task cost rarely); each worker imports :mod:`plastictool` and
calls :func:`plastictool.simulation.engine.run_condition`. Workers ignore Ctrl-C: the parent stops them
and re-raises ``KeyboardInterrupt``, so no result folder is written.

Workers die with their parent: on Linux the fork server and every worker ask the kernel for
SIGKILL when their parent dies (``prctl(PR_SET_PDEATHSIG)``, :mod:`plastictool.simulation.deathsig`), and a
worker whose run's main process is already gone when it starts exits at once, so ``kill -9`` of
``plastic run --jobs N`` leaves no process behind.
"""

from __future__ import annotations

import math
import os
import signal

from ..errors import PlasticError, SimulationError

WORKER_MIN_S = 2.0  # estimated seconds of simulation a worker must get to pay for its start-up
CHUNKS_PER_WORKER = 4
# rough cost model of the kernels (seconds), calibrated on the example protocols
STEP_S = 30e-9  # per time step
NEURON_STEP_S = 1e-9  # per neuron (pre and post) and step
SYNAPSE_STEP_S = 1e-9  # per synapse and step, for rules driven by rates
SPIKE_SYNAPSE_S = 3e-9  # per spike and synapse it touches


def default_jobs() -> int:
    """The cores this process may use (``os.sched_getaffinity`` where available, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def estimate_seconds(p) -> float:
    """A rough estimate of one condition's simulation time (only used to decide on workers)."""
    from .. import rules as rule_registry
    from ..protocol.schema import expected_spikes

    n_pre, n_post = p.synapses.n_pre, p.synapses.n_post
    steps = p.n_steps
    t = steps * (STEP_S + NEURON_STEP_S * (n_pre + n_post))
    spec = rule_registry.spec(p.rule.kind)
    if spec.inputs == "rates" or spec.weight_from_state:
        t += steps * n_pre * n_post * SYNAPSE_STEP_S
    t += expected_spikes(p.phases, p.synapses) * max(n_pre, n_post) * SPIKE_SYNAPSE_S
    return t


def plan_workers(conditions, jobs: int) -> int:
    """How many worker processes to use for these conditions (0 = run in-process)."""
    n = len(conditions)
    if jobs is None:
        jobs = default_jobs()
    if jobs <= 1 or n <= 1:
        return 0
    from .memory import estimate_memory, memory_limit

    total = sum(estimate_seconds(c.protocol) for c in conditions)
    by_time = int(total // WORKER_MIN_S) if WORKER_MIN_S > 0 else n
    biggest = max(estimate_memory(c.protocol)["total"] for c in conditions)
    by_memory = max(1, int(memory_limit() // max(1, biggest)))
    workers = min(jobs, n, by_time, by_memory)
    return workers if workers >= 2 else 0


def _context():
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        from .deathsig import ENV

        os.environ[ENV] = str(os.getpid())  # read by plastictool.simulation.deathsig in the fork server
        ctx = mp.get_context("forkserver")
        # NumPy and the package, imported once; plastictool.simulation.deathsig makes the fork server itself
        # die with this process
        ctx.set_forkserver_preload(["plastictool.simulation.deathsig", "plastictool.simulation.engine"])
        return ctx
    return mp.get_context("spawn")  # pragma: no cover - platforms without forkserver


def _init_worker(main_pid: int) -> None:
    """In a worker: ignore Ctrl-C (the parent handles it and stops us) and die with the parent."""
    from .deathsig import die_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(main_pid)


def _pack(exc: PlasticError):
    return (type(exc), exc.args, dict(exc.__dict__))


def _unpack(packed) -> PlasticError:
    cls, args, state = packed
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


def _run_chunk(conditions):
    """In a worker: run conditions in order (small ones of equal kernel types in one kernel call,
    ``batches.run_conditions``); stop at the first error, which is sent back whole."""
    from .batches import run_conditions

    out, exc = run_conditions(conditions)  # small conditions in batches (core.batch)
    return out, (None if exc is None else _pack(exc))


def _stop(ex) -> None:
    """Cancel what has not started and end the workers now."""
    ex.shutdown(wait=False, cancel_futures=True)
    terminate = getattr(ex, "terminate_workers", None)  # Python 3.14
    if terminate is not None:
        try:
            terminate()
        except Exception:  # pragma: no cover - already gone
            pass
        return
    for proc in list((getattr(ex, "_processes", None) or {}).values()):
        try:
            proc.terminate()
        except Exception:  # pragma: no cover - already gone
            pass
    for proc in list((getattr(ex, "_processes", None) or {}).values()):
        proc.join(5)


def run_conditions(conditions, workers: int, progress=None) -> list:
    """Run ``conditions`` on ``workers`` processes; the list of RunResult, in condition order.

    ``progress(label, done, total)`` is called as chunks finish. The error raised is the one of
    the first failing condition in condition order, as with one process."""
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    conditions = list(conditions)
    n = len(conditions)
    size = max(1, math.ceil(n / (workers * CHUNKS_PER_WORKER)))
    chunks = [conditions[i : i + size] for i in range(0, n, size)]
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=_context(), initializer=_init_worker, initargs=(os.getpid(),))
    futures = [ex.submit(_run_chunk, chunk) for chunk in chunks]
    index = {f: k for k, f in enumerate(futures)}
    results: list = [None] * len(chunks)
    first_error = None
    try:
        pending = set(futures)
        done_n = 0
        while pending and first_error is None:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in sorted(done, key=index.get):
                k = index[f]
                res, err = f.result()
                results[k] = res
                done_n += len(res)
                if err is not None and (first_error is None or k < first_error[0]):
                    first_error = (k, err)
            if progress is not None:
                progress(f"{done_n}/{n}", done_n, n)
        if first_error is not None:
            # chunks before the failing one started earlier (FIFO); one of them may hold an
            # earlier error, so let them finish, then stop the rest
            for f in futures[: first_error[0]]:
                res, err = f.result()
                if err is not None:
                    first_error = min(first_error, (index[f], err), key=lambda e: e[0])
                    break
            _stop(ex)
            raise _unpack(first_error[1])
        ex.shutdown(wait=True)
    except BrokenProcessPool as exc:
        _stop(ex)
        raise SimulationError(f"a worker process died ({exc}); try --jobs 1") from None
    except BaseException:
        _stop(ex)
        raise
    return [r for chunk in results for r in chunk]
