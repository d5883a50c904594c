"""``plastic merge``: join the folders of ``plastic run --shard K/N`` into one result.

Shard K of N holds the conditions with index i where ``i % N == K - 1``; its ``run.json``
records the shard (``shard``: index, count, total_conditions, conditions and the rows each
condition has in each CSV file). Merging interleaves the shards' rows in condition order and
writes exactly the files a single run writes: ``summary.csv``, ``traces.csv``, ``spikes.csv``
and ``structure.csv``, byte-identical to ``plastic run --jobs 1`` with the same protocol and seed (the ``condition``
column of traces and spikes is the global condition index in shards too), and a ``run.json``
with the counts summed. Plain text work: nothing is recomputed and NumPy is not loaded.
Shards of ``record.format: npy`` (tables as folders of ``.npy`` files, :mod:`plastictool.results.columnar`)
are merged the same way, column by column, as bytes: the merged folder is byte-identical to a
single run's (``shard.rows`` names the tables by their CSV file, ``summary.csv``, in both formats).

Refused (exit 2): a folder without ``run.json`` or not made with ``--shard``; shards of
different runs (``resolved_sha256``, ``seed``, ``sweep``, shard count or number of conditions
differ); a shard given twice; a missing shard; files whose rows do not match their ``run.json``.
Different package versions between shards are only a warning.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from ..errors import PlasticError
from .folders import check_target, write_folder

CSV_FILES = ("summary.csv", "traces.csv", "spikes.csv", "responses.csv", "structure.csv")
SAME = ("seed", "resolved_sha256", "sweep")  # run.json keys that shards of one run share
VERSIONS = ("plastic", "python", "numpy", "numba", "llvmlite")
BLOCK = 65536  # lines copied at a time


@dataclass
class MergeReport:
    out: str
    name: str
    shards: int
    conditions: int
    counts: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"out": self.out, "name": self.name, "shards": self.shards, "conditions": self.conditions, "counts": self.counts, "warnings": self.warnings}


@dataclass
class Shard:
    folder: Path
    doc: dict

    @property
    def info(self) -> dict:
        return self.doc["shard"]

    @property
    def label(self) -> str:
        return f"{self.info['index']}/{self.info['count']}"


def load_shard(folder) -> Shard:
    folder = Path(folder)
    meta = folder / "run.json"
    if not folder.is_dir():
        raise PlasticError(f"{str(folder)!r} is not a folder")
    if not meta.is_file():
        raise PlasticError(f"{str(folder)!r} has no run.json: not an output folder of plastic run --shard")
    try:
        doc = json.loads(meta.read_text())
    except (OSError, ValueError) as exc:
        raise PlasticError(f"{meta}: cannot read it: {exc}") from None
    info = doc.get("shard") if isinstance(doc, dict) else None
    if not isinstance(info, dict):
        raise PlasticError(f"{str(folder)!r} is not a shard (its run.json has no 'shard': run it with plastic run --shard K/N)")
    for key in ("index", "count", "total_conditions", "conditions", "rows"):
        if key not in info:
            raise PlasticError(f"{meta}: shard.{key} is missing")
    rows = info["rows"]
    for name, counts in rows.items():
        if name not in CSV_FILES or len(counts) != len(info["conditions"]):
            raise PlasticError(f"{meta}: shard.rows[{name!r}] does not match its conditions")
    return Shard(folder, doc)


def check_shards(shards: list[Shard]) -> list[str]:
    """Refuse shards of different runs, duplicates and gaps; returns warnings."""
    first = shards[0]
    warnings = []
    for s in shards[1:]:
        for key in SAME:
            if s.doc.get(key) != first.doc.get(key):
                what = {"resolved_sha256": "resolved protocol (another protocol file or --set)", "seed": "seed", "sweep": "sweep"}[key]
                extra = f" ({first.doc.get(key)} and {s.doc.get(key)})" if key == "seed" else ""
                raise PlasticError(f"{first.folder} and {s.folder} are shards of different runs: the {what} differs{extra}")
        for key in ("count", "total_conditions"):
            if s.info[key] != first.info[key]:
                raise PlasticError(f"{first.folder} and {s.folder} are shards of different runs: shard {key} {first.info[key]} and {s.info[key]}")
        va, vb = first.doc.get("versions") or {}, s.doc.get("versions") or {}
        diff = [f"{k} {va.get(k)} and {vb.get(k)}" for k in VERSIONS if va.get(k) != vb.get(k)]
        if diff:
            warnings.append(f"{first.folder} and {s.folder} were run with different versions ({', '.join(diff)}); results may differ from a single run")
    n = first.info["count"]
    seen: dict = {}
    for s in shards:
        k = s.info["index"]
        if k in seen:
            raise PlasticError(f"shard {k}/{n} is given twice: {seen[k].folder} and {s.folder}")
        seen[k] = s
    missing = [k for k in range(1, n + 1) if k not in seen]
    if missing:
        raise PlasticError(f"missing shard{'s' if len(missing) > 1 else ''} {', '.join(f'{k}/{n}' for k in missing)} (got {', '.join(f'{k}/{n}' for k in sorted(seen))})")
    total = first.info["total_conditions"]
    owner: dict = {}
    for s in shards:
        for i in s.info["conditions"]:
            if i in owner or not 0 <= i < total:
                raise PlasticError(f"{s.folder}: condition {i} is {'also in ' + str(owner[i].folder) if i in owner else 'out of range'}")
            owner[i] = s
    if len(owner) != total:
        lost = [i for i in range(total) if i not in owner][:10]
        raise PlasticError(f"the shards miss conditions {', '.join(map(str, lost))} of {total}")
    return warnings


def merged_run_json(shards: list[Shard], argv) -> dict:
    """The first shard's run.json without ``shard``, with counts, wall time and timings summed."""
    shards = sorted(shards, key=lambda s: s.info["index"])
    doc = copy.deepcopy(shards[0].doc)
    doc.pop("shard", None)
    counts: dict = {}
    profile: dict = {}
    for s in shards:
        for k, v in (s.doc.get("counts") or {}).items():
            counts[k] = counts.get(k, 0) + v
        for k, v in (s.doc.get("profile") or {}).items():
            if k == "synaptic_updates_per_s" or not isinstance(v, (int, float)):
                continue
            profile[k] = max(profile.get(k, 0), v) if k in ("workers", "threads") else profile.get(k, 0) + v
    doc["counts"] = counts
    doc["wall_time_s"] = round(sum(s.doc.get("wall_time_s") or 0.0 for s in shards), 6)
    sim = profile.get("simulate_s", 0.0)
    profile = {k: round(v, 6) for k, v in profile.items()}
    profile["synaptic_updates_per_s"] = round(counts.get("synaptic_updates", 0) / sim, 1) if sim > 0 else None
    doc["profile"] = profile
    doc["command"] = list(argv)
    doc["merged"] = {
        "shards": [
            {"folder": str(s.folder), "shard": s.label, "conditions": len(s.info["conditions"]), "wall_time_s": s.doc.get("wall_time_s"), "command": s.doc.get("command")}
            for s in shards
        ]
    }
    return doc


