"""``kill -9`` of ``plastic run --jobs N`` leaves no worker, fork server or helper process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

LONG = """\
name: long
synapses: {n_pre: 200, n_post: 20}
neuron: {model: lif}
stimulus:
  duration: 2000 s
  pre: {poisson: {rate: 20 Hz}}
rule: {kind: stdp}
sweep:
  rule.a_plus: [0.001, 0.002, 0.003, 0.004]
"""


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parent_of = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            parent_of[int(d.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        out.update(kids)
        todo.extend(kids)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_kill_9_of_the_parent_takes_the_workers_with_it(tmp_path):
    proto = tmp_path / "long.yaml"
    proto.write_text(LONG)
    proc = subprocess.Popen(
        [sys.executable, "-m", "plastictool.cli", "run", str(proto), "--out", str(tmp_path / "out"), "--jobs", "2", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        kids: set[int] = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the fork server and both workers
            kids = _children(proc.pid)
            if len(kids) >= 4 and proc.poll() is None:  # resource tracker, fork server, 2 workers
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.2)
        assert len(kids) >= 4, kids
        time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.1)
        left = [k for k in kids if _alive(k)]
        assert not left, f"processes left behind: {left}"
        assert not (tmp_path / "out").exists()
    finally:
        for k in _children(proc.pid) | ({proc.pid} if proc.poll() is None else set()):
            try:
                os.kill(k, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_die_with_parent_exits_when_the_main_process_is_gone():
    code = (
        "import os\nfrom plastictool.simulation.deathsig import die_with_parent\n"
        "die_with_parent(main_pid=2**22 + 12345)\nprint('still here')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1 and "still here" not in r.stdout
    r = subprocess.run([sys.executable, "-c", code.replace("2**22 + 12345", "os.getppid()")], capture_output=True, text=True)
    assert r.returncode == 0 and "still here" in r.stdout
