#!/usr/bin/env python
"""Peer simulators for the plastic benchmark (issue 6): Brian2 and NEST.

Run with the *peers* virtual environment's python, never with plastic's own
environment (Brian2 2.9.0 needs numpy < 2.4; see bench/PEERS.md):

    /work/peers-venv/bin/python bench/peers.py WORKLOAD --target TARGET [--threads N]
                                              [--seed S] [--build-dir DIR]

    WORKLOAD  W1 | W2 | W3
    TARGET    brian2-numpy | brian2-cython | brian2-cpp | nest
    --threads N     threads for brian2-cpp (OpenMP) and nest (local_num_threads);
                    brian2-numpy / brian2-cython are single-threaded and ignore it
                    (the JSON then reports "threads": 1).  Default 1.
    --seed S        seed of all random draws (W2/W3 Poisson inputs, initial weights).
                    Default 1.
    --build-dir DIR brian2-cpp only: build the standalone project in DIR and keep it.
                    Default: a fresh temporary directory that is deleted afterwards,
                    so every run includes a full C++ build.
    --duration-ms T W2/W3 only: simulate T ms instead of the workload's duration
                    (for smoke tests and for warming Brian2's Cython cache; results
                    are then not comparable).  Not allowed for W1.

Output contract (stable; bench/run.py relies on it): exactly ONE line on stdout,
a JSON object.  Everything the simulators print (NEST banner, Brian2 logs,
compiler output) is diverted to stderr.  Exit status 0 on success.  Keys:

    workload, target, threads, seed, simulator ("brian2 2.9.0" / "nest 3.10.0"),
    import_s    seconds to import the simulator in this process
    setup_s     seconds to build the network (for brian2-cpp: code generation,
                compilation and the run are all in sim_s, since they happen in run())
    sim_s       seconds of the simulate call (brian2-cpp: incl. C++ build)
    wall_s      setup_s + sim_s + result read-out (the "simulation part")
    process_s   seconds since this script started (incl. imports) at print time
    results     workload-specific dict:
      W1: delta_t_ms [101], w [101] final weights, w_analytic [101],
          max_abs_err, max_abs_err_excl0 (over delta_t != 0), err_at_0
      W2: rate_first10s_hz, rate_last10s_hz, frac_w_below_0.1gmax,
          frac_w_above_0.9gmax, mean_w_over_gmax, n_post_spikes
      W3: mean_rate_hz, mean_rate_first1s_hz, mean_rate_last1s_hz,
          mean_w, mean_w_over_gmax

Workloads (same parameters in both simulators; dt = 0.1 ms everywhere):

W1  STDP window: 101 independent pre/post pairs, delta_t = t_post - t_pre in
    -100..100 ms step 2.  Pair k (k = 0..59) puts the earlier spike at k*1000 ms and
    the other |delta_t| later (60 pairings at 1 Hz).  Pair-based all-to-all additive
    STDP, A+ 0.01, A- 0.0105, tau+ 16.8 ms, tau- 33.7 ms, hard bounds [0, 1], w0 0.5.
    Analytic: w = 0.5 + 60 A+ exp(-dt/tau+) (dt > 0), 0.5 - 60 A- exp(dt/tau-) (dt < 0),
    clipped to [0, 1]; dt = 0 -> 0.5 (same-step spikes do not pair, plastic's convention).
W2  Song, Miller & Abbott 2000 as in Brian2's examples/synapses/STDP.py: 1000 Poisson
    inputs at 15 Hz onto one conductance LIF neuron (taum 10 ms, taue 5 ms, Ee 0 mV,
    vt -54 mV, vr -60 mV, El -74 mV, no refractory period), additive STDP taupre =
    taupost = 20 ms, gmax 0.01, dApre 0.01 gmax, dApost -1.05 dApre, w0 ~ U(0, gmax),
    100 s.  v starts at El (the example leaves it at 0 V, i.e. one spike at t = 0).
W3  10,000 Poisson inputs at 5 Hz all-to-all onto 1,000 W2 neurons (1e7 plastic
    synapses), gmax 0.0028, otherwise W2's rule, 10 s.

NEST specifics (documented in bench/PEERS.md):
  * inputs are parrot_neurons fed by spike_generators (W1) / a poisson_generator
    (W2, W3), since generators cannot be the source of a plastic synapse;
  * stdp_synapse (W1, W2) / stdp_synapse_hom (W3) with lambda = A+ (relative to Wmax),
    alpha = A-/A+, mu_plus = mu_minus = 0 (additive), Wmax = upper bound, tau_plus on
    the synapse and tau_minus on the postsynaptic neuron;
  * NEST treats the whole synaptic delay d as dendritic: the synapse sees the
    postsynaptic spike at t_post + d.  W1 uses d = dt = 0.1 ms and emits every
    postsynaptic spike d earlier, so that the effective delta_t is exact;
  * NEST applies potentiation lazily at the next presynaptic spike, so W1 adds one
    extra presynaptic "flush" spike 2 s after the last pairing (its own depression
    term is exp(-1900/33.7) ~ 1e-25, i.e. nothing);
  * W1's STDP connection targets receptor port 1 of the postsynaptic parrot_neuron,
    which records the spike for STDP but does not repeat it;
  * the W2/W3 neuron is iaf_cond_exp with g_L = 1 nS and C_m = 10 pF (tau_m = 10 ms)
    so that a weight in nS equals Brian2's dimensionless conductance w; t_ref = 0.
"""
import argparse
import json
import os
import sys
import time

