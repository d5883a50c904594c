"""The README's two commands, one after the other, in one fresh venv (issue: the first run used to
write Numba's cache into site-packages/plastictool/**/__pycache__; ``pip install -e`` then left
that folder behind and it shadowed the editable install: ``plastic rules`` -> AttributeError).

To stay within about a minute, the fresh venv sees the test environment's packages through a
``.pth`` file and pip installs with ``--no-deps``: plastic itself is installed exactly as the README
does (a wheel into site-packages, then an editable install over it); NumPy, Numba and friends are
the same versions either way. The ahead-of-time kernels that installing builds are left out
(no C compiler for the first install, ``PLASTIC_BUILD_NATIVE=0`` for the second): compiling them
takes minutes; tests/test_native.py checks the module of the test environment's own install."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv

import pytest

from conftest import ROOT


def _sh(args, cwd, env, timeout=300):
    r = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{args}: {r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="paths of a Linux venv")
def test_readme_quick_start_then_test_install_in_one_venv(tmp_path):
    src = tmp_path / "clone"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md", "plastictool", "protocols"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__", "*.egg-info", "_native")} if (ROOT / name).is_dir() else {}))
    env_dir = tmp_path / ".venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True).stdout.strip()
    # the test environment's packages (not its plastictool: .pth files of an added folder are not read)
    deps = [p for p in site.getsitepackages() if os.path.isdir(p)]
    with open(os.path.join(purelib, "zz_test_deps.pth"), "w") as fh:
        fh.write("\n".join(deps) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "PLASTIC_CACHE_DIR", "PYTHONPATH")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "user-cache")
    env["HOME"] = str(tmp_path)
    plastic = env_dir / "bin" / "plastic"

    # 1. python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/plastic run protocols/stdp_window.yaml
    # without a C compiler (CC names none): the ahead-of-time kernels are not built (which takes
    # minutes), with a warning, and the install and the run still work, on the JIT
    r = _sh([py, "-m", "pip", "install", "-v", "--no-deps", "."], src, {**env, "CC": str(tmp_path / "no-such-cc")})
    warning = [line for line in (r.stdout + r.stderr).splitlines() if "WARNING: plastic: no ahead-of-time kernels" in line]
    assert len(warning) == 1 and "no C compiler" in warning[0], warning
    _sh([plastic, "run", "protocols/stdp_window.yaml", "--quiet"], src, env)
    assert (src / "outputs" / "stdp_window" / "summary.csv").is_file()
    assert json.loads((src / "outputs" / "stdp_window" / "run.json").read_text())["versions"]["kernels"] == "jit"
    installed = os.path.join(purelib, "plastictool")
    assert "error" in json.loads(open(os.path.join(installed, "_native", "index.json")).read())
    # pip hides that warning without -v: plastic warmup --check says it, and what runs use
    check = _sh([plastic, "warmup", "--check"], src, env).stdout.splitlines()
    assert check[0].startswith(f"installed kernels: {os.path.join(installed, '_native')}: not used: not built: ") and "no C compiler" in check[0], check
    assert check[-2:] == [f"runs with {d} weights: Numba's JIT (`plastic warmup` compiles the missing ones ahead of time)" for d in ("float64", "float32")], check
    cached = [os.path.join(d, f) for d, _, fs in os.walk(installed) for f in fs if f.endswith((".nbi", ".nbc"))]
    assert not cached, f"kernels cached inside the installed package: {cached[:3]}"
    assert any(f.endswith(".nbi") for _, _, fs in os.walk(tmp_path / "user-cache" / "plastic" / "numba") for f in fs)

    # 2. .venv/bin/pip install -e '.[test]'  (the extras are in the test environment already)
    _sh([py, "-m", "pip", "install", "-q", "--no-deps", "-e", ".[test]"], src, {**env, "PLASTIC_BUILD_NATIVE": "0"})
    where = _sh([py, "-c", "import plastictool, os; print(os.path.dirname(plastictool.__file__))"], tmp_path, env).stdout.strip()
    assert where == str(src / "plastictool"), f"the editable install is shadowed by {where}"
    rules = _sh([plastic, "rules"], src, env)
    assert "stdp" in rules.stdout and "Traceback" not in rules.stderr
    _sh([plastic, "run", "protocols/stdp_window.yaml", "--quiet", "--force"], src, env)
    assert (src / "outputs" / "stdp_window" / "summary.csv").is_file()
