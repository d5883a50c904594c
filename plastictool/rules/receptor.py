"""Mechanistic LTP/LTD: AMPA receptors (GluA2) bound in the PSD, driven by PI3K-Akt-mTOR.

The weight of synapse ``(i, j)`` is the number of receptors bound to scaffold slots in its
postsynaptic density (PSD), relative to rest: ``w = w_init * bound / bound_rest``, so
``dw_percent`` is the change of PSD receptors. No single published model chains all the steps;
the model composes well-known pieces (source of each term in brackets). State per synapse:
``ca, pi3k, akt, mtor, pool, free, bound, slots``, the phosphatase activity ``pp`` and the
tag ``tag``; per post neuron the products ``prp``.
Hill function ``H(x; K, n) = x^n / (x^n + K^n)``.

Calcium (dimensionless; 1 = one presynaptic transient at rest) [Graupner & Brunel 2012 for
the linear sum of exponential transients; Shouval, Bear & Cooper 2002 for the NMDA
summation]::

    dca/dt = -ca / tau_ca + sum_pre dc_k delta(t - t_k) + c_post sum_post delta(t - t_l)
    dc_k = c_pre (1 + nmda_gain u / (u + nmda_half))       (NMDA-like, saturating)
    du/dt = -u / tau_nmda + sum_pre delta(t - t_k)          (depolarisation; u before the spike)

``u`` is the summed depolarisation of recent presynaptic spikes that relieves the Mg2+ block:
at 1 Hz each pulse gives ``c_pre``, at 100 Hz at most ``c_pre (1 + nmda_gain)`` (saturation,
no runaway). Post spikes (back-propagating action potentials) add ``c_post`` linearly.

Signals, each activated fast by its input and decaying slowly (``0 <= x <= 1``)::

    dpi3k/dt = k_pi3k H(ca; ca_pi3k, n_pi3k) (1 - pi3k) - pi3k / tau_pi3k
    dakt/dt  = k_akt  H(pi3k; pi3k_akt, n_akt) (1 - akt) - akt / tau_akt
    dmtor/dt = k_mtor H(akt; akt_mtor, n_mtor) (1 - mtor) - mtor / tau_mtor
    dpp/dt   = k_pp   H(ca; ca_pp, n_pp) (1 - pp) - pp / tau_pp
    E = H(pp; pp_half, n_pp_effect)                          (phosphatase effect)

[PI3K is complexed with AMPA receptors and activated by NMDA receptors, Man et al. 2003; its
activity (PIP3) is needed for tens of minutes to express LTP, Sanna et al. 2002, Arendt et al.
2010; PI3K -> Akt -> mTOR in late LTP, Cammalleri et al. 2003, Tang et al. 2002; calcineurin /
PP1 are activated by moderate calcium and drive LTD, Lisman 1989, Mulkey et al. 1993/1994.]
A high calcium threshold with a steep Hill function makes PI3K a coincidence detector of
tetanic (>= 10 Hz) input; the thresholds of Akt and mTOR keep 1-3 Hz input from recruiting
mTOR; the slow phosphatase variable and its threshold effect ``E`` make 900 pulses at 1 Hz
depress while test pulses at 0.05 Hz do not.

Receptors (numbers per synapse) [exo/endocytic cycling, slot capture and Langmuir binding:
Earnshaw & Bressloff 2006, Lisman & Raghavachari 2006; PI3K-dependent NMDA-triggered
insertion: Man et al. 2003; phosphatase-driven endocytosis in LTD: Beattie et al. 2000;
mTOR-dependent local synthesis: Tang et al. 2002]::

    dpool/dt  = synthesis (1 + syn_gain prp_j tag) - pool / tau_deg - exo pool + endo free
    dfree/dt  = exo pool - endo free - k_on free (slots - bound) + k_off bound
    dbound/dt = k_on free (slots - bound) - k_off bound
    exo  = (1 + exo_gain pi3k) / tau_exo,   endo = (1 + endo_gain E) / tau_endo
    k_off = 1 / tau_off,   k_on = k_off / kd

Slots (PSD-95/Homer scaffold) [new PSD-95 enters potentiated spines after about an hour and
spines grow in late LTP, Bosch et al. 2014; PSD-95 loss and spine shrinkage in LTD, Colledge
et al. 2003, Zhou et al. 2004]::

    dslots/dt = (slots_rest - slots) / tau_slots + slot_growth slots_rest prp_j tag
                - slot_removal E slots

Tagging and capture [Frey & Morris 1997, 1998; Redondo & Morris 2011; one product pool per
neuron with tau_p 60 min: Li et al. 2016, Luboeinski & Tetzlaff 2021]: the products of
mTOR-driven synthesis (new receptors and slot proteins) are made for the whole post neuron j
and captured only by tagged synapses; the tag is set by the synapse's own PI3K signalling::

    dtag/dt = k_tag H(pi3k; pi3k_tag, n_tag) (1 - tag) - tag / tau_tag
    tau_prp dprp_j/dt = sum_i mtor_ij - prp_j          (no production under block: synthesis)

Early LTP stays local. Akt integrates how long PI3K stays high, so three spaced tetani
recruit mTOR and a weak tetanus (21 pulses at 100 Hz) only tags. The products are updated on a
grid of ``prp_step`` (every synapse is brought there; between grid steps the synapses see the
predicted mean of prp). No cross-tagging with LTD (see docs/receptor.md).

Rest (no calcium) is the computed steady state: all signals 0, ``pool = synthesis tau_deg``,
``free = pool tau_endo / tau_exo``, ``slots = slots_rest``, ``bound = slots free / (free + kd)``
(Langmuir, ``bound <= slots``). Without stimulation the synapse stays there for ever.

How the defaults express LTP and LTD: a tetanus switches PI3K on within a second; PI3K speeds
exocytosis so that the intracellular pool moves to the surface and fills empty slots (early
LTP, within minutes); PI3K activity decays over tens of minutes, and Akt and mTOR, recruited
through thresholds, drive synthesis of receptors and of new slots that carry the potentiation
for hours (late LTP). With mTOR blocked the early LTP relaxes as PI3K decays (within 2-3 h).
900 pulses at 1 Hz build up the phosphatase, which speeds endocytosis and removes slots;
the lost slots return only with ``tau_slots``, so the LTD lasts for hours.

Blockable components (``block:``): ``NMDA`` (spikes bring no calcium), ``PI3K``, ``Akt``,
``mTOR`` (rapamycin), ``phosphatase`` (the signal is held at 0 while blocked), ``synthesis``
(anisomycin, for the whole cell: no basal receptor synthesis and no new products; products
already made are still captured),
``exocytosis``, ``endocytosis`` (the flux is 0). Blocks apply per phase.

Numerics (event-driven, exact where possible): each synapse is integrated from its last update
to the next pre or post spike that reaches it (and to the end of every ``advance`` call): one
piece for the calcium transient (until calcium falls below 1e-3 of the lower of ``ca_pi3k`` and
``ca_pp``), then equal pieces of at most ``substep``. In a piece calcium decays exactly and the
PI3K and phosphatase drives are the exact time integrals of their Hill functions
(``tau_ca / n * ln((c0^n + K^n) / (c1^n + K^n))``); each signal relaxes exactly under its mean
drive; Akt and mTOR are driven by the piece mean of the upstream signal; the slots relax
exactly; the receptors take a Strang splitting (pool half step, Langmuir binding in closed
form, pool half step) of exactly solved sub-flows, which is stable for any rate and conserves
``pool + free + bound`` without synthesis and degradation. Results do not depend on ``dt``
beyond spike-time rounding, and change by < 0.01 percentage points between ``substep`` 0.1 s
and 5 s. Cost: about 1 ms of CPU per synapse and simulated hour with clamped neurons
(4 h of the HFS experiment: 0.01 s for one synapse, 4 s for 1000).

Calibration (defaults; one synapse, presynaptic stimulation only, test pulses at 0.05 Hz in
baseline and follow-up; see docs/receptor.md): HFS (3 x 100 Hz for 1 s, 10 min apart)
+64 % at 30 min, +62 % at 4 h; with mTOR blocked +55 % at 30 min, +2 % at 4 h; with PI3K
blocked 0 %; LFS (900 at 1 Hz) -24 % at 30-120 min; 900 pulses at 0.5-5 Hz -25 to -20 %,
10 Hz -8 %, 20-100 Hz +14 to +25 %; exocytosis blocked -40 % at 10 min;
endocytosis blocked +35 % at 10 min, +63 % at 60 min; 4 h of test pulses +0.04 %. Every band
holds when any single parameter changes by 20 %.

References: Man H-Y et al. (2003) Neuron 38:611. Sanna PP et al. (2002) J Neurosci 22:3359.
Tang SJ et al. (2002) PNAS 99:467. Cammalleri M et al. (2003) PNAS 100:14368. Arendt KL et al.
(2010) Nat Neurosci 13:36. Earnshaw BA & Bressloff PC (2006) J Neurosci 26:12362. Luscher C
et al. (1999) Neuron 24:649. Graupner M & Brunel N (2012) PNAS 109:3991. Shouval HZ, Bear MF
& Cooper LN (2002) PNAS 99:10831. Dudek SM & Bear MF (1992) PNAS 89:4363. Lisman J (1989) PNAS
86:9574. Mulkey RM et al. (1994) Nature 369:486. Beattie EC et al. (2000) Nat Neurosci 3:1291.
Lisman J & Raghavachari S (2006) Sci STKE 356:re11. Bosch M et al. (2014) Neuron 82:444.
Colledge M et al. (2003) Neuron 40:595. Zhou Q, Homma KJ & Poo M-M (2004) Neuron 44:749.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..core.jit import jit
from ..core.net import LIF, lif_step, next_event_step, post_events, pre_spikes, room_for_post
from ..core.release import release_row
from .base import ONE, RATE, TIME, Param, RuleSpec, StateVar

# indices into the ``blocked`` flags (SPEC.blockable order)
NMDA, PI3K, AKT, MTOR, SYNTHESIS, EXOCYTOSIS, ENDOCYTOSIS, PHOSPHATASE = range(8)

CA_SMALL_FRACTION = 1e-3  # a calcium transient is "over" below this fraction of its thresholds
FLUSH = 1e-30  # calcium below this is set to 0 (no subnormal arithmetic; its drives are ~0)
MIN = 60e3  # ms
HOUR = 3600e3


def _t(name, default, doc):
    return Param(name, TIME, default, doc, lo=0.0, lo_open=True)


def _pos(name, default, doc):
    return Param(name, ONE, default, doc, lo=0.0, lo_open=True)


SPEC = RuleSpec(
    kind="receptor",
    title="mechanistic LTP/LTD: PI3K-Akt-mTOR, GluA2 synthesis, exo/endocytosis, PSD slots",
    citation="composite model (Man et al. 2003; Sanna et al. 2002; Tang et al. 2002; "
    "Earnshaw & Bressloff 2006; Graupner & Brunel 2012; Shouval et al. 2002)",
    params=(
        # calcium
        _t("tau_ca", 20.0, "decay of spine calcium (Graupner & Brunel 2012; Sabatini et al. 2002)"),
        Param("c_pre", ONE, 1.0, "calcium of one presynaptic spike at rest (the unit of calcium)", lo=0.0),
        Param("c_post", ONE, 1.0, "calcium of one postsynaptic spike (back-propagating AP; Sabatini et al. 2002)", lo=0.0),
        Param("nmda_gain", ONE, 3.0, "largest NMDA (Mg2+ unblock) boost of c_pre at high frequency (Shouval et al. 2002)", lo=0.0),
        _t("tau_nmda", 100.0, "decay of the depolarisation trace u (NMDA current decay, ~100 ms)"),
        _pos("nmda_half", 1.0, "u at half the NMDA boost (saturation of the summation)"),
        # PI3K
        Param("k_pi3k", RATE, 3.0, "PI3K activation rate at saturating calcium: a 1 s tetanus switches it on (Man et al. 2003)", lo=0.0),
        _pos("ca_pi3k", 3.2, "calcium at half-activation of PI3K (above 10 Hz summation, LTP threshold)"),
        _pos("n_pi3k", 8.0, "Hill exponent of PI3K activation by calcium (coincidence detection)"),
        _t("tau_pi3k", 20 * MIN, "decay of PI3K/PIP3 activity: early-LTP memory (Sanna et al. 2002; Arendt et al. 2010)"),
        # Akt
        Param("k_akt", RATE, 0.001, "Akt activation rate at saturating PI3K: Akt integrates how long PI3K stays high (about 17 min), so late LTP needs repeated spaced tetani (Sanna et al. 2002; Frey & Morris 1997)", lo=0.0),
        _pos("pi3k_akt", 0.6, "PI3K activity at half-activation of Akt (threshold: a weak tetanus stays below it)"),
        _pos("n_akt", 8.0, "Hill exponent of Akt activation by PI3K"),
        _t("tau_akt", 45 * MIN, "decay of Akt activity"),
        # mTOR
        Param("k_mtor", RATE, 0.0025, "mTOR activation rate at saturating Akt (Cammalleri et al. 2003)", lo=0.0),
        _pos("akt_mtor", 0.5, "Akt activity at half-activation of mTOR (threshold: 1-3 Hz does not recruit mTOR)"),
        _pos("n_mtor", 6.0, "Hill exponent of mTOR activation by Akt (one tetanus recruits little mTOR, three spaced ones recruit it)"),
        _t("tau_mtor", 90 * MIN, "decay of mTOR activity (rapamycin-sensitive synthesis for hours; Tang et al. 2002)"),
        # phosphatase
        Param("k_pp", RATE, 0.15, "phosphatase (calcineurin/PP1) activation rate at saturating calcium (Mulkey et al. 1994)", lo=0.0),
        _pos("ca_pp", 1.0, "calcium at half-activation of the phosphatase (one transient: high affinity, Lisman 1989)"),
        _pos("n_pp", 1.0, "Hill exponent of phosphatase activation by calcium"),
        _t("tau_pp", 15 * MIN, "decay of phosphatase activity (integrates 900 pulses at 1 Hz)"),
        _pos("pp_half", 0.4, "phosphatase activity at half its effect E on endocytosis and slots"),
        _pos("n_pp_effect", 6.0, "Hill exponent of the phosphatase effect E (test pulses stay below it)"),
        # receptors
        Param("synthesis", RATE, 100.0 / (14 * 3600.0), "basal GluA2 synthesis into the pool, receptors per second (turnover ~1 day)", lo=0.0),
        Param("syn_gain", ONE, 4.0, "captured mTOR-driven receptor synthesis: synthesis syn_gain prp tag on top of the basal synthesis (Tang et al. 2002)", lo=0.0),
        _t("tau_deg", 14 * HOUR, "degradation time of pool receptors (receptor half-life ~1 day)"),
        _t("tau_exo", 20 * MIN, "basal exocytosis time of pool receptors (constitutive cycling 10-30 min)"),
        Param("exo_gain", ONE, 50.0, "PI3K-driven speed-up of exocytosis: (1 + exo_gain pi3k) (Man et al. 2003)", lo=0.0),
        _t("tau_endo", 4 * MIN, "basal endocytosis time of free surface receptors (Earnshaw & Bressloff 2006)"),
        Param("endo_gain", ONE, 1.0, "phosphatase-driven speed-up of endocytosis: (1 + endo_gain E) (Beattie et al. 2000)", lo=0.0),
        _pos("kd", 20.0, "dissociation constant of receptor-slot binding (free receptors)"),
        _t("tau_off", 1 * MIN, "lifetime of a receptor bound to a slot (PSD exchange in minutes)"),
        # slots
        _pos("slots_rest", 100.0, "scaffold slots (PSD-95/Homer) at rest (tens to hundreds of receptors; Nusser et al. 1998)"),
        _t("tau_slots", 36 * HOUR, "relaxation of slots to slots_rest (spine structure lasts days)"),
        Param("slot_growth", RATE, 0.75 / 3600.0, "capture of new slot proteins, fraction of slots_rest per second at prp = tag = 1 (Bosch et al. 2014)", lo=0.0),
        Param("slot_removal", RATE, 1.15 / 3600.0, "phosphatase-driven slot removal per second at E = 1 (Colledge et al. 2003; Zhou et al. 2004)", lo=0.0),
        # tagging and capture (Frey & Morris 1997; Redondo & Morris 2011)
        Param("k_tag", RATE, 0.05, "tag setting rate at saturating PI3K: a tetanus sets the tag within a minute (Frey & Morris 1997: the tag is set by the weak tetanus itself)", lo=0.0),
        _pos("pi3k_tag", 0.1, "PI3K activity at half-setting of the tag (assumption: below the Akt threshold, so a weak tetanus tags without recruiting mTOR)"),
        _pos("n_tag", 4.0, "Hill exponent of tag setting by PI3K (assumption: test pulses set no tag)"),
        _t("tau_tag", 90 * MIN, "decay of the tag: it lasts about 1-2 h (Frey & Morris 1998; Redondo & Morris 2011)"),
        _t("tau_prp", 60 * MIN, "lifetime of the plasticity-related products of the cell (tau_p 60 min: Li et al. 2016, Luboeinski & Tetzlaff 2021)"),
        # numerics
        _t("prp_step", 60e3, "interval at which the products of each post neuron are updated from its synapses (numerics; error second order in prp_step / tau_prp)"),
        _t("substep", 1000.0, "longest internal step of the slow variables (exact exponentials; results change < 0.01 % up to 5 s)"),
    ),
    state=(
        StateVar("ca", "syn", "spine calcium (1 = one presynaptic transient at rest)"),
        StateVar("pi3k", "syn", "PI3K/PIP3 activity (0..1)"),
        StateVar("akt", "syn", "Akt activity (0..1)"),
        StateVar("mtor", "syn", "mTOR activity (0..1)"),
        StateVar("pool", "syn", "intracellular GluA2 pool (receptors)"),
        StateVar("free", "syn", "free surface receptors (receptors)"),
        StateVar("bound", "syn", "receptors bound to PSD slots; w = w_init * bound / bound_rest"),
        StateVar("slots", "syn", "PSD scaffold slots (PSD-95/Homer)"),
        StateVar("pp", "syn", "phosphatase (calcineurin/PP1) activity (0..1)"),
        StateVar("tag", "syn", "synaptic tag (0..1): set by the synapse's own PI3K signalling, needed to capture products"),
        StateVar("prp", "post", "plasticity-related products of the post neuron (mTOR-driven synthesis of all its synapses)"),
    ),
    blockable=("NMDA", "PI3K", "Akt", "mTOR", "synthesis", "exocytosis", "endocytosis", "phosphatase"),
    neurons=("clamped", "lif"),
    weight_from_state=True,
)

# kernel coefficients, in the order of the array Params.k (times in ms, rates per ms)
_K = (
    "tau_ca", "c_pre", "c_post", "nmda_gain", "tau_nmda", "nmda_half",
    "k_pi3k", "ca_pi3k", "n_pi3k", "tau_pi3k",
    "k_akt", "pi3k_akt", "n_akt", "tau_akt",
    "k_mtor", "akt_mtor", "n_mtor", "tau_mtor",
    "k_pp", "ca_pp", "n_pp", "tau_pp", "pp_half", "n_pp_effect",
    "syn0", "syn_gain", "k_deg", "k_exo", "exo_gain", "k_endo", "endo_gain", "k_on", "k_off",
    "slots_rest", "k_slots", "slot_growth", "slot_removal", "h_max", "ca_small",
    "k_tag", "pi3k_tag", "n_tag", "tau_tag", "k_prp",
)
(TAU_CA, C_PRE, C_POST, NMDA_GAIN, TAU_NMDA, NMDA_HALF,
 K_PI3K, CA_PI3K, N_PI3K, TAU_PI3K,
 K_AKT, PI3K_AKT, N_AKT, TAU_AKT,
 K_MTOR, AKT_MTOR, N_MTOR, TAU_MTOR,
 K_PP, CA_PP, N_PP, TAU_PP, PP_HALF, N_PP_EFFECT,
 SYN0, SYN_GAIN, K_DEG, K_EXO, EXO_GAIN, K_ENDO, ENDO_GAIN, K_ON, K_OFF,
 SLOTS_REST, K_SLOTS, SLOT_GROWTH, SLOT_REMOVAL, H_MAX, CA_SMALL,
 K_TAG, PI3K_TAG, N_TAG, TAU_TAG, K_PRP) = range(len(_K))

# columns of State.x, in SPEC.state order (the per-synapse variables)
CA, PI3K_X, AKT_X, MTOR_X, POOL, FREE, BOUND, SLOTS, PP, TAG = range(10)
N_X = 10
STATE_NAMES = tuple(sv.name for sv in SPEC.state if sv.shape == "syn")


class Params(NamedTuple):
    dt: float
    k: np.ndarray  # float64[len(_K)] kernel coefficients (see _K)
    w0: np.ndarray  # float64[n_pre, n_post] w_init
    bound_rest: float
    pool_rest: float
    free_rest: float
    slots_rest: float
    tau_ca: float
    grid: int  # steps between the updates of the cell-wide products (prp_step / dt, at least 1)


class State(NamedTuple):
    x: np.ndarray  # float64[n_pre * n_post, 10]: ca, pi3k, akt, mtor, pool, free, bound, slots, pp, tag
    t: np.ndarray  # int64[n_pre * n_post]: the step each synapse was brought to (row-major)
    u: np.ndarray  # float64[n_pre] depolarisation trace right after the last pre spike ...
    t_u: np.ndarray  # int64[n_pre] ... at this step
    prp: np.ndarray  # float64[n_post] products of each post neuron (held between grid steps)
    prod: np.ndarray  # float64[n_post] integral of sum_i mtor_ij (ms) since the last grid step
    prp_use: np.ndarray  # float64[n_post] prp the synapses see until the next grid step (see grid_step)
    g_last: np.ndarray  # int64[1] the last grid step at which prp was updated


def _values(values):
    return {p.name: float(values[p.name]) if p.name in values else float(p.default) for p in SPEC.params}


def resting_state(values):
    """The steady state without calcium: (pool, free, bound, slots); the signals are zero.

    ``pool = synthesis tau_deg`` (synthesis = degradation), ``free = pool tau_endo / tau_exo``
    (exocytosis = endocytosis), ``slots = slots_rest`` and Langmuir binding
    ``bound = slots free / (free + kd)`` (binding = unbinding).
    """
    v = _values(values)
    pool = v["synthesis"] * 1e-3 * v["tau_deg"]
    free = pool * v["tau_endo"] / v["tau_exo"]
    slots = v["slots_rest"]
    bound = slots * free / (free + v["kd"])
    return pool, free, bound, slots


def coefficients(values) -> np.ndarray:
    v = _values(values)
    k_off = 1.0 / v["tau_off"]
    c = {
        "tau_ca": v["tau_ca"], "c_pre": v["c_pre"], "c_post": v["c_post"],
        "nmda_gain": v["nmda_gain"], "tau_nmda": v["tau_nmda"], "nmda_half": v["nmda_half"],
        "k_pi3k": v["k_pi3k"] * 1e-3, "ca_pi3k": v["ca_pi3k"], "n_pi3k": v["n_pi3k"], "tau_pi3k": v["tau_pi3k"],
        "k_akt": v["k_akt"] * 1e-3, "pi3k_akt": v["pi3k_akt"], "n_akt": v["n_akt"], "tau_akt": v["tau_akt"],
        "k_mtor": v["k_mtor"] * 1e-3, "akt_mtor": v["akt_mtor"], "n_mtor": v["n_mtor"], "tau_mtor": v["tau_mtor"],
        "k_pp": v["k_pp"] * 1e-3, "ca_pp": v["ca_pp"], "n_pp": v["n_pp"], "tau_pp": v["tau_pp"],
        "pp_half": v["pp_half"], "n_pp_effect": v["n_pp_effect"],
        "syn0": v["synthesis"] * 1e-3, "syn_gain": v["syn_gain"], "k_deg": 1.0 / v["tau_deg"],
        "k_exo": 1.0 / v["tau_exo"], "exo_gain": v["exo_gain"],
        "k_endo": 1.0 / v["tau_endo"], "endo_gain": v["endo_gain"],
        "k_on": k_off / v["kd"], "k_off": k_off,
        "slots_rest": v["slots_rest"], "k_slots": 1.0 / v["tau_slots"],
        "slot_growth": v["slot_growth"] * 1e-3, "slot_removal": v["slot_removal"] * 1e-3,
        "h_max": v["substep"],
        "ca_small": CA_SMALL_FRACTION * min(v["ca_pi3k"], v["ca_pp"]),
        "k_tag": v["k_tag"] * 1e-3, "pi3k_tag": v["pi3k_tag"], "n_tag": v["n_tag"], "tau_tag": v["tau_tag"],
        "k_prp": 1.0 / v["tau_prp"],
    }
    return np.array([c[name] for name in _K], dtype=np.float64)


def build(values, ctx):
    v = _values(values)
    pool, free, bound, slots = resting_state(v)
    pr = Params(
        dt=float(ctx.dt),
        k=coefficients(v),
        w0=np.array(ctx.w, dtype=np.float64, copy=True),
        bound_rest=bound,
        pool_rest=pool,
        free_rest=free,
        slots_rest=slots,
        tau_ca=v["tau_ca"],
        grid=max(1, int(round(v["prp_step"] / float(ctx.dt)))),
    )
    n_syn = ctx.n_pre * ctx.n_post
    x = np.zeros((n_syn, N_X))
    x[:, POOL] = pool
    x[:, FREE] = free
    x[:, BOUND] = bound
    x[:, SLOTS] = slots
    st = State(x=x, t=np.zeros(n_syn, dtype=np.int64), u=np.zeros(ctx.n_pre), t_u=np.zeros(ctx.n_pre, dtype=np.int64),
               prp=np.zeros(ctx.n_post), prod=np.zeros(ctx.n_post), prp_use=np.zeros(ctx.n_post), g_last=np.zeros(1, dtype=np.int64))
    return pr, st


def structure_changed(pr, st, w, formed, eliminated, w_new, step):
    """``synapses.structure`` (core/structure.py). The weight is ``w0 * bound / bound_rest``, so an
    absent synapse is one with scale ``w0 = 0``: it transmits nothing and reads out as 0, and
    ``advance`` gives it no calcium (its ``present`` hook), so it stays at rest and adds nothing
    to the cell's products. Elimination follows the receptor content through ``w``. Eliminated
    and new synapses are set to the resting state (no calcium or signals, no tag; pool, free,
    bound receptors and slots at rest) at step ``step``; a new one is scaled to ``w_new``.
    ``formed``: flat indices; ``eliminated``: flat indices or a boolean mask."""
    w0 = pr.w0.reshape(-1)
    x = st.x
    for sel in (eliminated, formed):
        x[sel] = 0.0
        x[sel, POOL] = pr.pool_rest
        x[sel, FREE] = pr.free_rest
        x[sel, BOUND] = pr.bound_rest
        x[sel, SLOTS] = pr.slots_rest
        st.t[sel] = step
    w0[eliminated] = 0.0
    w0[formed] = w_new


def probe(st, pr, name, step):
    """A state variable, shape (n_pre, n_post) (``prp``: (n_post,)). ``advance`` leaves every
    synapse at the step it reached, so the slow variables are read as they are; calcium is
    decayed to ``step``; ``prp`` is its value at the last grid step (at most ``prp_step`` old)."""
    n_pre, n_post = pr.w0.shape
    if name == "prp":
        return st.prp.copy()
    col = STATE_NAMES.index(name)
    out = st.x[:, col].copy()
    if col == CA:
        out *= np.exp(-(step - st.t) * pr.dt / pr.tau_ca)
    return out.reshape(n_pre, n_post)


def record_state(st, pr, name):
    """For the kernels' own recording (``core.record.state_reads``): the arrays read at each
    sample and ``probe``'s arithmetic over the samples (the same values, bit for bit)."""
    if name == "prp":
        return ((st.prp, None, "post", 1, 0),), _as_read
    if name not in STATE_NAMES:
        return None
    col = STATE_NAMES.index(name)
    x = st.x.reshape(-1)  # (a view: synapse s, variable c at s * N_X + c)
    if col != CA:
        return ((x, None, "syn", N_X, col),), _as_read

    def ca(F, T, steps, dt):
        return F[0] * np.exp(-(steps - T[1]) * pr.dt / pr.tau_ca)

    return ((x, None, "syn", N_X, col), (None, st.t, "syn", 1, 0)), ca


