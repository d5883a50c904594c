"""Slow, obviously correct twins of transmitter release (plastictool.core.release).

Plain Python over lists, written from the equations of spec section 11, without the kernel's
state layout (per neuron or per synapse) or its arrays.
"""

from __future__ import annotations

import math


def release_reference(times_ms, U, tau_rec, tau_fac, Us=None):
    """The released fractions r_n of one synapse for its spike times (sorted, ms).

    ``Us``: the utilisation U at each spike (presynaptic expression), else ``U`` throughout."""
    out = []
    u = x = r = None
    last = None
    for n, t in enumerate(times_ms):
        Un = U if Us is None else Us[n]
        if last is None:
            u, x = Un, 1.0
        else:
            d = t - last
            u = Un + (1.0 - Un) * u * math.exp(-d / tau_fac) if tau_fac > 0 else Un
            x = 1.0 - (1.0 - x + r) * math.exp(-d / tau_rec)
        r = u * x
        out.append(r)
        last = t
    return out


def steady_state(U, tau_rec, f_hz):
    """r_ss of a regular train at f without facilitation (Tsodyks & Markram 1997)."""
    e = math.exp(-1000.0 / (f_hz * tau_rec))
    return U * (1.0 - e) / (1.0 - (1.0 - U) * e)


def paired_pulse_ratio(U, tau_rec, tau_fac, interval_ms):
    """r_2 / r_1 for two spikes ``interval_ms`` apart from rest."""
    r = release_reference([0.0, interval_ms], U, tau_rec, tau_fac)
    return r[1] / r[0]
