"""Result folders that appear complete or not at all (spec sections 9-10).

The one module that writes results to disk (``plastic run``, ``merge``, ``plot``, the warmup's
runs): every ``OSError`` of writing becomes an :class:`~plastictool.errors.OutputError` (exit 4)
that names the path and the cause (no space left, permission denied, read-only or immutable
folder, I/O error, a name too long, a file where a folder should be).

Writing a folder ``out``:

1. ``check_target`` (before the run, and again just before the rename): ``out`` must not exist,
   or, with ``--force``, be a folder that ``plastic`` wrote (a ``run.json`` whose ``tool`` is
   ``plastic``, or a ``fit.json``) or an empty folder. Any other folder, a file, a symbolic
   link, the current folder and its parents are refused (exit 2) and left untouched.
2. The files are written into a temporary sibling ``.NAME.tmp-XXXXXXXX`` (NAME cut to 64
   characters), which holds the marker ``.plastic-partial`` while it is incomplete and is
   locked (``flock`` on the folder) for as long as this process lives.
3. A new ``out`` is renamed into place. An existing one is exchanged atomically with the
   temporary folder (Linux ``renameat2(RENAME_EXCHANGE)``, macOS ``renamex_np(RENAME_SWAP)``),
   so that at every instant ``out`` holds the complete old or the complete new result; the
   old one, now at the temporary name, is then deleted. Where the platform or file system has
   no exchange, the old folder is renamed to ``.NAME.old-XXXXXXXX`` and the new one into place
   (``out`` is missing between these two renames; after a crash there, the next write into the
   same parent folder renames the old result back).

Stale temporaries of earlier killed runs are cleaned whenever a folder is written into the
same parent folder: a ``.NAME.tmp-XXXXXXXX`` or ``.NAME.old-XXXXXXXX`` folder is deleted only
when (a) it is a real folder, (b) it was last modified more than :data:`STALE_S` seconds ago,
(c) no process holds its lock (a live run always does, so a folder in use is never touched;
the lock dies with its process, even with ``kill -9``), and (d) it is ``plastic``'s: empty,
marked ``.plastic-partial``, or a result of ``plastic``. Anything else is left alone. Without
``fcntl`` (Windows) nothing is cleaned.

Tables are written through :class:`BulkFile`: through the page cache while that is fast, else
the rest by direct I/O (``PLASTIC_DIRECT_IO=0``: never).

Plain standard library (no NumPy): ``plastic merge`` writes folders without loading the engine.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

from ..errors import OutputError, ProtocolError

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locks, no cleaning
    fcntl = None

MARKER = ".plastic-partial"  # in a temporary folder while it is incomplete
STALE_S = 60.0  # a temporary folder untouched this long and unlocked is an earlier run's
NAME_CHARS = 64  # of NAME in the temporary folders' names (a long name still fits NAME_MAX)
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-[A-Za-z0-9_]{8}$")
RESULT_MARKERS = ("run.json", "fit.json")


# ------------------------------------------------------------------------------ errors


def shown(path, limit: int = 160) -> str:
    """``repr`` of a path, its middle cut out when it is longer than ``limit`` characters."""
    text = str(path)
    if len(text) > limit:
        text = f"{text[: limit // 2]}...({len(text)} characters)...{text[-limit // 2 :]}"
    return repr(text)


def environment_error(exc: OSError, path, doing: str = "write") -> OutputError:
    """``OSError`` -> exit 4: ``cannot DOING 'PATH': CAUSE (ERRNO)``."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    code = errno.errorcode.get(exc.errno) if exc.errno else None
    return OutputError(f"cannot {doing} {shown(path)}: {cause}" + (f" ({code})" if code else ""))


def _lstat(path: Path):
    """``os.lstat`` or None when nothing is there; other failures are exit 4 (the name too
    long, a file where a folder should be, no permission to look)."""
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise _not_a_folder(path) from None
    except OSError as exc:
        raise environment_error(exc, path, "use the output folder") from None


