"""From a YAML document to a validated, typed protocol with every unit resolved.

Layer 1 of 3 (YAML -> typed protocol -> arrays -> kernels). Every error names the file, the
line and the dotted field; unknown keys get a "did you mean" hint. The field tables here are
the single description of the format: validation, ``plastic schema`` and the README's tables
all come from them.
"""

from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from .. import rules as rule_registry
from ..errors import ProtocolError
from .inits import Init
from .units import ONE, RATE, TIME, VOLTAGE, UnitError, parse_quantity
from .yamlsrc import Source, dotted

INT, NUM, BOOL, STR = "int", "number", "bool", "str"


@dataclass(frozen=True)
class F:
    """A field: name, type (a dimension, int, number, bool, str, choice...), default, meaning."""

    name: str
    type: str
    default: Any = None
    doc: str = ""
    required: bool = False
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple = ()


# ---------------------------------------------------------------------------- field tables
TOP = (
    F("name", STR, None, "run name; default: the file name without .yaml"),
    F("description", STR, "", "free text"),
    F("seed", INT, 0, "every random draw derives from it", lo=0),
    F("dt", TIME, 0.1, "integration step", lo=0.0, lo_open=True),
    F("duration", TIME, None, "total simulated time; default: end of the last phase", lo=0.0, lo_open=True),
    F("synapses", "section", None, "the weight matrix", required=True),
    F("neuron", "section", None, "the postsynaptic population"),
    F("stimulus", "section", None, "a single phase"),
    F("phases", "list", None, "phases run one after another"),
    F("rule", "section", None, "the plasticity rule", required=True),
    F("block", "list", [], "components knocked out throughout"),
    F("record", "section", None, "what to record"),
    F("sweep", "section", None, "parameter sweep"),
    F("fit", "section", None, "fit rule parameters to measured data (plastic fit; ignored by plastic run)"),
)
SYNAPSES = (
    F("n_pre", INT, None, "presynaptic neurons", required=True, lo=1),
    F("n_post", INT, 1, "postsynaptic neurons", lo=1),
    F("w_init", "init", 0.5, "number | {uniform: [lo, hi]} | {normal: [mean, sd]} | n_pre x n_post list"),
    F("w_min", "bound", 0.0, "lower hard bound (null: unbounded)"),
    F("w_max", "bound", 1.0, "upper hard bound (null: unbounded)"),
    F("dtype", "choice", "float64", "storage of the weight matrix; float32 halves its memory (updates still computed in float64)", choices=("float64", "float32")),
    F("delay", "section", None, "{axonal: D1, dendritic: D2}: synaptic delays, multiples of dt (stdp, triplet; docs/stdp-variants.md)"),
    F("release", "section", None, "transmitter release (short-term plasticity, Tsodyks-Markram): model, preset, U, tau_rec, tau_fac, sites (section 11)"),
    F("inhibitory", "indices", None, "presynaptic neurons whose synapses are inhibitory (lif: they open g_inh), a list or {from: a, to: b}"),
    F("structure", "section", None, "synapse number: formation and elimination (structural plasticity)"),
)
STRUCTURE = (
    F("present", "present", 1.0, "fraction of potential synapses present at the start (drawn from the seed), or an n_pre x n_post 0/1 list"),
    F("formation_rate", RATE, 0.0, "formation hazard of each absent potential synapse", lo=0.0),
    F("elimination_rate", RATE, 0.0, "elimination hazard of each present synapse at weight 0", lo=0.0),
    F("w_ref", "bound", None, "elimination hazard = elimination_rate * exp(-w / w_ref); null: independent of w", lo=0.0, lo_open=True),
    F("w_new", "init", None, "weight of a new synapse: number | {uniform: [lo, hi]} | {normal: [mean, sd]} | n_pre x n_post list; null: as w_init"),
)
DELAY = (
    F("axonal", TIME, 0.0, "a pre spike reaches the synapse and the LIF conductance this much later", lo=0.0),
    F("dendritic", TIME, 0.0, "a post spike reaches the synapse this much later (NEST's delay, for STDP)", lo=0.0),
)
DELAY_RULES = ("stdp", "triplet")
NEURON_COMMON = (F("model", "choice", "clamped", "postsynaptic neuron model", choices=("clamped", "lif", "rate")),)
NEURON_LIF = (
    F("tau_m", TIME, 10.0, "membrane time constant", lo=0.0, lo_open=True),
    F("v_rest", VOLTAGE, -74.0, "resting potential"),
    F("v_thresh", VOLTAGE, -54.0, "spike threshold"),
    F("v_reset", VOLTAGE, -60.0, "reset potential"),
    F("t_ref", TIME, 0.0, "refractory period", lo=0.0),
    F("tau_syn", TIME, 5.0, "decay of the synaptic conductance", lo=0.0, lo_open=True),
    F("e_syn", VOLTAGE, 0.0, "synaptic reversal potential"),
    F("tau_syn_inh", TIME, 10.0, "decay of the inhibitory conductance (synapses.inhibitory; Vogels et al. 2011)", lo=0.0, lo_open=True),
    F("e_syn_inh", VOLTAGE, -80.0, "reversal potential of the inhibitory conductance (Vogels et al. 2011)"),
)
NEURON_RATE = (
    F("activation", "choice", "linear", "y = activation(sum_i w_ij x_i)", choices=("linear", "relu", "sigmoid", "tanh")),
    F("gain", NUM, 1.0, "slope of sigmoid and tanh"),
    F("threshold", NUM, 0.0, "midpoint of the sigmoid"),
)
PHASE = (
    F("name", STR, None, "phase name; default phase<k>"),
    F("duration", TIME, None, "default: the stimulus's nominal length", lo=0.0),
    F("pre", "trains", None, "trains of the presynaptic population"),
    F("post", "trains", None, "trains of the postsynaptic population (clamped neurons)"),
    F("pairing", "section", None, "joint pre/post pairing"),
    F("block", "list", [], "components knocked out during this phase"),
)
PAIRING = (
    F("pairs", INT, 60, "number of pairings", lo=1),
    F("frequency", RATE, 1.0, "pairing frequency", lo=0.0, lo_open=True),
    F("delta_t", TIME, None, "t_post - t_pre", required=True),
    F("pre_spikes", INT, 1, "presynaptic spikes per pairing (a burst)", lo=1),
    F("pre_frequency", RATE, 100.0, "frequency within a presynaptic burst", lo=0.0, lo_open=True),
    F("post_spikes", INT, 1, "postsynaptic spikes per pairing (a burst)", lo=1),
    F("post_frequency", RATE, 100.0, "frequency within a postsynaptic burst", lo=0.0, lo_open=True),
    F("start", TIME, 0.0, "time of the first pairing in the phase", lo=0.0),
)
NEURONS_FIELD = F("neurons", "indices", None, "the neurons it applies to (list of indices); default all")
TRAINS = {
    "poisson": (
        F("rate", RATE, None, "mean rate, independent per neuron", required=True, lo=0.0),
        F("start", TIME, 0.0, "", lo=0.0),
        F("stop", TIME, None, "default: end of the phase", lo=0.0),
    ),
    "regular": (
        F("frequency", RATE, None, "pulse frequency", required=True, lo=0.0, lo_open=True),
        F("pulses", INT, None, "number of pulses (or stop)", lo=0),
        F("stop", TIME, None, "default: end of the phase", lo=0.0),
        F("start", TIME, 0.0, "", lo=0.0),
    ),
    "tetanus": (
        F("frequency", RATE, 100.0, "", lo=0.0, lo_open=True),
        F("duration", TIME, 1000.0, "length of one train", lo=0.0, lo_open=True),
        F("trains", INT, 1, "", lo=1),
        F("interval", TIME, 20000.0, "start-to-start interval of trains", lo=0.0),
        F("start", TIME, 0.0, "", lo=0.0),
    ),
    "theta_burst": (
        F("bursts", INT, 10, "bursts per train", lo=1),
        F("pulses", INT, 4, "pulses per burst", lo=1),
        F("frequency", RATE, 100.0, "frequency within a burst", lo=0.0, lo_open=True),
        F("burst_interval", TIME, 200.0, "start-to-start interval of bursts", lo=0.0),
        F("trains", INT, 1, "", lo=1),
        F("train_interval", TIME, 10000.0, "start-to-start interval of trains", lo=0.0),
        F("start", TIME, 0.0, "", lo=0.0),
    ),
    "times": (),  # a list of times, or a mapping index -> list of times
    "patterns": (
        F("vectors", "matrix", None, "patterns, each n_pre long", required=True),
        F("probabilities", "vector", None, "probability of each pattern (random order); default equal"),
        F("presentation", TIME, None, "how long each pattern is shown", required=True, lo=0.0, lo_open=True),
        F("order", "choice", "random", "", choices=("random", "cyclic")),
    ),
    "gaussian": (
        F("mean", "vector", None, "mean of each input (n_pre)", required=True),
        F("cov", "matrix", None, "covariance (n_pre x n_pre)", required=True),
    ),
}
SPIKE_TRAINS = ("poisson", "regular", "tetanus", "theta_burst", "times")
RATE_TRAINS = ("patterns", "gaussian")
RECORD = (
    F("interval", TIME, None, "sampling interval of traces.csv; default about 1000 rows", lo=0.0, lo_open=True),
    F("weights", "weights", None, "all | none | list of [pre, post]; default all up to 16 synapses"),
    F("stats", "list", ["mean"], "any of mean, std, min, max over all synapses"),
    F("state", "list", [], "rule and neuron state variables"),
    F("spikes", "spikes", None, "spikes.csv: true, false, pre or post (one population); default true up to 1e6 expected spikes"),
    F("outcome_threshold", NUM, 1.0, "percent change that counts as LTP / LTD", lo=0.0),
    F("responses", BOOL, None, "responses.csv (with synapses.release): the amplitude of every presynaptic spike of the recorded synapses; default true up to 1e6 rows"),
    F("format", "choice", "csv", "file format of the tables: csv (the contract's files) or npy (a folder of NumPy .npy files per table, for big runs)", choices=("csv", "npy")),
)
EXPRESSION = F("expression", "choice", "postsynaptic", "how the rule's change is expressed: as w (postsynaptic) or as release probability U (presynaptic; needs synapses.release)", choices=("postsynaptic", "presynaptic"))
STATS = ("mean", "std", "min", "max")
NEURON_STATE = {"lif": ("v", "g"), "rate": ("y",), "clamped": ()}
MAX_SPIKES_DEFAULT = 1_000_000
MAX_COUNT = 10**9  # any whole-number field but seed (neurons, pairs, pulses, trains, spikes per burst)
MAX_CONDITIONS = 100_000  # sweep conditions of one protocol (counted before any is built)
MAX_NAME = 100  # characters of a run or phase name (it names a folder)
MAX_RESPONSES_DEFAULT = 1_000_000  # record.responses defaults to true up to this many rows