T_START = time.perf_counter()

DT_MS = 0.1

# ---- W1 parameters ----
W1_A_PLUS = 0.01
W1_A_MINUS = 0.0105
W1_TAU_PLUS = 16.8  # ms
W1_TAU_MINUS = 33.7  # ms
W1_W0 = 0.5
W1_PAIRS = 60
W1_PERIOD = 1000.0  # ms
W1_DELTAS = list(range(-100, 101, 2))  # 101 values, ms

# ---- W2/W3 parameters (Brian2 examples/synapses/STDP.py) ----
TAUM = 10.0  # ms
TAUE = 5.0  # ms
EE = 0.0  # mV
VT = -54.0  # mV
VR = -60.0  # mV
EL = -74.0  # mV
TAUPRE = 20.0  # ms
TAUPOST = 20.0  # ms
W2 = dict(n_in=1000, n_post=1, rate=15.0, gmax=0.01, duration_ms=100_000.0)
W3 = dict(n_in=10_000, n_post=1000, rate=5.0, gmax=0.0028, duration_ms=10_000.0)
DAPRE_REL = 0.01  # dApre = 0.01 * gmax
DEP_RATIO = 1.05  # dApost = -dApre * 1.05 (taupre == taupost)

# NEST W3: weights are read back for this many postsynaptic neurons (x 10,000 inputs)
NEST_W3_SAMPLE_POST = 20

TARGETS = ("brian2-numpy", "brian2-cython", "brian2-cpp", "nest")


# ---------------------------------------------------------------------------
# W1 helpers
# ---------------------------------------------------------------------------
def w1_spike_times():
    """Per pair i: (pre_times_ms, post_times_ms) following the spec's pairing rule."""
    out = []
    for d in W1_DELTAS:
        pre, post = [], []
        for k in range(W1_PAIRS):
            base = k * W1_PERIOD
            if d >= 0:
                pre.append(base)
                post.append(base + d)
            else:
                post.append(base)
                pre.append(base - d)
        out.append((pre, post))
    return out


def w1_analytic():
    import math

    res = []
    for d in W1_DELTAS:
        if d > 0:
            w = W1_W0 + W1_PAIRS * W1_A_PLUS * math.exp(-d / W1_TAU_PLUS)
        elif d < 0:
            w = W1_W0 - W1_PAIRS * W1_A_MINUS * math.exp(d / W1_TAU_MINUS)
        else:
            w = W1_W0
        res.append(min(1.0, max(0.0, w)))
    return res


def w1_results(weights):
    ana = w1_analytic()
    errs = [abs(a - b) for a, b in zip(weights, ana)]
    i0 = W1_DELTAS.index(0)
    return {
        "delta_t_ms": W1_DELTAS,
        "w": [float(x) for x in weights],
        "w_analytic": ana,
        "max_abs_err": max(errs),
        "max_abs_err_excl0": max(e for i, e in enumerate(errs) if i != i0),
        "err_at_0": errs[i0],
    }


def w1_duration_ms():
    return (W1_PAIRS - 1) * W1_PERIOD + max(abs(d) for d in W1_DELTAS) + 100.0


