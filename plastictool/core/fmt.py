"""Fast, exact ``%.12g`` formatting of floats into byte buffers, for the CSV writer.

Python's ``"%.12g" % x`` costs about a microsecond a number; a summary of 10 million synapses
has 40 million. ``g12`` formats in a kernel: the 12 significant digits are the integer
nearest to ``|x| * 10**(11 - e)`` (``e`` the decimal exponent). The scaling is one correctly
rounded multiplication by an exact power of ten (error at most half a unit in the last place,
6.1e-5 for values below 1e12), so the digits are exact unless the scaled value lies within
2e-4 of a rounding tie, or the power of ten is not exact (|e - 11| > 22). For
those rare numbers the kernel writes nothing and reports them, and the caller formats them
with Python's ``%``, so the output is always byte-identical to ``"%.12g" % x``.
"""

from __future__ import annotations

import numpy as np

from .jit import jit

PREC = 12
_POW10 = np.array([10.0**k for k in range(23)])


@jit
def _digits(buf, pos, m, n):
    """Write the n decimal digits of integer m (zero padded) at buf[pos:pos+n]."""
    for k in range(n - 1, -1, -1):
        buf[pos + k] = 48 + m % 10
        m //= 10
    return pos + n


@jit
def g12(buf, pos, x):
    """Write ``%.12g`` of x at buf[pos:]; return the new position, or -1 if x needs Python."""
    if x != x:
        buf[pos] = 110  # nan
        buf[pos + 1] = 97
        buf[pos + 2] = 110
        return pos + 3
    if x == 0.0:
        if np.signbit(x):
            buf[pos] = 45
            pos += 1
        buf[pos] = 48
        return pos + 1
    ax = abs(x)
    if ax == np.inf:
        if x < 0:
            buf[pos] = 45
            pos += 1
        buf[pos] = 105
        buf[pos + 1] = 110
        buf[pos + 2] = 102
        return pos + 3
    e = int(np.floor(np.log10(ax)))
    k = PREC - 1 - e
    if k > 22 or k < -22:
        return -1
    scaled = ax * _POW10[k] if k >= 0 else ax / _POW10[-k]
    if scaled < 1e11:  # log10 was one too high
        e -= 1
        k += 1
        if k > 22:
            return -1
        scaled = ax * _POW10[k] if k >= 0 else ax / _POW10[-k]
    elif scaled >= 1e12:
        e += 1
        k -= 1
        if k < -22:
            return -1
        scaled = ax * _POW10[k] if k >= 0 else ax / _POW10[-k]
    fl = np.floor(scaled)
    frac = scaled - fl
    if abs(frac - 0.5) < 2e-4:  # the product is within 0.5 ulp (6.1e-5 here) of the true value
        return -1
    m = np.int64(fl) + (1 if frac > 0.5 else 0)
    if m >= 10**PREC:  # rounded up to the next power of ten
        m //= 10
        e += 1
    if x < 0:
        buf[pos] = 45
        pos += 1
    if e < -4 or e >= PREC:  # scientific: d.ddddde+XX, trailing zeros stripped
        lead = m // 10 ** (PREC - 1)
        rest = m % 10 ** (PREC - 1)
        nrest = PREC - 1
        while nrest > 0 and rest % 10 == 0:
            rest //= 10
            nrest -= 1
        buf[pos] = 48 + lead
        pos += 1
        if nrest > 0:
            buf[pos] = 46
            pos = _digits(buf, pos + 1, rest, nrest)
        buf[pos] = 101
        buf[pos + 1] = 45 if e < 0 else 43
        ae = abs(e)
        pos = _digits(buf, pos + 2, ae, 3 if ae >= 100 else 2)
        return pos
    # fixed notation: e + 1 integer digits (at least "0"), PREC - 1 - e decimals, zeros stripped
    nfrac = PREC - 1 - e
    if nfrac <= 0:
        return _digits(buf, pos, m, PREC) if e == PREC - 1 else _digits(buf, pos, m, e + 1)
    ip = m // 10**nfrac if nfrac <= PREC else 0
    fp = m % 10**nfrac if nfrac <= PREC else m
    while nfrac > 0 and fp % 10 == 0:
        fp //= 10
        nfrac -= 1
    if e >= 0:
        pos = _digits(buf, pos, ip, e + 1)
    else:
        buf[pos] = 48
        pos += 1
    if nfrac > 0:
        buf[pos] = 46
        pos += 1
        if e < 0:  # leading zeros after the point
            lead0 = -e - 1
            for _ in range(lead0):
                buf[pos] = 48
                pos += 1
            pos = _digits(buf, pos, fp, nfrac - lead0)
        else:
            pos = _digits(buf, pos, fp, nfrac)
    return pos


