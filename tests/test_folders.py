"""Result folders and the file system (spec sections 9-10): exit 4 for environment failures
with the path and the cause, the --force rules, atomic replacement, stale temporary folders."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT

from plastictool.results import folders
from plastictool.errors import EXIT_BAD_INPUT, EXIT_ENVIRONMENT, OutputError, ProtocolError
from conftest import SMALL  # the small protocol several test files run

# about 100 kB of traces.csv: more than the 64 kB file system below
BIG = SMALL.replace("name: small", "name: big").replace("pairs: 5", "pairs: 60")

RESULT = ("summary.csv", "traces.csv", "spikes.csv", "run.json")


def _writers(tag: str = "new", size: int = 10):
    def text(fh):
        fh.write(tag * size)

    def meta(fh):
        fh.write(json.dumps({"tool": "plastic", "tag": tag}))

    return [("summary.csv", "w", text), ("traces.csv", "w", text), ("run.json", "w", meta)]


def _tag(out: Path) -> str:
    """The tag of a complete folder written by _writers; fails on an incomplete one."""
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "summary.csv", "traces.csv"], list(out.iterdir())
    return json.loads((out / "run.json").read_text())["tag"]


def _hidden(folder: Path) -> list:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1 and "Traceback" not in text


@pytest.fixture
def mount_point(tmp_path):
    """mount(options) -> a fresh mount point with a file system mounted; skipped where mounting
    is not allowed (not root, a container without CAP_SYS_ADMIN)."""
    mounted = []

    def _mount(*args) -> Path:
        d = tmp_path / f"mnt{len(mounted)}"
        d.mkdir()
        r = subprocess.run(["mount", *args, str(d)], capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"cannot mount here: {r.stderr.strip()}")
        mounted.append(d)
        return d

    yield _mount
    for d in reversed(mounted):
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


# ----------------------------------------------------------------------- exit 4: no space


def test_injected_no_space_is_exit_4_with_path_and_cause_and_nothing_left(tmp_path):
    out = tmp_path / "out"

    def full(fh):
        fh.write("x")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OutputError) as e:
        folders.write_folder(out, [("summary.csv", "w", full)], False)
    assert e.value.exit_code == EXIT_ENVIRONMENT == 4
    msg = str(e.value)
    assert str(out / "summary.csv") in msg and "No space left on device" in msg and "ENOSPC" in msg
    assert list(tmp_path.iterdir()) == []


def test_injected_io_error_in_a_run_is_exit_4_and_json_still_printed(cli, write, tmp_path, monkeypatch):
    from plastictool.results import output

    def broken(fh, *a, **k):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(output, "write_traces", broken)
    p = write("small.yaml", SMALL)
    out = tmp_path / "out"
    r = cli("run", p, "--out", out, "--json")
    assert r.exit_code == 4, r.output
    doc = json.loads(r.stdout)
    assert doc["status"] == 4 and doc["runs"][0]["status"] == 4
    assert "Input/output error" in doc["runs"][0]["message"] and "traces.csv" in doc["runs"][0]["message"]
    assert "Traceback" not in r.output and not out.exists() and _hidden(tmp_path) == []


def test_full_disk_on_a_small_tmpfs_is_exit_4(cli, write, tmp_path, mount_point):
    disk = mount_point("-t", "tmpfs", "-o", "size=64k", "tmpfs")
    p = write("big.yaml", BIG)
    r = cli("run", p, "--out", disk / "out")
    assert r.exit_code == 4, r.output
    assert "No space left on device" in r.stderr and str(disk / "out") in r.stderr and _one_line(r.stderr)
    assert list(disk.iterdir()) == []  # no half-written folder, no temporary one
    r = cli("run", p, "--out", disk / "out", "--json")
    assert r.exit_code == 4 and json.loads(r.stdout)["runs"][0]["status"] == 4


# ----------------------------------------------------------------------- big tables: direct I/O


def _direct_io_here(folder: Path) -> bool:
    """Whether the file system of ``folder`` takes O_DIRECT (ext4, xfs: yes; tmpfs: often no)."""
    if not folders.O_DIRECT:
        return False
    try:
        fd = os.open(folder / ".probe", os.O_WRONLY | os.O_CREAT | folders.O_DIRECT, 0o600)
    except OSError:
        return False
    os.close(fd)
    os.unlink(folder / ".probe")
    return True


@pytest.mark.parametrize("seed", range(6))
def test_bulk_file_writes_exactly_the_bytes_given(tmp_path, seed):
    """Any sequence of parts (empty, tiny, unaligned, larger than a stage) gives the file that
    is their concatenation, whether it goes through the page cache or direct I/O."""
    import random

    rnd = random.Random(seed)
    stage = rnd.choice([4096, 8192, 65536])
    after = rnd.choice([0, 4096, 10_000, 1 << 30])
    parts = [os.urandom(rnd.choice([0, 1, 7, 4095, 4096, 5000, 70_000, 200_000])) for _ in range(rnd.randint(0, 30))]
    path = tmp_path / "t.bin"
    with folders.BulkFile(path, direct_after=after, stage=stage, slow=float("inf")) as fh:  # every window slow
        for k, part in enumerate(parts):
            (fh.writelines([part]) if k % 3 == 2 else fh.write(part))
        assert fh.tell() == sum(map(len, parts))
        used = fh.direct
    assert path.read_bytes() == b"".join(parts)
    # the first write that completes a window (``after`` bytes) ends the page-cache phase; after
    # an aligned offset, direct I/O starts with the first full block (where the file system has it)
    done, switch = 0, (0 if after == 0 else None)
    for part in parts:
        if switch is None:
            done += len(part)
            switch = done if done >= after else None
    total = sum(map(len, parts))
    assert used == (_direct_io_here(tmp_path) and switch is not None and total - (-(-switch // 4096) * 4096) >= stage)


def test_bulk_file_stays_in_the_page_cache_while_it_is_fast(tmp_path):
    """Windows written faster than ``slow`` keep the page cache; the first slow one switches."""
    data = os.urandom(200_000)
    with folders.BulkFile(tmp_path / "fast", direct_after=8192, stage=4096, slow=0.0) as fh:  # never slow
        fh.write(data)
        assert not fh.direct
    if _direct_io_here(tmp_path):
        with folders.BulkFile(tmp_path / "slow", direct_after=8192, stage=4096, slow=float("inf")) as fh:
            fh.write(data[:8192])
            assert not fh.direct  # (a window is judged when it is complete)
            fh.write(data[8192:])
            assert fh.direct and fh.tell() == len(data)
        assert (tmp_path / "slow").read_bytes() == data
    assert (tmp_path / "fast").read_bytes() == data


def test_bulk_file_blocks_written_out_of_order_land_in_place(tmp_path, monkeypatch):
    """Under direct I/O several blocks are in flight and two are written at once, each at its
    offset: blocks that finish out of order (here every other one is slow) give the bytes in
    order, the unaligned tail written at ``close`` follows the last block, and the size is that
    of the bytes."""
    if not _direct_io_here(tmp_path):
        pytest.skip("no direct I/O on this file system")
    real_at = os.pwrite
    finished = []

    def pwrite(fd, buf, at):
        if at // 4096 % 2 == 0:
            time.sleep(0.005)
        n = real_at(fd, buf, at)
        finished.append(at)
        return n

    monkeypatch.setattr(folders.os, "pwrite", pwrite)
    data = os.urandom(40 * 4096 + 123)
    with folders.BulkFile(tmp_path / "t.bin", direct_after=0, stage=4096, flights=3) as fh:
        for k in range(0, len(data), 5000):
            fh.write(data[k : k + 5000])
        assert fh.direct
    assert (tmp_path / "t.bin").read_bytes() == data
    assert sorted(finished) == list(range(0, 40 * 4096, 4096)) and finished != sorted(finished)


def test_bulk_file_error_of_a_block_in_flight_is_raised(tmp_path, monkeypatch):
    """A block that fails (no space) while others are in flight: its error reaches the caller,
    and no writing thread is left behind."""
    import threading

    if not _direct_io_here(tmp_path):
        pytest.skip("no direct I/O on this file system")
    real_at = os.pwrite

    def pwrite(fd, buf, at):
        if at == 2 * 4096:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_at(fd, buf, at)

    monkeypatch.setattr(folders.os, "pwrite", pwrite)
    with pytest.raises(OSError) as e:
        with folders.BulkFile(tmp_path / "t.bin", direct_after=0, stage=4096, flights=3) as fh:
            for k in range(0, 20 * 4096, 4096):
                fh.write(b"x" * 4096)
    assert e.value.errno == errno.ENOSPC
    assert not [t for t in threading.enumerate() if t.name.startswith("plastic-write")]


def test_bulk_file_without_direct_io(tmp_path, monkeypatch):
    data = os.urandom(300_000)
    monkeypatch.setenv(folders.DIRECT_IO_ENV, "0")  # the user's switch
    with folders.BulkFile(tmp_path / "a", direct_after=0, stage=4096) as fh:
        fh.write(data)
        assert not fh.direct
    monkeypatch.delenv(folders.DIRECT_IO_ENV)

    def refused(fd, cmd, *arg):  # a platform or file system that refuses the flag
        if cmd == folders.fcntl.F_SETFL:
            raise OSError(errno.EINVAL, "Invalid argument")
        return 0

    monkeypatch.setattr(folders.fcntl, "fcntl", refused)
    with folders.BulkFile(tmp_path / "b", direct_after=0, stage=4096) as fh:
        fh.write(data)
        assert not fh.direct
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == data


def test_bulk_file_falls_back_when_a_direct_write_is_refused(tmp_path, monkeypatch):
    """EINVAL from a direct write (alignment rules of the device): the page cache takes the rest."""
    if not _direct_io_here(tmp_path):
        pytest.skip("no direct I/O on this file system")
    real, real_at = os.write, os.pwrite
    calls = []

    def refused(fd):
        if folders.fcntl.fcntl(fd, folders.fcntl.F_GETFL) & folders.O_DIRECT and not calls:
            calls.append(1)
            raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(folders.os, "write", lambda fd, buf: refused(fd) or real(fd, buf))
    monkeypatch.setattr(folders.os, "pwrite", lambda fd, buf, at: refused(fd) or real_at(fd, buf, at))
    data = os.urandom(100_000)
    with folders.BulkFile(tmp_path / "c", direct_after=8192, stage=8192, slow=float("inf")) as fh:
        fh.write(data[:8192])  # a (slow) window through the page cache
        fh.write(data[8192:])  # then direct I/O, refused
    assert calls and not fh.direct and (tmp_path / "c").read_bytes() == data


def _recorded_fallocate(monkeypatch, result=None):
    """The calls of BulkFile's fallocate ``(mode, offset, length, what it returned)``, made for
    real (``result`` None) or answered ``result``."""
    real = folders._fallocate_function()
    calls = []

    def fallocate(fd, mode, offset, length):
        r = real(fd, mode, offset, length) if result is None else result
        calls.append((mode, offset, length, r))
        return r

    monkeypatch.setattr(folders, "_FALLOCATE", [fallocate if real is not None or result is not None else None])
    return calls


@pytest.mark.parametrize("direct_after", [None, 0])
def test_bulk_file_reserves_space_ahead_and_gives_back_the_rest(tmp_path, monkeypatch, direct_after):
    """A file past ``reserve_from`` bytes reserves its space ahead (the size stays that of the
    bytes written), up to twice the size it reaches; ``close`` frees what was not used: the
    same bytes, and no more disk blocks than the file needs."""
    calls = _recorded_fallocate(monkeypatch)
    parts = [os.urandom(n) for n in (1000, 5000, 70_000, 3, 200_000, 4096, 150_000, 1)]
    path = tmp_path / "t.bin"
    with folders.BulkFile(path, direct_after=direct_after, stage=8192, reserve_from=4096) as fh:
        done = 0
        for part in parts:
            fh.write(part)
            done += len(part)
            size = os.fstat(fh.fd).st_size
            assert size <= done or (fh.direct and size == fh._reserved)  # the reserve's only under direct I/O
    data = b"".join(parts)
    assert path.read_bytes() == data and os.stat(path).st_size == len(data)
    if folders._fallocate_function() is None:
        assert calls == []
        return
    assert calls and all(mode == folders.FALLOC_FL_KEEP_SIZE for mode, *_ in calls)
    if calls[0][3] != 0:  # a file system without fallocate: asked once, then written without
        assert len(calls) == 1
        return
    assert all(r == 0 for *_, r in calls)
    if os.stat(path).st_blocks:  # (a file system that counts blocks)
        assert os.stat(path).st_blocks * 512 <= -(-len(data) // 4096) * 4096 + 8192  # the reserve given back
    ends = [offset + length for _, offset, length, _ in calls]
    assert ends == sorted(ends) and ends[-1] >= len(data) and ends[-1] <= 2 * len(data) + 8192


def test_bulk_file_without_a_reserve_writes_the_same(tmp_path, monkeypatch):
    """fallocate refused (no space for the reserve, a file system without it): asked once, and
    the file written as without it."""
    calls = _recorded_fallocate(monkeypatch, result=-1)
    data = os.urandom(300_000)
    with folders.BulkFile(tmp_path / "t.bin", reserve_from=4096) as fh:
        for k in range(0, len(data), 10_000):
            fh.write(data[k : k + 10_000])
    assert (tmp_path / "t.bin").read_bytes() == data and len(calls) == 1


def test_a_reserve_that_does_not_fit_is_no_error(tmp_path, monkeypatch, mount_point):
    """On a 1 MB file system, an 800 kB file whose reserve (twice its size) does not fit is
    written all the same: the reserve never fails a write that fits."""
    disk = mount_point("-t", "tmpfs", "-o", "size=1m", "tmpfs")
    calls = _recorded_fallocate(monkeypatch)
    data = os.urandom(800_000)
    with folders.BulkFile(disk / "t.bin", reserve_from=4096) as fh:
        for k in range(0, len(data), 50_000):
            fh.write(data[k : k + 50_000])
    assert (disk / "t.bin").read_bytes() == data
    if folders._fallocate_function() is not None:
        assert calls[-1][3] != 0 and calls[-1][1] + calls[-1][2] > 1 << 20  # the reserve that did not fit


def test_no_space_in_a_big_table_is_exit_4(tmp_path, monkeypatch):
    """A write error of a staged block (here: of direct I/O) is the writer's OSError -> exit 4."""
    out = tmp_path / "out"
    monkeypatch.setattr(folders, "DIRECT_AFTER", 0)
    monkeypatch.setattr(folders, "STAGE", 4096)
    real, real_at = os.write, os.pwrite

    def full(buf):
        if len(buf) >= 4096:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(folders.os, "write", lambda fd, buf: full(buf) or real(fd, buf))
    monkeypatch.setattr(folders.os, "pwrite", lambda fd, buf, at: full(buf) or real_at(fd, buf, at))
    with pytest.raises(OutputError) as e:
        folders.write_folder(out, [("summary.csv", "wb", lambda fh: fh.write(b"x" * 10_000))], False)
    assert e.value.exit_code == EXIT_ENVIRONMENT and str(out / "summary.csv") in str(e.value) and "No space left" in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_a_run_written_with_direct_io_is_byte_identical(cli, write, tmp_path, monkeypatch):
    """Every table of a run (and of record.format npy) through direct I/O from the first block
    on, in blocks of one page: the same bytes as through the page cache."""
    p = write("big.yaml", BIG)
    assert "record: {state: [x_pre]}" in BIG
    npy = write("npy.yaml", BIG.replace("name: big", "name: npy").replace("record: {state: [x_pre]}", "record: {state: [x_pre], format: npy}"))
    runs = [(p, "csv"), (npy, "npy")]
    for proto, tag in runs:
        assert cli("run", proto, "--out", tmp_path / f"{tag}-cache").exit_code == 0
    monkeypatch.setattr(folders, "DIRECT_AFTER", 0)
    monkeypatch.setattr(folders, "STAGE", 4096)
    for proto, tag in runs:
        r = cli("run", proto, "--out", tmp_path / f"{tag}-direct")
        assert r.exit_code == 0, r.output
        a, b = tmp_path / f"{tag}-cache", tmp_path / f"{tag}-direct"
        files = sorted(f.relative_to(a) for f in a.rglob("*") if f.is_file() and f.name != "run.json")
        assert files and files == sorted(f.relative_to(b) for f in b.rglob("*") if f.is_file() and f.name != "run.json")
        for f in files:
            assert (a / f).read_bytes() == (b / f).read_bytes(), f