def _not_a_folder(path: Path, what: str = "the output folder") -> OutputError:
    """``path`` lies below something that is not a folder: name it."""
    for up in Path(path).parents:
        try:
            st = os.stat(up)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode):
            return OutputError(f"cannot create {what} {shown(path)}: {shown(up)} is a file, not a folder (ENOTDIR)")
    return OutputError(f"cannot create {what} {shown(path)}: a part of the path is not a folder (ENOTDIR)")


def _check_writable(folder: Path) -> None:
    """The nearest existing folder at or above ``folder`` must take new entries (exit 4 if not;
    checked before a run so that a long run does not end in an unwritable folder)."""
    up = Path(folder)
    while True:
        st = _lstat(up) if str(up) not in ("", ".") else os.stat(".")
        if st is not None:
            break
        if up.parent == up:
            return
        up = up.parent
    try:
        target = os.stat(up)
    except OSError as exc:  # a symbolic link to nothing, a loop
        raise environment_error(exc, up, "create a folder in") from None
    if not stat.S_ISDIR(target.st_mode):
        raise _not_a_folder(Path(folder) / "x")
    if os.access(up, os.W_OK | os.X_OK):
        return
    try:
        read_only = bool(os.statvfs(up).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        read_only = False
    err = errno.EROFS if read_only else errno.EACCES
    raise environment_error(OSError(err, os.strerror(err)), up, "write into")


# ------------------------------------------------------------------------------ targets


def is_plastic_result(folder: Path) -> bool:
    """A folder that ``plastic`` wrote: its ``run.json`` is a JSON object with ``"tool":
    "plastic"``, or it holds a ``fit.json`` that is a JSON object."""
    for name in RESULT_MARKERS:
        f = Path(folder) / name
        try:
            if not f.is_file() or f.is_symlink():
                continue
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and (name == "fit.json" or doc.get("tool") == "plastic"):
            return True
    return False


def _is_empty(folder: Path) -> bool:
    try:
        with os.scandir(folder) as it:
            return next(it, None) is None
    except OSError:
        return False


def _check_replaceable(out: Path, st, file) -> None:
    """``--force`` rules (spec section 10): exit 2 for anything but an empty folder or one that
    ``plastic`` wrote, and for the current folder and its parents."""
    if stat.S_ISLNK(st.st_mode):
        raise ProtocolError(f"{str(out)!r} is a symbolic link; --force replaces only a folder that plastic wrote", "", file, None)
    if not stat.S_ISDIR(st.st_mode):
        raise ProtocolError(f"{str(out)!r} exists and is not a folder; --force replaces only a folder that plastic wrote", "", file, None)
    try:
        here = Path.cwd().resolve()
    except OSError:
        here = None
    real = Path(out).resolve()
    if here is not None and (real == here or real in here.parents):
        what = "the current folder" if real == here else "a parent of the current folder"
        raise ProtocolError(f"--force: {str(out)!r} is {what}; it is never replaced (use another --out)", "", file, None)
    if _is_empty(out) or is_plastic_result(out):
        return
    raise ProtocolError(
        f"--force: {str(out)!r} is not a folder that plastic wrote (no run.json of plastic, no fit.json) and not empty; "
        "it is left untouched: choose another --out, or move it away yourself",
        "",
        file,
        None,
    )


def check_target(out: Path, force: bool, file: str | None = None) -> None:
    """May ``out`` be written? Exit 2 if it exists (without ``force``) or ``force`` may not
    replace it; exit 4 if the file system will not take it (a file on the way, a name too long,
    a read-only or unwritable folder)."""
    out = Path(out)
    st = _lstat(out)
    if st is not None:
        if not force:
            if stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode):
                raise ProtocolError(f"output folder {str(out)!r} exists; use --force to replace it, or --out", "", file, None)
            raise ProtocolError(f"{str(out)!r} exists and is not a folder", "", file, None)
        _check_replaceable(out, st, file)
    _check_writable(out.parent)