# ---------------------------------------------------------------------------
# Brian2
# ---------------------------------------------------------------------------
def brian_import(target, threads, seed, build_dir):
    t0 = time.perf_counter()
    import brian2 as b2

    import_s = time.perf_counter() - t0
    b2.prefs.logging.console_log_level = "WARNING"
    info = {"threads": 1, "tmpdir": None}
    if target == "brian2-cpp":
        import tempfile

        if build_dir is None:
            build_dir = tempfile.mkdtemp(prefix="peers_brian2_cpp_")
            info["tmpdir"] = build_dir
        b2.set_device("cpp_standalone", directory=build_dir, build_on_run=True)
        b2.prefs.devices.cpp_standalone.openmp_threads = threads if threads > 1 else 0
        info["threads"] = threads
    elif target == "brian2-cython":
        b2.prefs.codegen.target = "cython"
    else:
        b2.prefs.codegen.target = "numpy"
    b2.defaultclock.dt = DT_MS * b2.ms
    b2.seed(seed)
    return b2, import_s, info


def brian_w1(b2, timers):
    ms = b2.ms
    pairs = w1_spike_times()
    n = len(pairs)
    pre_i, pre_t, post_i, post_t = [], [], [], []
    for i, (pre, post) in enumerate(pairs):
        pre_i += [i] * len(pre)
        pre_t += pre
        post_i += [i] * len(post)
        post_t += post
    t0 = time.perf_counter()
    pre_g = b2.SpikeGeneratorGroup(n, pre_i, pre_t * ms)
    post_g = b2.SpikeGeneratorGroup(n, post_i, post_t * ms)
    S = b2.Synapses(
        pre_g,
        post_g,
        model="""w : 1
                 dapre/dt = -apre / taup : 1 (event-driven)
                 dapost/dt = -apost / taum : 1 (event-driven)""",
        on_pre="""apre += Ap
                  w = clip(w + apost, 0, 1)""",
        on_post="""apost -= Am
                   w = clip(w + apre, 0, 1)""",
        namespace=dict(taup=W1_TAU_PLUS * ms, taum=W1_TAU_MINUS * ms, Ap=W1_A_PLUS, Am=W1_A_MINUS),
    )
    S.connect(j="i", namespace={})
    S.w = W1_W0
    net = b2.Network(pre_g, post_g, S)
    t1 = time.perf_counter()
    net.run(w1_duration_ms() * ms, namespace={})
    t2 = time.perf_counter()
    w = [0.0] * n
    for i, j, wij in zip(S.i[:], S.j[:], S.w[:]):
        w[int(i)] = float(wij)
    timers.update(setup_s=t1 - t0, sim_s=t2 - t1, wall_s=time.perf_counter() - t0)
    return w1_results(w)


def brian_song(b2, p, timers):
    ms, mV, Hz = b2.ms, b2.mV, b2.Hz
    gmax = p["gmax"]
    dApre = DAPRE_REL * gmax
    dApost = -dApre * TAUPRE / TAUPOST * DEP_RATIO
    ns = dict(
        taum=TAUM * ms, taue=TAUE * ms, Ee=EE * mV, vt=VT * mV, vr=VR * mV, El=EL * mV,
        taupre=TAUPRE * ms, taupost=TAUPOST * ms, gmax=gmax, dApre=dApre, dApost=dApost,
    )
    t0 = time.perf_counter()
    inp = b2.PoissonGroup(p["n_in"], rates=p["rate"] * Hz)
    neurons = b2.NeuronGroup(
        p["n_post"],
        """dv/dt = (ge * (Ee-v) + El - v) / taum : volt
           dge/dt = -ge / taue : 1""",
        threshold="v>vt", reset="v = vr", method="euler", namespace=ns,
    )
    neurons.v = EL * mV
    S = b2.Synapses(
        inp, neurons,
        """w : 1
           dApre/dt = -Apre / taupre : 1 (event-driven)
           dApost/dt = -Apost / taupost : 1 (event-driven)""",
        on_pre="""ge += w
                  Apre += dApre
                  w = clip(w + Apost, 0, gmax)""",
        on_post="""Apost += dApost
                   w = clip(w + Apre, 0, gmax)""",
        namespace=ns,
    )
    S.connect()
    S.w = "rand() * gmax"
    spk = b2.SpikeMonitor(neurons)
    net = b2.Network(inp, neurons, S, spk)
    t1 = time.perf_counter()
    net.run(p["duration_ms"] * ms, namespace={})
    t2 = time.perf_counter()
    import numpy as np

    st = np.asarray(spk.t[:] / ms)
    w = np.asarray(S.w[:])
    timers.update(setup_s=t1 - t0, sim_s=t2 - t1, wall_s=time.perf_counter() - t0)
    return st, w