# ---------------------------------------------------------------------------- typed protocol
@dataclass(frozen=True)
class Train:
    kind: str
    params: dict
    neurons: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Phase:
    name: str
    start: float  # ms since the start of the run
    duration: float  # ms
    pre: tuple[Train, ...] = ()
    post: tuple[Train, ...] = ()
    pairing: dict | None = None
    block: tuple[str, ...] = ()


@dataclass(frozen=True)
class Release:
    """``synapses.release`` (section 11): Tsodyks-Markram short-term plasticity; times in ms."""

    model: str
    U: float
    tau_rec: float
    tau_fac: float
    sites: int | None = None
    preset: str | None = None

    def resolved(self) -> dict:
        return {"model": self.model, **({"preset": self.preset} if self.preset else {}), "U": self.U, "tau_rec": self.tau_rec, "tau_fac": self.tau_fac, "sites": self.sites}


@dataclass(frozen=True)
class Synapses:
    n_pre: int
    n_post: int
    w_init: Init
    w_min: float
    w_max: float
    dtype: str = "float64"
    delay_axonal: float = 0.0  # ms, a multiple of dt
    delay_dendritic: float = 0.0  # ms, a multiple of dt
    release: Release | None = None
    inhibitory: tuple[int, ...] = ()  # presynaptic neurons whose synapses are inhibitory
    structure: "Structure | None" = None  # synapses.structure (None: every synapse always present)


@dataclass(frozen=True)
class Structure:
    """``synapses.structure``: rates in Hz (per second)."""

    present: float | tuple  # fraction in [0, 1], or rows of 0/1 (tuples of floats)
    formation_rate: float
    elimination_rate: float
    w_ref: float | None
    w_new: Init


@dataclass(frozen=True)
class Neuron:
    model: str
    params: dict


@dataclass(frozen=True)
class RuleConfig:
    kind: str
    values: dict
    preset: str | None = None
    expression: str = "postsynaptic"  # or "presynaptic" (section 11; needs synapses.release)


@dataclass(frozen=True)
class Record:
    interval: float
    weights: tuple[tuple[int, int], ...]
    stats: tuple[str, ...]
    state: tuple[str, ...]
    spikes: bool | str  # True, False, "pre" or "post"
    outcome_threshold: float
    responses: bool = False  # responses.csv (synapses.release only)
    format: str = "csv"  # of the tables: csv or npy (plastictool.results.columnar)


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    seed: int
    dt: float
    duration: float
    synapses: Synapses
    neuron: Neuron
    phases: tuple[Phase, ...]
    rule: RuleConfig
    block: tuple[str, ...]
    record: Record
    file: str
    resolved: dict = field(repr=False, compare=False)

    @property
    def n_steps(self) -> int:
        return int(round(self.duration / self.dt))


@dataclass(frozen=True)
class Condition:
    index: int
    values: tuple  # (path, canonical value) pairs, in sweep key order
    protocol: Protocol


@dataclass(frozen=True)
class Experiment:
    """A validated protocol file: one condition, or one per sweep combination."""

    file: str
    name: str
    base: Protocol
    sweep_keys: tuple[str, ...]
    sweep_mode: str
    conditions: tuple[Condition, ...]
    overrides: tuple[str, ...] = ()
    raw: dict = field(default_factory=dict, repr=False, compare=False)


# ---------------------------------------------------------------------------- validation
class Validator:
    def __init__(self, src: Source, origin: dict | None = None):
        self.src = src
        self.origin = origin or {}  # path prefix -> (file label, line, note) for --set and sweeps

    def fail(self, path, message: str):
        path = tuple(path)
        for k in range(len(path), 0, -1):
            if path[:k] in self.origin:
                label, line, note = self.origin[path[:k]]
                raise ProtocolError(message + note, dotted(path), label, line)
        if path and path not in self.src.lines:
            # a section that only an override created (--set nosuch.path=1): blame the override
            for key, (label, line, note) in self.origin.items():
                if key[: len(path)] == path:
                    raise ProtocolError(message + note, dotted(path), label, line)
        raise self.src.error(path, message)

    # -- structure
    def mapping(self, path, value, fields, extra=()) -> dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping of keys, got {_kind(value)}")
        allowed = [f.name for f in fields] + list(extra)
        for key in value:
            if key not in allowed:
                self.fail(tuple(path) + (key,), f"unknown key {key!r}{_hint(str(key), allowed)}")
        for f in fields:
            if f.required and value.get(f.name) is None:
                self.fail(tuple(path) + (f.name,), f"required field is missing ({f.doc})" if f.doc else "required")
        return value

    def field(self, path, value, f: F):
        """Validate one value against its field; return it in canonical form."""
        path = tuple(path)
        if value is None:
            if f.required:
                self.fail(path, "required field is missing")
            return f.default
        t = f.type
        if t in (TIME, RATE, VOLTAGE, ONE, NUM):
            try:
                x = parse_quantity(value, ONE if t == NUM else t)
            except UnitError as exc:
                self.fail(path, str(exc))
            self.bounds(path, x, f)
            return x
        if t == INT:
            x = _whole(value)
            if x is None:
                self.fail(path, f"expected a whole number, got {value!r}")
            hi = f.hi if f.hi is not None else (math.inf if f.name == "seed" else MAX_COUNT)
            if x > hi:
                self.fail(path, f"{x:g} is too large (at most {hi:g})")
            x = int(x)
            self.bounds(path, x, f)
            return x
        if t == BOOL:
            if not isinstance(value, bool):
                self.fail(path, f"expected true or false, got {value!r}")
            return value
        if t == STR:
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                self.fail(path, f"expected text, got {_kind(value)}")
            return str(value)
        if t == "choice":
            if value not in f.choices:
                self.fail(path, f"{value!r} is not one of {', '.join(f.choices)}{_close(str(value), f.choices)}")
            return value
        if t == "bound":
            try:
                return parse_quantity(value, ONE)
            except UnitError as exc:
                self.fail(path, str(exc))
        if t == "vector":
            return self.vector(path, value)
        if t == "matrix":
            return self.matrix(path, value)
        raise AssertionError(t)  # pragma: no cover

    def bounds(self, path, x, f: F):
        if f.lo is not None and (x < f.lo or (f.lo_open and x <= f.lo)):
            self.fail(path, f"must be {'>' if f.lo_open else '>='} {f.lo:g}, got {x:g}")
        if f.hi is not None and x > f.hi:
            self.fail(path, f"must be <= {f.hi:g}, got {x:g}")

    def fields(self, path, value: dict, fields) -> dict:
        return {f.name: self.field(tuple(path) + (f.name,), value.get(f.name), f) for f in fields}

    def vector(self, path, value) -> tuple[float, ...]:
        if not isinstance(value, list) or not value:
            self.fail(path, f"expected a list of numbers, got {_kind(value)}")
        out = []
        for k, x in enumerate(value):
            try:
                out.append(parse_quantity(x, ONE))
            except UnitError as exc:
                self.fail(tuple(path) + (k,), str(exc))
        return tuple(out)

    def matrix(self, path, value) -> tuple[tuple[float, ...], ...]:
        if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
            self.fail(path, f"expected a list of lists of numbers, got {_kind(value)}")
        rows = tuple(self.vector(tuple(path) + (k,), r) for k, r in enumerate(value))
        if len({len(r) for r in rows}) != 1:
            self.fail(path, "rows have different lengths")
        return rows

    def init(self, path, value, shape) -> Init:
        path = tuple(path)
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                return Init("constant", (parse_quantity(value, ONE),))
            except UnitError as exc:
                self.fail(path, str(exc))
        if isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in ("uniform", "normal"):
                key = next(iter(value), "")
                self.fail(path, f"expected {{uniform: [lo, hi]}} or {{normal: [mean, sd]}}{_hint(str(key), ['uniform', 'normal'])}")
            kind, args = next(iter(value.items()))
            args = self.vector(path + (kind,), args)
            if len(args) != 2:
                self.fail(path + (kind,), f"expected two numbers [{'lo, hi' if kind == 'uniform' else 'mean, sd'}]")
            if kind == "uniform" and args[0] > args[1]:
                self.fail(path + (kind,), "lo must be <= hi")
            if kind == "normal" and args[1] < 0:
                self.fail(path + (kind,), "sd must be >= 0")
            return Init(kind, args)
        if isinstance(value, list):
            rows = self.matrix(path, value)
            if (len(rows), len(rows[0])) != shape:
                self.fail(path, f"expected an n_pre x n_post = {shape[0]} x {shape[1]} matrix, got {len(rows)} x {len(rows[0])}")
            return Init("matrix", (rows,))
        self.fail(path, f"expected a number, {{uniform: [lo, hi]}}, {{normal: [mean, sd]}} or a matrix, got {_kind(value)}")


