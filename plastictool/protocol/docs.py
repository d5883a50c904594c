"""Text for ``plastic rules`` and the JSON Schema for ``plastic schema``, from the same tables
that validate protocols, so the documentation cannot drift from the code."""

from __future__ import annotations

import importlib
import inspect
import math

from .. import rules as registry
from ..errors import ProtocolError
from .schema import (
    NEURON_COMMON,
    NEURON_LIF,
    NEURON_RATE,
    PAIRING,
    EXPRESSION,
    PHASE,
    RECORD,
    STRUCTURE,
    SYNAPSES,
    DELAY,
    TOP,
    TRAINS,
    F,
)
from .units import CANONICAL, UNITS


def _default(p) -> str:
    d = p.default
    if d is None:
        return "required" if getattr(p, "required", False) else "-"
    if hasattr(d, "resolved"):
        d = d.resolved()
    if isinstance(d, float):
        if math.isinf(d):
            return "unbounded"
        return f"{d:g}"
    return str(d)


def _unit(dim: str) -> str:
    return CANONICAL.get(dim, "") if dim in CANONICAL else ""


# mechanisms that compose with every spike rule, printed by ``plastic rules NAME`` like a rule
MECHANISMS = {"release": "plastictool.core.release"}


def rules_text(kind: str | None = None) -> str:
    kinds = registry.kinds()
    if kind is not None and kind not in kinds and kind not in MECHANISMS:
        kinds = kinds + list(MECHANISMS)
        import difflib

        close = difflib.get_close_matches(kind, kinds, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ProtocolError(f"unknown rule {kind!r}{hint}; rules: {', '.join(kinds)}", "kind", "plastic rules", None)
    if kind is None:
        lines = ["Rules (plastic rules KIND for equations, parameters, presets):", ""]
        for k in kinds:
            s = registry.spec(k)
            lines.append(f"  {k:<10} {s.title}")
            lines.append(f"  {'':<10} {s.citation}")
        lines += ["", "Mechanisms (compose with every spike rule; plastic rules NAME):", ""]
        for k, path in MECHANISMS.items():
            s = importlib.import_module(path).SPEC
            lines.append(f"  {k:<10} {s.title}")
            lines.append(f"  {'':<10} {s.citation}")
        lines += ["", "Units: time in ms, rates in Hz (learning rates eta in 1/s), voltages in mV when a bare number is given."]
        return "\n".join(lines)
    mod = importlib.import_module(MECHANISMS[kind]) if kind in MECHANISMS else registry.module(kind)
    s = mod.SPEC
    out = [f"{kind}: {s.title}", "", inspect.cleandoc(mod.__doc__ or "").strip(), ""]
    if kind in MECHANISMS:
        from ..core.release import RULES

        out.append(f"Composes with the rules {', '.join(RULES)}; neuron models: {', '.join(s.neurons)}")
        out += ["", "Parameters (synapses.release; preset: NAME sets them, explicit keys override):", f"  {'name':<18} {'unit':<5} {'default':<12} meaning"]
    else:
        out.append(f"Neuron models: {', '.join(s.neurons)}; inputs: {s.inputs}")
    if kind not in MECHANISMS:
        out += ["", "Parameters:", f"  {'name':<18} {'unit':<5} {'default':<12} meaning"]
    for p in s.params:
        unit = _unit(p.dim)
        if p.dim == "choice":
            unit = ""
            doc = f"{p.doc} ({' | '.join(p.choices)})"
        else:
            doc = p.doc
        out.append(f"  {p.name:<18} {unit:<5} {_default(p):<12} {doc}")
    if s.state:
        out += ["", "State (record.state):"]
        for v in s.state:
            out.append(f"  {v.name:<10} per {'synapse' if v.shape == 'syn' else v.shape + 'synaptic neuron'}: {v.doc}")
    if s.blockable:
        out += ["", f"Blockable (block: [...]): {', '.join(s.blockable)}"]
    if s.presets:
        out += ["", "Presets (preset: NAME; explicit keys override):"]
        for name, pre in s.presets.items():
            vals = ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in pre.values.items())
            out.append(f"  {name}")
            out.append(f"      {vals}")
            out.append(f"      source: {pre.citation}")
            if pre.note:
                out.append(f"      note: {pre.note}")
    out += ["", f"Citation: {s.citation}"]
    return "\n".join(out)


# ---------------------------------------------------------------------------- JSON Schema
def _quantity(dim: str, doc: str) -> dict:
    units = "|".join(u.replace("/", "\\/") for u in UNITS[dim])
    return {
        "description": f"{doc} [{dim}; bare number = {CANONICAL[dim]}]".strip(),
        "anyOf": [{"type": "number"}, {"type": "string", "pattern": rf"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*({units})?\s*$"}],
    }


