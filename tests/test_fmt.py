"""The kernel float formatter writes exactly what Python's "%.12g" writes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plastictool.core.fmt import format_rows


def python_rows(values, is_int):
    return [",".join(("%d" % x) if i else ("%.12g" % x) for x, i in zip(row, is_int)) for row in values]


def test_awkward_numbers():
    xs = [0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1e-5, 1e-4, 9.99999999999e-5, 123456789012.0, 999999999999.5, 1e12, 1e100,
          -2.5e-300, 5e-324, 1.7976931348623157e308, np.nan, np.inf, -np.inf, 0.830858754247891, 66.1717508496,
          1 / 3, 2 / 3, 1e22, 1e-22, 123.456, 0.000123456789012345, 99999.9999999995]
    v = np.array(xs)[:, None]
    assert format_rows(v, [0]) == python_rows(v, [0])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=40))
def test_random_floats(xs):
    v = np.array(xs, dtype=float).reshape(-1, 1)
    assert format_rows(v, [0]) == python_rows(v, [0])


def test_many_uniform_and_log_spread_numbers_and_int_columns():
    rng = np.random.default_rng(0)
    n = 20000
    v = np.column_stack([np.arange(n), rng.integers(-5, 5, n), rng.uniform(-1, 1, n),
                         10.0 ** rng.uniform(-30, 30, n) * rng.choice([-1, 1], n), rng.normal(0, 1e-3, n)])
    is_int = [1, 1, 0, 0, 0]
    assert format_rows(v, is_int) == python_rows(v, is_int)


def test_labels_with_commas_and_python_fallback_cells():
    from plastictool.core.fmt import FLOAT, LABEL, format_csv

    hard = 999999999999.5  # a rounding tie: formatted by Python
    v = np.array([[0, hard, 1, 0.25], [1, 0.5, 0, hard]])
    got = format_csv(v, [LABEL, FLOAT, LABEL, FLOAT], ["10,0", "a,b,c"])
    assert got == f"10,0,{'%.12g' % hard},a,b,c,0.25\na,b,c,0.5,10,0,{'%.12g' % hard}\n"