def _whole(value) -> float | None:
    """A whole number (int, integral float, or text such as '1e3' that YAML 1.1 leaves as text) as
    a float, or None. Floats, so that 1e300 is compared with the bounds before int() grows it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip().replace("_", ""))
        except ValueError:
            return None
    if isinstance(value, int):
        return value if abs(value) <= 2**62 else float(value)
    if isinstance(value, float) and math.isfinite(value) and value == math.floor(value):
        return value
    return None


def _structure(v: Validator, raw, shape, w_init: Init) -> Structure:
    """``synapses.structure`` (spec section 12)."""
    path = ("synapses", "structure")
    raw = v.mapping(path, raw, STRUCTURE)
    simple = [f for f in STRUCTURE if f.name in ("formation_rate", "elimination_rate")]
    q = v.fields(path, raw, simple)
    w_ref = raw.get("w_ref")
    if w_ref is not None:
        w_ref = v.field(path + ("w_ref",), w_ref, F("w_ref", NUM, None, lo=0.0, lo_open=True))
    w_new = w_init if raw.get("w_new") is None else v.init(path + ("w_new",), raw["w_new"], shape)
    present = raw.get("present", 1.0)
    if isinstance(present, list):
        rows = v.matrix(path + ("present",), present)
        if (len(rows), len(rows[0])) != shape:
            v.fail(path + ("present",), f"expected an n_pre x n_post = {shape[0]} x {shape[1]} matrix of 0 and 1, got {len(rows)} x {len(rows[0])}")
        for i, r in enumerate(rows):
            for j, x in enumerate(r):
                if x not in (0.0, 1.0):
                    v.fail(path + ("present", i, j), f"a present matrix holds 0 (absent) or 1 (present), got {x:g}")
        present = rows
    else:
        try:
            present = parse_quantity(present, ONE) if not isinstance(present, dict) else None
        except UnitError as exc:
            v.fail(path + ("present",), str(exc))
        if present is None:
            v.fail(path + ("present",), "expected a fraction in [0, 1] or an n_pre x n_post list of 0 and 1, got a mapping")
        if not 0.0 <= present <= 1.0:
            v.fail(path + ("present",), f"a fraction of present synapses must be in [0, 1], got {present:g}")
    return Structure(present, q["formation_rate"], q["elimination_rate"], w_ref, w_new)


def _structure_resolved(st: Structure) -> dict:
    return {
        "present": [list(r) for r in st.present] if isinstance(st.present, tuple) else st.present,
        "formation_rate": st.formation_rate,
        "elimination_rate": st.elimination_rate,
        "w_ref": st.w_ref,
        "w_new": st.w_new.resolved(),
    }


def _kind(value) -> str:
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: f"text {value!r}", bool: f"{value}"}.get(type(value), f"{value!r}")


def _hint(word: str, options) -> str:
    """' (did you mean X?)' for a near miss, else the valid options (up to 16)."""
    close = _close(word, options)
    if close:
        return close
    return f"; valid: {', '.join(str(o) for o in options)}" if len(options) <= 16 else ""


def _close(word: str, options) -> str:
    """' (did you mean X?)' for a near miss, else nothing (for messages that list the options)."""
    close = difflib.get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------- sections
class Sections:
    """The typed sections of a validated protocol (:func:`validate` with ``keep=``), which the
    conditions of its sweep reuse where no swept key reaches them: a section is a function of
    its raw data and of the sections it depends on only, so one that a condition shares with the
    base is the base's, and cannot fail where the base's did not (W1D: 101 conditions)."""

    __slots__ = ("top", "synapses", "delay", "neuron", "rule", "block", "phases", "record", "record_key")

    def __init__(self):
        for name in self.__slots__:
            setattr(self, name, None)


TOP_SCALARS = tuple(f.name for f in TOP if f.type not in ("section", "list"))
REUSE_SECTIONS = True  # False: every sweep condition validated whole (the tests' twin)


def _touched(swept: frozenset, *keys) -> bool:
    return any(k in swept for k in keys)


def validate(src: Source, origin: dict | None = None, name_default: str | None = None, *, keep: Sections | None = None, base: Sections | None = None, swept: frozenset = frozenset()) -> Protocol:
    """Validate one condition (no sweep section) into a Protocol.

    ``keep``: filled with the typed sections (the base of a sweep). ``base``: those of the base,
    reused for the sections that none of the ``swept`` top-level keys reaches (its conditions):
    the same objects, as validating them again would give (and equal errors: none)."""
    if base is not None and _touched(swept, "dt"):
        base = None  # (dt reaches delays, phases and the record: nothing is reused)
    v = Validator(src, origin)
    data = v.mapping((), src.data, TOP)
    if base is not None and not _touched(swept, *TOP_SCALARS):
        top, name = base.top  # (name, description, seed, dt, duration: as the base's)
    else:
        top = {}
        for f in TOP:
            if f.type not in ("section", "list"):
                top[f.name] = v.field((f.name,), data.get(f.name), f)
        name = top["name"] or name_default or "protocol"
        if len(name) > MAX_NAME:
            v.fail(("name",), f"{len(name)} characters: at most {MAX_NAME} (it names the output folder)")
        if not _safe_name(name):
            v.fail(("name",), f"{name!r}: use letters, digits, '.', '_' and '-' only (it names the output folder)")
    if keep is not None:
        keep.top = (top, name)
    dt = top["dt"]
    reuse_syn = base is not None and not _touched(swept, "synapses")
    synapses, delay = (base.synapses, base.delay) if reuse_syn else _synapses(v, data, dt)
    syn_raw = data.get("synapses") or {}  # (a mapping: the section is valid)
    if keep is not None:
        keep.synapses, keep.delay = synapses, delay

    reuse_neuron = base is not None and not _touched(swept, "neuron")
    neuron = base.neuron if reuse_neuron else _neuron(v, data.get("neuron"))
    reuse_rule = reuse_syn and reuse_neuron and not _touched(swept, "rule")
    rule = base.rule if reuse_rule else _rule(v, data.get("rule"), neuron, synapses)
    if keep is not None:
        keep.neuron, keep.rule = neuron, rule
    if not reuse_rule:
        _check_cross(v, synapses, delay, neuron, rule)
    spec = rule_registry.spec(rule.kind)
    # block, phases and record read the rule only through its kind (spec): a sweep of its parameters reuses them
    same_spec = reuse_syn and reuse_neuron and rule.kind == base.rule.kind
    reuse_block = same_spec and not _touched(swept, "block")
    block = base.block if reuse_block else _blocks(v, ("block",), data.get("block"), spec)
    reuse_phases = same_spec and not _touched(swept, "stimulus", "phases", "duration")
    if reuse_phases:
        phases, phases_resolved = base.phases
        phases_resolved = _copy_plain(phases_resolved)  # (each condition's resolved protocol is its own)
    else:
        phases, phases_resolved = _phases(v, data, neuron, synapses, spec, dt, top["duration"])
    if keep is not None:
        keep.block, keep.phases = block, (phases, phases_resolved)
    total = phases[-1].start + phases[-1].duration if phases else 0.0
    duration = top["duration"] if top["duration"] is not None else total
    if duration <= 0:
        v.fail(("duration",), "the run has no length: give duration, or phases with a duration or a stimulus")
    if duration / dt > 2**53:
        if duration / 0.1 <= 2**53:  # fine at the default step: dt is what is too small
            culprit = ("dt",)
        else:
            culprit = ("duration",) if top["duration"] is not None else _longest_phase(data, phases)
        v.fail(culprit, f"{duration:g} ms at dt = {dt:g} ms is too many steps ({duration / dt:.3g})")
    no_step = round(duration / dt) < 1
    if no_step and data.get("dt") is not None and dt > 1.0:  # a long dt given here is the likelier mistake
        v.fail(("dt",), f"dt = {dt:g} ms is longer than the run ({duration:g} ms): not a single step would be simulated")
    if not reuse_phases:
        _check_spikes_fit(v, data, phases, dt)
    if no_step:
        v.fail(("dt",), f"dt = {dt:g} ms is longer than the run ({duration:g} ms): not a single step would be simulated")
    if not reuse_rule:
        _check_w_init(v, synapses, rule)
    # the record section reads the phases and the duration only through _record_key
    key = _record_key(data.get("record"), synapses, duration, phases) if keep is not None or (same_spec and not _touched(swept, "record")) else None
    if base is not None and key is not None and key == base.record_key:
        record = base.record
    else:
        record = _record(v, data.get("record"), synapses, neuron, spec, duration, dt, phases)
    if keep is not None:
        keep.record, keep.record_key = record, key
    return _protocol(src, name, top, dt, duration, syn_raw, synapses, delay, neuron, phases, phases_resolved, rule, block, record, data)


def _synapses(v: Validator, data, dt):
    """The ``synapses`` section: (Synapses, delay dict)."""
    syn_raw = v.mapping(("synapses",), data.get("synapses"), SYNAPSES)
    syn = v.fields(("synapses",), {k: x for k, x in syn_raw.items() if k not in ("w_init", "delay", "release", "inhibitory", "structure")}, [f for f in SYNAPSES if f.name not in ("w_init", "delay", "release", "inhibitory", "structure")])
    shape = (syn["n_pre"], syn["n_post"])
    w_init = v.init(("synapses", "w_init"), syn_raw.get("w_init", 0.5), shape)
    w_min = -math.inf if "w_min" in syn_raw and syn_raw["w_min"] is None else syn["w_min"]
    w_max = math.inf if "w_max" in syn_raw and syn_raw["w_max"] is None else syn["w_max"]
    if w_min > w_max:
        v.fail(("synapses", "w_min"), f"w_min ({w_min:g}) is above w_max ({w_max:g})")
    delay = _delay(v, syn_raw.get("delay"), dt)
    release = _release(v, syn_raw["release"]) if syn_raw.get("release") is not None else None
    inhibitory = _inhibitory(v, syn_raw.get("inhibitory"), syn["n_pre"])
    structure = _structure(v, syn_raw["structure"], shape, w_init) if syn_raw.get("structure") is not None else None
    if structure is not None and release is not None:
        v.fail(("synapses", "structure"), "synapses.structure and synapses.release cannot be combined yet (the summary of such a run is not defined)")
    if structure is not None and inhibitory:
        v.fail(("synapses", "structure"), "synapses.structure and synapses.inhibitory cannot be combined yet")
    synapses = Synapses(syn["n_pre"], syn["n_post"], w_init, w_min, w_max, syn["dtype"], delay["axonal"], delay["dendritic"], release, inhibitory, structure)
    return synapses, delay


def _check_cross(v: Validator, synapses: Synapses, delay: dict, neuron: Neuron, rule: RuleConfig) -> None:
    """What the synapses section needs of the rule and the neuron model."""
    inhibitory, release, w_min = synapses.inhibitory, synapses.release, synapses.w_min
    if (delay["axonal"] or delay["dendritic"]) and rule.kind not in DELAY_RULES:
        which = "axonal" if delay["axonal"] else "dendritic"
        v.fail(("synapses", "delay", which), f"delays apply to the spike-timing rules ({', '.join(DELAY_RULES)}), not to rule {rule.kind}")
    if inhibitory and (neuron.model != "lif" or rule.kind not in DELAY_RULES):
        v.fail(("synapses", "inhibitory"), f"inhibitory inputs act on the conductances of lif neurons with the rules {', '.join(DELAY_RULES)}, not with neuron model {neuron.model} and rule {rule.kind}")
    if inhibitory and w_min < 0:
        v.fail(("synapses", "w_min"), "with inhibitory inputs a weight is a conductance magnitude (the sign comes from synapses.inhibitory): w_min must be >= 0")
    if inhibitory and release is not None:
        v.fail(("synapses", "inhibitory"), "inhibitory inputs do not combine with synapses.release yet")
    spec = rule_registry.spec(rule.kind)
    if release is not None:
        from ..core.release import RULES

        if spec.inputs != "spikes" or rule.kind not in RULES:
            v.fail(("synapses", "release"), f"transmitter release needs a spike rule ({', '.join(RULES)}), not the rate rule {rule.kind}")
        if neuron.model == "rate":
            v.fail(("synapses", "release"), "transmitter release needs spiking neurons (neuron.model clamped or lif), not rate")


def _protocol(src, name, top, dt, duration, syn_raw, synapses, delay, neuron, phases, phases_resolved, rule, block, record, data) -> Protocol:
    """The Protocol of validated sections, with its resolved form."""
    w_init, w_min, w_max = synapses.w_init, synapses.w_min, synapses.w_max
    release, inhibitory, structure = synapses.release, synapses.inhibitory, synapses.structure
    resolved = {
        "name": name,
        "description": top["description"],
        "seed": top["seed"],
        "dt": dt,
        "duration": duration,
        "synapses": {
            "n_pre": synapses.n_pre,
            "n_post": synapses.n_post,
            "w_init": w_init.resolved(),
            "w_min": None if math.isinf(w_min) else w_min,
            "w_max": None if math.isinf(w_max) else w_max,
            "dtype": synapses.dtype,
            **({"delay": dict(delay)} if "delay" in syn_raw else {}),
            **({"release": release.resolved()} if release is not None else {}),
            **({"inhibitory": list(inhibitory)} if inhibitory else {}),
            **({"structure": _structure_resolved(structure)} if structure is not None else {}),
        },
        "neuron": {"model": neuron.model, **_neuron_resolved(neuron, data.get("neuron"), inhibitory)},
        **({"stimulus": phases_resolved[0]} if "stimulus" in data else {"phases": phases_resolved}),
        "rule": {
            "kind": rule.kind,
            **({"preset": rule.preset} if rule.preset else {}),
            **_plain(rule.values),
            **({"expression": rule.expression} if release is not None else {}),
        },
        "block": list(block),
        "record": {
            "interval": record.interval,
            "weights": [list(p) for p in record.weights],
            "stats": list(record.stats),
            "state": list(record.state),
            "spikes": record.spikes,
            "outcome_threshold": record.outcome_threshold,
            **({"responses": record.responses} if release is not None else {}),
            **({"format": record.format} if record.format != "csv" else {}),  # csv runs keep their resolved_sha256
        },
    }
    return Protocol(
        name=name,
        description=top["description"],
        seed=top["seed"],
        dt=dt,
        duration=duration,
        synapses=synapses,
        neuron=neuron,
        phases=tuple(phases),
        rule=rule,
        block=block,
        record=record,
        file=src.file,
        resolved=resolved,
    )


def _longest_phase(data, phases) -> tuple:
    """The path of the longest phase (what made the run too long)."""
    k = max(range(len(phases)), key=lambda i: phases[i].duration)
    return ("stimulus",) if "stimulus" in data else ("phases", k)


def _phase_path(data, k) -> tuple:
    return ("stimulus",) if "stimulus" in data else ("phases", k)


def _check_spikes_fit(v: Validator, data, phases, dt) -> None:
    """Refuse stimuli whose spikes the run would silently lose: spikes of one neuron closer
    than dt (several fall into one step), pairing spikes after the end of their phase, and
    trains of a fixed number of spikes (regular with pulses, tetanus, theta_burst, times) that
    do not fit into the phase's own duration."""
    for k, ph in enumerate(phases):
        path = _phase_path(data, k)
        for pop, trains in (("pre", ph.pre), ("post", ph.post)):
            for t in trains:
                q = t.params
                if t.kind in ("regular", "tetanus", "theta_burst") and 1000.0 / q["frequency"] < dt * (1 - 1e-9):
                    v.fail(path + (pop, t.kind, "frequency"), f"{q['frequency']:g} Hz puts spikes {1000.0 / q['frequency']:g} ms apart, closer than dt = {dt:g} ms: several would fall into one step")
        end = int(round((ph.start + ph.duration) / dt)) - int(round(ph.start / dt))
        # a phase whose own duration is shorter than its trains of fixed length (a top-level
        # duration that ends the run early is a deliberate cut and stays allowed)
        for pop, trains in (("pre", ph.pre), ("post", ph.post)) if "duration" in _at(data, path) else ():
            for t in trains:
                last = _last_spike(t)
                if last is not None and int(round(last / dt)) >= end:
                    v.fail(path + ("duration",), f"the last spike of the {pop} {t.kind} train at {last:g} ms falls at or after the end of the phase ({ph.duration:g} ms) and would be dropped: lengthen the phase (duration) or shorten the train")
        p = ph.pairing
        if not p:
            continue
        pp = path + ("pairing",)
        if p["pairs"] > 1 and 1000.0 / p["frequency"] < dt * (1 - 1e-9):
            v.fail(pp + ("frequency",), f"{p['frequency']:g} Hz puts pairings {1000.0 / p['frequency']:g} ms apart, closer than dt = {dt:g} ms: several would fall into one step")
        for side in ("pre", "post"):
            if p[f"{side}_spikes"] > 1 and 1000.0 / p[f"{side}_frequency"] < dt * (1 - 1e-9):
                v.fail(pp + (f"{side}_frequency",), f"{p[side + '_frequency']:g} Hz puts the spikes of a burst closer than dt = {dt:g} ms: several would fall into one step")
        d = p["delta_t"]
        last_pair = p["start"] + (p["pairs"] - 1) * 1000.0 / p["frequency"]
        last = {
            "pre": last_pair + max(0.0, -d) + (p["pre_spikes"] - 1) * 1000.0 / p["pre_frequency"],
            "post": last_pair + max(0.0, d) + (p["post_spikes"] - 1) * 1000.0 / p["post_frequency"],
        }
        end = int(round((ph.start + ph.duration) / dt)) - int(round(ph.start / dt))
        for side, t in last.items():
            if int(round(t / dt)) >= end:
                blame = path + ("duration",) if ph.duration < _pairing_length(p) * (1 - 1e-12) else pp + ("delta_t",)
                v.fail(blame, f"the last pairing's {side} spike at {t:g} ms falls at or after the end of the phase ({ph.duration:g} ms) and would be dropped: shorten delta_t or the bursts, or lengthen the phase (duration)")