# ----------------------------------------------------------------------- exit 4: the place


def test_read_only_folder_is_exit_4_before_the_run(cli, write, tmp_path, mount_point):
    src = tmp_path / "src"
    src.mkdir()
    ro = mount_point("--bind", "-o", "ro", str(src))
    if os.access(ro, os.W_OK):  # old util-linux: bind first, then remount read-only
        subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], check=True)
    p = write("small.yaml", SMALL)
    r = cli("run", p, "--out", ro / "out")
    assert r.exit_code == 4, r.output
    assert "Read-only file system" in r.stderr and str(ro) in r.stderr and _one_line(r.stderr)
    assert list(src.iterdir()) == []


def test_read_only_folder_injected(tmp_path, monkeypatch):
    """The same anywhere (not root, no mount): the write itself fails with EROFS."""
    monkeypatch.setattr(folders.os, "access", lambda *a, **k: True)  # the early check passes
    real_mkdtemp = folders.tempfile.mkdtemp

    def mkdtemp(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), k.get("dir"))

    monkeypatch.setattr(folders.tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(OutputError, match="Read-only file system") as e:
        folders.write_folder(tmp_path / "out", _writers(), False)
    assert str(tmp_path) in str(e.value)
    monkeypatch.setattr(folders.tempfile, "mkdtemp", real_mkdtemp)
    assert list(tmp_path.iterdir()) == []


def test_immutable_folder_is_exit_4(cli, write, tmp_path):
    if shutil.which("chattr") is None:
        pytest.skip("no chattr")
    imm = tmp_path / "imm"
    imm.mkdir()
    if subprocess.run(["chattr", "+i", str(imm)], capture_output=True).returncode:
        pytest.skip("chattr +i is not allowed here")
    try:
        p = write("small.yaml", SMALL)
        r = cli("run", p, "--out", imm / "out")
        assert r.exit_code == 4, r.output
        assert str(imm) in r.stderr and ("Permission denied" in r.stderr or "not permitted" in r.stderr) and _one_line(r.stderr)
        assert list(imm.iterdir()) == []
    finally:
        subprocess.run(["chattr", "-i", str(imm)])


def test_out_below_a_file_is_exit_4_naming_the_file(cli, write, tmp_path):
    p = write("small.yaml", SMALL)
    f = tmp_path / "afile"
    f.write_text("x")
    for out in (f / "out", f / "deeper" / "out"):
        r = cli("run", p, "--out", out)
        assert r.exit_code == 4, r.output
        assert f"{str(f)!r} is a file, not a folder" in r.stderr and "ENOTDIR" in r.stderr and _one_line(r.stderr)
    assert f.read_text() == "x"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    r = cli("run", p, "--out", dangling / "out")
    assert r.exit_code == 4 and str(dangling) in r.stderr and "No such file or directory" in r.stderr and _one_line(r.stderr)


def test_a_300_character_name_is_exit_4(cli, write, tmp_path, monkeypatch):
    with pytest.raises(OutputError, match="File name too long") as e:
        folders.write_folder(tmp_path / ("n" * 300), _writers(), False)
    assert "ENAMETOOLONG" in str(e.value) and list(tmp_path.iterdir()) == []
    p = write("long.yaml", SMALL.replace("name: small", f"name: {'n' * 300}"))
    monkeypatch.chdir(tmp_path)
    r = cli("run", p, "--json")  # outputs/<300 characters>
    assert r.exit_code in (2, 4), r.output  # 2 if validation ever limits the name's length
    msg = json.loads(r.stdout)["runs"][0]["message"]
    assert ("File name too long" in msg and "ENAMETOOLONG" in msg) if r.exit_code == 4 else "name" in msg
    assert "Traceback" not in r.output
    assert not (tmp_path / "outputs").exists() or list((tmp_path / "outputs").iterdir()) == []


def test_a_long_name_that_fits_gets_a_short_temporary_folder(tmp_path):
    out = tmp_path / ("n" * 250)  # fits NAME_MAX (255); ".NAME.tmp-XXXXXXXX" would not
    folders.write_folder(out, _writers(), False)
    assert _tag(out) == "new" and _hidden(tmp_path) == []


# ----------------------------------------------------------------------- --force rules


def test_force_refuses_a_user_folder_and_leaves_it_untouched(cli, write, tmp_path):
    p = write("small.yaml", SMALL)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (mine / "run.json").write_text('{"mine": true}')  # a run.json, but not plastic's
    r = cli("run", p, "--out", mine, "--force")
    assert r.exit_code == 2, r.output
    assert "not a folder that plastic wrote" in r.stderr and "untouched" in r.stderr and _one_line(r.stderr)
    assert sorted(x.name for x in mine.iterdir()) == ["notes.txt", "run.json"]
    assert (mine / "notes.txt").read_text() == "my notes"
    assert _hidden(tmp_path) == []


def test_force_replaces_a_plastic_result_and_an_empty_folder(cli, write, tmp_path):
    p = write("small.yaml", SMALL)
    out = tmp_path / "out"
    assert cli("run", p, "--out", out).exit_code == 0
    (out / "notes.txt").write_text("scratch")  # a plastic result stays plastic's
    assert cli("run", p, "--out", out, "--force").exit_code == 0
    assert sorted(x.name for x in out.iterdir()) == sorted(RESULT)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("run", p, "--out", empty).exit_code == 2  # exists: --force needed
    assert cli("run", p, "--out", empty, "--force").exit_code == 0
    assert sorted(x.name for x in empty.iterdir()) == sorted(RESULT)
    fit = tmp_path / "fit"
    fit.mkdir()
    (fit / "fit.json").write_text("{}")
    assert folders.write_folder(fit, _writers(), True) == fit and _tag(fit) == "new"
    assert _hidden(tmp_path) == []


def test_force_refuses_the_current_folder_and_its_parents(cli, write, tmp_path, monkeypatch):
    p = write("small.yaml", SMALL)
    here = tmp_path / "a" / "b"
    assert cli("run", p, "--out", here).exit_code == 0  # a plastic result, and ...
    monkeypatch.chdir(here)  # ... the current folder
    for out, what in ((".", "the current folder"), (str(here), "the current folder"), ("..", "a parent"), (str(tmp_path), "a parent")):
        r = cli("run", p, "--out", out, "--force")
        assert r.exit_code == 2, (out, r.output)
        assert what in r.stderr and _one_line(r.stderr)
    assert sorted(x.name for x in here.iterdir()) == sorted(RESULT)
    (tmp_path / "a" / "run.json").write_text('{"tool": "plastic"}')  # even when it looks like a result
    r = cli("run", p, "--out", "..", "--force")
    assert r.exit_code == 2 and sorted(x.name for x in (tmp_path / "a").iterdir()) == ["b", "run.json"]


def test_force_refuses_a_file_and_a_symbolic_link(cli, write, tmp_path):
    p = write("small.yaml", SMALL)
    f = tmp_path / "file"
    f.write_text("x")
    r = cli("run", p, "--out", f, "--force")
    assert r.exit_code == 2 and "not a folder" in r.stderr and f.read_text() == "x"
    res = tmp_path / "res"
    assert cli("run", p, "--out", res).exit_code == 0
    link = tmp_path / "link"
    link.symlink_to(res)
    r = cli("run", p, "--out", link, "--force")
    assert r.exit_code == 2 and "symbolic link" in r.stderr and link.is_symlink()


def test_force_is_checked_again_when_writing(tmp_path):
    """A user folder that appears during a run is not replaced either."""
    out = tmp_path / "out"

    def sneak(fh):
        fh.write("x")
        out.mkdir()
        (out / "notes.txt").write_text("mine")

    with pytest.raises(ProtocolError, match="not a folder that plastic wrote") as e:
        folders.write_folder(out, [("summary.csv", "w", sneak)], True)
    assert e.value.exit_code == EXIT_BAD_INPUT
    assert [x.name for x in out.iterdir()] == ["notes.txt"] and _hidden(tmp_path) == []


def test_merge_and_warmup_map_environment_failures_to_exit_4(cli, tmp_path, monkeypatch):
    from plastictool import api
    from plastictool.results import merge

    def full(folder, out=None, force=False, argv=()):
        folders.write_folder(tmp_path / "m", [("run.json", "w", lambda fh: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))], force)

    monkeypatch.setattr(merge, "merge_shards", full)
    r = cli("merge", tmp_path / "s1", tmp_path / "s2")
    assert r.exit_code == 4 and "No space left on device" in r.stderr and str(tmp_path / "m" / "run.json") in r.stderr
    assert list(tmp_path.iterdir()) == []

    def warm(native=True):
        raise OSError(errno.ENOSPC, "No space left on device", "/tmp/plastic-warmup-x")

    monkeypatch.setattr(api, "warmup", warm)
    r = cli("warmup")
    assert r.exit_code == 4 and "cannot write '/tmp/plastic-warmup-x': No space left on device" in r.stderr and _one_line(r.stderr)


