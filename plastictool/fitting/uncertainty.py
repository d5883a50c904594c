"""Errors of the fitted parameters from the Jacobian at the optimum, and model comparison.

``J[i, k] = d r_i / d x_k`` for the residuals ``r = (model - data) / sem`` in the parameters'
natural units, by central differences (one-sided at a bound). The covariance is
``(J^T J)^-1`` (pseudo-inverse by SVD: directions the data do not determine get infinite
errors); when the data have no ``sem`` (every sem taken as 1) it is scaled by the reduced chi2
``chi2 / (n - k)`` and fit.json says so (``covariance_scaled``). Standard errors are the square
roots of its diagonal; 95 % intervals are ``x +- q se`` with ``q`` the normal quantile 1.96 when
sem is given (errors known), Student's t with ``n - k`` degrees of freedom when scaled.

AIC and BIC: with sem, ``-2 ln L = chi2 + const`` so ``AIC = chi2 + 2k``, ``BIC = chi2 + k ln n``;
without sem (Gaussian errors of unknown, equal size) ``AIC = n ln(chi2 / n) + 2k`` and
``BIC = n ln(chi2 / n) + k ln n``. Lower is better; only differences between models fitted to
the same data mean anything.
"""

from __future__ import annotations

import math

import numpy as np

REL_STEP = 1e-4
HUGE_RELATIVE_ERROR = 10.0  # se above 10 x |value|: undetermined
CORR_LIMIT = 0.99


def jacobian(residuals_many, x, lo, hi):
    """Central-difference Jacobian of the residuals at ``x`` (natural units), one batch."""
    x = np.asarray(x, float)
    n = x.size
    h = REL_STEP * np.maximum(np.abs(x), 1e-12 + 1e-6 * (hi - lo))
    X, steps = [], []
    for k in range(n):
        a, b = x.copy(), x.copy()
        up = min(h[k], hi[k] - x[k])
        down = min(h[k], x[k] - lo[k])
        if up <= 0 and down <= 0:
            up = h[k]
        a[k] += up
        b[k] -= down
        X += [a, b]
        steps.append(up + down)
    R = residuals_many(X)
    return np.stack([(np.asarray(R[2 * k]) - np.asarray(R[2 * k + 1])) / steps[k] for k in range(n)], axis=1)


def errors(J, chi2, n, k, scaled):
    """(covariance, se, correlation, t quantile, warnings about undetermined directions)."""
    dof = n - k
    JTJ = J.T @ J
    U, s, Vt = np.linalg.svd(JTJ)
    tol = s.max() * 1e-12 if s.size and s.max() > 0 else 0.0
    good = s > tol
    inv = np.where(good, 1.0 / np.where(good, s, 1.0), 0.0)
    cov = (Vt.T * inv) @ U.T
    singular = not good.all()
    if singular:  # parameters in the null space: infinite error
        null = Vt[~good]
        for kk in range(k):
            if np.any(np.abs(null[:, kk]) > 1e-6):
                cov[kk, kk] = math.inf
    if scaled:
        cov = cov * (chi2 / dof if dof > 0 else math.inf)
    se = np.sqrt(np.abs(np.diag(cov)))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(se, se)
    corr = np.where(np.isfinite(corr), corr, np.nan)
    np.fill_diagonal(corr, 1.0)
    if scaled:
        from scipy.stats import t as student

        q = float(student.ppf(0.975, dof)) if dof > 0 else math.inf
    else:
        q = 1.959963984540054
    return cov, se, corr, q, singular


def information(chi2, n, k, scaled):
    if scaled:
        ll = n * math.log(chi2 / n) if chi2 > 0 else -math.inf
        return ll + 2 * k, ll + k * math.log(n)
    return chi2 + 2 * k, chi2 + k * math.log(n)


def warnings_for(names, x, se, corr, singular):
    out = []
    if singular:
        out.append("the data do not determine every parameter (the Jacobian is singular at the optimum)")
    for a, name in enumerate(names):
        if not math.isfinite(se[a]):
            out.append(f"{name}: infinite standard error: the data do not determine it")
        elif se[a] > HUGE_RELATIVE_ERROR * max(abs(x[a]), 1e-300):
            out.append(f"{name}: standard error {se[a]:.3g} is more than {HUGE_RELATIVE_ERROR:g} x its value {x[a]:.3g}: poorly determined")
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            c = corr[a, b]
            if np.isfinite(c) and abs(c) > CORR_LIMIT:
                out.append(f"{names[a]} and {names[b]} are correlated {c:+.4f}: the data determine a combination, not each")
    return out