# ------------------------------------------------------------------------------ locks


def _lock(folder: Path, blocking: bool = True) -> int | None:
    """An open descriptor of ``folder`` holding an exclusive ``flock``; None when another
    process holds it (``blocking=False``) or locks are unavailable."""
    if fcntl is None:
        return None
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def _make_temp(parent: Path, name: str, kind: str) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=f".{name[:NAME_CHARS]}.{kind}-", dir=parent))
    except OSError as exc:
        raise environment_error(exc, parent, "write into") from None


def _discard(folder: Path) -> None:
    """Delete a temporary folder of ours so that, at every instant until it is gone, it is
    recognisably plastic's (marker first, the marker last)."""
    try:
        (folder / MARKER).touch()
    except OSError:
        pass
    try:
        with os.scandir(folder) as it:
            entries = [e for e in it if e.name != MARKER]
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path, ignore_errors=True)
            else:
                os.unlink(e.path)
    except OSError:
        pass
    shutil.rmtree(folder, ignore_errors=True)


def clean_stale(parent: Path, now: float | None = None) -> list[str]:
    """Delete the stale temporary folders of earlier killed runs in ``parent`` (see the module
    docstring for when a folder counts as one); an old result left by a crash between the two
    renames of the fallback replacement is renamed back into place. Returns what was done
    (names), for tests. Never raises."""
    done: list[str] = []
    if fcntl is None:
        return done
    now = time.time() if now is None else now
    try:
        with os.scandir(parent) as it:
            candidates = [e for e in it if TEMP_NAME.match(e.name)]
    except OSError:
        return done
    for e in candidates:
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or now - st.st_mtime < STALE_S:
            continue
        path = Path(e.path)
        fd = _lock(path, blocking=False)
        if fd is None:
            continue  # in use by a live run (or not lockable): leave it
        try:
            if not (_is_empty(path) or (path / MARKER).exists() or is_plastic_result(path)):
                continue
            m = TEMP_NAME.match(e.name)
            target = path.parent / m["name"]
            if m["kind"] == "old" and len(m["name"]) < NAME_CHARS and is_plastic_result(path) and not os.path.lexists(target):
                try:
                    os.rename(path, target)
                    done.append(f"restored {target.name}")
                    continue
                except OSError:
                    pass
            _discard(path)
            done.append(f"removed {e.name}")
        finally:
            _unlock(fd)
    return done


# ------------------------------------------------------------------------------ exchange


