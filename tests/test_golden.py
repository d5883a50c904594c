"""Golden files: every example protocol in protocols/ is run and compared with tests/golden/.

The comparison is ``plastic compare``'s (plastictool.results.compare): numbers within a relative
tolerance (GOLDEN_RTOL), text cells exactly, missing or extra files, columns and rows are
differences. To regenerate after a deliberate change of results (say why in the commit):

    PLASTIC_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py

which rewrites tests/golden/<protocol>/ from fresh runs.
"""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import PROTOCOLS, ROOT
from plastictool.results.compare import compare_dirs

GOLDEN = ROOT / "tests" / "golden"
GOLDEN_RTOL = 1e-7
GOLDEN_ATOL = 1e-12
TABLES = ("summary.csv", "traces.csv", "spikes.csv", "responses.csv", "structure.csv")
EXAMPLES = sorted(PROTOCOLS.glob("*.yaml"))


@pytest.mark.parametrize("protocol", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_matches_golden(protocol, tmp_path, cli):
    out = tmp_path / protocol.stem
    r = cli("run", protocol, "--out", out, "--quiet", "--jobs", "1")
    assert r.exit_code == 0, r.output
    gold = GOLDEN / protocol.stem
    if os.environ.get("PLASTIC_REGEN_GOLDEN"):
        shutil.rmtree(gold, ignore_errors=True)
        gold.mkdir(parents=True)
        for name in TABLES:
            if (out / name).exists():
                shutil.copy(out / name, gold / name)
    assert gold.is_dir(), f"no golden files for {protocol.name}: run PLASTIC_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py"
    result = compare_dirs(out, gold, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL, limit=20)
    lines = [f"{d.file} {d.column} row {d.row}: got {d.got}, golden {d.expected} ({d.kind})" for d in result.largest]
    assert result.count == 0, "\n".join(lines) + f"\n({result.count} differences)"
