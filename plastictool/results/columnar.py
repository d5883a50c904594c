"""The binary table format of ``record.format: npy``: one folder per table, one ``.npy`` per column.

A run with ``record.format: npy`` writes, instead of ``summary.csv``, ``traces.csv``, ...::

    summary/columns.txt      the column names in file order, one per line (ASCII, "\\n" ends)
    summary/pre.npy          one NumPy file (format version 1.0) per column, one value per row
    summary/post.npy
    ...
    traces/columns.txt, traces/t_ms.npy, traces/w[0,0].npy, ...
    spikes/..., responses/..., structure/...   (where the CSV run writes that file)
    run.json

The columns are those of the CSV file, with the same names and in the same order. A column's
file is its name with ``.npy`` appended, where the characters ``/ \\ : * ? " < > |`` and control
characters of the name become ``_`` (the names plastic writes have none of them). Types:

* integers (``pre``, ``post``, ``index``, ``condition``): ``int32`` (``<i4``; every count is
  at most 1e9); ``present_initial``, ``present_final``: ``int8``;
* weights ``w_initial``, ``w_final``: the weight matrix's own type, ``float32`` with
  ``synapses.dtype: float32``, else ``float64``: the simulation's numbers exactly;
* every other number: ``float64`` (``<f8``), the numbers the CSV file rounds to 12 significant
  digits; a cell the CSV file leaves empty (``dw_percent`` where ``w_initial`` is 0, the
  weights of absent synapses with ``synapses.structure``) is NaN;
* text (``outcome``, ``population``, ``event``, sweep values that are names): fixed-width ASCII
  bytes, ``|S<n>`` with ``n`` the longest possible value (``outcome`` ``|S4``: ``none``, ``LTP``,
  ``LTD``; ``|S10`` with ``synapses.structure``).

Plain NumPy reads it, without plastic::

    import numpy as np
    names = open("outputs/run/summary/columns.txt").read().split("\\n")[:-1]
    summary = {n: np.load(f"outputs/run/summary/{n}.npy", mmap_mode="r") for n in names}
    summary["outcome"].astype(str)          # text columns as str

The files are written straight from the arrays, a block of rows at a time (headers first: the
row count is known), with fixed headers and no timestamps: the same protocol, seed and versions
give byte-identical files, as with CSV. This module is the layout (plain standard library for
the headers; NumPy only to read columns); :mod:`plastictool.results.folders` writes the files.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

FORMATS = ("csv", "npy")
COLUMNS_FILE = "columns.txt"
MAGIC = b"\x93NUMPY\x01\x00"  # format version 1.0
ALIGN = 64  # NumPy pads headers so that the data start at a multiple of 64 bytes
GROWTH_DIGITS = 21  # and leaves room for a row count of this many digits (numpy.lib.format)
TABLES = ("summary", "traces", "spikes", "responses", "structure")
_BAD = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')


def column_file(name: str) -> str:
    """The file name of the column ``name``: ``<name>.npy``, unsafe characters as ``_``."""
    return _BAD.sub("_", name) + ".npy"


def itemsize(descr: str) -> int:
    """Bytes per value of a NumPy type string such as ``<f8``, ``<i4``, ``|S4`` (-1 when it has
    no size)."""
    return int(descr[2:]) if descr[2:].isdigit() else -1


def npy_header(descr: str, rows: int) -> bytes:
    """The header of a 1-D ``.npy`` file of ``rows`` values of type ``descr``: byte for byte
    what ``numpy.lib.format`` writes (version 1.0)."""
    text = "{'descr': '%s', 'fortran_order': False, 'shape': (%d,), }" % (descr, rows)
    text += " " * max(0, GROWTH_DIGITS - len(str(rows)))  # room to grow the shape in place, as NumPy leaves
    pad = ALIGN - (len(MAGIC) + 2 + len(text) + 1) % ALIGN
    text += " " * (pad % ALIGN) + "\n"
    n = len(text)
    return MAGIC + bytes((n & 0xFF, n >> 8)) + text.encode("latin1")


def read_header(fh) -> tuple[str, int, int]:
    """(descr, rows, offset of the data) of an open 1-D ``.npy`` file (version 1.0 or 2.0)."""
    head = fh.read(len(MAGIC))
    if len(head) != len(MAGIC) or head[:6] != MAGIC[:6]:
        raise ValueError("not a NumPy .npy file")
    size_bytes = 2 if head[6] == 1 else 4
    n = int.from_bytes(fh.read(size_bytes), "little")
    doc = ast.literal_eval(fh.read(n).decode("latin1"))
    shape = doc.get("shape")
    if doc.get("fortran_order") or not isinstance(shape, tuple) or len(shape) != 1:
        raise ValueError("not a one-dimensional column")
    return str(doc["descr"]), int(shape[0]), len(MAGIC) + size_bytes + n


def table_dir(folder, stem: str) -> Path | None:
    """``folder/stem`` when it is a table of this format (it holds ``columns.txt``), else None."""
    p = Path(folder) / stem
    return p if (p / COLUMNS_FILE).is_file() else None


class DamagedFile(ValueError):
    """A file of a table folder that is not what plastic writes (garbled, truncated): ``path``
    names the file, ``why`` says plainly what is wrong with it."""

    def __init__(self, path, why: str):
        super().__init__(f"{path}: {why}")
        self.path, self.why = Path(path), why


def column_names(table: Path) -> list[str]:
    """The column names of a table folder, in file order."""
    path = Path(table) / COLUMNS_FILE
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        raise DamagedFile(path, "the list of column names is not ASCII text (the file is garbled)") from None
    if text and not text.endswith("\n"):
        raise DamagedFile(path, "truncated (no final line break)")
    return text.split("\n")[:-1] if text else []


def column_header(path) -> tuple[str, int, int]:
    """(descr, rows, offset of the data) of a column file, checked against what plastic writes: a
    readable 1-D header of a number or text type, and exactly the bytes that header announces.
    Raises :class:`DamagedFile` (naming the file) otherwise; OSError as it comes."""
    import numpy as np

    with open(path, "rb") as fh:
        try:
            descr, n, offset = read_header(fh)
        except OSError:
            raise
        except Exception as exc:  # garbled header text: SyntaxError, tokenize errors, ValueError, ...
            why = str(exc) if isinstance(exc, ValueError) and str(exc).startswith("not a") else "its header cannot be read"
            raise DamagedFile(path, f"{why} (the file is garbled)") from None
        size = os.fstat(fh.fileno()).st_size
    try:
        dtype = np.dtype(descr)
    except Exception:
        dtype = None
    if dtype is None or dtype.kind not in "biufS" or dtype.itemsize != itemsize(descr):
        raise DamagedFile(path, f"its header gives the type {descr!r}, which is no column type plastic writes (the file is garbled)")
    if n < 0 or size != offset + n * dtype.itemsize:
        raise DamagedFile(path, f"its header announces {n} values of {dtype.itemsize} bytes ({offset + n * dtype.itemsize} bytes in all), "
                                f"the file has {size} bytes (truncated or garbled)")
    return descr, n, offset


def rows(table: Path) -> int:
    """The number of rows of a table folder (from the first column's header; 0 without columns)."""
    names = column_names(table)
    if not names:
        return 0
    return column_header(Path(table) / column_file(names[0]))[1]


def load(table: Path, name: str, mmap: bool = True):
    """The column ``name`` of a table folder as a NumPy array (memory-mapped by default). A
    damaged file raises :class:`DamagedFile`, which names it."""
    import numpy as np

    path = Path(table) / column_file(name)
    column_header(path)
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except OSError:
        raise
    except Exception as exc:  # pragma: no cover - the header check above catches what we know of
        raise DamagedFile(path, f"NumPy cannot read it ({type(exc).__name__}: {exc})") from None


def load_all(table: Path) -> dict:
    """``{name: column}`` of a table folder, in file order (memory-mapped)."""
    return {n: load(table, n) for n in column_names(table)}


def result_format(folder) -> str:
    """``npy`` when the run folder holds a table of this format, else ``csv``."""
    return "npy" if any(table_dir(folder, s) is not None for s in TABLES) else "csv"