def _exchange_function(syscall: bool = False):
    """A function ``(a, b) -> bool`` that swaps two paths atomically (False: not supported
    here), or None. ``syscall``: Linux's system call even where libc has ``renameat2`` (as with
    glibc < 2.28; for tests)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover
        return None
    if sys.platform.startswith("linux"):
        at_fdcwd, rename_exchange = -100, 2
        fn = None if syscall else getattr(libc, "renameat2", None)
        if fn is not None:
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]

            def call(a, b):
                return fn(at_fdcwd, a, at_fdcwd, b, rename_exchange)

        else:  # glibc < 2.28: the system call itself
            nr = {"x86_64": 316, "aarch64": 276, "ppc64le": 357, "s390x": 347}.get(os.uname().machine)
            if nr is None:
                return None

            def call(a, b):
                return libc.syscall(ctypes.c_long(nr), ctypes.c_int(at_fdcwd), ctypes.c_char_p(a), ctypes.c_int(at_fdcwd), ctypes.c_char_p(b), ctypes.c_uint(rename_exchange))

    elif sys.platform == "darwin":  # pragma: no cover - not tested here
        fn = getattr(libc, "renamex_np", None)
        if fn is None:
            return None
        fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]

        def call(a, b):
            return fn(a, b, 0x2)  # RENAME_SWAP

    else:  # pragma: no cover
        return None

    def exchange(a: Path, b: Path) -> bool:
        if call(os.fsencode(a), os.fsencode(b)) == 0:
            return True
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            return False
        raise OSError(err, os.strerror(err), str(b))

    return exchange


_EXCHANGE: list = []


def exchange(a: Path, b: Path) -> bool:
    """Swap the folders ``a`` and ``b`` atomically; False where the platform cannot."""
    if not _EXCHANGE:
        _EXCHANGE.append(_exchange_function())
    fn = _EXCHANGE[0]
    return fn(a, b) if fn is not None else False


def _replace(tmp: Path, out: Path) -> None:
    """Put the complete folder ``tmp`` at ``out``, which holds an older result; the old one is
    deleted. Atomic where :func:`exchange` works."""
    if exchange(tmp, out):
        _discard(tmp)  # the old result, now at the temporary name
        return
    old = _make_temp(out.parent, out.name, "old")
    os.rename(out, old)  # onto the empty folder: allowed
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    _discard(old)


# ------------------------------------------------------------------------------ writing

DIRECT_IO_ENV = "PLASTIC_DIRECT_IO"
DIRECT_AFTER = 16 << 20  # a file's writes through the page cache are timed in windows of this many bytes ...
SLOW_BPS = 1.0e9  # ... and one slower than this (bytes/s) sends the rest of the file by direct I/O ...
STAGE = 1 << 20  # ... a page-aligned block of this many bytes at a time ...
FLIGHTS = 3  # ... with up to this many blocks queued for the writing threads (a table alone: summary.csv) ...
WRITERS = 2  # ... which write two of them at once, each at its own offset
PAGE = 4096  # direct I/O's alignment of offsets and lengths (the logical block size, at most a page)
O_DIRECT = getattr(os, "O_DIRECT", 0)  # Linux (and some BSDs); 0: never
RESERVE_FROM = 32 << 20  # a file that grows past this many bytes gets its disk space reserved ahead ...
RESERVE_MAX = 256 << 20  # ... up to twice the size it reaches, at most this many bytes beyond it
FALLOC_FL_KEEP_SIZE = 1  # fallocate's mode: the space beyond the end, the size unchanged


def _fallocate_function():
    """Linux's ``fallocate(fd, mode, offset, length)`` from the C library (0 or -1 and errno), or
    None. Not ``os.posix_fallocate``: where a file system has no fallocate, the C library's
    ``posix_fallocate`` writes zeros instead, and it sets the file's size."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):  # pragma: no cover
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fn.restype = ctypes.c_int
    return fn


_FALLOCATE: list = []


def _write_at(fd: int, buf, n: int, at: int) -> None:
    """Write ``buf[:n]`` at offset ``at`` of ``fd`` (a block of a BulkFile, on a writing thread)."""
    m = 0
    while m < n:
        m += os.pwrite(fd, buf[m:n], at + m)


