"""Fast, exact ``%.12g`` formatting of floats into byte buffers, for the CSV writer.

Python's ``"%.12g" % x`` costs about a microsecond a number; a summary of 10 million synapses
has 40 million. The kernels here format in compiled code, byte-identical to Python:

- The 12 significant digits of ``|x|`` are the integer nearest to ``|x| * 10**(11 - e)``
  (``e`` the decimal exponent). The binary exponent (from the bits) gives ``e`` up to one,
  and one comparison settles it. Where ``10**(11 - e)`` is exact (``0 <= 11 - e <= 22``) the
  scaled value is one correctly rounded product, off by at most ``2**-14``: its rounding is
  certain unless its fraction is within 1e-4 of 1/2. Otherwise (or near 1/2) the power is
  taken as a double-double (``hi + lo``, 106 bits) with an exact product (Dekker's
  two-product without FMA: Numba does not contract ``a * b + c`` without ``fastmath``): the
  scaled value is then known to about 1e-15, and only values within 1e-9 of a rounding tie
  (exact ties such as ``2**-18`` included: Python rounds those half to even), or outside about
  ``1e-270 .. 1e270`` (subnormals included), are left: the kernel writes ``?`` and reports
  the cell, and the caller formats it with Python's ``%``. So the output is always
  byte-identical to ``"%.12g" % x``.
- The 12 digits are split into three groups of four, and each group is one 4-byte word of a
  table of the 10,000 groups' ASCII (``_D4``), written with one unaligned store (the ``store``
  intrinsic of ``core.jit``): digits 0-7 as one 8-byte word, 8-11 as one 4-byte word, then,
  where the point falls among the first 8 digits, the first word again with the point in it
  (the digits below the point kept, those above moved one byte on: shifts and masks, no loop).
  Points further right (8 or more digits before it) take a byte-by-byte path from a 200-byte
  table of digit pairs. Ints below 10,000 (summary.csv's post, mostly pre) are one table word
  too, labels of up to 8 bytes one 8-byte word, an exponent below 100 one 4-byte word
  (``e-05``). Trailing zeros are counted with a table of the groups. Arithmetic on digits and
  byte positions is unsigned: Numba checks every signed index for a negative value, and its
  signed ``//`` pays for Python's floor semantics. Bytes written past a cell's end are scratch
  that the next cell overwrites (buffers have ``SLACK`` bytes at their end). The tables hold
  the first digit in the lowest byte: the kernels assume a little-endian machine (as are all
  that Numba supports: x86-64, arm64, ppc64le).
- Branches: the summary's outcome (LTP/LTD in random order) is computed without one; branches
  whose direction a column's numbers mostly share (the ``0.000`` lead, the exponent) stay
  branches: measured, the branch-free forms (selects) lengthened the chain of byte positions
  from cell to cell and were slower.
- One kernel, ``_rows``, writes every table: rows of a numeric array (``format_table``) or the
  rows of ``summary.csv`` computed straight from slices of the flat initial and final weights
  (``format_summary``). It calls no kernel that takes an array: Numba does not inline those,
  and each such call costs two atomic reference-count updates.
"""

from __future__ import annotations

import numpy as np

from .jit import jit, store

PREC = 12
FLOAT, INT, LABEL, FLOAT_OR_EMPTY = 0, 1, 2, 3

