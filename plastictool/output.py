"""The one module that writes result files (spec section 9).

Files are written into a temporary sibling folder and renamed into place, so a crash or
Ctrl-C never leaves a half-written result; an existing folder is replaced only with
``force``. Numbers use one fixed, locale-independent format (``%.12g``), so the same
protocol, seed and versions give byte-identical CSV files.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np

from . import __version__
from .engine import RunResult
from .errors import ProtocolError
from .folders import write_folder

FLOAT = "%.12g"


def fmt(x: float) -> str:
    return FLOAT % x


def csv_field(name: str) -> str:
    """A header cell, quoted as CSV requires when it holds a comma (``"w[0,1]"``)."""
    return f'"{name}"' if "," in name or '"' in name else name


CHUNK = 100_000  # rows formatted at a time: memory stays bounded for huge tables


def _write_table(fh, values: np.ndarray, kinds, labels=()) -> None:
    _write_chunks(fh, (values[a : a + CHUNK] for a in range(0, values.shape[0], CHUNK)), kinds, labels)


def _write_chunks(fh, chunks, kinds, labels=()) -> None:
    """Format chunks of rows (the kernel releases the GIL: two threads) and write them in order."""
    from concurrent.futures import ThreadPoolExecutor

    from .core.fmt import format_csv

    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if second is None:  # one chunk: no threads
        fh.write(format_csv(first, kinds, labels))
        return
    import itertools

    chunks = itertools.chain([first, second], chunks)
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = []
        for values in chunks:
            pending.append(pool.submit(format_csv, values, kinds, labels))
            if len(pending) > 2:
                fh.write(pending.pop(0).result())
        for fut in pending:
            fh.write(fut.result())


def write_summary(fh, results: list[RunResult], sweep_keys) -> None:
    from .core.fmt import FLOAT_OR_EMPTY, INT, LABEL
    from .core.fmt import FLOAT as F

    fh.write(",".join([csv_field(k) for k in sweep_keys] + ["pre", "post", "w_initial", "w_final", "dw", "dw_percent", "outcome"]) + "\n")
    outcomes = ["none", "LTP", "LTD"]
    for r in results:
        thr = r.protocol.record.outcome_threshold
        prefix = ",".join(fmt(v) if isinstance(v, (int, float)) else str(v).replace("?", "_") for _, v in r.condition)
        kinds = ([LABEL] if prefix else []) + [INT, INT, F, F, F, FLOAT_OR_EMPTY, LABEL]
        labels = outcomes + ([prefix] if prefix else [])
        w0_all, w1_all = r.w_initial.ravel(), r.w_final.ravel()
        n_post = r.w_final.shape[1]

        def chunks(w0_all=w0_all, w1_all=w1_all, n_post=n_post, thr=thr, prefix=prefix):
            for a in range(0, w0_all.size, CHUNK):
                w0, w1 = w0_all[a : a + CHUNK].astype(np.float64), w1_all[a : a + CHUNK].astype(np.float64)
                ii, jj = np.divmod(np.arange(a, a + w0.size), n_post)
                dw = w1 - w0
                with np.errstate(divide="ignore", invalid="ignore"):
                    pct = np.where(w0 != 0, 100.0 * dw / np.abs(w0), np.nan)
                # LTP/LTD by dw_percent and the threshold; by the sign of dw where dw_percent is empty
                code = np.where(np.isnan(pct), np.where(dw > 0, 1, np.where(dw < 0, 2, 0)), np.where(pct > thr, 1, np.where(pct < -thr, 2, 0)))
                cols = [ii, jj, w0, w1, dw, pct, code]
                if prefix:
                    cols.insert(0, np.full(w0.size, 3))
                yield np.column_stack(cols).astype(np.float64)

        _write_chunks(fh, chunks(), kinds, labels)


def condition_index(r: RunResult, k: int) -> int:
    """The ``condition`` column: the condition's index in the whole sweep (``Condition.index``),
    so that the folders of ``--shard`` runs and their merge agree; ``k`` (the position among
    ``results``) for results made without :func:`plastictool.engine.run_condition`."""
    return k if r.index is None else r.index


def write_traces(fh, results: list[RunResult], sweep: bool) -> None:
    from .core.fmt import FLOAT as F
    from .core.fmt import INT

    cols = results[0].columns
    fh.write(",".join(csv_field(c) for c in cols + (["condition"] if sweep else [])) + "\n")
    for k, r in enumerate(results):
        if r.columns != cols:
            raise ProtocolError("sweep conditions record different columns; sweep values that change sizes are not supported", "sweep")
        data = r.traces
        if sweep:
            data = np.column_stack([data, np.full(data.shape[0], condition_index(r, k))])
        _write_table(fh, data, [F] * len(cols) + ([INT] if sweep else []))


def write_spikes(fh, results: list[RunResult], sweep: bool) -> None:
    from .core.fmt import FLOAT as F
    from .core.fmt import INT, LABEL

    fh.write("t_ms,population,index" + (",condition" if sweep else "") + "\n")
    for k, r in enumerate(results):
        t, pop, idx = r.spikes
        if not t.size:
            continue
        cols = [t, pop, idx] + ([np.full(t.size, condition_index(r, k))] if sweep else [])
        _write_table(fh, np.column_stack(cols).astype(np.float64), [F, LABEL, INT] + ([INT] if sweep else []), ["pre", "post"])


def versions() -> dict:
    out = {"plastic": __version__, "python": platform.python_version()}
    for mod in ("numpy", "numba", "llvmlite", "yaml", "typer", "rich"):
        m = sys.modules.get(mod)
        if m is None:
            try:
                m = __import__(mod)
            except ImportError:  # pragma: no cover
                continue
        out["pyyaml" if mod == "yaml" else mod] = getattr(m, "__version__", "") or _dist_version(mod)
    return out


def _dist_version(mod: str) -> str:
    """The installed distribution's version, for modules without ``__version__`` (rich)."""
    from importlib import metadata

    try:
        return metadata.version({"yaml": "pyyaml"}.get(mod, mod))
    except metadata.PackageNotFoundError:  # pragma: no cover
        return ""