class BulkFile:
    """A binary file for big tables: written through the page cache while that is fast, else
    with direct I/O (``O_DIRECT``: the disk reads the bytes from this process's memory, no copy
    into the page cache), in blocks of STAGE bytes that threads of its own write while the
    next blocks fill.

    The writes through the page cache are timed in windows of DIRECT_AFTER bytes (16 MiB); when
    a window went slower than SLOW_BPS (1 GB/s: the kernel's copy into page-cache memory then
    costs more than most disks take for the same bytes), the rest of the file goes by direct
    I/O. Why: in a virtual machine, page-cache memory can be expensive to touch (the host backs
    fresh memory page by page) or the dirty-page limits throttle a big file; W3's 800 MB
    summary.csv cost 0.15-0.2 s of copying when memory was warm (a quiet machine; 4 GB/s: it
    stays in the page cache) but 0.8-2.3 s of system time on a busy one, and W4's 3.4 GB of
    ``.npy`` columns 11 s instead of 4-5 s by direct I/O (1.5-2 GB/s on this machine's disk,
    overlapped with the formatting). The window is short because the slow case is the common
    one after an idle spell: this machine hands freed memory back to its host, and pages the
    host has to back again took 0.41 GB/s to write (800 MB in 2 s, against 0.17-0.23 s a
    second after another run freed its own), so a 64 MiB window cost 0.1-0.16 s before the
    switch. Small files (one window) never switch. The bytes on disk are the same either way.

    A file that grows past RESERVE_FROM bytes gets its disk space reserved ahead of its writes
    (Linux ``fallocate`` with ``FALLOC_FL_KEEP_SIZE``: the size stays that of the bytes written,
    except under direct I/O, below),
    up to twice the size it reaches, at most RESERVE_MAX beyond it; ``close`` gives back what was not
    used (``ftruncate`` to the size written). The file system then allocates a file's blocks in
    a few big calls instead of page by page as the page cache takes the bytes: W3's 800 MB
    summary.csv cost 0.16 s of copying without, 0.115 s with (ext4, warm memory). Where the
    call fails (no space for the reserve, a file system without it) the file is written without
    reserving; the bytes on disk are the same either way.

    Where the file system or platform has no direct I/O (tmpfs, macOS: no ``O_DIRECT``), or
    a direct write is refused (``EINVAL``), the rest goes through the page cache.
    ``PLASTIC_DIRECT_IO=0`` never uses direct I/O. Through the page cache the bytes go as they
    come (no copy); for direct I/O they are staged in page-aligned buffers (``mmap``): it needs
    aligned memory, offsets and lengths, so the bytes up to the next multiple of PAGE still go
    through the page cache, and so does the unaligned tail of the file at ``close``.

    Under direct I/O a full block is queued for the writing threads and the next one fills at
    once: up to ``flights`` blocks (FLIGHTS) wait or are written, WRITERS at a time, each with
    ``pwrite`` at its own offset, so the disk always has the next block (a block written only
    after the last one landed left the disk idle 40 % of the time: W3's summary.csv took 0.7 s
    by direct I/O, the disk alone 0.45 s). Two writes at once need a file that is not extended
    by them (ext4 writes a direct write past the end alone, under the file's lock): while
    direct I/O writes a file with a reserve, its size is the reserve's, and ``close`` sets it to
    the bytes written. The first ``OSError`` of a block (no space left, ...) is raised by a
    later ``write`` or by ``close`` to the caller, which reports it (exit 4).

    ``direct_after``: the window (0: direct I/O from the start); ``slow``: the threshold;
    ``reserve_from``: RESERVE_FROM; ``flights``: FLIGHTS (the tables of ``record.format: npy``
    write one file per column at once, one block in flight each)."""

    def __init__(self, path, direct_after: int | None = None, stage: int | None = None, slow: float | None = None, reserve_from: int | None = None, flights: int | None = None):
        self.name = str(path)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)
        self._reserve_from = RESERVE_FROM if reserve_from is None else int(reserve_from)  # None: no more reserving
        self._reserved = 0  # the file's first bytes whose space is reserved (or written)
        self.stage = int(stage or STAGE)
        self._window = DIRECT_AFTER if direct_after is None else int(direct_after)  # bytes of a timed window
        self._slow = SLOW_BPS if slow is None else float(slow)
        self._allowed = bool(O_DIRECT) and os.environ.get(DIRECT_IO_ENV, "").strip() != "0"
        self._staging = self._allowed and self._window == 0  # blocks staged for direct I/O (else straight to the page cache)
        self._timed = [0, 0.0]  # bytes and seconds of the window's writes through the page cache
        self.direct = False  # direct I/O in use
        self._maps: list = []
        self._views: list = []
        self._buf = None  # the stage being filled (made when staging starts)
        self._n = 0  # bytes staged
        self._done = 0  # bytes in the file or in flight
        self._pool = None  # the writing threads (direct I/O)
        self._flights: list = []  # (future, stage, bytes, offset) of the blocks queued or being written, oldest first
        self._depth = max(1, int(FLIGHTS if flights is None else flights))
        self._size = 0  # the file's size as set here (the reserve's, under direct I/O), else 0

    def _add_stage(self) -> None:
        import mmap

        self._maps.append(mmap.mmap(-1, self.stage))
        self._views.append(memoryview(self._maps[-1]))

    def _reserve(self, end: int) -> None:
        """Reserve the disk space up to ``end`` bytes and beyond (see the class docstring)."""
        if self._reserve_from is None or end < self._reserve_from:
            return
        if not _FALLOCATE:
            _FALLOCATE.append(_fallocate_function())
        fn = _FALLOCATE[0]
        start = max(self._reserved, self._done)  # (the bytes written have their space)
        stop = min(2 * end, end + RESERVE_MAX)
        if fn is None or fn(self.fd, FALLOC_FL_KEEP_SIZE, start, stop - start) != 0:
            self._reserve_from = None  # not here (or no space for it): written without
            return
        self._reserved = stop

    def _presize(self) -> None:
        """Under direct I/O with several writers: the file's size up to its reserve (see above)."""
        if self._depth > 1 and self._reserved > max(self._size, self._done):
            os.ftruncate(self.fd, self._reserved)
            self._size = self._reserved

    def write(self, data) -> int:
        mv = memoryview(data).cast("B")
        size = len(mv)
        if self._done + self._n + size > self._reserved:
            self._reserve(self._done + self._n + size)
        if not self._staging:  # through the page cache as it comes (no copy), timed
            t = time.perf_counter()
            self._write_all(mv, size)
            self._done += size
            if self._allowed:
                self._timed[0] += size
                self._timed[1] += time.perf_counter() - t
                if self._timed[0] >= self._window:
                    size_w, took = self._timed
                    self._timed = [0, 0.0]
                    self._staging = size_w <= took * self._slow  # a slow window: the rest by direct I/O
            return size
        k = 0
        if not self.direct and self._n == 0 and self._done % PAGE:  # first an aligned offset, through the page cache
            k = min(size, -self._done % PAGE)
            self._write_all(mv[:k], k)
            self._done += k
        if self._buf is None:
            self._add_stage()
            self._buf = self._views[0]
        while k < size:
            take = min(size - k, self.stage - self._n)
            self._buf[self._n : self._n + take] = mv[k : k + take]
            self._n += take
            k += take
            if self._n == self.stage:
                self._flush(self.stage)
        return size

    def writelines(self, lines) -> None:
        self.write(b"".join(lines))  # (one copy in C: ``plastic merge`` writes lines by the thousand)

    def tell(self) -> int:
        return self._done + self._n

    def _flush(self, n: int) -> None:
        """Write the first ``n`` staged bytes (all of them, or an aligned part at ``close``): a
        full block under direct I/O on the writing threads, anything else here (after the blocks
        in flight: the file's position is then the end of the bytes given)."""
        block = n == self.stage and self._n == n
        if not (self.direct and block):
            self._land()
        if not self.direct and self._staging and self._allowed and self._done % PAGE == 0:
            self._set_direct(True)
        if self.direct and block:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(min(WRITERS, self._depth), thread_name_prefix="plastic-write")
            self._presize()
            self._flights.append((self._pool.submit(_write_at, self.fd, self._buf, n, self._done), self._buf, n, self._done))
            self._done += n
            self._n = 0
            if len(self._views) <= self._depth:  # a stage of its own for the next block
                self._add_stage()
                self._buf = self._views[-1]
            else:  # the oldest block's, once it is written
                self._buf = self._settle(self._flights.pop(0))
            return
        self._write_all(self._buf, n)
        self._done += n
        rest = self._n - n
        if rest:
            self._buf[:rest] = self._buf[n : self._n]
        self._n = rest
        if not self._allowed and not rest:  # no direct I/O after all: straight to the page cache again
            self._staging = False

    def _settle(self, flight):
        """Wait for a block in flight and return its stage. Its error is raised here, except a
        direct write refused (``EINVAL``): direct I/O is then turned off and the block written
        again at its offset through the page cache. (Only this thread changes the file's mode:
        the writing threads only write.)"""
        future, buf, n, at = flight
        try:
            future.result()
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            self._refused()
            _write_at(self.fd, buf, n, at)
        return buf

    def _write_all(self, buf, n: int) -> None:
        m = 0
        while m < n:
            try:
                m += os.write(self.fd, buf[m:n])
            except OSError as exc:
                if not (self.direct and exc.errno == errno.EINVAL):
                    raise
                self._refused()

    def _refused(self) -> None:
        """A direct write refused (alignment, file system): the page cache from now on."""
        self._allowed = False
        if self.direct:
            self._set_direct(False)

    def _land(self) -> None:
        """Wait for the blocks in flight, in order; the first error is raised here. Then the
        file's position is the end of the bytes given (the blocks went by offset)."""
        landed = bool(self._flights)
        while self._flights:
            self._settle(self._flights.pop(0))
        if landed:
            os.lseek(self.fd, self._done, os.SEEK_SET)

    def _set_direct(self, on: bool) -> None:
        try:
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            fcntl.fcntl(self.fd, fcntl.F_SETFL, (flags | O_DIRECT) if on else (flags & ~O_DIRECT))
            self.direct = on
        except (OSError, AttributeError):  # no direct I/O here: the page cache
            self.direct = False
            self._allowed = False
            if not on:
                raise

    def close(self, discard: bool = False) -> None:
        """Write what is staged (unless ``discard``: a writer failed) and close the file."""
        if self.fd < 0:
            return
        try:
            try:
                self._land()
            except OSError:
                if not discard:
                    raise
            if self._n and not discard:
                aligned = self._n - self._n % PAGE
                if aligned and self._staging:
                    self._flush(aligned)  # (direct I/O, where it is on)
                self._staging = False  # the tail: through the page cache
                if self.direct:
                    self._set_direct(False)
                if self._n:
                    self._flush(self._n)
            if self._reserved > self._done and not discard:
                # the reserve beyond the end given back, by a real shrink: a truncate to the size
                # a file already has is skipped by some file systems (btrfs), with the reserve
                os.ftruncate(self.fd, self._done + 1)
                os.ftruncate(self.fd, self._done)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)  # (nothing in flight by now; a failed wait above)
                self._pool = None
            fd, self.fd = self.fd, -1
            try:
                for view, m in zip(self._views, self._maps):
                    view.release()
                    m.close()
            except BufferError:  # a view of it still referenced (a traceback's frame): freed with that
                pass
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        self.close(discard=kind is not None)


