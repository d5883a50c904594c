"""Result folders that appear complete or not at all (spec section 9).

Plain standard library (no NumPy): ``plastic merge`` writes folders without loading the engine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from .errors import ProtocolError


def check_target(out: Path, force: bool, file: str) -> None:
    if out.exists() and not force:
        raise ProtocolError(f"output folder {str(out)!r} exists; use --force to replace it, or --out", "", file, None)
    if out.exists() and not out.is_dir():
        raise ProtocolError(f"{str(out)!r} exists and is not a folder", "", file, None)


def write_folder(out: Path, writers, force: bool, file: str | None = None) -> Path:
    """Write ``writers`` (``(name, mode, fill)``: ``fill(fh)`` writes the file opened with
    ``mode``, ``"w"`` for ASCII text with ``\\n`` line ends or ``"wb"``), in order, into a
    temporary sibling folder, then rename it to ``out``; an existing ``out`` is replaced only
    with ``force``. A crash or Ctrl-C leaves neither a half-written folder nor the temporary one."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the result folder gets the usual mode
    try:
        for name, mode, fill in writers:
            if "b" in mode:
                with open(tmp / name, mode) as fh:
                    fill(fh)
            else:
                with open(tmp / name, mode, encoding="ascii", newline="\n") as fh:
                    fill(fh)
        if out.exists():
            if not force:
                raise ProtocolError(f"output folder {str(out)!r} exists; use --force to replace it", "", file, None)
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / out.name)
            os.rename(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