FLOAT, INT, LABEL, FLOAT_OR_EMPTY = 0, 1, 2, 3


@jit
def format_table(values, kinds, labels, buf, bad):
    """Rows of ``values`` as CSV lines into ``buf``; returns (bytes written, cells for Python).

    Column kinds: FLOAT (``%.12g``), INT, LABEL (the value indexes ``labels``, a 2D uint8 array
    of zero-padded ASCII strings), FLOAT_OR_EMPTY (empty when NaN). A cell that needs Python is
    written as ``?`` and its (row, column, byte position) listed in ``bad``.
    """
    n, k = values.shape
    pos = 0
    nb = 0
    for r in range(n):
        for c in range(k):
            if c:
                buf[pos] = 44
                pos += 1
            x = values[r, c]
            kind = kinds[c]
            if kind == INT:
                v = np.int64(x)
                if v < 0:
                    buf[pos] = 45
                    pos += 1
                    v = -v
                nd = 1
                t = v
                while t >= 10:
                    t //= 10
                    nd += 1
                pos = _digits(buf, pos, v, nd)
            elif kind == LABEL:
                lab = labels[np.int64(x)]
                for q in range(lab.shape[0]):
                    if lab[q] == 0:
                        break
                    buf[pos] = lab[q]
                    pos += 1
            elif kind == FLOAT_OR_EMPTY and x != x:
                pass
            else:
                q = g12(buf, pos, x)
                if q < 0:
                    buf[pos] = 63  # '?'
                    bad[nb, 0] = r
                    bad[nb, 1] = c
                    bad[nb, 2] = pos
                    nb += 1
                    pos += 1
                else:
                    pos = q
        buf[pos] = 10
        pos += 1
    return pos, nb


def format_csv(values: np.ndarray, kinds, labels=()) -> str:
    """``values`` (n x k) as CSV text, one line per row, numbers exactly as ``"%.12g" % x``."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    n, k = values.shape
    if n == 0:
        return ""
    kinds = np.asarray(kinds, dtype=np.uint8)
    width = max([len(x) for x in labels] + [1])
    lab = np.zeros((max(1, len(labels)), width), dtype=np.uint8)
    for i, x in enumerate(labels):
        lab[i, : len(x)] = np.frombuffer(x.encode("ascii"), dtype=np.uint8)
    buf = np.empty(n * k * (26 + width) + n, dtype=np.uint8)
    bad = np.empty((n * k, 3), dtype=np.int64)
    length, nb = format_table(values, kinds, lab, buf, bad)
    text = buf[:length].tobytes().decode("ascii")
    if not nb:
        return text
    parts, prev = [], 0
    for r, c, pos in bad[:nb]:  # the '?' placeholders, in order
        parts += [text[prev:pos], "%.12g" % values[r, c]]
        prev = pos + 1
    parts.append(text[prev:])
    return "".join(parts)


def format_rows(values: np.ndarray, is_int) -> list[str]:
    """Rows as CSV lines without newlines (FLOAT or INT columns)."""
    return format_csv(values, [INT if i else FLOAT for i in is_int]).split("\n")[:-1]
