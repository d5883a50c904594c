"""The summary's derived columns for ``record.format: npy``, in one pass over the weights.

``summary_columns`` computes, for a block of whole rows of the weight matrix, the columns that
``summary.csv`` derives from the initial and final weights, with the arithmetic of the CSV
writer (:func:`plastictool.core.fmt.format_summary`) and of its NumPy twin in
:func:`plastictool.results.output.npy_summary` (used for small tables, so that they never compile this
kernel): ``dw = float64(w_final) - float64(w_initial)``, ``dw_percent = 100 dw / |w_initial|``
(NaN where ``w_initial`` is 0 or the quotient is NaN), and the outcome: LTP / LTD where
``dw_percent`` is above ``thr`` / below ``-thr``, by the sign of ``dw`` where it is NaN, else
none. The same IEEE operations in the same order: the numbers are identical bit for bit.
"""

from __future__ import annotations

import numpy as np

from .jit import jit


@jit(entry=True)
def summary_columns(w0, w1, first_row, n_post, thr, labels, pre, post, dw, pct, outcome):
    """Fill ``pre``, ``post`` (int32), ``dw``, ``pct`` (float64) and ``outcome`` (uint32: element
    0, 1 or 2 of ``labels``, the four ASCII bytes of none / LTP / LTD as one integer) for the
    synapses of ``w0``/``w1`` (flat, whole rows from ``first_row``, ``n_post`` columns)."""
    n = w0.size
    i = first_row
    j = 0
    for k in range(n):
        pre[k] = i
        post[k] = j
        j += 1
        if j == n_post:
            j = 0
            i += 1
        x0 = np.float64(w0[k])
        d = np.float64(w1[k]) - x0
        dw[k] = d
        # without branches on the data (outcomes are mixed: branches would be mispredicted);
        # 100 d / 0 is inf or NaN here (error_model numpy) and is replaced by NaN
        q = 100.0 * d / abs(x0)
        p = q if x0 != 0.0 else np.nan
        pct[k] = p
        empty = p != p
        up = (p > thr) | (empty & (d > 0.0))
        down = (p < -thr) | (empty & (d < 0.0))
        c = np.uint8(up) + np.uint8(2) * np.uint8(down)
        outcome[k] = labels[c]
