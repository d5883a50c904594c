"""Shared helpers for the tests: small protocols written to tmp folders, and the CLI runner."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
PROTOCOLS = ROOT / "protocols"

# a small STDP protocol (2 synapses, 5 pairings) that the CLI, folder and environment tests run
SMALL = """\
name: small
seed: 3
synapses: {n_pre: 2, n_post: 1, w_init: 0.5}
stimulus:
  pairing: {pairs: 5, frequency: 10 Hz, delta_t: 10 ms}
rule: {kind: stdp}
record: {state: [x_pre]}
"""

# the tests run the Numba JIT path, whatever ahead-of-time kernels this user's cache holds
# (tests/test_native.py builds and checks those in a folder of its own); Numba's cache stays the
# user's one (it is keyed by source path and content), so the suite does not compile everything anew
from plastictool.core.jit import cache_dir  # noqa: E402  (imports no Numba)

os.environ.setdefault("NUMBA_CACHE_DIR", cache_dir())
TEST_CACHE = tempfile.mkdtemp(prefix="plastic-test-cache-")
os.environ["PLASTIC_CACHE_DIR"] = TEST_CACHE
atexit.register(shutil.rmtree, TEST_CACHE, True)  # the suite leaves no folder behind in the temp dir
os.environ.setdefault("PLASTIC_NATIVE", "cache")  # not the module that pip install built either


@pytest.fixture
def write(tmp_path):
    """write(name, yaml_text) -> path of a protocol file in a temporary folder."""

    def _write(name: str, text: str) -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text))
        return p

    return _write


@pytest.fixture
def cli():
    from plastictool.cli import app

    runner = CliRunner()

    def _run(*args):
        return runner.invoke(app, [str(a) for a in args])

    return _run
