"""The command line as a whole: the net under every command (exit 4, one line), --version, and
`plastic plot` on damaged run folders (exit 2 naming the file, never a traceback)."""

from __future__ import annotations

import os
import json
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from plastictool import cli as cli_module
from plastictool.errors import EXIT_ENVIRONMENT
from conftest import SMALL  # the small protocol several test files run



def _main(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run the console script's entry point in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["plastic", *map(str, args)])
    with pytest.raises(SystemExit) as e:
        cli_module.main()
    out = capsys.readouterr()
    return e.value.code or 0, out.out, out.err


# ----------------------------------------------------------------------- the net


@pytest.mark.parametrize("exc", [RuntimeError("boom\nsecond line"), RecursionError("maximum recursion depth exceeded"), MemoryError(), KeyError("k")])
def test_an_unexpected_exception_is_one_line_and_exit_4(monkeypatch, capsys, write, exc):
    from plastictool import api

    def broken(*a, **k):
        raise exc

    monkeypatch.setattr(api, "validate_file", broken)
    monkeypatch.delenv("PLASTIC_DEBUG", raising=False)
    code, out, err = _main(monkeypatch, capsys, "validate", write("p.yaml", SMALL))
    assert code == EXIT_ENVIRONMENT == 4
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: internal error: {type(exc).__name__}: ")
    assert err.rstrip().endswith("(please report this; PLASTIC_DEBUG=1 shows the traceback)")


def test_plastic_debug_shows_the_traceback(monkeypatch, capsys, write):
    from plastictool import api

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "validate_file", broken)
    monkeypatch.setenv("PLASTIC_DEBUG", "1")
    monkeypatch.setattr(sys, "argv", ["plastic", "validate", str(write("p.yaml", SMALL))])
    with pytest.raises(RuntimeError, match="boom"):
        cli_module.main()


