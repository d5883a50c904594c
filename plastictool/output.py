"""The one module that writes result files (spec section 9).

Files are written into a temporary sibling folder and renamed into place, so a crash or
Ctrl-C never leaves a half-written result; an existing folder is replaced only with
``force``. Numbers use one fixed, locale-independent format (``%.12g``), so the same
protocol, seed and versions give byte-identical CSV files.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import __version__
from .engine import RunResult
from .errors import ProtocolError

FLOAT = "%.12g"


def fmt(x: float) -> str:
    return FLOAT % x


def csv_field(name: str) -> str:
    """A header cell, quoted as CSV requires when it holds a comma (``"w[0,1]"``)."""
    return f'"{name}"' if "," in name or '"' in name else name


def check_target(out: Path, force: bool, file: str) -> None:
    if out.exists() and not force:
        raise ProtocolError(f"output folder {str(out)!r} exists; use --force to replace it, or --out", "", file, None)
    if out.exists() and not out.is_dir():
        raise ProtocolError(f"{str(out)!r} exists and is not a folder", "", file, None)


CHUNK = 100_000  # rows formatted at a time: memory stays bounded for huge tables


def _write_table(fh, values: np.ndarray, kinds, labels=()) -> None:
    from .core.fmt import format_csv

    for a in range(0, values.shape[0], CHUNK):
        fh.write(format_csv(values[a : a + CHUNK], kinds, labels))


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
        for a in range(0, w0_all.size, CHUNK):
            w0, w1 = w0_all[a : a + CHUNK], w1_all[a : a + CHUNK]
            ii, jj = np.divmod(np.arange(a, a + w0.size), n_post)
            dw = w1 - w0
            with np.errstate(divide="ignore", invalid="ignore"):
                pct = np.where(w0 != 0, 100.0 * dw / np.abs(w0), np.nan)
            # LTP/LTD by dw_percent and the threshold; by the sign of dw where dw_percent is empty
            code = np.where(np.isnan(pct), np.where(dw > 0, 1, np.where(dw < 0, 2, 0)), np.where(pct > thr, 1, np.where(pct < -thr, 2, 0)))
            cols = [ii, jj, w0, w1, dw, pct, code]
            if prefix:
                cols.insert(0, np.full(w0.size, 3))
            _write_table(fh, np.column_stack(cols).astype(np.float64), kinds, labels)


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
            data = np.column_stack([data, np.full(data.shape[0], k)])
        _write_table(fh, data, [F] * len(cols) + ([INT] if sweep else []))


def write_spikes(fh, results: list[RunResult], sweep: bool) -> None:
    from .core.fmt import FLOAT as F
    from .core.fmt import INT, LABEL

    fh.write("t_ms,population,index" + (",condition" if sweep else "") + "\n")
    for k, r in enumerate(results):
        t, pop, idx = r.spikes
        if not t.size:
            continue
        cols = [t, pop, idx] + ([np.full(t.size, k)] if sweep else [])
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


def run_json(experiment, results: list[RunResult], wall_s: float, argv, profile: dict) -> str:
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
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def write_outputs(out: Path, experiment, results: list[RunResult], wall_s: float, argv=(), profile=None, force=False) -> Path:
    """Write summary, traces, spikes and run.json into ``out`` atomically."""
    import time

    t0 = time.perf_counter()
    sweep = bool(experiment.sweep_keys)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the result folder gets the usual mode
    try:
        writers = [("summary.csv", lambda fh: write_summary(fh, results, experiment.sweep_keys)), ("traces.csv", lambda fh: write_traces(fh, results, sweep))]
        if experiment.base.record.spikes:
            writers.append(("spikes.csv", lambda fh: write_spikes(fh, results, sweep)))
        for name, writer in writers:
            with open(tmp / name, "w", encoding="ascii", newline="\n") as fh:
                writer(fh)
        profile = dict(profile or {})
        profile["write_s"] = time.perf_counter() - t0
        with open(tmp / "run.json", "w", encoding="ascii", newline="\n") as fh:
            fh.write(run_json(experiment, results, wall_s, argv, profile))
        if out.exists():
            if not force:
                raise ProtocolError(f"output folder {str(out)!r} exists; use --force to replace it", "", experiment.file, None)
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / out.name)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
