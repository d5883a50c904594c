"""docs/protocol.md, the format reference, stays in step with the code.

The checks read the doc as Markdown sections (a heading and everything up to the next heading of
the same or a higher level) and ask:

* every property of ``plastic schema`` (``plastictool.protocol.docs.json_schema()``), by its dotted
  path, is named in backticks inside a section whose heading names its parent key in backticks
  (``stimulus.pre.theta_burst.train_interval`` -> `` `train_interval` `` under a heading with
  `` `theta_burst` ``; top-level keys under "Top level");
* every rule kind has a section headed by `` `KIND` `` that names every parameter, state
  variable, blockable component and preset of its ``SPEC``;
* the field tables of the doc give the defaults and allowed ranges of the code's field tables
  (``plastictool.protocol.schema``) and of the rules' ``SPEC`` parameters;
* every command of the command line appears in the "Command line" section, and each of its options
  there or in a section headed with the command's name.

The checks return lists of problems; the last tests show that they do find a key removed from the
doc, a changed default, and a missing option.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plastictool.protocol import schema as P
from plastictool import rules as registry
from plastictool.protocol.docs import _default, json_schema

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


# ---------------------------------------------------------------------------- reading the doc
def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) of every Markdown heading; a body runs to the next heading of the same or
    a higher level, so it includes its subsections. Lines in code fences are never headings."""
    lines = text.splitlines()
    heads = []  # (line index, level, heading text)
    fence = False
    for k, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m and not fence:
            heads.append((k, len(m.group(1)), m.group(2).strip()))
    out = []
    for n, (k, level, title) in enumerate(heads):
        end = len(lines)
        for k2, level2, _ in heads[n + 1 :]:
            if level2 <= level:
                end = k2
                break
        out.append((title, "\n".join(lines[k + 1 : end])))
    return out


def heading_names(title: str) -> set[str]:
    """The words inside backticks of a heading: `` `synapses.release` `` names ``synapses`` and
    ``release``; `` `model: lif` `` names ``model`` and ``lif``."""
    return {w for token in re.findall(r"`([^`]+)`", title) for w in re.findall(r"\w+", token)}


def sections_of(secs, name: str | None):
    """The sections whose heading names ``name`` (None: the "Top level" section)."""
    if name is None:
        return [body for title, body in secs if title.lower() == "top level"]
    return [body for title, body in secs if name in heading_names(title)]


def named(body: str, word: str) -> bool:
    return f"`{word}`" in body


def table_rows(body: str) -> dict[str, list[str]]:
    """Rows of the Markdown tables in ``body`` whose first cell is one backticked name: name ->
    the other cells (the first row of a name wins)."""
    rows: dict[str, list[str]] = {}
    for line in body.splitlines():
        m = re.match(r"^\|\s*`([^`|]+)`\s*\|(.*)\|\s*$", line)
        if m and m.group(1) not in rows:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


# ---------------------------------------------------------------------------- what the code says
def schema_paths(schema: dict, path: tuple = ()):
    """Every property of the JSON Schema as a path of keys; ``*`` stands for any key (the sweep's
    dotted paths). Array items and the alternatives of ``anyOf`` continue the same path."""
    if not isinstance(schema, dict):
        return
    for key, sub in schema.get("properties", {}).items():
        yield path + (key,)
        yield from schema_paths(sub, path + (key,))
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            yield from schema_paths(sub, path)
    if isinstance(schema.get("items"), dict):
        yield from schema_paths(schema["items"], path)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from schema_paths(schema["additionalProperties"], path + ("*",))


def range_text(lo, hi, lo_open) -> str:
    """The "allowed" cell of a field with bounds, as the doc writes it."""
    if lo is None and hi is None:
        return ""
    low = f"{'>' if lo_open else '>='} {lo:g}" if lo is not None else ""
    high = f"<= {hi:g}" if hi is not None else ""
    return ", ".join(x for x in (low, high) if x)