def _as_read(F, T, steps, dt):
    return F[0]


# ---------------------------------------------------------------------------------------------
# kernels


@jit(inline=True)
def hill(x, k, n):
    """x^n / (x^n + k^n), 0 for x <= 0."""
    if x <= 0.0:
        return 0.0
    a = (x / k) ** n
    if a > 1e300:
        return 1.0
    return a / (1.0 + a)


@jit(inline=True)
def log1p_pow(c, k, n):
    """ln(1 + (c/k)^n), also where (c/k)^n overflows."""
    a = (c / k) ** n
    if a < 1e100:
        return math.log1p(a)
    return n * math.log(c / k) + math.log1p(1.0 / a)


@jit(inline=True)
def hill_integral(c0, c1, k, n, tau):
    """Integral over time of hill(c(t), k, n) while c decays exponentially (tau) from c0 to c1:
    ``tau / n * ln((c0^n + k^n) / (c1^n + k^n))``."""
    if c0 <= 0.0:
        return 0.0
    a0 = (c0 / k) ** n
    if a0 < 1e100:
        a1 = (c1 / k) ** n
        return tau / n * math.log1p((a0 - a1) / (1.0 + a1))
    return tau / n * (log1p_pow(c0, k, n) - log1p_pow(c1, k, n))


@jit(inline=True)
def phi1(z):
    """(1 - exp(-z)) / z for z >= 0 (1 at z = 0), accurate for small z."""
    if z < 1e-3:
        return 1.0 - z * (0.5 - z * (1.0 / 6.0 - z * (1.0 / 24.0)))
    return -math.expm1(-z) / z


