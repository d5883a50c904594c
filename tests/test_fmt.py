"""The kernel float formatter writes exactly what Python's "%.12g" writes."""

from __future__ import annotations

import numpy as np
import pytest
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


def _kernel_g12(xs: np.ndarray) -> list[str]:
    from plastictool.core.fmt import FLOAT, format_csv_bytes

    return b"".join(format_csv_bytes(np.asarray(xs, dtype=np.float64).reshape(-1, 1), [FLOAT])[1]).decode("ascii").split("\n")[:-1]


def _assert_like_python(xs: np.ndarray):
    got = _kernel_g12(xs)
    want = ["%.12g" % x for x in np.asarray(xs, dtype=np.float64).tolist()]
    if got != want:
        bad = [(x, g, w) for x, g, w in zip(np.asarray(xs).tolist(), got, want) if g != w]
        raise AssertionError(f"{len(bad)} numbers differ from Python, e.g. {bad[:5]}")


def test_g12_matches_python_on_millions_of_doubles():
    """The kernel's %.12g against Python's on about 3 million doubles of every kind."""
    rng = np.random.default_rng(12)
    n = 400_000
    sign = rng.choice([-1.0, 1.0], n)
    with np.errstate(over="ignore", invalid="ignore"):
        cases = {
            "uniform": rng.uniform(-1, 1, n),
            "weights": rng.uniform(0, 0.0028, n),
            # every exponent, from subnormals to the largest doubles
            "log-spread": rng.uniform(1, 10, n) * 10.0 ** rng.integers(-323, 308, n).astype(float) * sign,
            "bit patterns": rng.integers(0, 2**63 - 1, n, dtype=np.int64).view(np.float64) * sign,
            "float32": rng.integers(0, 2**31 - 1, n, dtype=np.int32).view(np.float32).astype(np.float64) * sign,
            "float32 weights": rng.uniform(0, 0.0028, n).astype(np.float32).astype(np.float64),
            "integers": np.concatenate([rng.integers(-10**6, 10**6, n // 2), rng.integers(-(2**53), 2**53, n // 2)]).astype(float),
            # 12-digit values plus a half (exact ties for small exponents) and their neighbours
            "ties": (rng.integers(10**11, 10**12, n // 2) + 0.5) * 10.0 ** rng.integers(-25, 25, n // 2).astype(float),
            "near ties": np.nextafter((rng.integers(10**11, 10**12, n // 2) + 0.5) * 10.0 ** rng.integers(-25, 25, n // 2).astype(float), rng.choice([-np.inf, np.inf], n // 2)),
            "subnormals": rng.integers(1, 2**52, 20_000, dtype=np.int64).view(np.float64) * sign[:20_000],
        }
    cases["powers"] = np.array([v for k in range(-323, 309) for v in (10.0**k, np.nextafter(10.0**k, 0), np.nextafter(10.0**k, np.inf))] + [2.0**k for k in range(-1074, 1024)])
    cases["nines"] = np.array([float(d * "9" + "e%d" % k) for d in range(10, 17) for k in range(-300, 300, 7)])
    cases["special"] = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.5, 1e-5, 1e16])
    for xs in cases.values():
        _assert_like_python(xs)


def test_g12_kernel_for_one_number():
    from plastictool.core.fmt import g12

    buf = np.zeros(200, dtype=np.uint8)
    for x in (0.1, -0.0, 123456.789, 1e-250, np.nan, -np.inf):
        end = g12(buf, 3, x)
        assert buf[3:end].tobytes().decode() == "%.12g" % x
    for x in (2.0**-18, 5e-324, 1e-300):  # an exact tie, a subnormal, beyond the tables: Python's
        assert g12(buf, 3, x) == -1


def test_int_columns_over_the_whole_int64_range():
    v = np.array([0, 9, 10, 99, 100, 12345678, 99999999, 100000000, 2**53, -(2**53), -1, -10]).astype(float).reshape(-1, 1)
    assert format_rows(v, [1]) == ["%d" % x for x in v[:, 0]]


# ------------------------------------------------ the digit words, the point's place, the exponent
_MANTISSAS = [int("918273645546"[:d]) for d in range(1, 13)] + [
    100000000000, 100000010000, 100000000001, 999999999999, 123400005678, 120000000000, 100010001000, 999950000000]


def test_every_place_of_the_point_every_digit_count_and_every_exponent():
    """Numbers of 1 to 12 significant digits (trailing zeros in each 4-digit group) at every
    decimal exponent: the point at each place among the digits, the "0.000" leads, plain
    numbers of 8 to 12 digits before the point (written byte by byte), two- and three-digit
    exponents of both signs, and their neighbours one ulp away (carries to the next power of
    ten): the kernel's bytes are Python's."""
    xs = []
    for m in _MANTISSAS:
        for k in range(-330, 310):
            x = float(m) * 10.0 ** (k - len(str(m)) + 1) if -300 < k < 300 else float(f"{m}e{k - len(str(m)) + 1}")
            xs += [x, -x, np.nextafter(x, 0.0), np.nextafter(x, np.inf)]
    _assert_like_python(np.array(xs))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**13), st.integers(-40, 40), st.booleans()), min_size=1, max_size=30))
def test_decimal_numbers_at_random_exponents(cells):
    """Short and long decimal mantissas (up to 13 digits: rounding ties and carries such as
    999999999999.5) at exponents around the notation's boundaries, both signs."""
    xs = np.array([(-1.0 if neg else 1.0) * float(f"{m}e{k}") for m, k, neg in cells])
    _assert_like_python(xs)


def test_int_cells_around_the_four_digit_word():
    """Ints below 10,000 are written from one table word, others digit pair by pair."""
    v = np.concatenate([np.arange(-120, 10120), [99999, 100000, 123456789, -9999, -10000]]).astype(float).reshape(-1, 1)
    assert format_rows(v, [1]) == ["%d" % x for x in v[:, 0]]
    wide = np.column_stack([v[:, 0], v[::-1, 0], np.linspace(-1, 1, v.shape[0])])  # with a number between
    assert format_rows(wide, [1, 1, 0]) == python_rows(wide, [1, 1, 0])


@pytest.mark.parametrize("width", [1, 3, 7, 8, 9, 12, 30])
def test_label_cells_of_every_width(width):
    """Labels of up to 8 bytes are written as one word, longer ones byte by byte."""
    from plastictool.core.fmt import FLOAT, INT, LABEL, format_csv

    labels = ["x" * width, "ab"[: min(2, width)], "LTP"[: min(3, width)], "0,1"[: min(3, width)]]
    rng = np.random.default_rng(width)
    n = 500
    v = np.column_stack([rng.integers(0, 4, n), rng.normal(0, 10, n), rng.integers(0, 4, n), rng.integers(0, 20000, n)]).astype(float)
    want = "".join(f"{labels[int(a)]},{'%.12g' % b},{labels[int(c)]},{int(d)}\n" for a, b, c, d in v.tolist())
    assert format_csv(v, [LABEL, FLOAT, LABEL, INT], labels) == want
