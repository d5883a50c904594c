"""Slow, obviously-correct twin of the receptor rule: plain Python, one forward-Euler step of
every variable per time step ``dt``, straight from the equations of the module docstring.

Calcium is the only variable treated exactly (it jumps at spikes and decays by
``exp(-dt / tau_ca)`` per step); the Hill functions of calcium are evaluated at the middle of
each step. No event skipping, no sub-steps, no splitting. Used on short runs to check the fast
kernel (exact exponentials, averaged drives, Strang splitting) against the plain equations.
"""

from __future__ import annotations

import math

from plastictool.rules import receptor as R

BLOCKABLE = R.SPEC.blockable
NAMES = ("ca", "pi3k", "akt", "mtor", "pool", "free", "bound", "slots", "pp")


def hill(x, k, n):
    if x <= 0.0:
        return 0.0
    return x**n / (x**n + k**n)


def params(values):
    """Parameter values (canonical units), defaults filled in; rates converted to per ms."""
    v = {p.name: float(p.default) for p in R.SPEC.params}
    v.update({k: float(x) for k, x in values.items()})
    for name in ("k_pi3k", "k_akt", "k_mtor", "k_pp", "synthesis", "slot_growth", "slot_removal"):
        v[name] *= 1e-3
    return v


def rest(v):
    """Resting steady state (signals 0), from the balance of each flux."""
    pool = v["synthesis"] * v["tau_deg"]  # synthesis = degradation
    free = pool * v["tau_endo"] / v["tau_exo"]  # exocytosis = endocytosis
    slots = v["slots_rest"]
    bound = slots * free / (free + v["kd"])  # binding = unbinding
    return {"ca": 0.0, "pi3k": 0.0, "akt": 0.0, "mtor": 0.0, "pool": pool, "free": free, "bound": bound, "slots": slots, "pp": 0.0}


def rhs(x, v, c, blocked=()):
    """Time derivatives (per ms) of the slow variables for calcium ``c``."""
    b = set(blocked)
    d = {}
    pi3k = 0.0 if "PI3K" in b else x["pi3k"]
    akt = 0.0 if "Akt" in b else x["akt"]
    mtor = 0.0 if "mTOR" in b else x["mtor"]
    pp = 0.0 if "phosphatase" in b else x["pp"]
    d["pi3k"] = 0.0 if "PI3K" in b else v["k_pi3k"] * hill(c, v["ca_pi3k"], v["n_pi3k"]) * (1 - pi3k) - pi3k / v["tau_pi3k"]
    d["akt"] = 0.0 if "Akt" in b else v["k_akt"] * hill(pi3k, v["pi3k_akt"], v["n_akt"]) * (1 - akt) - akt / v["tau_akt"]
    d["mtor"] = 0.0 if "mTOR" in b else v["k_mtor"] * hill(akt, v["akt_mtor"], v["n_mtor"]) * (1 - mtor) - mtor / v["tau_mtor"]
    d["pp"] = 0.0 if "phosphatase" in b else v["k_pp"] * hill(c, v["ca_pp"], v["n_pp"]) * (1 - pp) - pp / v["tau_pp"]
    effect = hill(pp, v["pp_half"], v["n_pp_effect"])
    syn = 0.0 if "synthesis" in b else v["synthesis"] * (1 + v["syn_gain"] * mtor)
    exo = 0.0 if "exocytosis" in b else (1 + v["exo_gain"] * pi3k) / v["tau_exo"]
    endo = 0.0 if "endocytosis" in b else (1 + v["endo_gain"] * effect) / v["tau_endo"]
    k_off = 1.0 / v["tau_off"]
    k_on = k_off / v["kd"]
    binding = k_on * x["free"] * (x["slots"] - x["bound"]) - k_off * x["bound"]
    d["pool"] = syn - x["pool"] / v["tau_deg"] - exo * x["pool"] + endo * x["free"]
    d["free"] = exo * x["pool"] - endo * x["free"] - binding
    d["bound"] = binding
    growth = 0.0 if "synthesis" in b else v["slot_growth"] * v["slots_rest"] * mtor
    d["slots"] = (v["slots_rest"] - x["slots"]) / v["tau_slots"] + growth - v["slot_removal"] * effect * x["slots"]
    return d


def simulate(values, pre_times, post_times=(), t_end=0.0, dt=0.5, blocks=(), samples=()):
    """Run one synapse from rest.

    ``pre_times`` / ``post_times``: spike times in ms (rounded to steps); ``blocks``: list of
    ``(t_start, t_stop, names)``; ``samples``: times (ms) at which to return the state.
    Returns ``{time: state dict}`` (and the final state under ``t_end``).
    """
    v = params(values)
    x = rest(v)
    pre = {}
    for t in pre_times:
        s = int(round(t / dt))
        pre[s] = pre.get(s, 0) + 1
    post = {}
    for t in post_times:
        s = int(round(t / dt))
        post[s] = post.get(s, 0) + 1
    sample_steps = {int(round(t / dt)): t for t in samples}
    n = int(round(t_end / dt))
    dec = math.exp(-dt / v["tau_ca"])
    mid = math.exp(-0.5 * dt / v["tau_ca"])
    c = 0.0
    u = 0.0
    out = {}
    for s in range(n + 1):
        if s in sample_steps:
            out[sample_steps[s]] = dict(x, ca=c)
        if s == n:
            break
        t = s * dt
        blocked = set()
        for a, b, names in blocks:
            if a <= t < b:
                blocked.update(names)
        nmda = "NMDA" not in blocked
        for _ in range(post.get(s, 0)):
            if nmda:
                c += v["c_post"]
        for _ in range(pre.get(s, 0)):
            if nmda:
                c += v["c_pre"] * (1 + v["nmda_gain"] * u / (u + v["nmda_half"]))
            u += 1.0
        d = rhs(x, v, c * mid, blocked)
        for name, dx in d.items():
            x[name] += dt * dx
        for name in ("pi3k", "akt", "mtor", "pp"):  # a blocked signal is held at 0
            if {"pi3k": "PI3K", "akt": "Akt", "mtor": "mTOR", "pp": "phosphatase"}[name] in blocked:
                x[name] = 0.0
        c *= dec
        u *= math.exp(-dt / v["tau_nmda"])
    out[t_end] = dict(x, ca=c)
    return out