def _check_w_init(v: Validator, syn: Synapses, rule: RuleConfig) -> None:
    """Initial weights outside [w_min, w_max] are refused (they would be clipped without a word).
    A normal distribution is unbounded and is clipped to the bounds as documented."""
    if rule.kind == "calcium":  # the weight is the rule's readout; w_init is not used
        return
    init, lo, hi = syn.w_init, syn.w_min, syn.w_max
    if init.kind == "constant":
        vals = init.args
    elif init.kind == "uniform":
        vals = init.args
    elif init.kind == "matrix":
        vals = [x for row in init.args[0] for x in row]
    else:
        return
    bad = [x for x in vals if not lo <= x <= hi]
    if bad:
        v.fail(("synapses", "w_init"), f"{bad[0]:g} is outside [w_min, w_max] = [{lo:g}, {hi:g}]")


def _safe_name(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "._-" for c in name) and name.isascii() and name not in (".", "..")


def _plain(values: dict) -> dict:
    return {k: (x.resolved() if isinstance(x, Init) else x) for k, x in values.items()}


def _inhibitory(v: Validator, raw, n_pre: int) -> tuple[int, ...]:
    """synapses.inhibitory: a list of presynaptic indices, or {from: a, to: b} for a <= i < b."""
    path = ("synapses", "inhibitory")
    if raw is None:
        return ()
    if isinstance(raw, dict):
        raw = v.mapping(path, raw, (F("from", INT, None, "first inhibitory neuron", required=True, lo=0), F("to", INT, None, "end (exclusive)", required=True, lo=0)))
        a, b = (v.field(path + (k,), raw.get(k), F(k, INT, None, "", required=True, lo=0)) for k in ("from", "to"))
        if not a < b <= n_pre:
            v.fail(path, f"expected 0 <= from < to <= n_pre = {n_pre}, got from {a}, to {b}")
        return tuple(range(a, b))
    return _indices(v, path, raw, n_pre)


