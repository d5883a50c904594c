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
NAMES = ("ca", "pi3k", "akt", "mtor", "pool", "free", "bound", "slots", "pp", "tag")


def hill(x, k, n):
    if x <= 0.0:
        return 0.0
    return x**n / (x**n + k**n)


def params(values):
    """Parameter values (canonical units), defaults filled in; rates converted to per ms."""
    v = {p.name: float(p.default) for p in R.SPEC.params}
    v.update({k: float(x) for k, x in values.items()})
    for name in ("k_pi3k", "k_akt", "k_mtor", "k_pp", "synthesis", "slot_growth", "slot_removal", "k_tag"):
        v[name] *= 1e-3
    return v


def rest(v):
    """Resting steady state (signals 0), from the balance of each flux."""
    pool = v["synthesis"] * v["tau_deg"]  # synthesis = degradation
    free = pool * v["tau_endo"] / v["tau_exo"]  # exocytosis = endocytosis
    slots = v["slots_rest"]
    bound = slots * free / (free + v["kd"])  # binding = unbinding
    return {"ca": 0.0, "pi3k": 0.0, "akt": 0.0, "mtor": 0.0, "pool": pool, "free": free, "bound": bound, "slots": slots,
            "pp": 0.0, "tag": 0.0}


def rhs(x, v, c, blocked=(), prp=0.0):
    """Time derivatives (per ms) of the slow variables of one synapse for calcium ``c`` and
    the products ``prp`` of its post neuron."""
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
    d["tag"] = v["k_tag"] * hill(pi3k, v["pi3k_tag"], v["n_tag"]) * (1 - x["tag"]) - x["tag"] / v["tau_tag"]
    captured = prp * x["tag"]
    syn = v["synthesis"] * v["syn_gain"] * captured + (0.0 if "synthesis" in b else v["synthesis"])
    exo = 0.0 if "exocytosis" in b else (1 + v["exo_gain"] * pi3k) / v["tau_exo"]
    endo = 0.0 if "endocytosis" in b else (1 + v["endo_gain"] * effect) / v["tau_endo"]
    k_off = 1.0 / v["tau_off"]
    k_on = k_off / v["kd"]
    binding = k_on * x["free"] * (x["slots"] - x["bound"]) - k_off * x["bound"]
    d["pool"] = syn - x["pool"] / v["tau_deg"] - exo * x["pool"] + endo * x["free"]
    d["free"] = exo * x["pool"] - endo * x["free"] - binding
    d["bound"] = binding
    growth = v["slot_growth"] * v["slots_rest"] * captured
    d["slots"] = (v["slots_rest"] - x["slots"]) / v["tau_slots"] + growth - v["slot_removal"] * effect * x["slots"]
    return d


def simulate(values, pre_times, post_times=(), t_end=0.0, dt=0.5, blocks=(), samples=()):
    """Run one synapse from rest (``simulate_cell`` with one presynaptic neuron).

    ``pre_times`` / ``post_times``: spike times in ms (rounded to steps); ``blocks``: list of
    ``(t_start, t_stop, names)``; ``samples``: times (ms) at which to return the state.
    Returns ``{time: state dict}`` (and the final state under ``t_end``); ``prp`` is in it.
    """
    out = simulate_cell(values, [pre_times], post_times, t_end, dt, blocks, samples)
    return {t: dict(xs[0], prp=prp) for t, (xs, prp) in out.items()}


def simulate_cell(values, pre_times, post_times=(), t_end=0.0, dt=0.5, blocks=(), samples=()):
    """Several synapses onto one post neuron, from rest: ``pre_times[i]`` are the spike times
    of presynaptic neuron i. The products of the cell obey
    ``tau_prp dprp/dt = sum_i mtor_i - prp`` (anisomycin: no production), Euler like the rest.
    Returns ``{time: ([state dict of each synapse], prp)}``."""
    v = params(values)
    n = len(pre_times)
    xs = [rest(v) for _ in range(n)]
    prp = 0.0
    pre = [{} for _ in range(n)]
    for i, times in enumerate(pre_times):
        for t in times:
            s = int(round(t / dt))
            pre[i][s] = pre[i].get(s, 0) + 1
    post = {}
    for t in post_times:
        s = int(round(t / dt))
        post[s] = post.get(s, 0) + 1
    sample_steps = {int(round(t / dt)): t for t in samples}
    steps = int(round(t_end / dt))
    dec = math.exp(-dt / v["tau_ca"])
    mid = math.exp(-0.5 * dt / v["tau_ca"])
    dec_u = math.exp(-dt / v["tau_nmda"])
    c = [0.0] * n
    u = [0.0] * n
    out = {}
    signals = {"pi3k": "PI3K", "akt": "Akt", "mtor": "mTOR", "pp": "phosphatase"}
    for s in range(steps + 1):
        if s in sample_steps:
            out[sample_steps[s]] = ([dict(x, ca=ci) for x, ci in zip(xs, c)], prp)
        if s == steps:
            break
        t = s * dt
        blocked = set()
        for a, b, names in blocks:
            if a <= t < b:
                blocked.update(names)
        nmda = "NMDA" not in blocked
        made = 0.0 if "synthesis" in blocked else sum(x["mtor"] for x in xs)
        for i in range(n):
            for _ in range(post.get(s, 0)):
                if nmda:
                    c[i] += v["c_post"]
            for _ in range(pre[i].get(s, 0)):
                if nmda:
                    c[i] += v["c_pre"] * (1 + v["nmda_gain"] * u[i] / (u[i] + v["nmda_half"]))
                u[i] += 1.0
            d = rhs(xs[i], v, c[i] * mid, blocked, prp)
            for name, dx in d.items():
                xs[i][name] += dt * dx
            for name, comp in signals.items():  # a blocked signal is held at 0
                if comp in blocked:
                    xs[i][name] = 0.0
            c[i] *= dec
            u[i] *= dec_u
        prp += dt * (made - prp) / v["tau_prp"]
    out[t_end] = ([dict(x, ca=ci) for x, ci in zip(xs, c)], prp)
    return out