_PAIRS = np.frombuffer("".join("%02d" % i for i in range(100)).encode("ascii"), dtype=np.uint8).copy()
_POW10U = np.array([10**k for k in range(20)], dtype=np.uint64)
_U1, _U2, _U10, _U100, _U10K, _U100M = (np.uint64(v) for v in (1, 2, 10, 100, 10000, 100000000))
_M11, _M12 = np.uint64(10**11), np.uint64(10**12)
_U = tuple(np.uint64(v) for v in range(21))  # small uint64 constants: _U[k] is k
_U1K, _U32 = np.uint64(1000), np.uint64(32)
# "%04d" of 0 .. 9999 as uint32 words (first digit in the lowest byte: the kernels assume a
# little-endian machine, as every platform Numba supports), written with one unaligned store
_D4 = np.array([int.from_bytes(b"%04d" % i, "little") for i in range(10000)], dtype=np.uint32)
_LEAD = np.uint64(int.from_bytes(b"0.000000", "little"))
_DOT, _ONES = np.uint64(46), np.uint64(2**64 - 1)
_EXP_NEG, _EXP_POS, _HI2 = np.uint32(101 | 45 << 8), np.uint32(101 | 43 << 8), np.uint32(0xFFFF0000)  # "e-", "e+", digits 3-4
_I4 = np.arange(10000)
_TZ4 = ((_I4 % 10 == 0) * 1 + (_I4 % 100 == 0) + (_I4 % 1000 == 0) + (_I4 == 0)).astype(np.uint8)  # trailing zeros of 4 digits
SLACK = 64  # bytes a kernel may write past the end of its output

# 10**k for k in [_KMIN, _KMAX] as a double-double (hi + lo); hi also split in two 26-bit halves
_KMIN, _KMAX = -300, 300
_SPLIT = 134217729.0  # 2**27 + 1 (Veltkamp)


def _tables():
    hi, lo, sh, sl = [], [], [], []
    for k in range(_KMIN, _KMAX + 1):
        p = 10 ** abs(k)
        if k >= 0:
            h = float(p)  # int -> float and int / int are correctly rounded
            low = float(p - int(h))
        else:
            h = 1 / p
            a, b = h.as_integer_ratio()
            low = (b - a * p) / (b * p)
        c = _SPLIT * h
        s = c - (c - h)
        hi.append(h)
        lo.append(low)
        sh.append(s)
        sl.append(h - s)
    return tuple(np.array(v) for v in (hi, lo, sh, sl))


_P10_HI, _P10_LO, _P10_SH, _P10_SL = _tables()
_TIE = 1e-9  # margin kept from a rounding tie; the scaled value is known to about 1e-15
_TIE_FAST = 1e-4  # the same with one rounded product (error at most 2**-14 = 6.1e-5)
_POW10 = np.array([float(10**k) for k in range(23)])  # exact
_BE_MAX = 895  # |binary exponent| beyond which (|x| outside ~1e-270 .. 1e270) Python formats

_BLOCK = 1024  # cells per block of rows (the kernel's scratch)
_NAN, _ZERO, _INF, _PYTHON, _SLOW = -1, -2, -3, 0, -4  # ``nd`` of a number that is not digits