def _delay(v: Validator, raw, dt: float) -> dict:
    """synapses.delay: both delays in ms, each a whole number of steps (within 1e-9 of one: a
    delay is never rounded silently)."""
    path = ("synapses", "delay")
    raw = v.mapping(path, raw, DELAY)
    out = v.fields(path, raw, DELAY)
    for name, d in out.items():
        k = round(d / dt)
        if abs(k * dt - d) > 1e-9 * max(1.0, abs(d)):
            v.fail(path + (name,), f"{d:g} ms is not a multiple of dt = {dt:g} ms (the nearest are {math.floor(d / dt) * dt:g} and {(math.floor(d / dt) + 1) * dt:g} ms)")
    return out  # as given; the kernels take round(d / dt) steps (core.delay.steps_of)


def _neuron(v: Validator, raw) -> Neuron:
    path = ("neuron",)
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        v.fail(path, f"expected a mapping, got {_kind(raw)}")
    model = v.field(path + ("model",), raw.get("model"), NEURON_COMMON[0])
    own = {"clamped": (), "lif": NEURON_LIF, "rate": NEURON_RATE}[model]
    for key in raw:
        if key != "model" and key not in [f.name for f in own]:
            others = [m for m, fs in (("lif", NEURON_LIF), ("rate", NEURON_RATE)) if key in [f.name for f in fs]]
            if others:
                v.fail(path + (key,), f"{key!r} belongs to model: {others[0]}, not model: {model}")
            v.fail(path + (key,), f"unknown key {key!r}{_hint(str(key), ['model'] + [f.name for f in own])}")
    params = v.fields(path, raw, own)
    if model == "lif" and params["v_reset"] >= params["v_thresh"]:
        v.fail(path + ("v_reset",), "v_reset must be below v_thresh")
    return Neuron(model, params)


def _neuron_resolved(neuron: Neuron, raw, inhibitory) -> dict:
    """The neuron's parameters as written into the resolved protocol: without inhibitory inputs
    the defaults of tau_syn_inh and e_syn_inh are left out, so that the resolved protocol (and its
    sha256 in run.json) of a protocol without them is what it was before they existed."""
    given = raw if isinstance(raw, dict) else {}
    return {k: x for k, x in neuron.params.items() if inhibitory or k not in ("tau_syn_inh", "e_syn_inh") or k in given}


def _rule(v: Validator, raw, neuron: Neuron, syn: Synapses) -> RuleConfig:
    path = ("rule",)
    if not isinstance(raw, dict):
        v.fail(path, f"expected a mapping with kind: one of {', '.join(rule_registry.kinds())}")
    kind = raw.get("kind")
    if kind not in rule_registry.kinds():
        v.fail(path + ("kind",), f"{'missing' if kind is None else repr(kind)}: kind must be one of {', '.join(rule_registry.kinds())}{_close(str(kind), rule_registry.kinds())}")
    spec = rule_registry.spec(kind)
    names = spec.param_names
    merged = _with_preset(
        v, path, raw, spec, ("kind", "preset", "expression") + names,
        lambda key: f"unknown parameter {key!r} of rule {kind}{_hint(str(key), names)}",
        lambda preset: f"unknown preset {preset!r} of rule {kind}; valid: {', '.join(spec.presets) or 'none'}{_close(str(preset), list(spec.presets))}",
    )
    preset = raw.get("preset")
    values = {}
    for p in spec.params:
        f = _param_field(p)
        x = merged.get(p.name)
        if p.dim == "init":
            values[p.name] = p.default if x is None else (x if isinstance(x, Init) else v.init(path + (p.name,), x, (syn.n_pre, syn.n_post)))
        else:
            values[p.name] = v.field(path + (p.name,), x, f)
    if neuron.model not in spec.neurons:
        v.fail(("neuron", "model"), f"rule {kind} needs neuron model {' or '.join(spec.neurons)}, not {neuron.model}")
    if kind == "stdp" and values["weight_dependence"] == "power_law":
        # NEST's stdp_pl_synapse_hom: no upper bound; dw- ~ w keeps w >= 0 (NEST clips at 0)
        if not math.isinf(syn.w_max):
            v.fail(("synapses", "w_max"), f"power_law weight dependence has no upper bound (as NEST's stdp_pl_synapse_hom): set synapses.w_max: null, got {syn.w_max:g}")
        if math.isinf(syn.w_min) or syn.w_min < 0:
            v.fail(("synapses", "w_min"), "power_law weight dependence needs w_min >= 0 (w^mu_plus is not defined for negative w; NEST clips at 0)")
    elif kind == "stdp" and values["weight_dependence"] != "additive" and (math.isinf(syn.w_min) or math.isinf(syn.w_max)):
        v.fail(path + ("weight_dependence",), f"{values['weight_dependence']} weight dependence needs finite w_min and w_max")
    expression = v.field(path + ("expression",), raw.get("expression"), EXPRESSION)
    if expression == "presynaptic" and syn.release is None:
        v.fail(path + ("expression",), "presynaptic expression changes the release probability U: it needs synapses.release")
    return RuleConfig(kind, values, preset, expression)


_PARAM_FIELDS: dict = {}  # id(rule Param) -> (Param, its F): a sweep validates the rule once per condition


def _param_field(p) -> F:
    """The field that validates rule parameter ``p`` (made once per parameter)."""
    hit = _PARAM_FIELDS.get(id(p))
    if hit is None or hit[0] is not p:
        hit = _PARAM_FIELDS[id(p)] = (p, F(p.name, p.dim, p.default, p.doc, lo=p.lo, hi=p.hi, lo_open=p.lo_open, choices=p.choices))
    return hit[1]


def _with_preset(v: Validator, path, raw: dict, spec, allowed, unknown_key, unknown_preset) -> dict:
    """``raw`` with the values of its ``preset`` (one of ``spec.presets``) filled in where it does
    not set them; a key outside ``allowed`` or an unknown preset fails with the message that
    ``unknown_key(key)`` or ``unknown_preset(preset)`` gives (the rule and synapses.release)."""
    for key in raw:
        if key not in allowed:
            v.fail(path + (key,), unknown_key(key))
    preset = raw.get("preset")
    merged = dict(raw)
    if preset is not None:
        if preset not in spec.presets:
            v.fail(path + ("preset",), unknown_preset(preset))
        for k, x in spec.presets[preset].values.items():
            merged.setdefault(k, x)
    return merged


def _blocks(v: Validator, path, raw, spec) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raw = [raw] if isinstance(raw, str) else v.fail(path, f"expected a list of components, got {_kind(raw)}")
    out = []
    for k, name in enumerate(raw):
        if name not in spec.blockable:
            valid = ", ".join(spec.blockable) if spec.blockable else "none"
            v.fail(tuple(path) + (k,), f"{name!r} cannot be blocked in rule {spec.kind}; blockable components: {valid}{_close(str(name), spec.blockable)}")
        if name not in out:
            out.append(name)
    return tuple(out)