def test_merge_follows_the_force_rules(cli, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    shard = tmp_path / "s"
    shard.mkdir()
    (shard / "run.json").write_text('{"tool": "plastic"}')
    r = cli("merge", shard, "--out", mine, "--force")
    assert r.exit_code == 2 and (mine / "notes.txt").read_text() == "x"


# ----------------------------------------------------------------------- atomic replacement


def test_replacement_uses_an_atomic_exchange_on_linux(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    assert folders.exchange(a, b) is True
    assert (b / "x").read_text() == "a" and list(a.iterdir()) == []
    raw = folders._exchange_function(syscall=True)  # the system call itself (glibc < 2.28)
    if raw is None:
        pytest.skip(f"no renameat2 system call number known for {os.uname().machine}")
    assert raw(a, b) is True
    assert (a / "x").read_text() == "a" and list(b.iterdir()) == []
    with pytest.raises(OSError) as e:  # a missing path is an error, not "unsupported"
        raw(a, tmp_path / "missing")
    assert e.value.errno == errno.ENOENT


CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    sys.path.insert(0, {root!r})
    from plastictool.results import folders

    out, where, scheme = sys.argv[1], sys.argv[2], sys.argv[3]

    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)

    if scheme == "fallback":
        folders.exchange = lambda a, b: False
    if where == "writing":
        def fill(fh):
            fh.write("half")
            fh.flush()
            die()
    else:
        fill = lambda fh: fh.write("newnewnew")
        if where == "before_exchange":
            folders.exchange = die
        elif where == "after_exchange":
            folders._discard = die
        elif where == "between_renames":
            real = os.rename
            calls = []
            def rename(a, b):
                calls.append(a)
                if len(calls) == 2:
                    die()
                real(a, b)
            folders.os.rename = rename
    meta = lambda fh: fh.write(json.dumps({{"tool": "plastic", "tag": "new"}}))
    folders.write_folder(out, [("summary.csv", "w", fill), ("traces.csv", "w", fill), ("run.json", "w", meta)], True)
    """
)


@pytest.mark.parametrize(
    "where, scheme, expect",
    [
        ("writing", "exchange", "old"),
        ("before_exchange", "exchange", "old"),
        ("after_exchange", "exchange", "new"),
        ("writing", "fallback", "old"),
        ("between_renames", "fallback", None),  # out missing for an instant: restored by the next write
    ],
)
def test_kill_9_during_replacement_leaves_a_complete_result(tmp_path, where, scheme, expect):
    if scheme == "exchange" and not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    out = tmp_path / "out"
    folders.write_folder(out, _writers("old"), False)
    script = tmp_path.parent / f"child-{where}-{scheme}.py"
    script.write_text(CHILD.format(root=str(ROOT)))
    r = subprocess.run([sys.executable, str(script), str(out), where, scheme], capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr
    if expect is not None:
        assert _tag(out) == expect
    else:
        assert not out.exists()
    assert _hidden(tmp_path)  # a temporary folder of the killed run is left
    # fresh, they are kept (a live run might own them) ...
    assert not [x for x in folders.clean_stale(tmp_path) if x.startswith("removed")]
    # ... later (and unlocked: their process is dead) they are cleaned, an old result restored
    done = folders.clean_stale(tmp_path, now=time.time() + 2 * folders.STALE_S)
    assert done and _hidden(tmp_path) == []
    assert _tag(out) == (expect or "old")


def test_every_instant_of_many_replacements_shows_a_complete_result(tmp_path):
    """A reader polling the folder while a writer replaces it 40 times never sees it missing
    or incomplete (the exchange; Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    out = tmp_path / "out"
    folders.write_folder(out, _writers("0"), False)
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(ROOT)!r})
        from plastictool.results import folders
        for k in range(1, 41):
            t = str(k)
            meta = lambda fh: fh.write(json.dumps({{"tool": "plastic", "tag": t}}))
            fill = lambda fh: fh.write(t * 1000)
            folders.write_folder({str(out)!r}, [("summary.csv", "w", fill), ("traces.csv", "w", fill), ("run.json", "w", meta)], True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    seen = set()
    try:
        while proc.poll() is None:
            seen.add(json.loads((out / "run.json").read_text())["tag"])  # never missing
    finally:
        proc.wait()
    assert proc.returncode == 0 and _tag(out) == "40" and _hidden(tmp_path) == []
    assert len(seen) >= 2


# ----------------------------------------------------------------------- stale temporaries


def _stale(parent: Path, name: str, files=(), age: float = 3600.0) -> Path:
    d = parent / name
    d.mkdir()
    for f, text in files:
        (d / f).write_text(text)
    t = time.time() - age
    os.utime(d, (t, t))
    return d


def test_stale_temporaries_are_cleaned_only_when_safe(tmp_path):
    import fcntl

    gone = [
        _stale(tmp_path, ".out.tmp-abcd1234", [(folders.MARKER, ""), ("summary.csv", "half")]),  # killed while writing
        _stale(tmp_path, ".out.tmp-empty000"),  # killed right after creating it
        _stale(tmp_path, ".x.old-abcd1234", [("run.json", '{"tool": "plastic"}')]),  # an old result, out exists
    ]
    (tmp_path / "x").mkdir()
    kept = [
        _stale(tmp_path, ".out.tmp-fresh000", [(folders.MARKER, "")], age=1.0),  # maybe a run that just started
        _stale(tmp_path, ".out.tmp-notmine0", [("notes.txt", "mine")]),  # not plastic's
        _stale(tmp_path, ".out.tmp-locked00", [(folders.MARKER, "")]),  # a live run holds its lock
        _stale(tmp_path, ".out.tmp-toolong000", [(folders.MARKER, "")]),  # not a temporary name
        _stale(tmp_path, "out.tmp-abcd1234", [(folders.MARKER, "")]),  # not hidden: not ours
    ]
    (tmp_path / ".out.tmp-afile000").write_text("")  # a file: never
    fd = os.open(kept[2], os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        folders.write_folder(tmp_path / "out", _writers(), False)  # cleans as it writes
    finally:
        os.close(fd)
    assert [d.exists() for d in gone] == [False] * len(gone)
    assert [d.exists() for d in kept] == [True] * len(kept)
    assert (tmp_path / ".out.tmp-afile000").is_file() and _tag(tmp_path / "out") == "new"
    assert (kept[1] / "notes.txt").read_text() == "mine"