@jit(inline=True)
def relax(x0, a, tau, h):
    """dx/dt = a (1 - x) - x / tau over h with constant a, exactly: (x(h), mean of x over h)."""
    if a == 0.0 and x0 == 0.0:
        return 0.0, 0.0
    lam = a + 1.0 / tau
    xi = a / lam
    z = lam * h
    f = phi1(z)
    return xi + (x0 - xi) * (1.0 - z * f), xi + (x0 - xi) * f


@jit(inline=True)
def langmuir(f, b, s, k_on, k_off, h):
    """db/dt = k_on f (s - b) - k_off b with f + b conserved, exactly over h: (f, b).

    With tot = f + b the right side is k_on (b - r)(b - r') with roots r <= min(tot, s) (stable)
    and r' = r + q >= max(tot, s); y = b - r obeys dy/dt = k_on y (y - q), solved in closed form.
    """
    tot = f + b
    kd = k_off / k_on
    d = tot - s
    q = math.sqrt(d * d + 2.0 * kd * (tot + s) + kd * kd)
    r = 2.0 * tot * s / (tot + s + kd + q)
    y0 = b - r
    e = math.exp(-k_on * q * h)
    b1 = r + y0 * q * e / (q - y0 * (1.0 - e))
    if b1 < 0.0:
        b1 = 0.0
    elif b1 > tot:
        b1 = tot
    return tot - b1, b1


