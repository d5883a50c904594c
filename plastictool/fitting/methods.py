"""Optimisers over the free parameters, in a search space where positive parameters are
``log(x)`` (bounds LO > 0) and the others ``x`` itself.

``least_squares`` (default): SciPy's bounded trust-region reflective least squares on the
residuals ``(model - dw_percent) / sem``, from several starts (the first at the given START, or
the middle of the search space, the others drawn uniformly in the search space from the seed);
the best chi2 is kept. The Jacobian of each step is a forward difference whose perturbed
vectors are evaluated as one batch (so ``--jobs`` runs them side by side).

``cmaes``: a global search for multimodal, noisy or expensive models. It is SciPy's
``differential_evolution`` (population-based, derivative free, like CMA-ES), not the ``cma``
package: no extra dependency, native bounds, exactly reproducible for a seed, and a population
that is evaluated as one batch (``vectorized``), i.e. in parallel over ``--jobs``. Its best
point is then refined by ``least_squares``, which also gives the Jacobian for the errors.

Both are deterministic for a given seed (the model is: common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DIFF_STEP = 1e-6  # relative forward-difference step in the search space
N_STARTS = 4


@dataclass
class Space:
    lo: np.ndarray  # natural units
    hi: np.ndarray
    log: np.ndarray  # bool per parameter

    def to_u(self, x):
        x = np.asarray(x, float)
        return np.where(self.log, np.log(np.where(self.log, x, 1.0)), x)

    def to_x(self, u):
        u = np.asarray(u, float)
        x = np.where(self.log, np.exp(np.where(self.log, u, 0.0)), u)
        return np.clip(x, self.lo, self.hi)

    @property
    def ulo(self):
        return self.to_u(self.lo)

    @property
    def uhi(self):
        return self.to_u(self.hi)


@dataclass
class Optimum:
    x: np.ndarray
    chi2: float
    converged: bool
    message: str
    starts: list  # per start: {"start": [...], "x": [...], "chi2": ..., "status": ...}
    optimizer: str


def _residual_fn(ev, space, y, sem):
    y = np.asarray(y, float)
    s = np.asarray(sem, float)

    def residuals_many(U):
        X = [space.to_x(u) for u in U]
        rows = ev.model(X)
        out = []
        for r in rows:
            m = np.asarray(r, float)
            res = (m - y) / s
            out.append(np.where(np.isfinite(res), res, FAILED_RESIDUAL))
        return out

    return residuals_many


FAILED_RESIDUAL = 1e6


def _least_squares_from(ev, space, y, sem, u0, max_nfev):
    from scipy.optimize import least_squares

    many = _residual_fn(ev, space, y, sem)
    ulo, uhi = space.ulo, space.uhi
    last = {}

    def fun(u):
        r = many([u])[0]
        last["u"], last["r"] = np.array(u, float), r
        return r

    def jac(u):
        u = np.asarray(u, float)
        r0 = last["r"] if "u" in last and np.array_equal(last["u"], u) else many([u])[0]
        hs = DIFF_STEP * np.maximum(1.0, np.abs(u))
        U = []
        for k in range(u.size):
            v = u.copy()
            h = hs[k] if u[k] + hs[k] <= uhi[k] else -hs[k]
            v[k] += h
            hs[k] = h
            U.append(v)
        R = many(U)
        return np.stack([(R[k] - r0) / hs[k] for k in range(u.size)], axis=1)

    u0 = np.clip(u0, ulo, uhi)
    res = least_squares(fun, u0, jac=jac, bounds=(ulo, uhi), method="trf", x_scale="jac",
                        xtol=1e-10, ftol=1e-10, gtol=1e-10, max_nfev=max_nfev)
    return res


def least_squares_fit(ev, space, starts_x, y, sem, seed, n_starts=N_STARTS, max_nfev=None) -> Optimum:
    rng = np.random.default_rng(seed)
    ulo, uhi = space.ulo, space.uhi
    n = ulo.size
    first = space.to_u(starts_x)
    u_starts = [first] + [ulo + rng.random(n) * (uhi - ulo) for _ in range(max(0, n_starts - 1))]
    best, runs = None, []
    for u0 in u_starts:
        res = _least_squares_from(ev, space, y, sem, u0, max_nfev or 100 * (n + 1))
        chi2 = float(2.0 * res.cost)
        runs.append({"start": [float(v) for v in space.to_x(u0)], "x": [float(v) for v in space.to_x(res.x)],
                     "chi2": chi2, "status": int(res.status), "message": str(res.message)})
        if best is None or chi2 < best[1] - 1e-12 * max(1.0, abs(best[1])):
            best = (res, chi2)
    res, chi2 = best
    return Optimum(space.to_x(res.x), chi2, res.status > 0, str(res.message), runs, "scipy.optimize.least_squares (trf)")


def cmaes_fit(ev, space, starts_x, y, sem, seed, popsize=10, maxiter=60) -> Optimum:
    from scipy.optimize import differential_evolution

    many = _residual_fn(ev, space, y, sem)
    ulo, uhi = space.ulo, space.uhi

    def chi2_pop(U):  # vectorized: U has shape (n_params, S)
        R = many([U[:, k] for k in range(U.shape[1])])
        return np.array([float(np.sum(r * r)) for r in R])

    de = differential_evolution(chi2_pop, list(zip(ulo, uhi)), seed=seed, popsize=popsize, maxiter=maxiter,
                                tol=1e-8, polish=False, vectorized=True, updating="deferred", init="sobol",
                                x0=np.clip(space.to_u(starts_x), ulo, uhi))
    res = _least_squares_from(ev, space, y, sem, de.x, 100 * (ulo.size + 1))
    chi2 = float(2.0 * res.cost)
    runs = [{"start": "differential_evolution", "x": [float(v) for v in space.to_x(de.x)], "chi2": float(de.fun),
             "status": int(bool(de.success)), "message": str(de.message)},
            {"start": [float(v) for v in space.to_x(de.x)], "x": [float(v) for v in space.to_x(res.x)], "chi2": chi2,
             "status": int(res.status), "message": str(res.message)}]
    x = res.x if chi2 <= de.fun else de.x
    return Optimum(space.to_x(x), min(chi2, float(de.fun)), bool(res.status > 0), str(res.message), runs,
                   "scipy.optimize.differential_evolution, refined by scipy.optimize.least_squares")
