"""Caches that heal and never live inside the package: Numba's cache folder, garbled cache
entries (recompiled, same results), a damaged ahead-of-time module (skipped with a warning)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SMALL = """\
name: small
seed: 3
synapses: {n_pre: 3, n_post: 2, w_init: {uniform: [0.3, 0.7]}}
stimulus:
  pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}
rule: {kind: stdp}
record: {state: [x_pre]}
"""
PACKAGE = ROOT / "plastictool"


def _run(proto: Path, out: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "plastictool.cli", "run", str(proto), "--out", str(out), "--quiet", "--jobs", "1"],
        env=env, capture_output=True, text=True, cwd=proto.parent,
    )


def _files(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "run.json"}


def _package_cache_files() -> set:
    return {p for p in PACKAGE.rglob("*") if p.suffix in (".nbi", ".nbc")}


def test_garbled_numba_cache_entries_are_recompiled_with_identical_results(tmp_path):
    proto = tmp_path / "small.yaml"
    proto.write_text(SMALL)
    cache = tmp_path / "numba-cache"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache), "PLASTIC_NATIVE": "0"}
    before = _package_cache_files()
    first = _run(proto, tmp_path / "a", env)
    assert first.returncode == 0, first.stderr
    entries = sorted(p for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc"))
    assert any(p.suffix == ".nbc" for p in entries) and any(p.suffix == ".nbi" for p in entries)
    assert _package_cache_files() == before  # nothing new beside the sources
    # garble every entry: truncate the data files, overwrite the indexes with junk
    for k, p in enumerate(entries):
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2] if p.suffix == ".nbc" else b"\x80\x04junk" + bytes(range(256)) * (k % 3))
    second = _run(proto, tmp_path / "b", env)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    # the entries were rewritten: a third run loads them and still agrees
    third = _run(proto, tmp_path / "c", env)
    assert third.returncode == 0, third.stderr
    assert _files(tmp_path / "a") == _files(tmp_path / "c")


def test_a_data_file_with_a_wrong_checksum_is_a_miss(tmp_path):
    """Flipped bytes inside an entry (same length) are caught by its sha256, not loaded."""
    from plastictool.core import jit

    numba = jit._load_numba()
    from numba.core.caching import IndexDataCacheFile

    cls = jit._HealingCacheFile
    assert cls is not None and issubclass(cls, IndexDataCacheFile)
    f = cls(str(tmp_path), "k", b"stamp")
    f.save(("key",), ("payload", 1))
    assert f.load(("key",)) == ("payload", 1)
    data = next(tmp_path.glob("*.nbc"))
    blob = bytearray(data.read_bytes())
    blob[5] ^= 0xFF
    data.write_bytes(bytes(blob))
    assert f.load(("key",)) is None
    (tmp_path / "k.nbi").write_bytes(b"garbage")
    assert f.load(("key",)) is None
    f.save(("key",), ("again", 2))  # an unreadable index is replaced on the next save
    assert f.load(("key",)) == ("again", 2)
    assert numba.config.CACHE_DIR  # Numba itself points at the user folder


def test_unwritable_cache_folder_compiles_without_cache(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proto = tmp_path / "small.yaml"
    proto.write_text(SMALL)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(blocker / "numba"), "PLASTIC_NATIVE": "0"}
    before = _package_cache_files()
    r = _run(proto, tmp_path / "a", env)
    assert r.returncode == 0, r.stderr
    assert "cannot write the kernel cache" in r.stderr and "Traceback" not in r.stderr
    assert _package_cache_files() == before


def test_damaged_native_module_is_not_imported(tmp_path, capsys):
    """A module whose size or sha256 differs from its index is skipped with a warning (importing
    a truncated extension module can kill the process with SIGBUS)."""
    from plastictool.core import native

    where = tmp_path / "mod"
    where.mkdir()
    so = where / "plastic_kernels.so"
    so.write_bytes(b"\x7fELF" + b"\0" * 1000)
    size, digest = native.file_digest(so)
    (where / native.INDEX).write_text(json.dumps({"file": so.name, "size": size, "sha256": digest, "kernels": {}}))
    assert native.intact(so, json.loads((where / native.INDEX).read_text()))
    so.write_bytes(b"\x7fELF" + b"\0" * 500)  # truncated
    assert native.load(where) is None
    err = capsys.readouterr().err
    assert "damaged or incomplete" in err and "plastic warmup" in err and err.count("\n") == 1
    (where / native.INDEX).write_text(json.dumps({"file": so.name, "kernels": {}}))  # an index of an older build
    assert native.load(where) is None


def test_run_with_a_truncated_module_falls_back_to_the_jit(tmp_path):
    """End to end: a truncated module in the cache folder; the run warns once and its files are
    those of a run without the module."""
    from plastictool.core import native

    proto = tmp_path / "small.yaml"
    proto.write_text(SMALL)
    cache = tmp_path / "cache"
    env = {**os.environ, "PLASTIC_CACHE_DIR": str(cache)}
    code = "from plastictool.core import native; print(native.folder())"
    folder = Path(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip())
    folder.mkdir(parents=True)
    so = folder / "plastic_kernels.cpython-311-x86_64-linux-gnu.so"
    so.write_bytes(b"\x7fELF" + os.urandom(4000))
    size, digest = native.file_digest(so)
    sigs = native.signatures()  # it claims every committed signature: the run's first kernel call imports it
    kernels = {native.qualname(k.py_func): [[key, f"f{n}"] for n, key in enumerate(sigs[name])] for name, k in native.entry_kernels().items() if name in sigs}
    (folder / native.INDEX).write_text(json.dumps({"file": so.name, "size": size + 1000, "sha256": digest, "kernels": kernels}))
    r = _run(proto, tmp_path / "a", env)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("damaged or incomplete") == 1 and "Traceback" not in r.stderr
    ref = _run(proto, tmp_path / "b", {**env, "PLASTIC_NATIVE": "0"})
    assert ref.returncode == 0, ref.stderr
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
