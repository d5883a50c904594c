"""Ahead-of-time compiled kernels (plastictool.core.native): built by ``plastic warmup``, they
give the same files as the JIT, byte for byte, and a run that uses them never imports Numba."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from plastictool.results.output import PYTHON_CELLS

from conftest import PROTOCOLS, ROOT


def test_argument_keys_match_numba_types():
    """The key computed from values at run time equals the key of the type Numba infers."""
    import numba
    from numba import typeof

    from plastictool.core.native import argkey, typekey
    from plastictool.core.net import make_net

    net = make_net(3, 2, 0.1)
    values = [np.zeros((3, 2)), np.zeros((3, 2), np.float32), np.zeros(4, np.uint8), np.zeros((4, 3))[:, 1],
              np.asfortranarray(np.zeros((3, 2))), net, (1.0, 2.0), 3, 2.5, True, np.float32(1.5), np.int64(7)]
    ro = np.zeros(3)
    ro.flags.writeable = False
    values.append(ro)
    for v in values:
        assert argkey(v) == typekey(typeof(v)), v
    assert numba  # imported for typeof


@pytest.fixture
def native_cache(tmp_path_factory):
    """A cache folder with ahead-of-time kernels built by ``plastic warmup`` (once per session)."""
    cache = tmp_path_factory.mktemp("native-cache")
    env = {**os.environ, "PLASTIC_CACHE_DIR": str(cache)}
    r = subprocess.run([sys.executable, "-m", "plastictool.cli", "warmup"], env=env, capture_output=True, text=True, cwd=ROOT)
    if "no ahead-of-time kernels" in r.stderr and ("CompileError" in r.stderr or "DistutilsExecError" in r.stderr or "No module named" in r.stderr):
        pytest.skip(f"no C toolchain for numba.pycc here: {r.stderr.strip()}")  # pragma: no cover
    assert r.returncode == 0, r.stderr
    assert "compiled the kernels ahead of time" in r.stdout, r.stdout + r.stderr
    return cache


def test_example_protocols_give_the_golden_files_without_numba(native_cache, tmp_path):
    """Every example protocol, run with PLASTIC_NATIVE=require (an entry kernel missing from the
    module is an error), matches its golden files and never imports Numba."""
    code = (
        "import sys\nfrom plastictool.cli import main\n"
        f"sys.argv = ['plastic', 'run', *sys.argv[1:], '--out', {str(tmp_path / 'out')!r}, '--quiet', '--jobs', '1']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
        "print('numba' in sys.modules)\nsys.exit(code)\n"
    )
    files = sorted(str(p) for p in PROTOCOLS.glob("*.yaml"))
    env = {**os.environ, "PLASTIC_CACHE_DIR": str(native_cache), "PLASTIC_NATIVE": "require"}
    r = subprocess.run([sys.executable, "-c", code, *files], env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False", "Numba was imported"
    from plastictool.results.compare import compare_dirs

    for f in files:
        name = json.loads((tmp_path / "out" / _name(f) / "run.json").read_text())["protocol"]["name"]
        assert json.loads((tmp_path / "out" / name / "run.json").read_text())["versions"]["kernels"] == "native"
        cmp = compare_dirs(tmp_path / "out" / name, ROOT / "tests" / "golden" / name, 1e-7, 0.0)
        assert cmp.ok, (name, cmp.as_dict())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_large_tables_use_the_native_formatting_kernels(native_cache, tmp_path, dtype):
    """A summary above output.PYTHON_CELLS goes through format_summary: the module has it (warmup
    writes every table with the kernels), also for float32 weights and two threads."""
    protocol = tmp_path / "big.yaml"
    protocol.write_text(
        "name: big\nduration: 200 ms\n"
        f"synapses: {{n_pre: 300, n_post: 100, w_init: {{uniform: [0, 0.01]}}, w_max: 0.01, dtype: {dtype}}}\n"
        "neuron: {model: lif}\nstimulus: {pre: {poisson: {rate: 20 Hz}}}\nrule: {kind: stdp, preset: song2000_brian2}\n"
        "record: {interval: 50 ms, stats: [mean], spikes: post}\n"
    )
    env = {**os.environ, "PLASTIC_CACHE_DIR": str(native_cache), "PLASTIC_NATIVE": "require"}
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "plastictool.cli", "run", str(protocol), "--out", str(out), "--quiet", "--threads", "2"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads((out / "run.json").read_text())
    assert doc["versions"]["kernels"] == "native" and doc["profile"]["threads"] == 2
    assert 7 * 300 * 100 > PYTHON_CELLS
    assert (out / "summary.csv").read_text().count("\n") == 300 * 100 + 1


def _name(path: str) -> str:
    import yaml

    return yaml.safe_load(open(path))["name"]


def test_missing_types_module_or_edited_source_fall_back_to_the_jit(native_cache, tmp_path, monkeypatch):
    """Argument types the module lacks run on the JIT with the same result; no module, a module
    switched off, or an edited kernel source (a new fingerprint) mean no module."""
    from plastictool.core import jit, native
    from plastictool.simulation.engine import build
    from plastictool.protocol.schema import validate
    from plastictool.protocol.yamlsrc import Source

    monkeypatch.setenv("PLASTIC_CACHE_DIR", str(native_cache))
    assert "plastictool.rules.stdp.advance_block" in native.load()  # what the engine calls
    jit.use_native(True)
    import plastictool.rules.stdp  # noqa: F401  (lists its entry kernel)

    advance = next(k for k in jit.ENTRIES if k.__module__ == "plastictool.rules.stdp" and k.__name__ == "advance_block")
    doc = {"name": "x", "seed": 3, "duration": 200.0, "synapses": {"n_pre": 40, "n_post": 3, "w_init": 0.5},
           "neuron": {"model": "lif"}, "stimulus": {"pre": {"poisson": {"rate": 40.0}}}, "rule": {"kind": "stdp"}}
    p = validate(Source(doc, {}, "x"))
    runs = []
    for order in ("C", "F"):  # the module has C-ordered weights only: F goes to the JIT
        b = build(p)
        w = np.array(b.w, order=order)
        s = 0
        while s < p.n_steps:
            s = advance(w, b.net, b.state, b.params, s, p.n_steps, b.phases[0][2], 0, 3, b.net.lif, None, None, None)
            b.net.cursor[2] = 0
        runs.append(w)
    assert "native" in jit.USED and "jit" in jit.USED
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], build(p).w)
    monkeypatch.setenv("PLASTIC_NATIVE", "0")
    assert native.load() is None
    monkeypatch.setenv("PLASTIC_NATIVE", "cache")  # the cache's module only (not the package's)
    monkeypatch.setenv("PLASTIC_CACHE_DIR", str(tmp_path / "empty"))
    assert native.load() is None
    before = native.fingerprint()
    edited = tmp_path / "kernel.py"
    edited.write_text("x = 1\n")
    monkeypatch.setattr(native, "kernel_sources", lambda: [edited])
    assert native.fingerprint() != before
    jit.use_native(False)
    # a truncated module (which would die with SIGBUS on import) fails its recorded size/sha256;
    # a copy is truncated: the module loaded above is mapped into this process
    import shutil

    monkeypatch.undo()
    monkeypatch.setenv("PLASTIC_CACHE_DIR", str(native_cache))
    where = tmp_path / "damaged"
    shutil.copytree(native.folder(), where)
    index = json.loads((where / native.INDEX).read_text())
    assert index["size"] > 0 and len(index["sha256"]) == 64
    assert native.intact(where / index["file"], index)  # the intact copy passes (not imported: it is truncated next)
    so = where / index["file"]
    so.write_bytes(so.read_bytes()[: index["size"] // 2])
    assert native.load(where) is None


# ---------------------------------------------------------------------------- the package's module
STALE = "regenerate it: python -m plastictool.core.native --write-signatures"


def test_signature_keys_round_trip_through_numba_types():
    """keytype is the inverse of typekey, on the types of real values (a named tuple of one type
    becomes a NamedUniTuple, as numba.typeof makes it) and on every committed key."""
    from numba import typeof

    from plastictool.core.native import argkey, keytype, signatures, typekey
    from plastictool.core.net import make_net

    ro = np.zeros((2, 2), np.float32)
    ro.flags.writeable = False
    net = make_net(3, 2, 0.1)
    for v in [np.zeros((3, 2)), ro, np.zeros(4, np.uint8), np.zeros((4, 3))[:, 1], np.asfortranarray(np.zeros((3, 2))),
              net, (1.0, 2.0), (1, 2.0), 3, 2.5, True, None, np.float32(1.5), np.int64(7)]:
        assert keytype(argkey(v)) == typeof(v), v
        assert typekey(keytype(argkey(v))) == argkey(v), v
    sigs = signatures()
    assert "plastictool.rules.stdp.advance_block" in sigs and "plastictool.core.record.drive_stdp" in sigs
    for name, keys in sigs.items():
        for key in keys:
            assert tuple(typekey(keytype(a)) for a in key) == key, (name, key)
    with pytest.raises(ValueError):
        keytype("complex128")


def test_committed_signatures_cover_the_example_protocols(tmp_path):
    """Every entry-kernel signature that the STDP window and a few other example protocols compile
    (every table through the formatting kernels; a new process on the JIT, so that only theirs
    count) is listed in plastictool/core/signatures.json, so the module that pip install builds
    serves them: a change of an entry kernel's arguments without regenerating that file fails here."""
    from plastictool.core import native

    code = (
        "import json, sys\nfrom pathlib import Path\nfrom plastictool import api\nfrom plastictool.results import output\n"
        "from plastictool.core import native\nkernels = native.entry_kernels()\noutput.PYTHON_CELLS = 0\n"
        "for name in sys.argv[3:]:\n"
        "    r = api.run_file(Path(sys.argv[1]) / (name + '.yaml'), Path(sys.argv[2]) / name, force=True, jobs=1)\n"
        "    assert r.status == 0, r.message\n"
        "print(json.dumps({n: [native.typekey_json(s.args) for s in k.dispatcher.nopython_signatures] for n, k in kernels.items()}))\n"
    )
    names = ["stdp_window", "sjostrom2001_triplet", "tsodyks_markram_paired_pulse", "hebb_growth", "graupner2012_stdp", "receptor_rest"]
    env = {**os.environ, "PLASTIC_CACHE_DIR": str(tmp_path / "cache"), "PLASTIC_NATIVE": "0"}
    r = subprocess.run([sys.executable, "-c", code, str(PROTOCOLS), str(tmp_path / "out"), *names], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    used = {name: {native._tuples(k) for k in keys} for name, keys in json.loads(r.stdout.strip().splitlines()[-1]).items()}
    # (the STDP window's 101 conditions run in one call of the batch driver, core.batch)
    assert all(used[n] for n in ("plastictool.core.batch.drive_batch_stdp", "plastictool.core.fmt.format_summary", "plastictool.rules.hebb.advance")), used
    committed = {name: set(keys) for name, keys in native.signatures().items()}
    assert set(committed) <= set(used), f"signatures.json names kernels that are gone; {STALE}"
    missing = sorted((n, k) for n, keys in used.items() for k in keys if k not in committed.get(n, ()))
    assert not missing, f"argument types missing from signatures.json ({STALE}): {missing[:3]}"


def test_package_module_is_used_only_with_its_fingerprint_and_numba(tmp_path, monkeypatch):
    """The package's index names its parts; another fingerprint (an edited source, another
    NumPy or CPU) or another Numba than the one that compiled it means no package module."""
    from plastictool.core import native

    pkg = tmp_path / "_native"
    pkg.mkdir()
    monkeypatch.setattr(native, "PACKAGE", pkg)
    index = {"fingerprint": native.fingerprint(), "numba": native.numba_version(), "parts": ["0", "1"]}
    (pkg / native.INDEX).write_text(json.dumps(index))
    assert native.numba_version() and native.package_parts() == [pkg / "0", pkg / "1"]
    for key, value in (("fingerprint", "0" * 20), ("numba", "0.1.0")):
        (pkg / native.INDEX).write_text(json.dumps({**index, key: value}))
        assert native.package_parts() == []
    (pkg / native.INDEX).write_text(json.dumps({"error": "no C compiler"}))  # a failed build
    assert native.package_parts() == []


def test_installed_module_gives_the_golden_files_without_numba(tmp_path):
    """The module that pip install built into plastictool/_native (from signatures.json), alone
    (an empty cache folder, PLASTIC_NATIVE=require): the STDP window and the triplet protocol
    match their golden files and never import Numba."""
    from plastictool.core import native

    if not native.package_parts():
        pytest.skip("no package module for these sources: pip install -e . builds it (PLASTIC_BUILD_NATIVE=0 or a failed build skip it)")
    code = (
        "import sys\nfrom plastictool.cli import main\n"
        f"sys.argv = ['plastic', 'run', *sys.argv[1:], '--out', {str(tmp_path / 'out')!r}, '--quiet', '--jobs', '1']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
        "print('numba' in sys.modules)\nsys.exit(code)\n"
    )
    files = [str(PROTOCOLS / "stdp_window.yaml"), str(PROTOCOLS / "sjostrom2001_triplet.yaml")]
    env = {**os.environ, "PLASTIC_CACHE_DIR": str(tmp_path / "empty-cache"), "PLASTIC_NATIVE": "require"}
    r = subprocess.run([sys.executable, "-c", code, *files], env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1] == "False", "Numba was imported"
    from plastictool.results.compare import compare_dirs

    for f in files:
        name = _name(f)
        assert json.loads((tmp_path / "out" / name / "run.json").read_text())["versions"]["kernels"] == "native"
        cmp = compare_dirs(tmp_path / "out" / name, ROOT / "tests" / "golden" / name, 1e-7, 0.0)
        assert cmp.ok, (name, cmp.as_dict())


def test_the_warmup_module_alone_is_loaded_when_there_is_one(tmp_path, monkeypatch):
    """After ``plastic warmup`` its module (a superset of the package's signatures) is the only
    one loaded; without it, the package's parts are."""
    from plastictool.core import native

    pkg = tmp_path / "_native"
    pkg.mkdir()
    monkeypatch.setattr(native, "PACKAGE", pkg)
    monkeypatch.setenv("PLASTIC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PLASTIC_NATIVE", "1")
    fp = native.fingerprint()
    (pkg / native.INDEX).write_text(json.dumps({"fingerprint": fp, "numba": native.numba_version(), "parts": ["0", "1"]}))
    loaded = []
    monkeypatch.setattr(native, "_load_folder", lambda w: loaded.append(w) or {"k": {("key",): w.name}})
    assert native.load() == {"k": {("key",): "1"}} and loaded == [pkg / "0", pkg / "1"]
    cache = tmp_path / "cache" / "native" / fp
    cache.mkdir(parents=True)
    (cache / native.INDEX).write_text("{}")
    loaded.clear()
    assert native.load() == {"k": {("key",): fp}} and loaded == [cache]
