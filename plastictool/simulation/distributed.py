"""Sweep conditions on a Dask cluster (``plastic run --scheduler tcp://HOST:PORT | local``).

Dask is optional (``pip install '.[dask]'`` from the clone) and imported only here, inside the
functions. Every condition draws its random numbers from its own stream
(:func:`plastictool.simulation.engine.condition_seed`), so where it runs does not change its result: the
files are byte-identical to ``--jobs 1``. Results are gathered in condition order.

* Conditions are sent as tasks of a few conditions each (:func:`chunk_size`: about
  :data:`TASK_S` seconds of estimated work, and at least :data:`TASKS_PER_WORKER` tasks per
  worker), each running :func:`run_chunk` on a worker, where the small ones of a task run in
  batches, one kernel call each (:mod:`plastictool.simulation.batches`).
* A worker that dies (killed, out of memory) loses nothing: the scheduler gives its tasks to
  other workers (up to ``distributed.scheduler.allowed-failures`` deaths per task, 3 by default,
  after which the task's conditions are reported as failed); tasks that raise an unexpected
  error are retried :data:`RETRIES` times (``submit(retries=...)``).
* A condition that fails (:class:`~plastictool.errors.SimulationError`: a value became NaN or
  infinite) does not stop the others: every condition runs, then *all* the failing conditions
  are reported together, each with its index and swept values, the exit status is 3 and no
  result folder is written (files appear complete or not at all). Rerun the successful part with
  ``--set``/a narrower sweep, or fix the failing values.
* ``local`` starts a :class:`distributed.LocalCluster` of worker processes (``--jobs`` of them,
  default all cores, one thread each) listening on 127.0.0.1 only; its dashboard also listens on
  127.0.0.1, on a free port (its pages need Bokeh). The cluster is shut down at the end.
"""

from __future__ import annotations

import logging
import math

from ..errors import PlasticError, SimulationError

RETRIES = 2  # retries of a task that raised an unexpected error (worker deaths: allowed-failures)
TASK_S = 1.0  # estimated seconds of simulation per task
TASKS_PER_WORKER = 4  # at least this many tasks per worker, to balance conditions of different lengths
CONNECT_TIMEOUT = "20s"
INSTALL = "pip install '.[dask]' in the clone of plastic (pip install -e '.[dask]' for an editable install)"


def dask_setup(worker=None) -> None:
    """Preload of the ``local`` cluster's worker processes: ignore Ctrl-C (SIGINT reaches the whole
    process group); this process cancels the tasks and shuts the cluster down instead."""
    import signal

    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # pragma: no cover - not the main thread
        pass


