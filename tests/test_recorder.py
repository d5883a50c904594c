"""The Recorder's mean from the finite check's sum equals np.mean, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from plastictool.simulation import engine, recorder
from plastictool.protocol.schema import load_experiment


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(3, 5), (1000, 37), (640, 1000)])
def test_mean_from_the_sum_is_np_mean(dtype, shape, tmp_path):
    n_pre, n_post = shape
    path = tmp_path / "rec.yaml"
    path.write_text(
        f"name: rec\nduration: 1 ms\nsynapses: {{n_pre: {n_pre}, n_post: {n_post}, dtype: {dtype}}}\n"
        "neuron: {model: lif}\nrule: {kind: stdp}\nstimulus: {pre: {poisson: {rate: 1 Hz}}}\nrecord: {weights: none, stats: [mean, std]}\n",
    )
    exp = load_experiment(path)
    b = engine.build(exp.conditions[0].protocol)
    rng = np.random.default_rng(n_pre)
    for scale in (1.0, 1e-3, 7.3e5):
        b.w[...] = rng.uniform(0, scale, b.w.shape)
        rec = recorder.Recorder(b)
        rec.sample(0)
        rec.sample(1, engine._check_finite(b, 1, rec))
        assert rec.columns[1:3] == ["w_mean", "w_std"]
        assert rec.rows[0, 1].tobytes() == rec.rows[1, 1].tobytes()
        assert rec.rows[1, 1] == float(np.mean(b.w)) and rec.rows[1, 2] == float(np.std(b.w))