@jit(inline=True)
def pool_step(p, f, sg, k_deg, e_deg, e, n, e_ex):
    """Synthesis and degradation of the pool, then the exchange pool <-> free surface
    (exocytosis e, endocytosis n), each exact over a step h: (pool, free).
    ``e_deg = exp(-k_deg h)``, ``e_ex = exp(-(e + n) h)``; with ``k_deg = 0``, ``e_deg`` is ``h``."""
    if k_deg > 0.0:
        ps = sg / k_deg
        p = ps + (p - ps) * e_deg
    else:
        p = p + sg * e_deg
    lam = e + n
    if lam > 0.0:
        tot = p + f
        peq = n * tot / lam
        p = peq + (p - peq) * e_ex
        f = tot - p
    return p, f


@jit
def bring(x, t, k, syn, s, dt, blocked, prp, prod, j):
    """Integrate synapse ``syn`` (row of x, on post neuron ``j``) from step t[syn] to step s.

    The products ``prp[j]`` of the cell are held constant (the grid step updates them);
    the synapse's mTOR-driven synthesis over the interval is added to ``prod[j]``.

    The interval is cut into pieces of at most ``substep``: one for the calcium transient (until
    calcium falls below 1e-3 of the lower of its two thresholds), then equal ones. In a piece,
    calcium decays
    exactly and the drives of PI3K and the phosphatase are its exact time integrals of the Hill
    functions; each signal relaxes exactly under its mean drive; Akt and mTOR are driven by the
    mean of the upstream signal over the piece; the slots relax exactly; the receptors take a
    Strang splitting (pool half-step, Langmuir binding full step, pool half-step) of exactly
    solved sub-flows, with the piece means of the signals and of the slots.
    """
    t0 = t[syn]
    if s <= t0:
        return
    span = (s - t0) * dt
    h_max = k[H_MAX]
    tau_ca = k[TAU_CA]
    c = x[syn, CA]
    # a calcium transient gets a piece of its own (until it falls below ca_small), so that its
    # drive is not spread over a long piece; the rest is cut into equal pieces <= substep
    h_first = 0.0
    if c > k[CA_SMALL]:
        h_first = min(tau_ca * math.log(c / k[CA_SMALL]), h_max, span)
    rest = span - h_first
    n_rest = 0
    h_rest = 0.0
    if rest > 1e-9 * span:
        n_rest = int(math.ceil(rest / h_max))
        h_rest = rest / n_rest
    npieces = n_rest + (1 if h_first > 0.0 else 0)
    dec_rest = math.exp(-h_rest / tau_ca)
    b_pi3k = blocked[PI3K] != 0
    b_akt = blocked[AKT] != 0
    b_mtor = blocked[MTOR] != 0
    b_syn = blocked[SYNTHESIS] != 0
    b_exo = blocked[EXOCYTOSIS] != 0
    b_endo = blocked[ENDOCYTOSIS] != 0
    b_pp = blocked[PHOSPHATASE] != 0
    xp = x[syn, PI3K_X]
    xa = x[syn, AKT_X]
    xm = x[syn, MTOR_X]
    pool = x[syn, POOL]
    free = x[syn, FREE]
    bound = x[syn, BOUND]
    slots = x[syn, SLOTS]
    xn = x[syn, PP]
    xt = x[syn, TAG]
    p_j = prp[j]
    made = 0.0
    slots_rest = k[SLOTS_REST]
    k_slots = k[K_SLOTS]
    for piece in range(npieces):
        if piece == 0 and h_first > 0.0:
            h = h_first
            c1 = c * math.exp(-h / tau_ca)
        else:
            h = h_rest
            c1 = c * dec_rest
        half = 0.5 * h
        if c1 < FLUSH:
            c1 = 0.0
        # signals: activated by their input, decaying with their own time constant
        if b_pi3k:
            xp = 0.0
            mp = 0.0
        else:
            drive = k[K_PI3K] * hill_integral(c, c1, k[CA_PI3K], k[N_PI3K], tau_ca) / h
            xp, mp = relax(xp, drive, k[TAU_PI3K], h)
        if b_pp:
            xn = 0.0
            mn = 0.0
        else:
            drive = k[K_PP] * hill_integral(c, c1, k[CA_PP], k[N_PP], tau_ca) / h
            xn, mn = relax(xn, drive, k[TAU_PP], h)
        if b_akt:
            xa = 0.0
            ma = 0.0
        else:
            xa, ma = relax(xa, k[K_AKT] * hill(mp, k[PI3K_AKT], k[N_AKT]), k[TAU_AKT], h)
        if b_mtor:
            xm = 0.0
            mm = 0.0
        else:
            xm, mm = relax(xm, k[K_MTOR] * hill(ma, k[AKT_MTOR], k[N_MTOR]), k[TAU_MTOR], h)
        # tag: set by the synapse's own PI3K signalling, decays with tau_tag
        xt, mt = relax(xt, k[K_TAG] * hill(mp, k[PI3K_TAG], k[N_TAG]), k[TAU_TAG], h)
        if not b_syn:  # mTOR-driven synthesis feeds the products of the cell
            made += mm * h
        cap = p_j * mt  # products captured by the tag
        c = c1
        effect = 0.0 if b_pp else hill(mn, k[PP_HALF], k[N_PP_EFFECT])
        # slots: relaxation to slots_rest, captured slot proteins, phosphatase-driven removal
        grow = k_slots * slots_rest + k[SLOT_GROWTH] * slots_rest * cap
        loss = k_slots + k[SLOT_REMOVAL] * effect
        s_inf = grow / loss
        z = loss * h
        f = phi1(z)
        s_mean = s_inf + (slots - s_inf) * f
        slots = s_inf + (slots - s_inf) * (1.0 - z * f)
        # receptors
        sg = k[SYN0] * k[SYN_GAIN] * cap
        if not b_syn:
            sg += k[SYN0]
        e = 0.0 if b_exo else k[K_EXO] * (1.0 + k[EXO_GAIN] * mp)
        n = 0.0 if b_endo else k[K_ENDO] * (1.0 + k[ENDO_GAIN] * effect)
        k_deg = k[K_DEG]
        e_deg = math.exp(-k_deg * half) if k_deg > 0.0 else half
        e_ex = math.exp(-(e + n) * half)
        pool, free = pool_step(pool, free, sg, k_deg, e_deg, e, n, e_ex)
        free, bound = langmuir(free, bound, s_mean, k[K_ON], k[K_OFF], h)
        pool, free = pool_step(pool, free, sg, k_deg, e_deg, e, n, e_ex)
    x[syn, CA] = c
    x[syn, PI3K_X] = xp
    x[syn, AKT_X] = xa
    x[syn, MTOR_X] = xm
    x[syn, POOL] = pool
    x[syn, FREE] = free
    x[syn, BOUND] = bound
    x[syn, SLOTS] = slots
    x[syn, PP] = xn
    x[syn, TAG] = xt
    prod[j] += made
    t[syn] = s