def require_dask() -> None:
    """Raise a bad-input error (exit 2) naming the extra to install when Dask is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise PlasticError(f"--scheduler needs Dask (dask[distributed]), which is not installed: {INSTALL}") from None


def parse_scheduler(address: str) -> str:
    """``local``, or the address of a running scheduler (``tcp://HOST:PORT``, ``tls://...``, ``HOST:PORT``)."""
    a = (address or "").strip()
    if a == "local":
        return a
    if "://" in a and a.split("://", 1)[1] or (":" in a and a.rsplit(":", 1)[1].isdigit() and a.rsplit(":", 1)[0]):
        return a
    raise PlasticError(f"--scheduler: expected tcp://HOST:PORT (a running Dask scheduler) or local, got {address!r}")


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def dashboard_link(client) -> str | None:
    """The dashboard's address, or None when the scheduler has none (no Bokeh)."""
    try:
        if "dashboard" not in (client.scheduler_info().get("services") or {}):
            return None
        return client.dashboard_link
    except Exception:  # pragma: no cover - depends on the scheduler
        return None


class Session:
    """A Dask client for one ``plastic run`` (several protocols share it), connected or started
    when a run first needs it and closed by :meth:`close` (a ``local`` cluster is shut down).

    ``notify(message)`` receives one-line messages for the user (the dashboard's address)."""

    def __init__(self, scheduler: str, jobs: int | None = None, notify=None):
        self.scheduler = parse_scheduler(scheduler)
        require_dask()
        self.jobs = jobs
        self.notify = notify
        self._client = None
        self._cluster = None

    @property
    def client(self):
        if self._client is None:
            self._start()
        return self._client

    def _start(self) -> None:
        from distributed import Client, LocalCluster

        if self.scheduler == "local":
            from .parallel import default_jobs

            n = self.jobs or default_jobs()
            self._cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",  # scheduler and workers on loopback only
                # a free port on loopback (None would mean 127.0.0.1:8787, False 0.0.0.0:8787)
                dashboard_address="127.0.0.1:0",
                preload=["plastictool.simulation.distributed"],  # dask_setup: workers leave Ctrl-C to us
                silence_logs=logging.ERROR,  # no warnings about tasks cancelled by Ctrl-C
            )
            try:
                self._client = Client(self._cluster, set_as_default=False)
            except BaseException:
                self._cluster.close()
                self._cluster = None
                raise
        else:
            try:
                self._client = Client(self.scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise PlasticError(f"cannot reach the Dask scheduler at {self.scheduler}: {exc}") from None
        link = dashboard_link(self._client)
        if link and self.notify is not None:
            hint = "" if self._cluster is None or _has_bokeh() else " (its pages need Bokeh: pip install bokeh)"
            self.notify(f"Dask dashboard: {link}{hint}")

    def close(self) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        try:
            if client is not None:
                client.close()
        finally:
            if cluster is not None:
                cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def client_of(scheduler, jobs=None, notify=None):
    """``(client, session_to_close)`` for a scheduler given as a string, a :class:`Session` or a
    ``distributed.Client``."""
    if isinstance(scheduler, str):
        s = Session(scheduler, jobs, notify)
        return s.client, s
    if isinstance(scheduler, Session):
        return scheduler.client, None
    return scheduler, None


def n_workers(client) -> int:
    """Threads of the cluster's workers now (0 while an adaptive cluster has none)."""
    try:
        return int(sum(client.nthreads().values()))
    except Exception:  # pragma: no cover - depends on the scheduler
        return 0


def chunk_size(conditions, workers: int) -> int:
    """Conditions per task: about TASK_S seconds of estimated work, at least TASKS_PER_WORKER
    tasks per worker, at least one condition."""
    from .parallel import estimate_seconds

    n = len(conditions)
    if not n:
        return 1
    mean = sum(estimate_seconds(c.protocol) for c in conditions) / n
    by_time = max(1, int(TASK_S // mean)) if mean > 0 else n
    by_workers = max(1, math.ceil(n / (max(1, workers) * TASKS_PER_WORKER)))
    return max(1, min(by_time, by_workers))


def run_chunk(conditions) -> list:
    """On a worker: run the conditions of a task; ``[(RunResult | None, packed error | None), ...]``.

    Small conditions of equal kernel types run in batches, one kernel call each
    (:func:`plastictool.simulation.batches.run_conditions`, the path of ``--jobs 1``: the same
    results). A failing condition does not stop the others of its task: the rest run on after it."""
    from .batches import run_conditions as run_local
    from .parallel import _pack

    out = []
    rest = list(conditions)
    while rest:
        done, err = run_local(rest)
        out += [(r, None) for r in done]
        if err is None:
            break
        out.append((None, _pack(err)))  # the condition after the finished ones failed
        rest = rest[len(done) + 1 :]
    return out


def run_conditions(conditions, client, progress=None, *, retries: int = RETRIES, runner=None, info: dict | None = None) -> list:
    """Run ``conditions`` on the Dask cluster of ``client``; the list of RunResult, in condition order.

    ``progress(label, done, total)`` is called as tasks finish (label ``"done/total"``).
    ``runner`` replaces :func:`run_chunk` as the task (it takes a list of conditions and returns
    what ``run_chunk`` returns). Failing conditions are reported together once every task has
    finished (:func:`failure`)."""
    from distributed import as_completed

    conditions = list(conditions)
    n = len(conditions)
    if not n:
        return []
    workers = n_workers(client)
    if info is not None:
        info["workers"] = workers
    size = chunk_size(conditions, workers)
    chunks = [conditions[i : i + size] for i in range(0, n, size)]
    runner = runner or run_chunk
    futures = [client.submit(runner, chunk, retries=retries, pure=False) for chunk in chunks]
    index = {f.key: k for k, f in enumerate(futures)}
    results: list = [None] * len(chunks)
    failures: list = []  # (condition index, PlasticError)
    done = 0
    finished = False
    try:
        # the loop of this client (as_completed defaults to the default client's, which may be another one)
        for fut, res in as_completed(futures, loop=client.loop, with_results=True, raise_errors=False):
            k = index[fut.key]
            if isinstance(res, BaseException):
                failures.append(_task_error(res, chunks[k]))
                results[k] = []
            else:
                results[k] = []
                for cond, (r, err) in zip(chunks[k], res):
                    if err is None:
                        results[k].append(r)
                    else:
                        from .parallel import _unpack

                        failures.append((cond.index, _unpack(err)))
            done += len(chunks[k])
            if progress is not None:
                progress(f"{done}/{n}", done, n)
        finished = True
    finally:
        if not finished:  # interrupted or an unexpected error: stop what is left
            try:
                client.cancel(futures)
            except Exception:  # pragma: no cover - the client is gone
                pass
    if failures:
        raise failure(failures, n)
    return [r for chunk in results for r in chunk]


def _task_error(exc: BaseException, chunk) -> tuple:
    """A task that raised instead of returning: its worker kept dying, or a worker cannot run plastic."""
    from distributed import KilledWorker

    which = _conditions_text(chunk)
    if isinstance(exc, KilledWorker):
        return chunk[0].index, SimulationError(f"{which}: the Dask worker running {'it' if len(chunk) == 1 else 'them'} died repeatedly (out of memory?): {exc}")
    if isinstance(exc, ImportError):
        raise PlasticError(f"a Dask worker cannot import plastictool ({exc}): install the same version of plastictool on every worker") from None
    raise exc


def _conditions_text(chunk) -> str:
    parts = []
    for c in chunk:
        where = ", ".join(f"{k} = {v!r}" for k, v in c.values)
        parts.append(f"condition {c.index}" + (f" ({where})" if where else ""))
    return "sweep " + "; ".join(parts) if len(chunk) > 1 or chunk[0].values else "the run"


def failure(failures: list, total: int) -> PlasticError:
    """One error for all failing conditions (each with its index and values), in condition order;
    exit status: the worst of theirs (3 when a simulation failed)."""
    failures = sorted(failures, key=lambda f: f[0])
    if total == 1 and len(failures) == 1:
        return failures[0][1]
    errors = [e for _, e in failures]
    n = len(failures)
    head = (
        f"{n} of {total} sweep conditions failed; the other {total - n} finished, but no result folder was written "
        f"(files appear complete or not at all):"
    )
    msg = "\n".join([head] + [f"  {e}" for e in errors])
    cls = SimulationError if all(isinstance(e, SimulationError) for e in errors) else PlasticError
    exc = cls(msg)
    exc.exit_code = max(e.exit_code for e in errors)
    return exc
