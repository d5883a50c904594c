"""What every plasticity rule declares: parameters, presets, state, blockable components.

A rule is one module in ``plastictool/rules/`` plus one line in
``plastictool/rules/__init__.py``. The module defines

``SPEC``
    a :class:`RuleSpec`: parameters with dimension, default and meaning, published presets
    with their citation, recordable state variables, blockable components. The module
    docstring holds the equations and the paper; ``plastic rules KIND`` prints both.
``build(values, ctx) -> (Params, State)``
    turns validated parameter values (floats in canonical units: ms, Hz, mV; strings for
    options) into a ``Params`` NamedTuple of floats/ints in the kernel's units and a ``State``
    NamedTuple of arrays, given a :class:`BuildContext`.
``advance(w, net, st, pr, s0, s1, blocked, rel=None, present=None) -> int``
    the ``@jit`` kernel: integrates steps ``s0 <= s < s1`` in place and returns the step it
    reached (``s1``, or earlier when the post-spike buffer of ``net`` is full).
``advance_block(w, net, st, pr, s0, s1, blocked, j0, j1, lif, rel, present, inh) -> int`` and ``block_state(st)``
    only for rules with ``SPEC.post_blocks``: ``advance`` for the post neurons
    ``j0 <= j < j1`` alone, and a State for another such block (private copies of what is
    written per pre neuron or per call, the per-post arrays shared). Post neurons do not
    interact, so the engine may advance disjoint blocks of one network on threads, each with
    its own ``core.net.block_net`` and ``block_state``; the results must be identical, bit for
    bit, to one ``advance``. ``lif`` is ``core.net.lif_arg(net)``, the LIF parameters or None:
    tested with ``lif is None``, it lets Numba compile only the neuron model's code; ``rel``
    (``core.release``), ``present`` (``core.structure``) and ``inh`` (``core.inhibit``)
    likewise, None when unused. The
    engine calls ``advance_block`` over all post neurons for one thread too (one entry kernel
    to compile); ``advance`` stays, as plain Python over all post neurons, for tests and
    callers of the rule alone.
``probe(st, pr, name, step) -> ndarray``
    the current value of a state variable, shape ``(n_pre,)``, ``(n_post,)`` or
    ``(n_pre, n_post)`` as declared in ``SPEC.state``, brought to time ``step * dt``.

Kernels never see dicts, strings, paths or units: only arrays, floats and ints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

# dimensions of quantities (spec section 1); "1" is dimensionless
TIME, RATE, VOLTAGE, ONE = "time", "rate", "voltage", "1"
CANONICAL_UNIT = {TIME: "ms", RATE: "Hz", VOLTAGE: "mV", ONE: ""}


@dataclass(frozen=True)
class Param:
    """One parameter of a rule, in the literature's name."""

    name: str
    dim: str  # TIME | RATE | VOLTAGE | ONE | "choice" | "init"
    default: Any
    doc: str
    lo: float | None = None  # inclusive lower bound
    hi: float | None = None  # inclusive upper bound
    lo_open: bool = False  # lower bound is exclusive (strictly greater)
    choices: tuple[str, ...] = ()

    @property
    def unit(self) -> str:
        return CANONICAL_UNIT.get(self.dim, "")


@dataclass(frozen=True)
class Preset:
    values: Mapping[str, Any]
    citation: str
    note: str = ""


@dataclass(frozen=True)
class StateVar:
    name: str
    shape: str  # "pre" | "post" | "syn"
    doc: str


@dataclass(frozen=True)
class RuleSpec:
    kind: str
    title: str
    citation: str
    params: tuple[Param, ...]
    state: tuple[StateVar, ...] = ()
    presets: Mapping[str, Preset] = field(default_factory=dict)
    blockable: tuple[str, ...] = ()
    neurons: tuple[str, ...] = ("clamped", "lif")  # neuron models the rule works with
    inputs: str = "spikes"  # "spikes" or "rates"
    weight_from_state: bool = False  # the weight is a readout of rule state (calcium, receptor)
    post_blocks: bool = False  # the module has advance_block and block_state (threads over post neurons)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def state_var(self, name: str) -> StateVar:
        for s in self.state:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass
class BuildContext:
    """What a rule's ``build`` may use. Units: ms, mV, Hz."""

    n_pre: int
    n_post: int
    dt: float  # ms
    w: np.ndarray  # initial weights (n_pre, n_post), float64; rules that read out may overwrite
    w_min: float  # -inf when unbounded
    w_max: float  # +inf when unbounded
    rng: np.random.Generator  # rule-owned random stream (derived from the protocol seed)
    blockable_index: Mapping[str, int] = field(default_factory=dict)


def block_mask(spec: RuleSpec, names) -> np.ndarray:
    """A uint8 array, one flag per blockable component of ``spec`` (1 = blocked)."""
    mask = np.zeros(max(1, len(spec.blockable)), dtype=np.uint8)
    for name in names:
        mask[spec.blockable.index(name)] = 1
    return mask