def field_groups():
    """(heading name, fields) of every field table of the format; None: the top level."""
    groups = [
        (None, [f for f in P.TOP]),
        ("synapses", list(P.SYNAPSES)),
        ("structure", list(P.STRUCTURE)),
        ("neuron", list(P.NEURON_COMMON + P.NEURON_LIF + P.NEURON_RATE)),
        ("stimulus", list(P.PHASE)),
        ("pairing", list(P.PAIRING)),
        ("record", list(P.RECORD)),
    ]
    for kind, fields in P.TRAINS.items():
        # `neurons` selects the neurons of a spike train; `times` names its neurons itself
        extra = [P.NEURONS_FIELD] if kind in P.SPIKE_TRAINS and kind != "times" else []
        groups.append((kind, list(fields) + extra))
    for kind in registry.kinds():
        groups.append((kind, list(registry.spec(kind).params)))
    return groups


# ---------------------------------------------------------------------------- checks
def missing_schema_properties(text: str) -> list[str]:
    secs = sections(text)
    problems = []
    for path in sorted(set(schema_paths(json_schema()))):
        leaf = path[-1]
        parents = [p for p in path[:-1] if p != "*"]
        parent = parents[-1] if parents else None
        if not any(named(body, leaf) for body in sections_of(secs, parent)):
            where = f"a section headed with `{parent}`" if parent else "the Top level section"
            problems.append(f"{'.'.join(path)}: `{leaf}` is not named in {where}")
    return problems


def missing_rule_names(text: str) -> list[str]:
    secs = sections(text)
    problems = []
    for kind in registry.kinds():
        s = registry.spec(kind)
        bodies = sections_of(secs, kind)
        if not bodies:
            problems.append(f"rule {kind}: no section headed with `{kind}`")
            continue
        names = [("parameter", p.name) for p in s.params] + [("state variable", v.name) for v in s.state]
        names += [("blockable component", b) for b in s.blockable] + [("preset", name) for name in s.presets]
        for what, name in names:
            if not any(named(body, name) for body in bodies):
                problems.append(f"rule {kind}: {what} `{name}` is not named in its section")
    return problems


def wrong_defaults(text: str) -> list[str]:
    """Each field's table row: its default cell starts with the code's default (as ``plastic
    rules`` prints it), its allowed cell is the code's range (or names every choice)."""
    secs = sections(text)
    problems = []
    for group, fields in field_groups():
        rows = {}
        for body in sections_of(secs, group):
            for name, cells in table_rows(body).items():
                rows.setdefault(name, cells)
        label = group or "top level"
        for f in fields:
            cells = rows.get(f.name)
            if cells is None or len(cells) < 3:
                problems.append(f"{label}.{f.name}: no table row | `{f.name}` | unit | default | allowed | meaning |")
                continue
            default, allowed = cells[1], cells[2]
            want = _default(f)
            if isinstance(f.default, (list, tuple, dict)) or want in ("", "-"):
                pass
            elif want == "required":
                if "required" not in default:
                    problems.append(f"{label}.{f.name}: the default cell {default!r} should say required")
            elif default.split(" ")[0].strip("`") != want:
                problems.append(f"{label}.{f.name}: default {default!r} in the doc, {want!r} in the code")
            if f.choices:
                for c in f.choices:
                    if f"`{c}`" not in allowed:
                        problems.append(f"{label}.{f.name}: choice `{c}` is missing from {allowed!r}")
            elif allowed != range_text(f.lo, f.hi, f.lo_open):
                problems.append(f"{label}.{f.name}: allowed {allowed!r} in the doc, {range_text(f.lo, f.hi, f.lo_open)!r} in the code")
    return problems


def missing_cli(text: str) -> list[str]:
    import typer.main

    from plastictool.cli import app

    secs = sections(text)
    bodies = [body for title, body in secs if title.lower() == "command line"]
    if not bodies:
        return ["no section headed Command line"]
    problems = []
    for name, cmd in typer.main.get_command(app).commands.items():
        # the Command line section, and a section of the command's own (`plastic fit`)
        body = "\n".join([bodies[0]] + sections_of(secs, name))
        if f"plastic {name}" not in bodies[0]:
            problems.append(f"command `plastic {name}` is not named in the Command line section")
        for param in cmd.params:
            for opt in param.opts:
                if opt.startswith("--") and not re.search(r"`" + re.escape(opt) + r"[ `=,]", body):
                    problems.append(f"option {opt} of plastic {name} is not named in the Command line section or a section headed with `{name}`")
    for code in ("0", "1", "2", "3", "4", "130"):
        if not re.search(rf"^\| {code} \|", bodies[0], re.M):
            problems.append(f"exit code {code} has no row in the Command line section")
    return problems


