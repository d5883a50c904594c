"""The Python recorder of trace samples (weights, statistics, state), used where the kernels
do not sample themselves (``core.record.supported``), and the rows buffer that both fill."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .engine import Built


class Recorder:
    """Samples the traces at ``record.interval`` (the only per-sample Python work)."""

    def __init__(self, b: Built):
        p = b.protocol
        rec = p.record
        self.b = b
        n_pre, n_post = b.w.shape
        spec = b.module.SPEC
        pairs = list(rec.weights)
        self.wi = np.array([i for i, _ in pairs], dtype=np.int64)
        self.wj = np.array([j for _, j in pairs], dtype=np.int64)
        cols = ["t_ms"] + [f"w[{i},{j}]" for i, j in pairs] + [f"w_{s}" for s in rec.stats]
        self.state = []  # (name, kind, index arrays or None for the mean)
        neuron_vars = {"v": "post", "g": "post", "y": "post", "u": "syn", "x": "syn"} if b.rel is not None else {"v": "post", "g": "post", "y": "post"}
        for name in rec.state:
            shape = neuron_vars.get(name) or spec.state_var(name).shape
            if shape == "syn":
                if pairs:
                    sel = (self.wi, self.wj)
                    cols += [f"{name}[{i},{j}]" for i, j in pairs]
                elif n_pre * n_post <= 16:
                    ii, jj = np.indices((n_pre, n_post))
                    sel = (ii.ravel(), jj.ravel())
                    cols += [f"{name}[{i},{j}]" for i, j in zip(*sel)]
                else:
                    sel = None
                    cols.append(f"{name}_mean")
            else:
                n = n_pre if shape == "pre" else n_post
                picked = self.wi if shape == "pre" else self.wj
                if n <= 16:
                    sel = np.arange(n)
                elif pairs:
                    sel = np.unique(picked)
                else:
                    sel = None
                if sel is None:
                    cols.append(f"{name}_mean")
                else:
                    cols += [f"{name}[{k}]" for k in sel]
            self.state.append((name, shape, sel))
        if b.structure is not None:
            cols.append("n_synapses")
        self.columns = cols
        self.every = max(1, int(round(rec.interval / p.dt)))
        n_rows = p.n_steps // self.every + 2
        self.rows = np.empty((n_rows, len(cols)))
        self.n = 0

    def like(self, b: Built) -> "Recorder":
        """The Recorder of ``b``, a condition equal to this one's but for its stimulus (phases
        and duration: ``simulation.batches``): the same columns and selection (which depend on
        the record section, the network's shape, the rule, release and structure alone),
        rows for ``b``'s own duration, made without working them out again."""
        r = object.__new__(Recorder)
        r.__dict__.update(self.__dict__)
        r.b = b
        r.columns = list(self.columns)
        r.rows = np.empty((b.protocol.n_steps // self.every + 2, len(self.columns)))
        r.n = 0
        return r

    def sample(self, step: int, w_sum=None) -> None:
        """Append the row of ``step``. ``w_sum``: ``np.sum(w)`` where the caller has it (the mean
        is then that sum over the count, as ``np.mean`` computes it: no second pass)."""
        b = self.b
        w = b.w
        row = [step * b.protocol.dt]
        row += list(w[self.wi, self.wj])
        stats = b.protocol.record.stats
        for s in stats:
            if s == "mean" and w_sum is not None:
                row.append(float(w_sum.dtype.type(w_sum / np.intp(w.size))))
            else:
                row.append(float({"mean": np.mean, "std": np.std, "min": np.min, "max": np.max}[s](w)))
        for name, shape, sel in self.state:
            values = self._probe(name, step)
            if sel is None:
                row.append(float(np.mean(values)))
            elif shape == "syn":
                row += list(values[sel[0], sel[1]])
            else:
                row += list(values[sel])
        if b.structure is not None:
            row.append(b.structure.n_present)
        if self.n and self.rows[self.n - 1, 0] == row[0]:
            self.n -= 1
        self.rows[self.n] = row
        self.n += 1

    def _probe(self, name, step):
        b = self.b
        if name in ("v", "g", "y"):
            return getattr(b.net, name).copy()
        if b.rel is not None and name in ("u", "x"):
            from ..core.release import probe

            return probe(b.rel, name, step, b.w)
        return np.asarray(b.module.probe(b.state, b.params, name, step))