@jit
def _rows(values, kinds, labels, w0, w1, start, n_post, thr, buf, badpos, badval):
    """CSV lines into ``buf``; returns (bytes written, cells for Python).

    Table mode (``w0`` empty): the rows of ``values`` (n x k float64). Summary mode: one row per
    element of ``w0`` (see ``format_summary``), ``values`` unused; the row is [3 (the prefix
    label; only when ``kinds`` has 8 columns), pre, post, w_initial, w_final, dw, dw_percent,
    outcome code (0 none, 1 LTP, 2 LTD)]. Column kinds: FLOAT (``%.12g``), INT, LABEL (the value
    indexes ``labels``, a 2D uint8 array of zero-padded ASCII strings), FLOAT_OR_EMPTY (empty
    when NaN). A cell that needs Python is written as ``?``, its byte position in ``badpos`` and
    its value in ``badval``. Up to ``SLACK`` bytes past the end of the output are overwritten.

    Rows go in blocks: first the cells' values and their digits (m, e: the number is
    ``m * 10**(e - 11)``, 10**11 <= m < 10**12, with ``nd`` significant digits), cell by cell
    independently (the processor overlaps them), then the bytes. Writing is a chain from cell
    to cell (each starts where the last ended); with the digits computed before, each link is
    short.

    Byte positions are unsigned (``_U[k]`` is ``k`` as uint64): Numba checks every signed index
    for a negative value. The sign and the point are placed without branches (bytes past a
    cell's end are scratch that the next cell overwrites); the ``0.000`` lead, the exponent and
    the digits' place by their class take branches, which a column's numbers mostly agree on.
    (Each choice here was measured: about 45 ns a summary row of benchmark W3 on one core,
    from 470; 82 with digits written two at a time, the outcome by branches and the slow
    path's scan in every block. Tried and not faster: the exponent and the point's word stored
    unconditionally (selects on the position chain), the digit words computed in the
    vectorised loop (gathers), the summary's numbers column by column for a vectorised value
    loop, 32-bit arithmetic for the lower 8 digits, the ``0.000`` lead stored only where
    there is one.)
    """
    k = kinds.shape[0]
    summary = w0.shape[0] > 0
    n = w0.shape[0] if summary else values.shape[0]
    width = labels.shape[1]
    lablen = np.zeros(labels.shape[0], dtype=np.uint64)
    lab8 = np.zeros(labels.shape[0], dtype=np.uint64)  # labels of up to 8 bytes as one word
    for q in range(labels.shape[0]):
        while lablen[q] < width and labels[q, lablen[q]] != 0:
            lablen[q] += _U[1]
        for b in range(min(width, 8)):
            lab8[q] |= np.uint64(labels[q, b]) << np.uint64(8 * b)
    rows = max(1, _BLOCK // k)
    vals = np.zeros(rows * k)
    fm = np.zeros(rows * k, dtype=np.uint64)
    fe = np.zeros(rows * k, dtype=np.int64)
    fnd = np.zeros(rows * k, dtype=np.int64)
    xs = np.zeros(rows * k)
    off = k - 7  # summary: 1 with the prefix column
    i = start // n_post if summary else 0
    j = start - i * n_post if summary else 0
    pos = _U[0]
    nb = 0
    for r0 in range(0, n, rows):
        nr = min(rows, n - r0)
        nx = 0  # numbers in the block
        # pass 1: the values, and the digits of the numbers
        for rb in range(nr):
            cb = rb * k
            r = r0 + rb
            if summary:
                x0 = np.float64(w0[r])
                x1 = np.float64(w1[r])
                dw = x1 - x0
                pct = 100.0 * dw / abs(x0) if x0 != 0 else np.nan
                # without branches: LTP and LTD come in random order
                code = np.float64(pct > thr) + 2.0 * np.float64(pct < -thr)
                if pct != pct:  # dw_percent empty: by the sign of dw
                    code = 1.0 if dw > 0 else (2.0 if dw < 0 else 0.0)
                if off:
                    vals[cb] = 3.0
                vals[cb + off] = i
                vals[cb + off + 1] = j
                vals[cb + off + 2] = x0
                vals[cb + off + 3] = x1
                vals[cb + off + 4] = dw
                vals[cb + off + 5] = pct
                vals[cb + off + 6] = code
                xs[nx] = x0  # the numbers (columns FLOAT, FLOAT_OR_EMPTY)
                xs[nx + 1] = x1
                xs[nx + 2] = dw
                xs[nx + 3] = pct
                nx += 4
                j += 1
                if j == n_post:
                    j = 0
                    i += 1
            else:
                for c in range(k):
                    vals[cb + c] = values[r, c]
                for c in range(k):
                    if kinds[c] == FLOAT or kinds[c] == FLOAT_OR_EMPTY:
                        xs[nx] = vals[cb + c]
                        nx += 1
        # the digits where one correctly rounded product settles them (nearly always), without
        # branches (so that the compiler can use vector instructions)
        slow = 0
        for t in range(nx):
            x = xs[t]
            be = ((np.float64(x).view(np.int64) >> 52) & 0x7FF) - 1022  # 2**(be-1) <= |x| < 2**be
            inr = (be >= -_BE_MAX) & (be <= _BE_MAX)
            ax = abs(x)
            e = ((be - 1) * 78913) >> 18  # floor((be - 1) log10 2): floor(log10 ax) is e or e + 1
            ie = e + 1 - _KMIN
            ie = min(max(ie, 0), _KMAX - _KMIN)
            e += 1 if ax >= _P10_HI[ie] else 0
            k10 = 11 - e
            ik = min(max(k10, 0), 22)
            p = ax * _POW10[ik]
            fl = np.floor(p)
            fr = p - fl
            ok = inr & (k10 >= 0) & (k10 <= 22) & (fl >= 1e11) & (fl < 1e12) & (abs(fr - 0.5) > _TIE_FAST)
            m = np.uint64(fl if ok else 1e11) + (_U[1] if fr > 0.5 else _U[0])
            up = m >= _M12  # rounded up to the next power of ten
            fm[t] = _M11 if up else m
            fe[t] = e + 1 if up else e
            fnd[t] = 12 if ok else _SLOW
            slow += 0 if ok else 1
        # the rest: the double-double product, or not digits
        for t in range(nx if slow else 0):
            if fnd[t] != _SLOW:
                continue
            x = xs[t]
            e = fe[t]
            ok = False
            m = _U[1]
            be = ((np.float64(x).view(np.int64) >> 52) & 0x7FF) - 1022
            if -_BE_MAX <= be <= _BE_MAX:
                ax = abs(x)
                cs = _SPLIT * ax
                ah = cs - (cs - ax)
                al = ax - ah
                moved = 0
                fl = 0.0
                fr = 0.0
                for _ in range(4):
                    ix = 11 - e - _KMIN
                    p = ax * _P10_HI[ix]
                    err = ((ah * _P10_SH[ix] - p) + ah * _P10_SL[ix] + al * _P10_SH[ix]) + al * _P10_SL[ix]
                    fl = np.floor(p)
                    fr = (p - fl) + (err + ax * _P10_LO[ix])  # ax * 10**(11-e) = fl + fr, to ~1e-15
                    if fr < 0.0:
                        fl -= 1.0
                        fr += 1.0
                    elif fr >= 1.0:
                        fl += 1.0
                        fr -= 1.0
                    # e one too high (low): the scaled value is below 1e11 (at or above 1e12).
                    # Within the error of those bounds both choices give the same digits, so a
                    # wrong call there is harmless; moving one way only ends the loop
                    if fl < 1e11 and moved <= 0:
                        e -= 1
                        moved = -1
                    elif fl >= 1e12 and moved >= 0:
                        e += 1
                        moved = 1
                    else:
                        ok = abs(fr - 0.5) >= _TIE
                        break
                if ok:
                    m = np.uint64(fl) + (_U[1] if fr > 0.5 else _U[0])
                    if m >= _M12:
                        m = _M11
                        e += 1
            fm[t] = m
            fe[t] = e
            fnd[t] = 12 if ok else (_NAN if x != x else (_ZERO if x == 0.0 else (_INF if x == np.inf or x == -np.inf else _PYTHON)))
        # pass 2: the bytes
        tx = 0
        for rb in range(nr):
            cb = rb * k
            for c in range(k):
                if c:
                    buf[pos] = 44
                    pos += _U[1]
                x = vals[cb + c]
                kind = kinds[c]
                if kind == INT:
                    v = np.int64(x)
                    if v >= 0 and v < 10000:  # one word: the last nd of the four digits
                        u = np.uint64(v)
                        nd = _U[1] + (_U[1] if u >= _U10 else _U[0]) + (_U[1] if u >= _U100 else _U[0]) + (_U[1] if u >= _U1K else _U[0])
                        store(buf, pos, _D4[u] >> np.uint32(32 - 8 * nd))
                        pos += nd
                        continue
                    buf[pos] = 45  # '-'
                    pos += _U[1] if v < 0 else _U[0]
                    u = np.uint64(-v if v < 0 else v)  # the int64 minimum too
                    nd = _U[1]
                    while nd < _U[20] and u >= _POW10U[nd]:
                        nd += _U[1]
                    q = pos + nd
                    while u >= _U100:
                        t = u // _U100
                        d = _U2 * (u - t * _U100)
                        u = t
                        q -= _U[2]
                        buf[q] = _PAIRS[d]
                        buf[q + _U[1]] = _PAIRS[d + _U[1]]
                    if u >= _U10:
                        buf[q - _U[2]] = _PAIRS[_U2 * u]
                        buf[q - _U[1]] = _PAIRS[_U2 * u + _U[1]]
                    else:
                        buf[q - _U[1]] = 48 + u
                    pos += nd
                    continue
                if kind == LABEL:
                    lab = np.int64(x)
                    if width <= 8:
                        store(buf, pos, lab8[lab])  # 8 bytes (scratch past the label's end)
                    else:
                        for q in range(width):  # all of it (scratch past the label's end)
                            buf[pos + np.uint64(q)] = labels[lab, q]
                    pos += lablen[lab]
                    continue
                ndig = fnd[tx]
                m = fm[tx]
                e = fe[tx]
                tx += 1
                if ndig <= 0:
                    if ndig == _NAN:
                        if kind != FLOAT_OR_EMPTY:
                            buf[pos] = 110  # nan
                            buf[pos + _U[1]] = 97
                            buf[pos + _U[2]] = 110
                            pos += _U[3]
                    elif ndig == _ZERO:
                        buf[pos] = 45
                        pos += _U[1] if np.signbit(x) else _U[0]
                        buf[pos] = 48
                        pos += _U[1]
                    elif ndig == _INF:
                        buf[pos] = 45
                        pos += _U[1] if x < 0 else _U[0]
                        buf[pos] = 105
                        buf[pos + _U[1]] = 110
                        buf[pos + _U[2]] = 102
                        pos += _U[3]
                    else:
                        buf[pos] = 63  # '?': Python's turn
                        badpos[nb] = pos
                        badval[nb] = x
                        nb += 1
                        pos += _U[1]
                    continue
                buf[pos] = 45  # '-'
                pos += _U[1] if x < 0 else _U[0]
                sci = e < -4 or e >= PREC
                lead = 1 - e if (e < 0 and not sci) else 0  # "0.", -e - 1 zeros, then the digits
                ni = 0 if lead else (1 if sci else e + 1)  # digits before the point
                pt = _U[0] if lead else _U[1]  # a point among the digits
                store(buf, pos, _LEAD)  # "0.000000": its first `lead` bytes stay, the rest is scratch
                base = pos + np.uint64(lead)
                hi = m // _U100M
                lo = m - hi * _U100M
                c4 = lo // _U10K
                d4 = lo - c4 * _U10K
                tz = np.int64(_TZ4[d4])  # trailing zeros
                if d4 == _U[0]:
                    tz += np.int64(_TZ4[c4]) + (np.int64(_TZ4[hi]) if c4 == _U[0] else 0)
                ndig = 12 - tz
                if ni <= 7:
                    # digits 0-7 (one word) and 8-11 after the point's place, then the first word
                    # again with the point at byte ni: digits below it as they are, digits above
                    # it one byte on (shifts and masks, no loop over the digits)
                    a8 = np.uint64(_D4[hi]) | (np.uint64(_D4[c4]) << _U32)
                    store(buf, base + pt, a8)
                    store(buf, base + pt + _U[8], _D4[d4])
                    if ni:
                        sh = _U[8] * np.uint64(ni)
                        up = _ONES << sh
                        store(buf, base, (a8 & ~up) | (_DOT << sh) | ((a8 << _U[8]) & (up << _U[8])))
                else:  # 8 or more digits before the point (numbers from 1e7 to 1e12): byte by byte
                    a2 = hi // _U100
                    b2 = _U2 * (hi - a2 * _U100)
                    a2 *= _U2
                    c2 = c4 // _U100
                    c1 = _U2 * (c4 - c2 * _U100)
                    c2 *= _U2
                    d2 = d4 // _U100
                    d1 = _U2 * (d4 - d2 * _U100)
                    d2 *= _U2
                    buf[base + np.uint64(ni)] = 46
                    buf[base] = _PAIRS[a2]  # digit t at base + t, one byte on from the point on
                    buf[base + _U[1]] = _PAIRS[a2 + _U[1]]
                    buf[base + _U[2]] = _PAIRS[b2]
                    buf[base + _U[3]] = _PAIRS[b2 + _U[1]]
                    buf[base + _U[4]] = _PAIRS[c2]
                    buf[base + _U[5]] = _PAIRS[c2 + _U[1]]
                    buf[base + _U[6]] = _PAIRS[c1]
                    buf[base + _U[7]] = _PAIRS[c1 + _U[1]]
                    buf[base + _U[8] + (pt if ni <= 8 else _U[0])] = _PAIRS[d2]
                    buf[base + _U[9] + (pt if ni <= 9 else _U[0])] = _PAIRS[d2 + _U[1]]
                    buf[base + _U[10] + (pt if ni <= 10 else _U[0])] = _PAIRS[d1]
                    buf[base + _U[11] + (pt if ni <= 11 else _U[0])] = _PAIRS[d1 + _U[1]]
                # the significant digits, and the point where digits follow it
                end = base + (np.uint64(ndig) + pt if ndig > ni else np.uint64(ni))
                # scientific notation: e, sign, two or three digits
                pos = end
                if sci:
                    ae = -e if e < 0 else e
                    if ae < 100:  # "e-05": one word (the last two of ae's four digits)
                        store(buf, end, (_EXP_NEG if e < 0 else _EXP_POS) | (_D4[ae] & _HI2))
                        pos = end + _U[4]
                    else:
                        h = ae // 100
                        ae = 2 * (ae - 100 * h)
                        buf[end] = 101
                        buf[end + _U[1]] = 45 if e < 0 else 43
                        buf[end + _U[2]] = 48 + h
                        buf[end + _U[3]] = _PAIRS[ae]
                        buf[end + _U[4]] = _PAIRS[ae + 1]
                        pos = end + _U[5]
            buf[pos] = 10
            pos += _U[1]
    return np.int64(pos), nb


@jit
def g12(buf, pos, x):
    """Write ``%.12g`` of x at buf[pos:]; return the new position, or -1 if x needs Python.
    (One number at a time: the table kernels write numbers themselves, this is for tests.)"""
    tmp = np.empty(32 + SLACK, dtype=np.uint8)
    bp = np.empty(1, dtype=np.int64)
    bv = np.empty(1)
    vals = np.empty((1, 1))
    vals[0, 0] = x
    length, nb = _rows(vals, np.zeros(1, dtype=np.uint8), np.zeros((1, 1), dtype=np.uint8), np.empty(0), np.empty(0), np.int64(0), np.int64(1), 0.0, tmp, bp, bv)
    if nb:
        return -1
    for t in range(length - 1):  # without the newline
        buf[pos + t] = tmp[t]
    return pos + length - 1


@jit(entry=True)
def format_table(values, kinds, labels, buf, badpos, badval):
    """Rows of ``values`` (n x k float64) as CSV lines into ``buf``; returns (bytes written,
    cells for Python). Kinds, labels and the cells for Python as in ``_rows``."""
    # int64 values, not literals: the same specialisation of _rows as format_summary's (float64
    # weights), so a first run compiles the big kernel once
    return _rows(values, kinds, labels, np.empty(0), np.empty(0), np.int64(0), np.int64(1), 0.0, buf, badpos, badval)


SUMMARY_ROW_BYTES = 2 * 20 + 4 * 19 + 4 + 8  # pre, post, four numbers, outcome, commas, newline
SUMMARY_KINDS = (INT, INT, FLOAT, FLOAT, FLOAT, FLOAT_OR_EMPTY, LABEL)
SUMMARY_LABELS = ("none", "LTP", "LTD")


@jit(entry=True)
def format_summary(w0, w1, start, n_post, thr, kinds, labels, buf, badpos, badval):
    """Rows ``start .. start + len(w0) - 1`` of ``summary.csv`` into ``buf``; returns (bytes
    written, cells for Python, as in ``_rows``).

    ``w0``, ``w1``: the initial and final weights of those rows (flat row-major index
    ``start + r``, ``n_post`` columns; float32 or float64, formatted as float64). Columns: pre,
    post, w_initial, w_final, dw = w_final - w_initial, dw_percent = 100 dw / |w_initial| (empty
    where w_initial is 0 or the quotient NaN), outcome: LTP/LTD where dw_percent is above
    ``thr`` / below ``-thr``, by the sign of dw where dw_percent is empty, else none. ``kinds``
    (uint8): ``SUMMARY_KINDS``, after a LABEL column for the sweep prefix where there is one;
    ``labels``: ``label_array(SUMMARY_LABELS + (prefix,))``. ``buf`` holds at least
    ``summary_bytes(len(w0), labels)`` bytes (nothing checks: too few would be overwritten past
    the end), ``badpos``/``badval`` 4 per row.
    """
    return _rows(np.empty((0, 0)), kinds, labels, w0, w1, start, n_post, thr, buf, badpos, badval)


def summary_bytes(n: int, labels: np.ndarray) -> int:
    """The buffer ``format_summary`` needs for ``n`` rows: each row at most SUMMARY_ROW_BYTES and
    the prefix with its comma; a label's cell writes the labels' whole width."""
    return n * (SUMMARY_ROW_BYTES + labels.shape[1] + 1) + labels.shape[1] + SLACK


def patch(buf: np.ndarray, length: int, badpos: np.ndarray, badval: np.ndarray, nb: int) -> list:
    """The formatted bytes as a list of bytes-like parts, the ``?`` cells formatted by Python."""
    view = memoryview(buf)[:length]
    if not nb:
        return [view]
    parts, prev = [], 0
    for p, x in zip(badpos[:nb].tolist(), badval[:nb].tolist()):
        parts += [view[prev:p], ("%.12g" % x).encode("ascii")]
        prev = p + 1
    parts.append(view[prev:])
    return parts


def label_array(labels) -> np.ndarray:
    """Labels as a 2D uint8 array of zero-padded ASCII strings (one row each)."""
    width = max([len(x) for x in labels] + [1])
    lab = np.zeros((max(1, len(labels)), width), dtype=np.uint8)
    for i, x in enumerate(labels):
        lab[i, : len(x)] = np.frombuffer(x.encode("ascii"), dtype=np.uint8)
    return lab


def format_csv_bytes(values: np.ndarray, kinds, labels=(), buf: np.ndarray | None = None) -> tuple[np.ndarray | None, list]:
    """``values`` (n x k) as CSV lines, numbers exactly as ``"%.12g" % x``: (the buffer used,
    the bytes-like parts to write in order, views of it). ``buf``: a byte buffer to reuse."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    n, k = values.shape
    if n == 0:
        return buf, []
    kinds = np.asarray(kinds, dtype=np.uint8)
    lab = label_array(labels)
    size = n * k * (26 + lab.shape[1]) + n + SLACK
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=np.uint8)
    badpos = np.empty(n * k, dtype=np.int64)
    badval = np.empty(n * k, dtype=np.float64)
    length, nb = format_table(values, kinds, lab, buf, badpos, badval)
    return buf, patch(buf, length, badpos, badval, nb)


def format_csv(values: np.ndarray, kinds, labels=()) -> str:
    """``values`` (n x k) as CSV text, one line per row, numbers exactly as ``"%.12g" % x``."""
    return b"".join(format_csv_bytes(values, kinds, labels)[1]).decode("ascii")


def format_rows(values: np.ndarray, is_int) -> list[str]:
    """Rows as CSV lines without newlines (FLOAT or INT columns)."""
    return format_csv(values, [INT if i else FLOAT for i in is_int]).split("\n")[:-1]
