"""Slow, obviously correct twins of the rate rules: forward Euler, one sample at a time."""

from __future__ import annotations

import math


def act(u, kind="linear", gain=1.0, threshold=0.0):
    if kind == "linear":
        return u
    if kind == "relu":
        return max(u, 0.0)
    if kind == "sigmoid":
        return 1.0 / (1.0 + math.exp(-gain * (u - threshold)))
    return math.tanh(gain * u)


def rate_reference(rule, w0, xs, dt_s, eta, decay=0.0, tau_theta=None, theta_init=0.0, y0=1.0, dt_ms=1.0,
                   w_min=-math.inf, w_max=math.inf, activation="linear", gain=1.0, threshold=0.0):
    w = [list(r) for r in w0]
    n_pre, n_post = len(w), len(w[0])
    theta = [theta_init] * n_post
    for x in xs:
        y = [act(sum(w[i][j] * x[i] for i in range(n_pre)), activation, gain, threshold) for j in range(n_post)]
        for j in range(n_post):
            for i in range(n_pre):
                if rule == "hebb":
                    dw = eta * x[i] * y[j] - decay * w[i][j]
                elif rule == "oja":
                    dw = eta * y[j] * (x[i] - y[j] * w[i][j])
                else:
                    dw = eta * x[i] * y[j] * (y[j] - theta[j])
                w[i][j] = min(max(w[i][j] + dt_s * dw, w_min), w_max)
            if rule == "bcm":
                theta[j] += dt_ms / tau_theta * (y[j] ** 2 / y0 - theta[j])
    return w, theta