def _phases(v: Validator, data, neuron, syn, spec, dt, run_duration):
    if "stimulus" in data and "phases" in data:
        v.fail(("phases",), "give either stimulus (one phase) or phases (a list), not both")
    if "stimulus" in data:
        items = [(("stimulus",), data["stimulus"])]
    elif "phases" in data:
        raw = data["phases"]
        if not isinstance(raw, list) or not raw:
            v.fail(("phases",), f"expected a non-empty list of phases, got {_kind(raw)}")
        items = [(("phases", k), p) for k, p in enumerate(raw)]
    else:
        items = []
    phases, resolved, t0 = [], [], 0.0
    names = set()
    for k, (path, raw) in enumerate(items):
        p = v.mapping(path, raw, PHASE)
        name = v.field(path + ("name",), p.get("name"), PHASE[0]) or f"phase{k}"
        if name in names:
            v.fail(path + ("name",), f"duplicate phase name {name!r}")
        names.add(name)
        pre = _trains(v, path + ("pre",), p.get("pre"), "pre", syn.n_pre, neuron, spec)
        post = _trains(v, path + ("post",), p.get("post"), "post", syn.n_post, neuron, spec)
        pairing = None
        if p.get("pairing") is not None:
            pr = v.mapping(path + ("pairing",), p["pairing"], PAIRING)
            pairing = v.fields(path + ("pairing",), pr, PAIRING)
            if neuron.model != "clamped":
                v.fail(path + ("pairing",), "a pairing imposes postsynaptic spikes: it needs neuron model clamped")
            if spec.inputs != "spikes":
                v.fail(path + ("pairing",), f"rule {spec.kind} takes rate inputs (patterns, gaussian), not spike pairings")
        block = _blocks(v, path + ("block",), p.get("block"), spec)
        nominal = max([_nominal(t) for t in pre + post] + ([_pairing_length(pairing)] if pairing else []) + [0.0])
        duration = v.field(path + ("duration",), p.get("duration"), PHASE[1])
        if duration is None and k == len(items) - 1 and run_duration is not None and run_duration > t0:
            duration = run_duration - t0  # the last phase runs until the run's duration
        if duration is None:
            if any(_nominal(t) == math.inf for t in pre + post):
                v.fail(path + ("duration",), "required: a train here (poisson, patterns, gaussian, or regular without pulses/stop) has no end of its own")
            duration = nominal
            if duration <= 0 and not pre and not post and pairing is None:
                v.fail(path + ("duration",), "a rest phase (no trains) needs a duration")
        phase = Phase(name, t0, float(duration), pre, post, pairing, block)
        phases.append(phase)
        res = {"name": name, "duration": float(duration)}
        if pre:
            res["pre"] = _trains_resolved(pre)
        if post:
            res["post"] = _trains_resolved(post)
        if pairing:
            res["pairing"] = dict(pairing)
        res["block"] = list(block)
        resolved.append(res)
        t0 += float(duration)
    return phases, resolved


def _trains_resolved(trains):
    out = {}
    for t in trains:
        d = dict(t.params)
        if t.kind == "times":
            d = t.params["times"] if "all" not in t.params else t.params["all"]
        elif t.neurons is not None:
            d["neurons"] = list(t.neurons)
        out[t.kind] = d
    return out


def _trains(v: Validator, path, raw, population, n, neuron, spec) -> tuple[Train, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not raw:
        v.fail(path, f"expected a mapping of trains ({', '.join(TRAINS)}), got {_kind(raw)}")
    out = []
    for kind, body in raw.items():
        p = tuple(path) + (kind,)
        if kind not in TRAINS:
            v.fail(p, f"unknown train {kind!r}{_hint(str(kind), list(TRAINS))}")
        if population == "post" and neuron.model != "clamped":
            v.fail(p, f"postsynaptic trains impose spikes: they need neuron model clamped, not {neuron.model}")
        if kind in RATE_TRAINS and (population == "post" or spec.inputs != "rates"):
            v.fail(p, f"{kind} gives rate inputs; it is for presynaptic inputs of rate rules (hebb, oja, bcm), not rule {spec.kind}")
        if kind in SPIKE_TRAINS and spec.inputs == "rates":
            v.fail(p, f"rule {spec.kind} takes rate inputs (patterns, gaussian), not spike trains")
        if kind == "times":
            out.append(_times(v, p, body, n))
            continue
        fields = TRAINS[kind] + (NEURONS_FIELD,) if kind in SPIKE_TRAINS else TRAINS[kind]
        body = v.mapping(p, body, fields)
        params = v.fields(p, body, TRAINS[kind])
        neurons = _indices(v, p + ("neurons",), body.get("neurons"), n) if "neurons" in body else None
        if kind == "patterns":
            vecs = params["vectors"]
            if len(vecs[0]) != n:
                v.fail(p + ("vectors",), f"each pattern must have n_pre = {n} entries, got {len(vecs[0])}")
            probs = params["probabilities"]
            if probs is not None:
                if len(probs) != len(vecs):
                    v.fail(p + ("probabilities",), f"expected {len(vecs)} probabilities, one per pattern")
                if any(q < 0 for q in probs) or abs(sum(probs) - 1.0) > 1e-9:
                    v.fail(p + ("probabilities",), "probabilities must be >= 0 and sum to 1")
        if kind == "gaussian":
            if len(params["mean"]) != n:
                v.fail(p + ("mean",), f"expected n_pre = {n} means")
            cov = params["cov"]
            if len(cov) != n or len(cov[0]) != n:
                v.fail(p + ("cov",), f"expected an n_pre x n_pre = {n} x {n} matrix")
            if not _is_psd(cov):
                v.fail(p + ("cov",), "the covariance must be symmetric positive semi-definite")
        if kind == "regular" and params["pulses"] is not None and params["stop"] is not None:
            v.fail(p + ("stop",), "give pulses or stop, not both")
        for a, b in (("start", "stop"),):
            if params.get(b) is not None and params[b] < params.get(a, 0.0):
                v.fail(p + (b,), f"{b} is before {a}")
        out.append(Train(kind, params, neurons))
    return tuple(out)


def _is_psd(cov) -> bool:
    import numpy as np

    c = np.array(cov, dtype=float)
    if not np.allclose(c, c.T):
        return False
    return bool(np.linalg.eigvalsh(c).min() >= -1e-9 * max(1.0, abs(c).max()))


def _indices(v: Validator, path, raw, n) -> tuple[int, ...]:
    if not isinstance(raw, list) or not raw:
        v.fail(path, f"expected a list of neuron indices, got {_kind(raw)}")
    out = []
    for k, x in enumerate(raw):
        if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < n:
            v.fail(tuple(path) + (k,), f"expected an index from 0 to {n - 1}, got {x!r}")
        out.append(x)
    return tuple(sorted(set(out)))


def _times(v: Validator, path, body, n) -> Train:
    def times_list(p, raw):
        if not isinstance(raw, list):
            v.fail(p, f"expected a list of spike times, got {_kind(raw)}")
        out = []
        for k, x in enumerate(raw):
            try:
                t = parse_quantity(x, TIME)
            except UnitError as exc:
                v.fail(tuple(p) + (k,), str(exc))
            if t < 0:
                v.fail(tuple(p) + (k,), "spike times must be >= 0")
            out.append(t)
        return tuple(sorted(out))

    if isinstance(body, list):
        return Train("times", {"all": times_list(path, body)}, None)
    if isinstance(body, dict):
        per = {}
        for key, lst in body.items():
            idx = key
            if isinstance(key, str) and key.strip().isdigit():
                idx = int(key)
            if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < n:
                v.fail(tuple(path) + (key,), f"expected a neuron index from 0 to {n - 1}, got {key!r}")
            per[idx] = times_list(tuple(path) + (key,), lst)
        return Train("times", {"times": {str(k): list(t) for k, t in sorted(per.items())}, "per": per}, tuple(sorted(per)))
    v.fail(path, f"expected a list of times or a mapping neuron -> list of times, got {_kind(body)}")


def _pairing_length(p) -> float:
    return p["start"] + p["pairs"] / p["frequency"] * 1000.0


def _last_spike(t: Train) -> float | None:
    """The time of a train's last spike (ms from the phase start), for trains with a fixed
    number of spikes; None for trains that run until they stop or the phase ends."""
    q = t.params
    if t.kind == "regular":
        return None if q["pulses"] is None or q["pulses"] == 0 else q["start"] + (q["pulses"] - 1) * 1000.0 / q["frequency"]
    if t.kind == "tetanus":
        period = 1000.0 / q["frequency"]
        pulses = int(round(q["duration"] / period))
        return None if pulses == 0 or q["trains"] == 0 else q["start"] + (q["trains"] - 1) * q["interval"] + (pulses - 1) * period
    if t.kind == "theta_burst":
        if 0 in (q["trains"], q["bursts"], q["pulses"]):
            return None
        return q["start"] + (q["trains"] - 1) * q["train_interval"] + (q["bursts"] - 1) * q["burst_interval"] + (q["pulses"] - 1) * 1000.0 / q["frequency"]
    if t.kind == "times":
        allt = q["all"] if "all" in q else [x for ts in q["per"].values() for x in ts]
        return max(allt) if len(allt) else None
    return None


def _at(data, path):
    """The raw mapping at ``path`` (a tuple of keys and indices), or {}."""
    for k in path:
        try:
            data = data[k]
        except (KeyError, IndexError, TypeError):
            return {}
    return data if isinstance(data, dict) else {}


def _nominal(t: Train) -> float:
    """The length a train needs on its own (ms); inf when it runs until the phase ends."""
    q = t.params
    if t.kind == "poisson":
        return q["stop"] if q["stop"] is not None else math.inf
    if t.kind == "regular":
        if q["pulses"] is not None:
            return q["start"] + q["pulses"] / q["frequency"] * 1000.0
        return q["stop"] if q["stop"] is not None else math.inf
    if t.kind == "tetanus":
        return q["start"] + (q["trains"] - 1) * q["interval"] + q["duration"]
    if t.kind == "theta_burst":
        return q["start"] + (q["trains"] - 1) * q["train_interval"] + (q["bursts"] - 1) * q["burst_interval"] + q["pulses"] / q["frequency"] * 1000.0
    if t.kind == "times":
        allt = q["all"] if "all" in q else [x for ts in q["per"].values() for x in ts]
        return (max(allt) if allt else 0.0) + 1.0
    return math.inf  # patterns, gaussian


def _record_key(raw, syn: Synapses, duration, phases) -> tuple:
    """What :func:`_record` takes from the duration and the phases (its other inputs are the
    raw section, the synapses, the neuron model, the rule and dt): the duration, and the
    defaults of ``spikes`` and ``responses`` that the expected spike counts decide."""
    raw = raw if isinstance(raw, dict) else {}
    spikes = expected_spikes(phases, syn) <= MAX_SPIKES_DEFAULT if raw.get("spikes") is None else None
    responses = None
    if raw.get("responses") is None and syn.release is not None:
        responses = expected_spikes(phases, Synapses(syn.n_pre, 0, syn.w_init, syn.w_min, syn.w_max))
    return (duration, spikes, responses)


def _record(v: Validator, raw, syn: Synapses, neuron: Neuron, spec, duration, dt, phases) -> Record:
    path = ("record",)
    raw = v.mapping(path, raw, RECORD)
    interval = v.field(path + ("interval",), raw.get("interval"), RECORD[0])
    n_syn = syn.n_pre * syn.n_post
    if interval is None:  # about 1000 rows; fewer for huge weight matrices (stats cost O(n_syn) a row)
        rows = 1000 if n_syn <= 200_000 else max(10, int(2e8 / n_syn))
        interval = max(dt, _nice(duration / rows))
    n_every = max(1, int(round(interval / dt)))
    interval = n_every * dt
    w = raw.get("weights")
    if w is None:
        weights = [(i, j) for i in range(syn.n_pre) for j in range(syn.n_post)] if n_syn <= 16 else []
    elif w == "all":
        if n_syn > 10_000:
            v.fail(path + ("weights",), f"'all' would record {n_syn} weight columns; list the [pre, post] pairs you need")
        weights = [(i, j) for i in range(syn.n_pre) for j in range(syn.n_post)]
    elif w == "none":
        weights = []
    elif isinstance(w, list):
        weights = []
        for k, pair in enumerate(w):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in pair)):
                v.fail(path + ("weights", k), f"expected a [pre, post] pair of indices, got {pair!r}")
            if not (0 <= pair[0] < syn.n_pre and 0 <= pair[1] < syn.n_post):
                v.fail(path + ("weights", k), f"[{pair[0]}, {pair[1]}] is outside the {syn.n_pre} x {syn.n_post} weight matrix")
            weights.append((pair[0], pair[1]))
    else:
        v.fail(path + ("weights",), f"expected all, none or a list of [pre, post] pairs, got {_kind(w)}")
    stats = raw.get("stats", ["mean"])
    stats = [stats] if isinstance(stats, str) else stats
    if not isinstance(stats, list):
        v.fail(path + ("stats",), f"expected a list of {', '.join(STATS)}")
    for k, s in enumerate(stats):
        if s not in STATS:
            v.fail(path + ("stats", k), f"unknown statistic {s!r}; valid: {', '.join(STATS)}{_close(str(s), STATS)}")
    state = raw.get("state", [])
    state = [state] if isinstance(state, str) else state
    if not isinstance(state, list):
        v.fail(path + ("state",), "expected a list of state variable names")
    valid = [s.name for s in spec.state] + list(NEURON_STATE[neuron.model])
    if syn.release is not None:
        valid += ["u", "x"]
    for k, s in enumerate(state):
        if s in ("u", "x") and syn.release is None and s not in valid:
            v.fail(path + ("state", k), f"{s!r} is a state variable of transmitter release: it needs synapses.release")
        if s not in valid:
            v.fail(path + ("state", k), f"unknown state variable {s!r} for rule {spec.kind} with neuron model {neuron.model}; valid: {', '.join(valid) or 'none'}{_close(str(s), valid)}")
    spikes = raw.get("spikes")
    if spikes is not None and not isinstance(spikes, bool) and spikes not in ("pre", "post"):
        v.fail(path + ("spikes",), f"expected true, false, pre or post, got {spikes!r}")
    if spikes is None:
        spikes = expected_spikes(phases, syn) <= MAX_SPIKES_DEFAULT
    thr = v.field(path + ("outcome_threshold",), raw.get("outcome_threshold"), RECORD[5])
    responses = v.field(path + ("responses",), raw.get("responses"), RECORD[6])
    if responses and syn.release is None:
        v.fail(path + ("responses",), "responses.csv holds the amplitudes of transmitter release: it needs synapses.release")
    if responses is None:
        per_neuron = expected_spikes(phases, Synapses(syn.n_pre, 0, syn.w_init, syn.w_min, syn.w_max)) / max(1, syn.n_pre)
        responses = syn.release is not None and per_neuron * len(weights) <= MAX_RESPONSES_DEFAULT
    fmt = v.field(path + ("format",), raw.get("format"), RECORD[7])
    return Record(interval, tuple(weights), tuple(dict.fromkeys(stats)), tuple(dict.fromkeys(state)), spikes, thr, bool(responses), fmt)


