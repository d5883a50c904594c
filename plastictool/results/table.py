"""``Table``: one result file (summary.csv, traces.csv, ...) as named NumPy columns.

The columns have the CSV file's names, in its order. A column may be given as an array or as
a function that makes it: it is then computed on first access and kept (a big run's summary
costs nothing until it is looked at; see :mod:`plastictool.results.result`).

Number columns are float64 (integer columns such as ``pre``, ``index``, ``condition``: int64);
text columns (``outcome``, ``population``, string sweep values) are NumPy string arrays. Two
tables are equal (``==``) when they have the same columns and write the same CSV bytes, that
is, when they agree at the precision of the files (12 significant digits, :mod:`plastictool.results.output`).

Plain NumPy: nothing here imports the engine or Numba until a table is written or compared.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np

SHOW_ROWS = 5  # rows shown by repr()


class Table:
    """Named NumPy columns with the names and order of a result CSV file.

    ``t.columns`` lists the names, ``t["w_final"]`` is a column (a NumPy array), ``len(t)`` the
    number of rows, ``t.to_pandas()`` a pandas DataFrame (when pandas is installed), ``t.write_csv(path)``
    the file :mod:`plastictool.results.output` writes. ``repr(t)`` shows the shape and the first rows.

    ``columns``: ``{name: array or function returning the array}`` in file order; ``rows``: the
    number of rows (needed only when a column is a function). ``empty_nan``: float columns
    whose NaN cells are written empty (``dw_percent``); other NaN are written ``nan``.
    """

    def __init__(self, columns: dict, rows: int | None = None, name: str = "", empty_nan: Iterable[str] = ()):
        self._cols: dict = dict(columns)
        self._done: dict = {}
        self.name = name
        self.empty_nan = tuple(c for c in empty_nan if c in self._cols)
        if rows is None:
            given = [len(np.asarray(c)) for c in self._cols.values() if not callable(c)]
            if len(given) < len(self._cols):
                raise ValueError("Table: give rows= when a column is a function")
            rows = given[0] if given else 0
        self._rows = int(rows)
        for k, c in self._cols.items():
            if not callable(c):
                self[k]  # checks the length now

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        """A Table pickles as its numbers (for multiprocessing, Dask, a notebook's pickle): every
        column computed or read now, as a plain array (a column of an npy folder is read from
        its memory map, so the copy holds no open file)."""
        return {"name": self.name, "empty_nan": self.empty_nan, "rows": self._rows,
                "columns": {k: np.asarray(self[k]).view(np.ndarray) for k in self._cols}}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["columns"], state["rows"], state["name"], state["empty_nan"])

    # ------------------------------------------------------------------ access
    @property
    def columns(self) -> list[str]:
        """The column names, in the order of the CSV file."""
        return list(self._cols)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return (self._rows, len(self._cols))

    def __len__(self) -> int:
        return self._rows

    def __contains__(self, name) -> bool:
        return name in self._cols

    def __iter__(self):
        return iter(self._cols)

    def __getitem__(self, name: str) -> np.ndarray:
        """The column ``name`` as a NumPy array (read-only; computed on first access)."""
        if name not in self._cols:
            raise KeyError(f"{name!r}: no such column; the columns are {', '.join(self._cols)}")
        got = self._done.get(name)
        if got is None:
            c = self._cols[name]
            got = np.asarray(c() if callable(c) else c)
            if got.ndim != 1 or len(got) != self._rows:
                raise ValueError(f"column {name!r}: expected {self._rows} values, got shape {got.shape}")
            if got.flags.writeable:  # a read-only view: the table's numbers stay those of the run
                got = got.view()
                got.flags.writeable = False
            self._done[name] = got
        return got

    def keys(self) -> list[str]:
        """The column names (as ``columns``)."""
        return self.columns

    def to_dict(self) -> dict[str, np.ndarray]:
        """``{name: column}`` for every column, in file order."""
        return {k: self[k] for k in self._cols}

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (same column names and order). Needs pandas,
        which plastic does not install: ``pip install pandas``."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("Table.to_pandas() needs pandas, which plastic does not install: pip install pandas") from None
        return pd.DataFrame({k: self[k] for k in self._cols}, columns=self.columns)

    # ------------------------------------------------------------------ writing and comparing
    def kinds(self) -> list[int]:
        """How each column is written: the cell kinds of :mod:`plastictool.core.fmt`
        (integers ``%d``, numbers ``%.12g``, NaN empty in ``empty_nan`` columns, text as it is)."""
        from ..core.fmt import FLOAT, FLOAT_OR_EMPTY, INT, LABEL

        kinds = []
        for k in self._cols:
            col = self[k]
            if col.dtype.kind in "iub":
                kinds.append(INT)
            elif col.dtype.kind == "f":
                kinds.append(FLOAT_OR_EMPTY if k in self.empty_nan else FLOAT)
            else:
                kinds.append(LABEL)
        return kinds

    def _chunks(self, chunk: int):
        """Tasks of :func:`plastictool.results.output._write_ordered` that format the rows, ``chunk`` at a time."""
        from ..core.fmt import LABEL
        from .output import _table_task

        kinds = self.kinds()
        names = self.columns
        labels: list[str] = []
        codes = {}
        for k, kind in zip(names, kinds):
            if kind == LABEL:
                col = self[k]
                uniq, inv = np.unique(col.astype(str), return_inverse=True)
                codes[k] = inv.astype(np.float64) + len(labels)
                labels += [str(u).replace("?", "_") for u in uniq]
        for a in range(0, self._rows, chunk):
            parts = [codes[k][a : a + chunk] if k in codes else self[k][a : a + chunk].astype(np.float64) for k in names]
            values = np.column_stack(parts) if parts else np.zeros((0, 0))
            yield _table_task(values, kinds, labels)

    def write_csv(self, fh_or_path) -> None:
        """Write the table as CSV, as :mod:`plastictool.results.output` writes the result files: the
        header, then every row with numbers as ``"%.12g"`` (text file or binary file, or a path)."""
        from .output import CHUNK, _write_ordered, _writer, csv_field

        if isinstance(fh_or_path, (str, bytes)) or hasattr(fh_or_path, "__fspath__"):
            with open(fh_or_path, "wb") as fh:
                return self.write_csv(fh)
        _writer(fh_or_path)((",".join(csv_field(c) for c in self.columns) + "\n").encode("ascii"))
        _write_ordered(fh_or_path, self._chunks(CHUNK), threaded=self._rows > CHUNK)

    def to_csv_bytes(self) -> bytes:
        """The CSV file as bytes (small tables; big ones: :meth:`write_csv`)."""
        import io

        buf = io.BytesIO()
        self.write_csv(buf)
        return buf.getvalue()

    def digest(self) -> str:
        """sha256 of the CSV bytes (computed a chunk at a time, in bounded memory)."""
        h = hashlib.sha256()

        class _Sink:
            write = h.update

        self.write_csv(_Sink())
        return h.hexdigest()

    def __eq__(self, other) -> bool:
        """Same columns and the same CSV bytes: equal at the files' precision (12 significant digits)."""
        if not isinstance(other, Table):
            return NotImplemented
        if self.columns != other.columns or len(self) != len(other):
            return False
        return self.digest() == other.digest()

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ display
    def _cell(self, k: str, i: int) -> str:
        x = self[k][i]
        if isinstance(x, (float, np.floating)):
            return "" if (x != x and k in self.empty_nan) else "%.6g" % x
        return str(x)

    def _preview(self) -> tuple[list[str], list[list[str]]]:
        n = min(SHOW_ROWS, self._rows)
        cols = self.columns[:12]
        return cols, [[self._cell(k, i) for k in cols] for i in range(n)]

    def __repr__(self) -> str:
        rows, ncols = self.shape
        title = f"Table {self.name + ' ' if self.name else ''}({rows} rows x {ncols} columns)"
        cols, body = self._preview()
        if not cols:
            return title
        widths = [max([len(c)] + [len(r[j]) for r in body]) for j, c in enumerate(cols)]
        lines = [title, "  ".join(c.rjust(w) for c, w in zip(cols, widths)) + ("  ..." if ncols > len(cols) else "")]
        lines += ["  ".join(x.rjust(w) for x, w in zip(r, widths)) for r in body]
        if rows > len(body):
            lines.append(f"... {rows - len(body)} more rows")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        rows, ncols = self.shape
        cols, body = self._preview()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols) + ("<th>...</th>" if ncols > len(cols) else "")
        trs = "".join("<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in r) + "</tr>" for r in body)
        more = f"<p>... {rows - len(body)} more rows</p>" if rows > len(body) else ""
        name = f"{html.escape(self.name)} " if self.name else ""
        return f"<p>Table {name}({rows} rows x {ncols} columns)</p><table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>{more}"