def test_the_net_in_a_real_process_prints_no_traceback(write):
    """The entry point in a process of its own, with a fault injected."""
    p = write("p.yaml", SMALL)
    code = (
        "import sys; import plastictool.api as a\n"
        "def f(*x, **k): raise ValueError('injected')\n"
        "a.validate_file = f\n"
        f"sys.argv = ['plastic', 'validate', {str(p)!r}]\n"
        "from plastictool.cli import main; main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 4 and r.stderr == "error: internal error: ValueError: injected (please report this; PLASTIC_DEBUG=1 shows the traceback)\n"


def test_known_errors_keep_their_own_codes(monkeypatch, capsys, tmp_path):
    code, _, err = _main(monkeypatch, capsys, "validate", tmp_path / "missing.yaml")
    assert code == 2 and "internal error" not in err  # a missing protocol is bad input


# ----------------------------------------------------------------------- --version


def test_version(monkeypatch, capsys):
    from importlib.metadata import version

    code, out, err = _main(monkeypatch, capsys, "--version")
    assert code == 0 and out == f"plastic {version('plastictool')}\n" and err == ""


def test_version_imports_neither_numpy_nor_numba():
    code = "import sys; sys.argv = ['plastic', '--version']\nfrom plastictool.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\nprint(sorted(m for m in ('numpy', 'numba') if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].startswith("plastic ") and lines[-1] == "[]", r.stdout


# ----------------------------------------------------------------------- plot on damaged folders


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    pytest.importorskip("matplotlib")
    from plastictool.cli import app

    d = tmp_path_factory.mktemp("plotrun")
    p = d / "small.yaml"
    p.write_text(SMALL)
    r = CliRunner().invoke(app, ["run", str(p), "--out", str(d / "run"), "-q"])
    assert r.exit_code == 0, r.output
    return d / "run"


def _damaged(tmp_path, run_dir, name, content):
    t = tmp_path / "t"
    shutil.copytree(run_dir, t)
    if content is None:
        (t / name).unlink()
    else:
        (t / name).write_bytes(content((t / name).read_bytes()))
    return t


GARBLE = [
    ("traces.csv", lambda b: b[: len(b) // 2], "truncated"),
    ("summary.csv", lambda b: b[:-3], "truncated"),
    ("spikes.csv", lambda b: b[:27], "truncated"),
    ("traces.csv", lambda b: b"", "empty"),
    ("traces.csv", lambda b: bytes(range(256)) * 4 + b"\n", "cannot read"),
    ("spikes.csv", lambda b: b"\xff\xfe\x00garbage\n", "cannot read"),
    ("summary.csv", lambda b: b"\x80\x81\n", "cannot read"),
    ("traces.csv", lambda b: b.replace(b"\n", b";\n", 3), "cannot read the numbers"),
    ("traces.csv", lambda b: b + b"1,2\n", "cannot read the numbers"),
    ("spikes.csv", lambda b: b"foo\n" + b, ":1: expected the header"),
    ("spikes.csv", lambda b: b + b"1,zzz,0\n", "population pre or post"),
    ("spikes.csv", lambda b: b + b"1,post,-3\n", "index >= 0"),
    ("summary.csv", lambda b: b + b"0,0\n", "values for 7 columns"),
    ("run.json", lambda b: b[:20], "not valid JSON"),
    ("run.json", lambda b: b"[1]", "expected a JSON object"),
]


@pytest.mark.parametrize("name, content, words", GARBLE)
def test_plot_on_a_damaged_file_is_exit_2_naming_it(cli, tmp_path, run_dir, name, content, words):
    t = _damaged(tmp_path, run_dir, name, content)
    r = cli("plot", t)
    assert r.exit_code == 2, r.output
    assert str(t / name) in r.stderr and words in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and (r.exception is None or isinstance(r.exception, SystemExit)), r.stderr
    assert not (t / "plot.png").exists()


def test_plot_on_files_that_do_not_fit_together_is_exit_2(cli, tmp_path, run_dir):
    t = _damaged(tmp_path, run_dir, "run.json", lambda b: json.dumps({"protocol": 5, "sweep": 3}).encode())
    r = cli("plot", t)  # an odd run.json is read around; what is drawn comes from the tables
    assert r.exit_code in (0, 2) and (r.exception is None or isinstance(r.exception, SystemExit)), r.output


def test_plot_on_missing_files(cli, tmp_path, run_dir):
    r = cli("plot", tmp_path / "nothing")
    assert r.exit_code == 2 and "is not a run folder" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("plot", empty)
    assert r.exit_code == 2 and "neither summary.csv nor traces.csv" in r.stderr
    t = _damaged(tmp_path, run_dir, "traces.csv", None)
    assert cli("plot", t).exit_code == 0  # a run that recorded no traces still has its summary


def test_plot_into_a_read_only_place_is_exit_4(cli, tmp_path, run_dir):
    f = tmp_path / "afile"
    f.write_text("x")
    r = cli("plot", run_dir, "--out", f / "p.png")
    assert r.exit_code == 4 and "is a file, not a folder" in r.stderr


def test_plot_writes_atomically_and_leaves_no_temporary(cli, tmp_path, run_dir):
    out = tmp_path / "fig.svg"
    r = cli("plot", run_dir, "--out", out)
    assert r.exit_code == 0, r.output
    assert out.read_bytes().lstrip().startswith(b"<?xml") and [p.name for p in tmp_path.iterdir()] == ["fig.svg"]


def test_run_json_reports_an_unexpected_exception_and_goes_on(cli, write, tmp_path, monkeypatch):
    from plastictool import api

    real = api.run_file

    def flaky(path, *a, **k):
        if "bad" in str(path):
            raise RecursionError("maximum recursion depth exceeded")
        return real(path, *a, **k)

    monkeypatch.setattr(api, "run_file", flaky)
    monkeypatch.delenv("PLASTIC_DEBUG", raising=False)
    bad, good = write("bad.yaml", SMALL), write("good.yaml", SMALL.replace("name: small", "name: good"))
    r = cli("run", bad, good, "--out", tmp_path / "o", "--json")
    assert r.exit_code == 4, r.output
    doc = json.loads(r.stdout)
    assert [x["status"] for x in doc["runs"]] == [4, 0] and doc["status"] == 4
    assert doc["runs"][0]["message"].startswith("internal error: RecursionError: maximum recursion depth exceeded (please report this")
    assert (tmp_path / "o" / "good" / "summary.csv").is_file()


@pytest.mark.parametrize("user", [None, "12"])
def test_the_cli_lets_openblas_threads_sleep_unless_the_user_chose(user):
    """``plastic`` sets OPENBLAS_THREAD_TIMEOUT=4 before NumPy loads (idle BLAS threads sleep at
    once instead of spinning ~0.1 s of a core); a user's own value is kept."""
    code = (
        "import os, sys\nsys.argv = ['plastic', 'rules']\nfrom plastictool.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "import numpy\nprint('TIMEOUT', os.environ.get('OPENBLAS_THREAD_TIMEOUT'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if user is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = user
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"TIMEOUT {user or '4'}"