@jit
def sync(w, x, t, k, w0, bound_rest, s, dt, blocked, prp, prod):
    """Bring every synapse to step s and write its weight."""
    n_pre, n_post = w.shape
    for i in range(n_pre):
        for j in range(n_post):
            syn = i * n_post + j
            bring(x, t, k, syn, s, dt, blocked, prp, prod, j)
            w[i, j] = w0[i, j] * x[syn, BOUND] / bound_rest


@jit
def grid_step(w, x, t, k, w0, bound_rest, g, dt, blocked, prp, prod, prp_use, span):
    """Bring every synapse to the grid step g, then update the products of each post neuron
    exactly over the grid interval (``span`` ms) under its mean production:
    ``tau_prp dprp/dt = sum_i mtor_ij - prp``. Until the next grid step the synapses see
    ``prp_use``, the mean of prp over the next interval if the production stays as it was
    (a predictor: the error is second order in ``span / tau``)."""
    sync(w, x, t, k, w0, bound_rest, g, dt, blocked, prp_use, prod)
    z = k[K_PRP] * span
    f = phi1(z)
    for j in range(prp.shape[0]):
        drive = prod[j] / span
        prp[j] = drive + (prp[j] - drive) * (1.0 - z * f)
        prp_use[j] = drive + (prp[j] - drive) * f
        prod[j] = 0.0