class ColumnWriter:
    """One table of ``record.format: npy`` (:mod:`plastictool.results.columnar`): the folder, its
    ``columns.txt`` and one ``.npy`` file per column, written a block of rows at a time.

    ``begin(columns, rows)`` with ``columns`` a list of ``(name, descr)`` (NumPy type strings
    such as ``<f8``) writes the names and every file's header; ``write(k, data)`` appends the
    bytes of ``data`` (a C-contiguous NumPy array of column ``k``'s type, or bytes) to column
    ``k``; ``close()`` checks that every column got exactly ``rows`` values."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._files: list = []
        self._expect: list[int] = []

    def begin(self, columns, rows: int) -> None:
        from .columnar import COLUMNS_FILE, column_file, itemsize, npy_header

        self.folder.mkdir()
        names = [n for n, _ in columns]
        files = [column_file(n) for n in names]
        if len(set(files)) != len(files):
            raise ValueError(f"columns with the same file name: {names}")
        with open(self.folder / COLUMNS_FILE, "w", encoding="ascii", newline="\n") as fh:
            fh.write("".join(n + "\n" for n in names))
        for (name, descr), file in zip(columns, files):
            fh = BulkFile(self.folder / file, flights=1)  # (seven files at once in W4N: their stages add up)
            self._files.append(fh)
            head = npy_header(descr, rows)
            fh.write(head)
            self._expect.append(len(head) + rows * itemsize(descr))

    def write(self, k: int, data) -> None:
        self._files[k].write(data)

    def close(self) -> None:
        files, self._files = self._files, []
        sizes = []
        for fh in files:
            sizes.append(fh.tell())
            fh.close()
        if sizes != self._expect[: len(sizes)]:
            raise RuntimeError(f"{self.folder}: columns of {sizes} bytes, expected {self._expect}")

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if kind is None:
            self.close()
        else:
            for fh in self._files:
                fh.close()
            self._files = []


def write_folder(out: Path, writers, force: bool, file: str | None = None) -> Path:
    """Write ``writers`` (``(name, mode, fill)``: ``fill(fh)`` writes the file opened with
    ``mode``, ``"w"`` for ASCII text with ``\\n`` line ends or ``"wb"``; ``"columns"``: the
    folder ``name`` of a binary table, ``fill(ColumnWriter)``), in order, into a
    temporary sibling folder, then put it at ``out`` (see the module docstring); an existing
    ``out`` is replaced only with ``force`` and only where :func:`check_target` allows. A crash
    or Ctrl-C leaves neither a half-written folder nor (after the next write there) the
    temporary one. ``OSError`` -> :class:`OutputError` (exit 4)."""
    out = Path(out)
    check_target(out, force, file)
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except NotADirectoryError:
        raise _not_a_folder(out) from None
    except FileExistsError:  # a file at parent (or a dangling link)
        raise _not_a_folder(out) from None
    except OSError as exc:
        raise environment_error(exc, exc.filename or parent, "create the folder") from None
    clean_stale(parent)
    tmp = _make_temp(parent, out.name, "tmp")
    lock = _lock(tmp)
    placed = False
    try:
        name = MARKER
        try:
            (tmp / MARKER).touch()
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the result folder gets the usual mode
            for name, mode, fill in writers:
                if mode == "columns":  # a table of record.format npy: a folder of .npy files
                    with ColumnWriter(tmp / name) as cw:
                        fill(cw)
                elif "b" in mode:  # the tables: big ones bypass the page cache (BulkFile)
                    with BulkFile(tmp / name) as fh:
                        fill(fh)
                else:
                    with open(tmp / name, mode, encoding="ascii", newline="\n") as fh:
                        fill(fh)
            name = MARKER
            os.unlink(tmp / MARKER)
        except OSError as exc:
            if exc.filename and not str(exc.filename).startswith(str(tmp)):  # an input a writer reads (merge)
                raise environment_error(exc, exc.filename, "read") from None
            raise environment_error(exc, out / name, "write") from None
        st = _lstat(out)
        try:
            if st is not None:
                if not force:
                    raise ProtocolError(f"output folder {str(out)!r} exists; use --force to replace it", "", file, None)
                _check_replaceable(out, st, file)  # again: it may have changed during the run
                _replace(tmp, out)
            else:
                try:
                    os.rename(tmp, out)
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                        raise ProtocolError(f"output folder {str(out)!r} appeared during the run; use --force to replace it, or --out", "", file, None) from None
                    raise
        except OSError as exc:
            raise environment_error(exc, out, "put the result at") from None
        placed = True
    except BaseException:
        if not placed:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _unlock(lock)
    return out


def write_file(path: Path, fill, binary: bool = True) -> Path:
    """Write one file atomically (a temporary sibling, then ``os.replace``): ``fill(fh)``
    writes it. ``OSError`` -> :class:`OutputError` (exit 4)."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:NAME_CHARS]}.tmp-", dir=path.parent if str(path.parent) else ".")
    except NotADirectoryError:
        raise _not_a_folder(path, "the file") from None
    except OSError as exc:
        raise environment_error(exc, path, "write") from None
    try:
        try:
            with os.fdopen(fd, "wb" if binary else "w") as fh:
                fill(fh)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except OSError as exc:
            raise environment_error(exc, path, "write") from None
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