def _field_schema(f: F) -> dict:
    t = f.type
    if t in ("time", "rate", "voltage"):
        return _quantity(t, f.doc)
    if t in ("1", "number"):
        return {"type": "number", "description": f.doc}
    if t == "int":
        return {"type": "integer", "description": f.doc}
    if t == "bool":
        return {"type": "boolean", "description": f.doc}
    if t == "str":
        return {"type": "string", "description": f.doc}
    if t == "choice":
        return {"enum": list(f.choices), "description": f.doc}
    if t == "spikes":
        return {"enum": [True, False, "pre", "post"], "description": f.doc}
    if t == "bound":
        return {"type": ["number", "null"], "description": f.doc}
    if t == "vector":
        return {"type": "array", "items": {"type": "number"}, "description": f.doc}
    if t == "matrix":
        return {"type": "array", "items": {"type": "array", "items": {"type": "number"}}, "description": f.doc}
    if t == "init":
        return {
            "description": f.doc,
            "anyOf": [
                {"type": "number"},
                {"type": "object", "properties": {"uniform": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}}, "additionalProperties": False},
                {"type": "object", "properties": {"normal": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}}, "additionalProperties": False},
                {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
            ],
        }
    if t == "present":
        return {"description": f.doc, "anyOf": [{"type": "number", "minimum": 0, "maximum": 1}, {"type": "array", "items": {"type": "array", "items": {"enum": [0, 1]}}}]}
    if t == "indices":
        return {"type": "array", "items": {"type": "integer", "minimum": 0}, "description": f.doc}
    return {"description": f.doc}


def _obj(fields, extra: dict | None = None) -> dict:
    props = {f.name: _field_schema(f) for f in fields}
    props.update(extra or {})
    return {"type": "object", "properties": props, "additionalProperties": False}


def _release_schema() -> dict:
    """``synapses.release`` (section 11), from the release mechanism's parameter table."""
    from ..core.release import SPEC

    props = {"preset": {"enum": list(SPEC.presets)}}
    for p in SPEC.params:
        f = F(p.name, "int" if p.dim == "int" else p.dim, p.default, p.doc, choices=p.choices)
        props[p.name] = _field_schema(f) if p.name != "sites" else {"type": ["integer", "null"], "minimum": 1, "description": p.doc}
    return {"description": "transmitter release (Tsodyks-Markram short-term plasticity)", "type": ["object", "null"], "properties": props, "additionalProperties": False}


def json_schema() -> dict:
    from .schema import NEURONS_FIELD, SPIKE_TRAINS, STATS

    trains = {}
    for kind, fields in TRAINS.items():
        if kind == "times":
            trains[kind] = {
                "description": "a list of spike times for all neurons, or a mapping neuron index -> list",
                "anyOf": [
                    {"type": "array", "items": _quantity("time", "")},
                    {"type": "object", "additionalProperties": {"type": "array", "items": _quantity("time", "")}},
                ],
            }
        else:
            trains[kind] = _obj(fields + ((NEURONS_FIELD,) if kind in SPIKE_TRAINS else ()))
    trains_obj = {"type": "object", "properties": trains, "additionalProperties": False}
    rule_variants = []
    for kind in registry.kinds():
        s = registry.spec(kind)
        props = {"kind": {"const": kind}, "preset": {"enum": list(s.presets)} if s.presets else {"not": {}}, "expression": _field_schema(EXPRESSION)}
        for p in s.params:
            f = F(p.name, p.dim, p.default, p.doc, choices=p.choices)
            props[p.name] = _field_schema(f)
        rule_variants.append({"type": "object", "properties": props, "required": ["kind"], "additionalProperties": False})
    blockable = sorted({b for k in registry.kinds() for b in registry.spec(k).blockable})
    block = {"type": "array", "items": {"enum": blockable}}
    phase = _obj([f for f in PHASE if f.name not in ("pre", "post", "pairing", "block")], {"pre": trains_obj, "post": trains_obj, "pairing": _obj(PAIRING), "block": block})
    neuron = _obj(NEURON_COMMON + NEURON_LIF + NEURON_RATE)
    record = _obj(
        [f for f in RECORD if f.name not in ("weights", "stats", "state")],
        {
            "weights": {"anyOf": [{"enum": ["all", "none"]}, {"type": "array", "items": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2}}]},
            "stats": {"type": "array", "items": {"enum": list(STATS)}},
            "state": {"type": "array", "items": {"type": "string"}},
        },
    )
    top_simple = [f for f in TOP if f.type not in ("section", "list")]
    schema = _obj(
        top_simple,
        {
            "synapses": _obj(
                [f for f in SYNAPSES if f.name not in ("delay", "release", "inhibitory", "structure")],
                {
                    "delay": _obj(DELAY),
                    "release": _release_schema(),
                    "structure": _obj(STRUCTURE),
                    "inhibitory": {
                        "description": [f for f in SYNAPSES if f.name == "inhibitory"][0].doc,
                        "anyOf": [
                            {"type": "array", "items": {"type": "integer", "minimum": 0}},
                            {"type": "object", "properties": {"from": {"type": "integer", "minimum": 0}, "to": {"type": "integer", "minimum": 0}},
                             "required": ["from", "to"], "additionalProperties": False},
                        ],
                    },
                },
            ),
            "neuron": neuron,
            "stimulus": phase,
            "phases": {"type": "array", "items": phase},
            "rule": {"anyOf": rule_variants},
            "block": block,
            "record": record,
            "sweep": {
                "type": "object",
                "properties": {"mode": {"enum": ["grid", "zip"]}},
                "additionalProperties": {
                    "anyOf": [
                        {"type": "array"},
                        {"type": "object", "properties": {"from": {}, "to": {}, "step": {}}, "required": ["from", "to", "step"], "additionalProperties": False},
                    ]
                },
            },
            "fit": {
                "type": "object",
                "description": "plastic fit: measured data, free parameters and method (ignored by plastic run)",
                "properties": {
                    "data": {"type": "string", "description": "DATA.csv, relative to the protocol's folder"},
                    "params": {"type": "object", "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 3}},
                    "method": {"enum": ["least_squares", "cmaes"]},
                },
                "additionalProperties": False,
            },
        },
    )
    schema["required"] = ["synapses", "rule"]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "plastic protocol"
    return schema