# ---------------------------------------------------------------------------
# NEST
# ---------------------------------------------------------------------------
def nest_import(threads, seed):
    os.environ.setdefault("PYNEST_QUIET", "1")
    t0 = time.perf_counter()
    import nest

    import_s = time.perf_counter() - t0
    if hasattr(nest, "VerbosityLevel"):
        nest.verbosity = nest.VerbosityLevel.ERROR
    else:  # NEST < 3.10
        nest.set_verbosity("M_ERROR")
    nest.ResetKernel()
    nest.set(resolution=DT_MS, local_num_threads=threads, rng_seed=seed, print_time=False)
    return nest, import_s


def nest_w1(nest, timers):
    pairs = w1_spike_times()
    n = len(pairs)
    d = DT_MS  # synaptic (= dendritic) delay of the STDP connection
    t_in = 1.0  # delay generator -> parrot; every time is shifted by OFFSET + t_in
    offset = 1.0  # spike_generator cannot emit at t = 0
    flush = (W1_PAIRS - 1) * W1_PERIOD + 2000.0  # 2 s after the last pairing's earlier spike
    t0 = time.perf_counter()
    gen_pre = nest.Create("spike_generator", n)
    gen_post = nest.Create("spike_generator", n)
    for i, (pre, post) in enumerate(pairs):
        # times are exact multiples of dt; round() guards against float noise
        gen_pre[i].spike_times = [round(t + offset, 1) for t in pre] + [round(flush + offset, 1)]
        gen_post[i].spike_times = [round(t + offset - d, 1) for t in post]
    par_pre = nest.Create("parrot_neuron", n)
    par_post = nest.Create("parrot_neuron", n, params={"tau_minus": W1_TAU_MINUS})
    nest.Connect(gen_pre, par_pre, "one_to_one", {"delay": t_in})
    nest.Connect(gen_post, par_post, "one_to_one", {"delay": t_in})
    nest.CopyModel(
        "stdp_synapse", "stdp_w1",
        {"tau_plus": W1_TAU_PLUS, "lambda": W1_A_PLUS, "alpha": W1_A_MINUS / W1_A_PLUS,
         "mu_plus": 0.0, "mu_minus": 0.0, "Wmax": 1.0},
    )
    nest.Connect(par_pre, par_post, "one_to_one",
                 {"synapse_model": "stdp_w1", "weight": W1_W0, "delay": d, "receptor_type": 1})
    t1 = time.perf_counter()
    nest.Simulate(flush + offset + t_in + 10.0)
    t2 = time.perf_counter()
    conns = nest.GetConnections(par_pre, par_post, synapse_model="stdp_w1")
    st = conns.get(["source", "weight"])
    first = par_pre[0].global_id
    w = [0.0] * n
    for s, wt in zip(st["source"], st["weight"]):
        w[s - first] = wt
    timers.update(setup_s=t1 - t0, sim_s=t2 - t1, wall_s=time.perf_counter() - t0)
    return w1_results(w)


def nest_song(nest, p, timers, hom):
    import numpy as np

    gmax = p["gmax"]
    t0 = time.perf_counter()
    pg = nest.Create("poisson_generator", params={"rate": p["rate"]})
    parrots = nest.Create("parrot_neuron", p["n_in"])
    post = nest.Create(
        "iaf_cond_exp", p["n_post"],
        params={"C_m": TAUM * 1.0, "g_L": 1.0, "E_L": EL, "V_th": VT, "V_reset": VR,
                "t_ref": 0.0, "E_ex": EE, "E_in": -80.0, "tau_syn_ex": TAUE,
                "tau_syn_in": TAUE, "I_e": 0.0, "V_m": EL, "tau_minus": TAUPOST},
    )
    nest.Connect(pg, parrots)  # one generator, independent train per target
    model = "stdp_synapse_hom" if hom else "stdp_synapse"
    sp = {"tau_plus": TAUPRE, "lambda": DAPRE_REL, "alpha": DEP_RATIO * TAUPRE / TAUPOST,
          "mu_plus": 0.0, "mu_minus": 0.0, "Wmax": gmax}
    nest.CopyModel(model, "stdp_song", sp)
    nest.Connect(parrots, post, "all_to_all",
                 {"synapse_model": "stdp_song", "weight": nest.random.uniform(0.0, gmax),
                  "delay": DT_MS})
    sr = nest.Create("spike_recorder")
    nest.Connect(post, sr)
    t1 = time.perf_counter()
    nest.Simulate(p["duration_ms"])
    t2 = time.perf_counter()
    ev = sr.get("events")
    st = np.asarray(ev["times"], dtype=float)
    # SynapseCollection.get() builds one dictionary per connection; for W3's 1e7
    # connections that needs > 20 GB.  So W3 reads the weights of a sample of
    # postsynaptic neurons (NEST_W3_SAMPLE_POST of them, all their inputs).
    sample = post if p["n_post"] <= NEST_W3_SAMPLE_POST else post[:NEST_W3_SAMPLE_POST]
    w = np.asarray(nest.GetConnections(parrots, sample).get("weight"), dtype=float)
    timers.update(setup_s=t1 - t0, sim_s=t2 - t1, wall_s=time.perf_counter() - t0)
    return st, w