# ---------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def test_every_schema_property_is_documented(doc):
    assert len(set(schema_paths(json_schema()))) > 200  # the walk reaches the trains and rules
    assert missing_schema_properties(doc) == []


def test_every_rule_parameter_state_blocker_and_preset_is_documented(doc):
    assert missing_rule_names(doc) == []


def test_defaults_and_ranges_match_the_code(doc):
    assert wrong_defaults(doc) == []


def test_every_command_option_and_exit_code_is_documented(doc):
    assert missing_cli(doc) == []


def test_doc_is_ascii_and_names_the_pages_of_the_new_features(doc):
    assert doc.isascii()
    for page in ("release.md", "structure.md", "fit.md", "python.md"):
        assert f"]({page})" in doc


# the checks can fail: each finds a deliberate mistake in a copy of the doc
def _drop_row(text: str, heading_word: str, key: str) -> str:
    """``text`` without the table row of ``key`` in the section headed by ``heading_word``."""
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        m = re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            inside = heading_word in heading_names(m.group(2))
        if inside and line.startswith(f"| `{key}` |"):
            continue
        out.append(line)
    return "".join(out)


def test_checks_find_a_removed_key(doc):
    broken = _drop_row(doc, "theta_burst", "train_interval")
    assert broken != doc
    problems = missing_schema_properties(broken)
    assert any("theta_burst.train_interval" in p for p in problems), problems
    assert any("theta_burst.train_interval" in p for p in wrong_defaults(broken))


def test_checks_find_a_removed_rule_parameter_and_preset(doc):
    broken = _drop_row(_drop_row(doc, "calcium", "gamma_p"), "triplet", "pfister2006_visual_nn_min")
    problems = missing_rule_names(broken)
    assert any("`gamma_p`" in p for p in problems), problems
    assert any("`pfister2006_visual_nn_min`" in p for p in problems), problems


def test_checks_find_a_changed_default_and_range(doc):
    broken = doc.replace("| `tau_plus` | ms | 16.8 ms | > 0 |", "| `tau_plus` | ms | 20 ms | >= 0 |", 1)
    assert broken != doc
    problems = wrong_defaults(broken)
    assert any("tau_plus" in p and "'20 ms'" in p for p in problems), problems
    assert any("tau_plus" in p and "allowed" in p for p in problems), problems


def test_checks_find_a_missing_option(doc):
    broken = doc.replace("`--fail-fast`", "`--stop-early`")
    assert any("--fail-fast" in p for p in missing_cli(broken))


# ---------------------------------------------------------------------------- table rows for editors
UNIT = {"time": "ms", "rate": "Hz", "voltage": "mV"}


def table_row(f) -> str:
    """The doc's table row of a field (``protocol.F``) or rule parameter (``rules.base.Param``),
    with the code's own description as its meaning: paste it into docs/protocol.md and edit the
    meaning where it helps (the test checks the name, the default and the allowed cell)."""
    dim = getattr(f, "type", None) or f.dim
    want = _default(f)
    if dim in UNIT and want not in ("-", "required"):
        want = f"{want} {UNIT[dim]}"
    elif dim == "choice":
        want = f"`{want}`"
    allowed = ", ".join(f"`{c}`" for c in f.choices) if f.choices else range_text(f.lo, f.hi, f.lo_open)
    kind = UNIT.get(dim) or {"1": "number", "int": "whole number", "str": "text", "bool": "true / false"}.get(dim, dim)
    return f"| `{f.name}` | {kind} | {want} | {allowed} | {f.doc} |"


if __name__ == "__main__":  # python tests/test_docs_protocol.py [GROUP]: the rows of a table
    import sys

    for group, fields in field_groups():
        if len(sys.argv) < 2 or sys.argv[1] == str(group):
            print(f"{group or 'top level'}:")
            print("\n".join(table_row(f) for f in fields) + "\n")
