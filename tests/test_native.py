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


@pytest.fixture(scope="module")
def native_cache(tmp_path_factory):
    """A cache folder where ``plastic warmup`` compiled what the installed kernels lack (every
    committed signature where the install built none): together they serve every signature."""
    cache = tmp_path_factory.mktemp("native-cache")
    env = {**os.environ, "PLASTIC_CACHE_DIR": str(cache)}
    env.pop("PLASTIC_NATIVE", None)
    r = subprocess.run([sys.executable, "-m", "plastictool.cli", "warmup"], env=env, capture_output=True, text=True, cwd=ROOT)
    if "no ahead-of-time kernels" in r.stderr and ("CompileError" in r.stderr or "DistutilsExecError" in r.stderr or "No module named" in r.stderr or "no C compiler" in r.stderr):
        pytest.skip(f"no C toolchain for numba.pycc here: {r.stderr.strip()}")  # pragma: no cover
    assert r.returncode == 0, r.stderr
    assert "compiled the kernels ahead of time" in r.stdout or "nothing to compile" in r.stdout, r.stdout + r.stderr
    assert "use only ahead-of-time kernels, without Numba" in r.stdout and "filled Numba's cache" not in r.stdout, r.stdout
    assert not (cache / "numba").exists() or not any((cache / "numba").rglob("*.nbc"))  # Numba's cache: not needed
    check = subprocess.run([sys.executable, "-m", "plastictool.cli", "warmup", "--check"], env=env, capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0 and "runs with float32 weights: ahead-of-time kernels" in check.stdout, check.stdout + check.stderr
    assert "runs with float64 weights: ahead-of-time kernels" in check.stdout
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
    monkeypatch.setenv("PLASTIC_NATIVE", "1")  # warmup's module and the install's (conftest: only warmup's)
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
    shutil.copytree((native.cache_parts() + native.package_parts())[0], where)  # a folder with one module
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
    # (the STDP window's 101 conditions run in one call of the batch driver, core.batch; the
    # rate and calcium rules' kernels are called by their recording drivers)
    assert all(used[n] for n in ("plastictool.core.batch.drive_batch_stdp", "plastictool.core.record.drive_hebb", "plastictool.core.record.drive_calcium", "plastictool.core.fmt.format_summary")), used
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


def _fake_modules(tmp_path, monkeypatch, package_keys, cache_keys=None, numba=None):
    """A package folder (and a cache folder) with indexes of one part each holding ``keys`` of
    the STDP driver; nothing to import."""
    from plastictool.core import native

    fp = native.fingerprint()
    pkg = tmp_path / "_native"
    monkeypatch.setattr(native, "PACKAGE", pkg)
    monkeypatch.setenv("PLASTIC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PLASTIC_NATIVE", "1")
    name = "plastictool.core.record.drive_stdp"
    for where, keys in ((pkg, package_keys), (tmp_path / "cache" / "native" / fp, cache_keys)):
        if keys is None:
            continue
        (where / "0").mkdir(parents=True)
        (where / native.INDEX).write_text(json.dumps({"fingerprint": fp, "numba": numba or native.numba_version(), **native.environment(), "parts": ["0"]}))
        (where / "0" / native.INDEX).write_text(json.dumps({"file": "m.so", "module": "m", "size": 0, "sha256": "", "kernels": {name + "_0123456789ab": [[k, f"sym{n}"] for n, k in enumerate(keys)]}}))
    return name


def test_modules_are_looked_up_cache_first_and_imported_on_first_call(tmp_path, monkeypatch):
    """load() merges the cache's modules (plastic warmup) and the package's, the cache's first;
    nothing is imported (a dlopen and a sha256 each) until a kernel of that module is called."""
    from plastictool.core import native

    sigs = native.signatures()["plastictool.core.record.drive_stdp"]
    f64, f32 = native.by_dtype({"k": sigs}, "float64")["k"], native.by_dtype({"k": sigs}, "float32")["k"]
    _fake_modules(tmp_path, monkeypatch, f64[:2], [f64[0], f32[0]])
    imported = []
    monkeypatch.setattr(native, "_import", lambda where, index: imported.append(where) or type("M", (), {"sym0": "c0", "sym1": "c1", "sym0_": 0})())
    table = native.load()
    (entries,) = table.values()
    assert set(entries) == {f64[0], f64[1], f32[0]} and imported == []
    assert all(type(f) is native.Deferred for f in entries.values())
    assert entries[f64[0]].module.where.parent.parent.name == "native"  # the cache's wins
    assert entries[f64[1]].get() == "c1" and imported == [tmp_path / "_native" / "0"]
    monkeypatch.setenv("PLASTIC_NATIVE", "cache")
    assert set(next(iter(native.load().values()))) == {f64[0], f32[0]}


def test_warmup_compiles_only_what_the_installed_kernels_lack(tmp_path, monkeypatch):
    """With the install's float64 kernels, warmup compiles the float32 signatures; with none, or
    with kernels of another Numba (pip's isolated build), all of them; once compiled, nothing."""
    from plastictool.core import native

    sigs = native.signatures()
    f64 = native.by_dtype(sigs, "float64")
    name = _fake_modules(tmp_path, monkeypatch, f64["plastictool.core.record.drive_stdp"])
    # the package's fake index lists the STDP driver's float64 keys only; give it every float64 key
    (tmp_path / "_native" / "0" / native.INDEX).write_text(json.dumps({"file": "m.so", "kernels": {k: [[key, "s"] for key in keys] for k, keys in f64.items()}}))
    built = []
    monkeypatch.setattr(native, "build_package", lambda where, jobs, dtypes=None, sigs=None: built.append((where, sigs)))
    got = native.warmup_build(jobs=1)
    assert got["package"] == native._count(f64) and got["compiled"] == native._count(sigs) - native._count(f64)
    assert built[0][0] == tmp_path / "cache" / "native" / native.fingerprint()
    assert built[0][1] == native.by_dtype(sigs, "float32")  # exactly the float32 signatures
    idx = json.loads((tmp_path / "_native" / native.INDEX).read_text())
    (tmp_path / "_native" / native.INDEX).write_text(json.dumps({**idx, "numba": "0.1.0"}))
    assert native.warmup_build(jobs=1)["compiled"] == native._count(sigs) and built[-1][1] == sigs
    (tmp_path / "_native" / native.INDEX).write_text(json.dumps(idx))
    cache = tmp_path / "cache" / "native" / native.fingerprint()
    (cache / "0").mkdir(parents=True)
    (cache / native.INDEX).write_text(json.dumps({**idx, "parts": ["0"]}))
    (cache / "0" / native.INDEX).write_text(json.dumps({"file": "m.so", "kernels": {k: [[key, "s"] for key in keys] for k, keys in native.by_dtype(sigs, "float32").items()}}))
    n = len(built)
    got = native.warmup_build(jobs=1)
    assert len(built) == n and got["compiled"] == 0 and got["cached"] == native._count(sigs) - native._count(f64)
    assert name


def test_check_says_which_kernels_runs_use_and_why(tmp_path, monkeypatch, cli):
    """plastic warmup --check: the install's kernels used or why not (another Numba, a failed
    build), and per weight dtype what a run uses; it compiles and imports nothing."""
    from plastictool.core import native

    sigs = native.signatures()
    f64 = native.by_dtype(sigs, "float64")
    _fake_modules(tmp_path, monkeypatch, [], numba="0.1.0")
    (tmp_path / "_native" / "0" / native.INDEX).write_text(json.dumps({"file": "m.so", "kernels": {k: [[key, "s"] for key in keys] for k, keys in f64.items()}}))
    r = cli("warmup", "--check")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"installed kernels: {tmp_path / '_native'}: not used: built with Numba 0.1.0, this environment has Numba {native.numba_version()}")
    assert "--no-build-isolation" in lines[0] and "plastic warmup's kernels: none" in lines[1]
    assert lines[2:] == ["runs with float64 weights: Numba's JIT (`plastic warmup` compiles the missing ones ahead of time)",
                         "runs with float32 weights: Numba's JIT (`plastic warmup` compiles the missing ones ahead of time)"]
    idx = {**json.loads((tmp_path / "_native" / native.INDEX).read_text()), "numba": native.numba_version()}
    (tmp_path / "_native" / native.INDEX).write_text(json.dumps(idx))
    lines = native.check()
    n64, n32 = native._count(f64), native._count(sigs) - native._count(f64)
    assert lines[0] == f"installed kernels: {tmp_path / '_native'}: used ({n64} float64, 0 float32 signatures; Numba {native.numba_version()})"
    assert lines[2] == f"runs with float64 weights: ahead-of-time kernels ({n64} of {n64} signatures), without Numba"
    assert lines[3].startswith("runs with float32 weights: Numba's JIT") and str(n32) not in lines[3].split("(")[0]
    (tmp_path / "_native" / native.INDEX).write_text(json.dumps({**idx, "numpy": "1.0.0", "fingerprint": "0" * 20}))
    assert f"not used: built with NumPy 1.0.0, this environment has NumPy {np.__version__}" in native.check()[0]
    (tmp_path / "_native" / native.INDEX).write_text(json.dumps({"error": "no C compiler (cc not found)"}))
    assert native.check()[0] == f"installed kernels: {tmp_path / '_native'}: not used: not built: no C compiler (cc not found)"
    monkeypatch.setenv("PLASTIC_NATIVE", "0")
    assert native.check()[0].startswith("PLASTIC_NATIVE=0: runs ignore")