def _release(v: Validator, raw) -> Release:
    """``synapses.release``: a preset, then explicit keys; U in (0, 1], tau_rec > 0, tau_fac >= 0."""
    from ..core.release import SPEC

    path = ("synapses", "release")
    if not isinstance(raw, dict):
        v.fail(path, f"expected a mapping (model: tsodyks_markram, U, tau_rec, tau_fac, sites, or a preset), got {_kind(raw)}")
    names = SPEC.param_names
    merged = _with_preset(
        v, path, raw, SPEC, ("preset",) + names,
        lambda key: f"unknown key {key!r} of synapses.release{_hint(str(key), ('preset',) + names)}",
        lambda preset: f"unknown preset {preset!r} of release{_hint(str(preset), list(SPEC.presets))}",
    )
    preset = raw.get("preset")
    values = {}
    for p in SPEC.params:
        f = F(p.name, INT if p.dim == "int" else p.dim, p.default, p.doc, lo=p.lo, hi=p.hi, lo_open=p.lo_open, choices=p.choices)
        x = merged.get(p.name)
        if p.name == "U" and x is not None:
            try:
                u = parse_quantity(x, ONE)
            except UnitError as exc:
                v.fail(path + ("U",), str(exc))
            if not (0.0 < u <= 1.0):
                v.fail(path + ("U",), f"U is the release probability of a rested synapse: it must be in (0, 1], got {u:g}")
        if p.name in ("tau_rec", "tau_fac") and x is not None:
            try:
                t = parse_quantity(x, TIME)
            except UnitError as exc:
                v.fail(path + (p.name,), str(exc))
            if t < 0 or (p.name == "tau_rec" and t == 0):
                need = "> 0 (the recovery of the resources takes time)" if p.name == "tau_rec" else ">= 0 (0: no facilitation)"
                v.fail(path + (p.name,), f"{p.name} must be {need}, got {t:g} ms")
        values[p.name] = v.field(path + (p.name,), x, f)
    return Release(values["model"], values["U"], values["tau_rec"], values["tau_fac"], values["sites"], preset)


def _nice(x: float) -> float:
    """Round x down to 1, 2 or 5 times a power of ten."""
    if x <= 0:
        return x
    e = math.floor(math.log10(x))
    for m in (5, 2, 1):
        if m * 10**e <= x:
            return m * 10**e
    return 10**e


def expected_spikes(phases, syn: Synapses) -> float:
    """About how many spikes the stimulus produces (for sizes and defaults)."""
    total = 0.0
    for ph in phases:
        for trains, n in ((ph.pre, syn.n_pre), (ph.post, syn.n_post)):
            for t in trains:
                k = len(t.neurons) if t.neurons is not None else n
                total += k * train_count(t, ph.duration)
        if ph.pairing:
            p = ph.pairing
            total += p["pairs"] * (p["pre_spikes"] * syn.n_pre + p["post_spikes"] * syn.n_post)
    return total


def train_count(t: Train, duration: float) -> float:
    """Spikes per neuron of a train within a phase of ``duration`` ms (expected for Poisson)."""
    q = t.params
    if t.kind == "poisson":
        stop = min(q["stop"], duration) if q["stop"] is not None else duration
        return max(0.0, stop - q["start"]) * q["rate"] / 1000.0
    if t.kind == "regular":
        if q["pulses"] is not None:
            return q["pulses"]
        stop = min(q["stop"], duration) if q["stop"] is not None else duration
        return max(0.0, stop - q["start"]) * q["frequency"] / 1000.0
    if t.kind == "tetanus":
        return q["trains"] * round(q["duration"] * q["frequency"] / 1000.0)
    if t.kind == "theta_burst":
        return q["trains"] * q["bursts"] * q["pulses"]
    if t.kind == "times":
        return len(q["all"]) if "all" in q else max((len(x) for x in q["per"].values()), default=0)
    return 0.0