# ---------------------------------------------------------------------------
def song_results(workload, p, st, w):
    import numpy as np

    gmax = p["gmax"]
    T = p["duration_ms"]
    n_post = p["n_post"]
    if workload == "W2":
        return {
            "rate_first10s_hz": float(np.sum(st < 10_000.0) / 10.0 / n_post),
            "rate_last10s_hz": float(np.sum(st >= T - 10_000.0) / 10.0 / n_post),
            "frac_w_below_0.1gmax": float(np.mean(w < 0.1 * gmax)),
            "frac_w_above_0.9gmax": float(np.mean(w > 0.9 * gmax)),
            "mean_w_over_gmax": float(np.mean(w) / gmax),
            "n_post_spikes": int(st.size),
            "n_synapses": int(w.size),
        }
    return {
        "mean_rate_hz": float(st.size / (T / 1000.0) / n_post),
        "mean_rate_first1s_hz": float(np.sum(st < 1000.0) / n_post),
        "mean_rate_last1s_hz": float(np.sum(st >= T - 1000.0) / n_post),
        "mean_w": float(np.mean(w)),
        "mean_w_over_gmax": float(np.mean(w) / gmax),
        "n_synapses": int(w.size),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run one benchmark workload in a peer simulator.")
    ap.add_argument("workload", choices=("W1", "W2", "W3"))
    ap.add_argument("--target", required=True, choices=TARGETS)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--duration-ms", type=float, default=None)
    args = ap.parse_args(argv)
    if args.threads < 1:
        ap.error("--threads must be >= 1")
    if args.duration_ms is not None:
        if args.workload == "W1":
            ap.error("--duration-ms is not allowed for W1 (fixed protocol)")
        if args.duration_ms < 10_000.0 and args.workload == "W2":
            ap.error("--duration-ms must be >= 10000 for W2 (first/last 10 s rates)")
        if args.duration_ms <= 1000.0:
            ap.error("--duration-ms must be > 1000")

    # Divert everything written to fd 1 (simulator banners, compiler output,
    # subprocesses) to stderr; the JSON line goes to the saved real stdout.
    sys.stdout.flush()
    real_stdout = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    timers = {}
    out = {"workload": args.workload, "target": args.target, "seed": args.seed}
    if args.duration_ms is not None:
        out["duration_ms"] = args.duration_ms
    if args.target == "nest":
        nest, import_s = nest_import(args.threads, args.seed)
        out["simulator"] = "nest " + nest.__version__
        out["threads"] = args.threads
        if args.workload == "W1":
            res = nest_w1(nest, timers)
        else:
            p = dict(W2 if args.workload == "W2" else W3)
            if args.duration_ms is not None:
                p["duration_ms"] = args.duration_ms
            st, w = nest_song(nest, p, timers, hom=(args.workload == "W3"))
            res = song_results(args.workload, p, st, w)
    else:
        b2, import_s, info = brian_import(args.target, args.threads, args.seed, args.build_dir)
        out["simulator"] = "brian2 " + b2.__version__
        out["threads"] = info["threads"]
        try:
            if args.workload == "W1":
                res = brian_w1(b2, timers)
            else:
                p = dict(W2 if args.workload == "W2" else W3)
                if args.duration_ms is not None:
                    p["duration_ms"] = args.duration_ms
                st, w = brian_song(b2, p, timers)
                res = song_results(args.workload, p, st, w)
        finally:
            if info["tmpdir"]:
                import shutil

                shutil.rmtree(info["tmpdir"], ignore_errors=True)
    out["import_s"] = import_s
    out.update(timers)
    out["process_s"] = time.perf_counter() - T_START
    out["results"] = res
    line = json.dumps(out, separators=(",", ":")) + "\n"
    os.write(real_stdout, line.encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