def test_warmup_fills_numbas_cache_only_without_modules(tmp_path, monkeypatch, cli):
    """No C compiler: warmup says so and fills Numba's cache instead (the JIT pass); modules
    that fail the check (here: the warmup runs find no module, PLASTIC_NATIVE=require) are
    removed, and the JIT pass runs too. The warmup runs of the JIT pass are stubbed: this checks
    the order of the steps, the real passes run in native_cache and test_cli."""
    from plastictool import api
    from plastictool.core import native

    installed_serve_all = not native.lacking(native.signatures(), native.module_keys(native.package_parts()))
    monkeypatch.setenv("PLASTIC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "PACKAGE", tmp_path / "_native")
    jit_runs = []
    monkeypatch.setattr(api, "warmup_runs", lambda folder: jit_runs.append(folder) or {"a": "", "b": ""})

    def no_compiler(jobs=None):
        raise RuntimeError("no C compiler (cc not found)")

    monkeypatch.setattr(native, "warmup_build", no_compiler)
    r = cli("warmup")
    assert r.exit_code == 0, r.output
    assert r.stderr == "no ahead-of-time kernels (RuntimeError: no C compiler (cc not found)); runs use Numba's JIT and its cache\n"
    assert "filled Numba's cache: compiled or loaded the kernels of 2 warmup runs" in r.stdout and len(jit_runs) == 1
    where = tmp_path / "cache" / "native" / native.fingerprint()

    def fake_build(jobs=None):
        (where / "0").mkdir(parents=True)
        return {"signatures": 61, "package": 0, "cached": 0, "compiled": 61, "folder": str(where), "seconds": 1.0}

    if installed_serve_all:  # (PLASTIC_BUILD_NATIVE=all) the check's new process would pass on them
        return
    monkeypatch.setattr(native, "warmup_build", fake_build)
    r = cli("warmup")
    assert r.exit_code == 0, r.output
    assert "failed their check and were removed: RuntimeError: PLASTIC_NATIVE=require: no ahead-of-time" in r.stderr, r.stderr
    assert not where.exists() and len(jit_runs) == 2
