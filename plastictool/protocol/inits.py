"""Initial values of per-synapse quantities: ``w_init`` and the like (spec section 3).

Validated form (``Init``): a constant, ``{uniform: [lo, hi]}``, ``{normal: [mean, sd]}`` or an
explicit ``n_pre x n_post`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Init:
    kind: str  # "constant" | "uniform" | "normal" | "matrix"
    args: tuple  # (value,) | (lo, hi) | (mean, sd) | (rows as tuples,)

    def resolved(self):
        if self.kind == "constant":
            return self.args[0]
        if self.kind == "matrix":
            return [list(r) for r in self.args[0]]
        return {self.kind: list(self.args)}

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Draw the initial values; the draw order is row-major, so it depends only on the seed."""
        if self.kind == "constant":
            return np.full(shape, float(self.args[0]))
        if self.kind == "uniform":
            return rng.uniform(self.args[0], self.args[1], size=shape)
        if self.kind == "normal":
            return rng.normal(self.args[0], self.args[1], size=shape)
        return np.array(self.args[0], dtype=float).reshape(shape)

    def sample_rows(self, shape: tuple[int, int], rng: np.random.Generator, rows: int):
        """``sample(shape, rng)`` in blocks of ``rows`` rows: yields (first row, block). The
        values are those of ``sample``: NumPy's Generator draws the same stream for successive
        smaller ``uniform``/``normal`` calls as for one big call in row-major order."""
        n_pre, n_post = shape
        rows = max(1, int(rows))
        full = np.array(self.args[0], dtype=float).reshape(shape) if self.kind == "matrix" else None
        for a in range(0, n_pre, rows):
            size = (min(n_pre, a + rows) - a, n_post)
            if self.kind == "constant":
                yield a, np.full(size, float(self.args[0]))
            elif self.kind == "uniform":
                yield a, rng.uniform(self.args[0], self.args[1], size=size)
            elif self.kind == "normal":
                yield a, rng.normal(self.args[0], self.args[1], size=size)
            else:
                yield a, full[a : a + size[0]].copy()
