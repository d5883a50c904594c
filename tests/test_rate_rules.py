"""Hebb, Oja and BCM: reference twins, analytic limits and the published fixed points."""

from __future__ import annotations

import math

import numpy as np
import pytest

from plastictool.api import run_experiment, validate_file
from plastictool.core.net import ACTIVATIONS, RATE, make_net
from plastictool.rules import bcm, hebb, oja
from plastictool.rules.base import BuildContext

from conftest import PROTOCOLS
from reference_rate import rate_reference


def kernel(module, w0, xs, dt, values, act=("linear", 1.0, 0.0), w_min=-np.inf, w_max=np.inf):
    w = np.array(w0, dtype=float)
    n_pre, n_post = w.shape
    net = make_net(n_pre, n_post, dt, RATE, act=np.array([ACTIVATIONS[act[0]], act[1], act[2]]))
    net = net._replace(x=np.array(xs, dtype=float))
    vals = {p.name: p.default for p in module.SPEC.params}
    vals.update(values)
    pr, st = module.build(vals, BuildContext(n_pre, n_post, dt, w, w_min, w_max, np.random.default_rng(0)))
    module.advance(w, net, st, pr, 0, len(xs), np.zeros(1, np.uint8))
    return w, st


@pytest.mark.parametrize("act", [("linear", 1.0, 0.0), ("relu", 1.0, 0.0), ("sigmoid", 3.0, 0.2), ("tanh", 0.7, 0.0)])
@pytest.mark.parametrize("rule", ["hebb", "oja", "bcm"])
def test_kernels_equal_their_euler_twins(rule, act):
    rng = np.random.default_rng(1)
    xs = rng.normal(0.3, 1.0, size=(300, 4))
    w0 = rng.uniform(-0.5, 0.5, size=(4, 3))
    module = {"hebb": hebb, "oja": oja, "bcm": bcm}[rule]
    values = {"eta": 5.0, "decay": 2.0, "tau_theta": 7.0, "theta_init": 0.1, "y0": 1.5}
    values = {k: v for k, v in values.items() if k in module.SPEC.param_names}
    got, st = kernel(module, w0, xs, 1.0, values, act)
    want, theta = rate_reference(rule, w0.tolist(), xs.tolist(), 1e-3, activation=act[0], gain=act[1], threshold=act[2], **values)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-12)
    if rule == "bcm":
        np.testing.assert_allclose(st.theta, theta, rtol=1e-12)


def test_hebb_growth_along_a_fixed_input_is_exponential():
    """Constant input x: dw/dt = eta x (x.w), so x.w grows as exp(eta |x|^2 t) (Euler error < 1e-4 here)."""
    x = np.array([1.0, 0.5])
    eta, dt_ms, n = 0.5, 1.0, 4000
    w, _ = kernel(hebb, [[0.1], [0.2]], np.tile(x, (n, 1)), dt_ms, {"eta": eta})
    t = n * dt_ms * 1e-3
    proj0 = 0.1 * 1.0 + 0.2 * 0.5
    want = proj0 * (1 + eta * 1e-3 * dt_ms * (x @ x)) ** n  # Euler exactly
    assert float(x @ w[:, 0]) == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(proj0 * math.exp(eta * (x @ x) * t), rel=1e-3)


def test_oja_example_finds_the_principal_component():
    [r] = run_experiment(validate_file(PROTOCOLS / "oja_pca.yaml"))
    w = r.w_final[:, 0]
    e1 = np.array([0.85065, 0.52573])
    assert np.linalg.norm(w) == pytest.approx(1.0, abs=0.01)
    assert abs(w @ e1) / np.linalg.norm(w) > 0.999


def test_bcm_example_becomes_selective():
    """Two orthogonal patterns with p = 1/2: w -> (1/p, 0) = (2, 0); with random presentation 1.7-2.2."""
    [r] = run_experiment(validate_file(PROTOCOLS / "bcm_selectivity.yaml"))
    w = r.w_final[:, 0]
    assert 1.7 < w[0] < 2.2
    assert abs(w[1]) < 0.01


def test_hebb_example_grows_like_the_leading_eigenvalue():
    """E[dw/dt] = eta C w: growth ~ exp(eta lambda1 t) = exp(3.618) = 37x; sampling noise allows 25-55x."""
    [r] = run_experiment(validate_file(PROTOCOLS / "hebb_growth.yaml"))
    growth = np.linalg.norm(r.w_final) / np.linalg.norm(r.w_initial)
    assert 25 < growth < 55
    w = r.w_final[:, 0]
    assert w[0] / w[1] == pytest.approx(0.85065 / 0.52573, rel=0.1)
