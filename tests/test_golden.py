"""Golden files: every example protocol in protocols/ is run and compared with tests/golden/.

Numbers are compared with a relative tolerance (GOLDEN_RTOL), text cells exactly. To
regenerate after a deliberate change of results (say why in the commit message):

    PLASTIC_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py

which rewrites tests/golden/<protocol>/ from fresh runs.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
from pathlib import Path

import pytest

from conftest import PROTOCOLS

GOLDEN = Path(__file__).resolve().parent / "golden"
GOLDEN_RTOL = 1e-7
GOLDEN_ATOL = 1e-12
FILES = ("summary.csv", "traces.csv")
EXAMPLES = sorted(PROTOCOLS.glob("*.yaml"))


def read(path: Path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def differences(got: Path, want: Path, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL) -> list[str]:
    a, b = read(got), read(want)
    out = []
    if a[:1] != b[:1]:
        return [f"{got.name}: columns {a[:1]} != {b[:1]}"]
    if len(a) != len(b):
        return [f"{got.name}: {len(a) - 1} rows, golden has {len(b) - 1}"]
    for k, (ra, rb) in enumerate(zip(a[1:], b[1:]), start=1):
        for col, x, y in zip(a[0], ra, rb):
            if x == y:
                continue
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                out.append(f"{got.name} row {k} {col}: {x!r} != {y!r}")
                continue
            if not (math.isclose(fx, fy, rel_tol=rtol, abs_tol=atol) or (math.isnan(fx) and math.isnan(fy))):
                out.append(f"{got.name} row {k} {col}: {fx!r} != golden {fy!r}")
    return out


@pytest.mark.parametrize("protocol", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_matches_golden(protocol, tmp_path, cli):
    out = tmp_path / protocol.stem
    r = cli("run", protocol, "--out", out, "--quiet")
    assert r.exit_code == 0, r.output
    gold = GOLDEN / protocol.stem
    if os.environ.get("PLASTIC_REGEN_GOLDEN"):
        gold.mkdir(parents=True, exist_ok=True)
        for name in FILES:
            shutil.copy(out / name, gold / name)
    assert gold.is_dir(), f"no golden files for {protocol.name}: run PLASTIC_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py"
    diffs = [d for name in FILES for d in differences(out / name, gold / name)]
    assert not diffs, "\n".join(diffs[:20]) + f"\n({len(diffs)} differences)"