def _merge_csv(name: str, shards: list[Shard], total: int):
    """A writer of ``name``: the header, then each condition's rows from the shard that holds it."""

    def fill(out) -> None:
        handles = {}
        try:
            header = None
            for s in shards:
                if not s.info["conditions"]:
                    continue  # an empty shard writes only run.json
                path = s.folder / name
                if not path.is_file():
                    raise PlasticError(f"{path} is missing")
                fh = open(path, "rb")
                handles[id(s)] = fh
                h = fh.readline()
                if header is None:
                    header = h
                elif h != header:
                    raise PlasticError(f"{path}: its header differs from the other shards' {name}")
            out.write(header)
            where = {}
            for s in shards:
                for pos, i in enumerate(s.info["conditions"]):
                    where[i] = (s, s.info["rows"][name][pos])
            for i in range(total):
                s, n = where[i]
                fh = handles[id(s)]
                while n > 0:
                    lines = list(islice(fh, min(n, BLOCK)))
                    if not lines or not lines[-1].endswith(b"\n"):
                        raise PlasticError(f"{s.folder / name}: fewer rows than its run.json records (truncated?)")
                    out.writelines(lines)
                    n -= len(lines)
            for s in shards:
                fh = handles.get(id(s))
                if fh is not None and fh.read(1):
                    raise PlasticError(f"{s.folder / name}: more rows than its run.json records")
        finally:
            for fh in handles.values():
                fh.close()

    return fill