# ---------------------------------------------------------------------------- overrides, sweeps
def parse_set(expr: str) -> tuple[tuple, Any]:
    """``PATH=VALUE`` from the command line: VALUE is read as YAML (safely, like a file's values)."""
    from .yamlsrc import load_value

    if "=" not in expr:
        raise ProtocolError(f"--set expects PATH=VALUE, got {expr!r}", "", "--set", None)
    path, value = expr.split("=", 1)
    path = path.strip()
    if not path:
        raise ProtocolError(f"--set expects PATH=VALUE, got {expr!r}", "", "--set", None)
    value = load_value(value, f"--set {path}") if value.strip() else None
    return split_path(path), value


def split_path(path: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in path.split("."))


def set_path(data: dict, path: tuple, value, fail) -> None:
    """Set ``data[path] = value``, creating mappings on the way; ``fail(msg)`` on a bad path."""
    node = data
    for k, key in enumerate(path[:-1]):
        if isinstance(node, list):
            if not isinstance(key, int) or not 0 <= key < len(node):
                fail(f"{dotted(path[:k + 1])}: no list element {key!r} (the list has {len(node)})")
            node = node[key]
        elif isinstance(node, dict):
            if key not in node or node[key] is None:
                node[key] = {}
            node = node[key]
        else:
            fail(f"{dotted(path[:k])} is a value, not a section")
    last = path[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or not 0 <= last < len(node):
            fail(f"{dotted(path)}: no list element {last!r}")
        node[last] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        fail(f"{dotted(path[:-1])} is a value, not a section")


SWEEP_RESERVED = ("mode",)


def _sweep_values(v: Validator, path, raw, count_only: bool = False):
    """The values of one sweep key, or with ``count_only`` only how many (nothing is built)."""
    if isinstance(raw, list):
        if not raw:
            v.fail(path, "an empty list of values")
        return len(raw) if count_only else list(raw)
    if isinstance(raw, dict):
        extra = set(raw) - {"from", "to", "step"}
        if extra:
            key = sorted(extra, key=str)[0]
            v.fail(tuple(path) + (key,), f"unknown key {key!r}; a range has from, to, step")
        for key in ("from", "to", "step"):
            if key not in raw:
                v.fail(tuple(path) + (key,), "required in a range {from, to, step}")
        dims = []
        nums = {}
        for key in ("from", "to", "step"):
            x, dim = _any_quantity(v, tuple(path) + (key,), raw[key])
            nums[key] = x
            dims.append(dim)
        named = {d for d in dims if d is not None}
        if len(named) > 1:
            v.fail(path, f"from, to and step have different dimensions ({', '.join(sorted(named))})")
        if nums["step"] <= 0:
            v.fail(tuple(path) + ("step",), "step must be > 0")
        q = (nums["to"] - nums["from"]) / nums["step"]
        if not math.isfinite(q) or q >= MAX_CONDITIONS:
            v.fail(path, f"about {q:.3g} values: too many (a sweep has at most {MAX_CONDITIONS} conditions)")
        count = int(math.floor(q + 1e-9)) + 1
        if count < 1:
            v.fail(tuple(path) + ("to",), "to is below from")
        if count_only:
            return count
        vals = [nums["from"] + k * nums["step"] for k in range(count)]
        return [round(x, 12) for x in vals]
    v.fail(path, f"expected a list of values or a range {{from, to, step}}, got {_kind(raw)}")


def _any_quantity(v: Validator, path, x):
    """A number with any known unit -> (canonical value, dimension or None for bare)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x), None
    for dim in (TIME, RATE, VOLTAGE):
        try:
            return parse_quantity(x, dim), dim
        except UnitError:
            pass
    v.fail(path, f"cannot read {x!r} as a number with a unit")


def lookup(resolved: dict, path: tuple):
    node = resolved
    for key in path:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return None
    return node


def load_experiment(path_or_src, overrides=(), seed: int | None = None) -> Experiment:
    """Load, apply ``--set`` overrides, expand the sweep and validate every condition.

    ``path_or_src``: a file path or a :class:`~plastictool.protocol.yamlsrc.Source`; ``overrides``:
    ``"PATH=VALUE"`` strings (``--set``, VALUE read as YAML) or ``(PATH, value)`` pairs (the
    Python API's ``set=``, the value as it is), applied in order with the same validation."""
    from .yamlsrc import load_file

    src = path_or_src if isinstance(path_or_src, Source) else load_file(path_or_src)
    data = copy.deepcopy(src.data)
    origin = {}
    file = src.file
    stem = _stem(file)
    for item in overrides:
        if isinstance(item, tuple):  # (dotted path, value) from the Python API: set={path: value}
            key, value = item
            p, expr = split_path(str(key)), f"{key}={_show(value)}"
        else:
            p, value = parse_set(item)
            expr = item

        def fail(msg, expr=expr):
            raise ProtocolError(msg, "", "--set", None)

        set_path(data, p, value, fail)
        origin[p] = ("--set", None, f" (from --set {expr})")
    if seed is not None:
        data["seed"] = seed
        origin[("seed",)] = ("--seed", None, "")
    base_src = Source(data, src.lines, file)
    v = Validator(base_src, origin)
    sweep_raw = data.pop("sweep", None)
    keys, mode, combos = (), "grid", [()]
    if sweep_raw is not None:
        if not isinstance(sweep_raw, dict) or not sweep_raw:
            v.fail(("sweep",), f"expected a mapping of dotted paths to values, got {_kind(sweep_raw)}")
        mode = sweep_raw.get("mode", "grid")
        if mode not in ("grid", "zip"):
            v.fail(("sweep", "mode"), f"{mode!r} is not one of grid, zip")
        keys = tuple(k for k in sweep_raw if k not in SWEEP_RESERVED)
        if not keys:
            v.fail(("sweep",), "no paths to sweep")
        sizes = []
        for key in keys:
            if not isinstance(key, str):
                v.fail(("sweep", key), "sweep keys are dotted paths such as rule.a_plus")
            p = split_path(key)
            if p[0] in ("sweep", "name") or p == ("seed",):
                v.fail(("sweep", key), f"{key} cannot be swept")
            sizes.append(_sweep_values(v, ("sweep", key), sweep_raw[key], count_only=True))
        # count the conditions before building any (three keys of 1000 values: 1e9 conditions)
        if mode == "zip":
            if len(set(sizes)) != 1:
                v.fail(("sweep", "mode"), f"zip needs lists of equal length, got {', '.join(str(n) for n in sizes)}")
            total = sizes[0]
        else:
            total = math.prod(sizes)
        if total > MAX_CONDITIONS:
            v.fail(("sweep",), f"{total} conditions ({' x '.join(str(n) for n in sizes)}): too many (at most {MAX_CONDITIONS}); split the sweep into several protocols or use --shard")
        lists = [_sweep_values(v, ("sweep", key), sweep_raw[key]) for key in keys]
        if mode == "zip":
            combos = list(zip(*lists))
        else:
            import itertools

            combos = list(itertools.product(*lists))
    sections = Sections()
    base = validate(Source(data, src.lines, file), origin, stem, keep=sections)
    swept = frozenset(split_path(key)[0] for key in keys)  # the top-level keys the sweep reaches
    conditions = []
    if not keys:
        conditions.append(Condition(0, (), base))
    else:
        for index, combo in enumerate(combos):
            cdata = dict(data)  # the sections the sweep reaches are copied; the others are only read
            for top_key in swept:
                if top_key in cdata:
                    cdata[top_key] = _copy_plain(cdata[top_key])
            corigin = dict(origin)
            for key, value in zip(keys, combo):
                p = split_path(key)

                def fail(msg, key=key):
                    v.fail(("sweep", key), msg)

                set_path(cdata, p, value, fail)
                note = f" (sweep condition {index}: {key} = {value!r})"
                corigin[p] = (file, src.line(("sweep", key)), note)
            proto = validate(Source(cdata, src.lines, file), corigin, stem, base=sections if REUSE_SECTIONS else None, swept=swept)
            vals = []
            for key, value in zip(keys, combo):
                got = lookup(proto.resolved, split_path(key))
                if got is None and split_path(key)[0] == "stimulus":
                    got = lookup(proto.resolved, ("phases", 0) + split_path(key)[1:])
                vals.append((key, got if isinstance(got, (int, float)) else value))
            conditions.append(Condition(index, tuple(vals), proto))
    raw_all = copy.deepcopy(src.data)
    shown = tuple(x if isinstance(x, str) else f"{x[0]}={_show(x[1])}" for x in overrides)
    return Experiment(file, base.name, base, keys, mode, tuple(conditions), shown, raw_all)


def _copy_plain(x):
    """``copy.deepcopy`` of loaded YAML (dicts, lists and scalars, no shared parts: aliases are
    refused), a few times faster: a sweep copies the protocol once per condition (W1: 101 times).
    Anything else (a ``set=`` value of the Python API) goes through ``copy.deepcopy``."""
    t = type(x)
    if t is dict:
        return {k: _copy_plain(v) for k, v in x.items()}
    if t is list:
        return [_copy_plain(v) for v in x]
    if t in (str, int, float, bool) or x is None:
        return x
    return copy.deepcopy(x)


def _show(value) -> str:
    """A ``set=`` value as ``--set`` would spell it (strings as they are, the rest as JSON,
    which is YAML)."""
    import json

    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _stem(file: str) -> str | None:
    from pathlib import Path

    if file.startswith("<"):  # "<string>", "<dict>" (the Python API): the name defaults to "protocol"
        return None
    name = Path(file).name
    for ext in (".yaml", ".yml"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name