def advance(w, net, st, pr, s0, s1, blocked, rel=None, present=None):
    """Advance steps ``s0 <= s < s1`` (``advance_kernel``); ``rel``: the transmitter release
    arrays (``core.release``) or None, so that Numba compiles the kernel without release code;
    ``present`` likewise (``core.structure``: None without synapses.structure)."""
    return advance_kernel(w, net, st, pr, s0, s1, blocked, rel, present)


@jit(entry=True)
def advance_kernel(w, net, st, pr, s0, s1, blocked, rel, present):
    n_pre, n_post = w.shape
    model, dt, cursor = net.model, net.dt, net.cursor
    pre_step, pre_idx, pre_now = net.pre_step, net.pre_idx, net.pre_now
    post_step, post_idx, post_now = net.post_step, net.post_idx, net.post_now
    v, g, ref_until, lif, out_step, out_idx = net.v, net.g, net.ref_until, net.lif, net.out_step, net.out_idx
    x, t, u_pre, t_u = st.x, st.t, st.u, st.t_u
    prp, prod, prp_use, g_last = st.prp, st.prod, st.prp_use, st.g_last
    k, w0, bound_rest = pr.k, pr.w0, pr.bound_rest
    grid = pr.grid
    span = grid * dt
    is_lif = model == LIF
    ca_on = blocked[NMDA] == 0
    c_pre, c_post = k[C_PRE], k[C_POST]
    gain, half, tau_u = k[NMDA_GAIN], k[NMDA_HALF], k[TAU_NMDA]
    s = s0
    while s < s1:
        s_ev = s
        if not is_lif:  # clamped neurons: jump to the next event
            s_ev = next_event_step(pre_step, post_step, cursor, s)
        # grid steps (multiples of grid) up to this event: the cell-wide products are updated
        # there, before the events of that step
        while g_last[0] + grid <= s_ev and g_last[0] + grid <= s1:
            g_last[0] += grid
            grid_step(w, x, t, k, w0, bound_rest, g_last[0], dt, blocked, prp, prod, prp_use, span)
        if not is_lif:
            s = s_ev
            if s >= s1:
                break
        if not room_for_post(cursor, post_now, out_step):
            sync(w, x, t, k, w0, bound_rest, s, dt, blocked, prp_use, prod)
            return s
        if is_lif:
            npost = lif_step(v, g, ref_until, lif, out_step, out_idx, cursor, post_now, s, dt)
        else:
            npost = post_events(post_step, post_idx, cursor, post_now, s)
        npre = pre_spikes(pre_step, pre_idx, cursor, pre_now, s)
        for a in range(npre):  # pre spike: NMDA-like calcium into every synapse of its row
            i = pre_now[a]
            u = u_pre[i] * math.exp(-(s - t_u[i]) * dt / tau_u)
            dc = c_pre * (1.0 + gain * u / (u + half)) if ca_on else 0.0
            for j in range(n_post):
                syn = i * n_post + j
                bring(x, t, k, syn, s, dt, blocked, prp_use, prod, j)
                w[i, j] = w0[i, j] * x[syn, BOUND] / bound_rest
                if rel is None:
                    if is_lif:
                        g[j] += w[i, j]
                if present is None:
                    x[syn, CA] += dc
                else:  # structure hook (core/structure.py): no calcium into an absent synapse
                    x[syn, CA] += dc * present[i, j]
            if rel is not None:  # transmitter release (core.release): the LIF gets w r_n
                release_row(rel, w[i], i, s, 0, n_post)
                if is_lif:
                    amp = rel.amp
                    for j in range(n_post):
                        g[j] += amp[j]
            u_pre[i] = u + 1.0
            t_u[i] = s
        if ca_on:
            for b in range(npost):  # post spike: back-propagating calcium into its column
                j = post_now[b]
                for i in range(n_pre):
                    syn = i * n_post + j
                    bring(x, t, k, syn, s, dt, blocked, prp_use, prod, j)
                    if present is None:
                        x[syn, CA] += c_post
                    else:  # structure hook (core/structure.py): no calcium into an absent synapse
                        x[syn, CA] += c_post * present[i, j]
        s += 1
    while g_last[0] + grid <= s1:  # a grid step at s1 (or skipped by the last event) is done now
        g_last[0] += grid
        grid_step(w, x, t, k, w0, bound_rest, g_last[0], dt, blocked, prp, prod, prp_use, span)
    sync(w, x, t, k, w0, bound_rest, s1, dt, blocked, prp_use, prod)
    return s1