COPY = 1 << 24  # bytes copied at a time from a shard's .npy file


def _merge_npy(name: str, shards: list[Shard], total: int):
    """A ``columns`` writer of the table ``name`` (``summary.csv``: the folder ``summary/``) of
    ``record.format: npy`` shards: each column's rows, condition by condition, copied as bytes
    from the shard that holds them (standard library only)."""
    from .columnar import COLUMNS_FILE, column_file, column_names, itemsize, read_header

    stem = name[: -len(".csv")]

    def fill(cw) -> None:
        names, descrs, where, handles = None, None, {}, {}
        try:
            for s in shards:
                if not s.info["conditions"]:
                    continue
                folder = s.folder / stem
                if not (folder / COLUMNS_FILE).is_file():
                    raise PlasticError(f"{folder / COLUMNS_FILE} is missing")
                cols = column_names(folder)
                if names is None:
                    names = cols
                elif cols != names:
                    raise PlasticError(f"{folder}: its columns differ from the other shards' {stem}")
                counts = s.info["rows"][name]
                files = []
                for k, c in enumerate(cols):
                    fh = open(folder / column_file(c), "rb")
                    handles[(id(s), k)] = fh
                    try:
                        descr, n, offset = read_header(fh)
                    except (ValueError, SyntaxError) as exc:
                        raise PlasticError(f"{folder / column_file(c)}: not a column of plastic ({exc})") from None
                    if n != sum(counts):
                        raise PlasticError(f"{folder / column_file(c)}: {n} rows, its run.json records {sum(counts)} (truncated?)")
                    files.append((descr, offset))
                these = [d for d, _ in files]
                if descrs is None:
                    descrs = these
                elif these != descrs:
                    raise PlasticError(f"{folder}: its column types differ from the other shards' {stem}")
                start = 0
                for pos, i in enumerate(s.info["conditions"]):
                    where[i] = (s, start, counts[pos], [o for _, o in files])
                    start += counts[pos]
            cw.begin(list(zip(names, descrs)), sum(where[i][2] for i in range(total)))
            for k, descr in enumerate(descrs):
                size = itemsize(descr)
                for i in range(total):
                    s, start, n, offsets = where[i]
                    fh = handles[(id(s), k)]
                    fh.seek(offsets[k] + start * size)
                    left = n * size
                    while left > 0:
                        block = fh.read(min(left, COPY))
                        if not block:
                            raise PlasticError(f"{s.folder / stem / column_file(names[k])}: fewer rows than its run.json records (truncated?)")
                        cw.write(k, block)
                        left -= len(block)
        finally:
            for fh in handles.values():
                fh.close()

    return fill


def merge_shards(folders, out=None, force: bool = False, argv=()) -> MergeReport:
    """Merge the shard folders into ``out`` (default ``outputs/<name>``); see the module doc."""
    folders = list(folders)
    if not folders:
        raise PlasticError("no shard folders given")
    shards = [load_shard(f) for f in folders]
    warnings = check_shards(shards)
    shards.sort(key=lambda s: s.info["index"])
    first = shards[0]
    name = (first.doc.get("protocol") or {}).get("name") or "merged"
    target = Path(out) if out is not None else Path("outputs") / name
    for s in shards:
        if target.resolve() == s.folder.resolve():
            raise PlasticError(f"{str(target)!r} is one of the shards; merge into another folder (--out)")
    check_target(target, force, "plastic merge")
    total = first.info["total_conditions"]
    files = [f for f in CSV_FILES if any(f in s.info["rows"] and s.info["conditions"] for s in shards)]
    doc = merged_run_json(shards, argv)
    if ((first.doc.get("protocol") or {}).get("record") or {}).get("format") == "npy":
        writers = [(f[: -len(".csv")], "columns", _merge_npy(f, shards, total)) for f in files]
    else:
        writers = [(f, "wb", _merge_csv(f, shards, total)) for f in files]
    writers.append(("run.json", "w", lambda fh: fh.write(json.dumps(doc, indent=2, sort_keys=False) + "\n")))
    write_folder(target, writers, force, "plastic merge")
    return MergeReport(str(target), name, len(shards), total, doc["counts"], warnings)