def shard_doc(shard: tuple[int, int], experiment, results: list[RunResult]) -> dict:
    """``run.json``'s ``shard``: which conditions this folder holds and how many rows each has in
    each file, so that :mod:`plastictool.merge` can interleave the shards' rows in condition order."""
    k, n = shard
    rows = {"summary.csv": [int(r.w_final.size) for r in results], "traces.csv": [int(r.traces.shape[0]) for r in results]}
    if experiment.base.record.spikes:
        rows["spikes.csv"] = [int(r.spikes[0].size) for r in results]
    return {
        "index": k,
        "count": n,
        "assignment": "conditions i with i % count == index - 1",
        "total_conditions": len(experiment.conditions),
        "conditions": [condition_index(r, j) for j, r in enumerate(results)],
        "rows": rows,
    }


def run_json(experiment, results: list[RunResult], wall_s: float, argv, profile: dict, shard: tuple[int, int] | None = None) -> str:
    src_bytes = Path(experiment.file).read_bytes() if Path(experiment.file).exists() else b""
    base = experiment.base.resolved
    counts = {}
    for r in results:
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
    sim_s = sum(r.timings.get("simulate_s", 0.0) for r in results)
    doc = {
        "tool": "plastic",
        "version": __version__,
        "protocol_file": str(experiment.file),
        "protocol_sha256": hashlib.sha256(src_bytes).hexdigest(),
        "resolved_sha256": hashlib.sha256(json.dumps(base, sort_keys=True).encode()).hexdigest(),
        "overrides": list(experiment.overrides),
        "protocol": base,
        "seed": experiment.base.seed,
        "sweep": (
            {
                "mode": experiment.sweep_mode,
                "keys": list(experiment.sweep_keys),
                "conditions": [{"condition": c.index, **{k: v for k, v in c.values}} for c in experiment.conditions],
            }
            if experiment.sweep_keys
            else None
        ),
        "blocks": {ph.name: sorted(set(experiment.base.block) | set(ph.block)) for ph in experiment.base.phases},
        "counts": counts,
        "wall_time_s": round(wall_s, 6),
        "profile": {**{k: round(v, 6) for k, v in profile.items()}, "synaptic_updates_per_s": round(counts.get("synaptic_updates", 0) / sim_s, 1) if sim_s > 0 else None},
        "versions": versions(),
        "platform": {
            "system": platform.system(),
            "machine": platform.machine(),
            "release": platform.release(),
            "python_implementation": platform.python_implementation(),
            "byteorder": sys.byteorder,
        },
        "command": list(argv),
    }
    if shard is not None:
        doc["shard"] = shard_doc(shard, experiment, results)
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def write_outputs(out: Path, experiment, results: list[RunResult], wall_s: float, argv=(), profile=None, force=False, shard=None) -> Path:
    """Write summary, traces, spikes and run.json into ``out`` atomically.

    ``shard=(K, N)``: ``results`` are the conditions of shard K of N (``plastic run --shard``);
    ``run.json`` records them (``shard``). A shard without conditions writes only ``run.json``."""
    import time

    t0 = time.perf_counter()
    sweep = bool(experiment.sweep_keys)
    writers = []
    if results or shard is None:
        writers += [("summary.csv", "w", lambda fh: write_summary(fh, results, experiment.sweep_keys)), ("traces.csv", "w", lambda fh: write_traces(fh, results, sweep))]
        if experiment.base.record.spikes:
            writers.append(("spikes.csv", "w", lambda fh: write_spikes(fh, results, sweep)))
    profile = dict(profile or {})

    def meta(fh):
        profile["write_s"] = time.perf_counter() - t0
        fh.write(run_json(experiment, results, wall_s, argv, profile, shard))

    writers.append(("run.json", "w", meta))
    return write_folder(Path(out), writers, force, experiment.file)
