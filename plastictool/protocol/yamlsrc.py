"""Safe YAML loading that remembers where every value came from.

Protocols are untrusted: only plain YAML types are built (mappings, sequences, strings,
numbers, booleans, null); any tag such as ``!!python/object`` is refused. Duplicate keys are
errors. Every value's line is kept in a map from its path (a tuple of keys and indices) to its
1-based line, so that validation errors can name the file, the line and the field.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ..errors import ProtocolError

MAX_BYTES = 16 * 1024 * 1024  # a protocol file (or anything read as one) is at most this big
MAX_DEPTH = 64  # mappings and lists nested at most this deep
_SAFE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


class Source:
    """A loaded protocol document: its data and the line of each path."""

    def __init__(self, data, lines: dict[tuple, int], file: str):
        self.data = data
        self.lines = lines
        self.file = file

    def line(self, path) -> int | None:
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def error(self, path, message: str) -> ProtocolError:
        return ProtocolError(message, dotted(path), self.file, self.line(path))


def dotted(path) -> str:
    return ".".join(str(p) for p in path)


def load_file(path: str | Path) -> Source:
    """Read a protocol file: at most ``MAX_BYTES`` + 1 bytes are read from any path (a device
    such as /dev/zero, a pipe or a huge file is refused without reading it all)."""
    name = str(path)
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise ProtocolError("is a folder, expected a YAML protocol file", "", name, None)
        if stat.S_ISREG(st.st_mode) and st.st_size > MAX_BYTES:
            raise ProtocolError(f"file is larger than {MAX_BYTES // 2**20} MiB", "", name, None)
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ProtocolError(_os_reason(exc), "", name, None) from None
    if len(data) > MAX_BYTES:
        raise ProtocolError(f"more than {MAX_BYTES // 2**20} MiB to read: a protocol must be smaller", "", name, None)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"not UTF-8 text ({exc.reason})", "", name, None) from None
    return load_text(text, name)


def _os_reason(exc: OSError) -> str:
    """'no such file', 'permission denied', 'too many levels of symbolic links', ..."""
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    reason = exc.strerror or type(exc).__name__
    return reason[:1].lower() + reason[1:]


class _DepthLoader(yaml.SafeLoader):
    """PyYAML's composer recurses once per nesting level (a few hundred levels exhaust Python's
    stack): refuse documents nested deeper than ``MAX_DEPTH``, naming the line."""

    file = "<string>"

    def compose_node(self, parent, index):
        event = self.peek_event()
        if not isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            return super().compose_node(parent, index)
        depth = getattr(self, "_depth", 0) + 1
        if depth > MAX_DEPTH:
            mark = event.start_mark
            raise ProtocolError(f"nested more than {MAX_DEPTH} levels deep", "", self.file, mark.line + 1)
        self._depth = depth
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth = depth - 1


def _compose(text: str, file: str):
    loader = _DepthLoader(text)
    loader.file = file
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def load_text(text: str, file: str = "<string>") -> Source:
    try:
        node = _compose(text, file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        msg = f"invalid YAML: {exc.problem or exc.context}"
        raise ProtocolError(msg, "", file, line) from None
    except yaml.YAMLError as exc:  # pragma: no cover - defensive
        raise ProtocolError(f"invalid YAML: {exc}", "", file, None) from None
    if node is None:
        raise ProtocolError("the file is empty", "", file, 1)
    lines: dict[tuple, int] = {}
    ctor = SafeConstructor()
    data = _build(node, (), lines, ctor, file, set())
    if not isinstance(data, dict):
        raise ProtocolError("a protocol must be a mapping of keys (name:, rule:, ...)", "", file, 1)
    return Source(data, lines, file)


def load_value(text: str, label: str, field: str = ""):
    """One value written on the command line (``--set PATH=VALUE``), read like a protocol value:
    plain YAML types only, the same depth limit; errors name ``label`` (e.g. ``--set rule.a``)."""
    try:
        node = _compose(text, label)
    except ProtocolError as exc:
        raise ProtocolError(exc.message, field, label, None) from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
        raise ProtocolError(f"cannot read the value: invalid YAML: {problem}", field, label, None) from None
    if node is None:
        return None
    try:
        return _build(node, (), {}, SafeConstructor(), label, set())
    except ProtocolError as exc:
        raise ProtocolError(exc.message, field, label, None) from None


def _build(node, path, lines, ctor, file, seen):
    if id(node) in seen:  # the line of the key that uses the alias (set by the caller), not of the anchor
        raise ProtocolError("YAML aliases (*name) are not supported in a protocol", _d(path), file, lines.get(path, node.start_mark.line + 1))
    lines[path] = node.start_mark.line + 1
    seen.add(id(node))
    if isinstance(node, ScalarNode):
        if node.tag not in _SAFE_TAGS:
            raise ProtocolError(f"YAML tag {node.tag!r} is not allowed in a protocol", _d(path), file, lines[path])
        try:
            return ctor.construct_object(node, deep=True)
        except ConstructorError as exc:
            raise ProtocolError(f"invalid value: {exc.problem}", _d(path), file, lines[path]) from None
    if isinstance(node, SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            raise ProtocolError(f"YAML tag {node.tag!r} is not allowed in a protocol", _d(path), file, lines[path])
        return [_build(child, path + (k,), lines, ctor, file, seen) for k, child in enumerate(node.value)]
    if isinstance(node, MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            raise ProtocolError(f"YAML tag {node.tag!r} is not allowed in a protocol", _d(path), file, lines[path])
        out = {}
        for knode, vnode in node.value:
            if not isinstance(knode, ScalarNode) or knode.tag not in _SAFE_TAGS:
                raise ProtocolError("keys must be plain scalars", _d(path), file, knode.start_mark.line + 1)
            if knode.tag == "tag:yaml.org,2002:merge" or knode.value == "<<":
                raise ProtocolError("YAML merge keys (<<) are not supported", _d(path), file, knode.start_mark.line + 1)
            key = ctor.construct_object(knode)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                key = str(key)  # ints stay ints (neuron indices of `times`)
            if key in out:
                raise ProtocolError(f"duplicate key {key!r}", _d(path + (key,)), file, knode.start_mark.line + 1)
            lines[path + (key,)] = knode.start_mark.line + 1
            out[key] = _build(vnode, path + (key,), lines, ctor, file, seen)
            lines[path + (key,)] = knode.start_mark.line + 1
        return out
    raise ProtocolError("unsupported YAML node", _d(path), file, lines[path])  # pragma: no cover


def _d(path) -> str:
    return dotted(path)


def load_data(data, file: str = "<dict>") -> Source:
    """A protocol given as Python data (the Python API's dict source): plain YAML types only
    (mappings with string or integer keys, lists or tuples, strings, numbers, booleans, None;
    NumPy scalars and arrays become numbers and lists). No lines are known: errors name the
    field, with ``line`` None."""
    if not isinstance(data, dict):
        raise ProtocolError(f"a protocol must be a mapping of keys (name:, rule:, ...), got {type(data).__name__}", "", file, None)
    return Source(_plain(data, (), file), {}, file)


def _plain(x, path, file):
    if isinstance(x, dict):
        out = {}
        for k, v in x.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise ProtocolError(f"keys must be strings (or integer indices), got {k!r}", _d(path), file, None)
            out[k] = _plain(v, path + (k,), file)
        return out
    if isinstance(x, (list, tuple)):
        return [_plain(v, path + (k,), file) for k, v in enumerate(x)]
    if type(x).__module__.split(".")[0] == "numpy" and callable(getattr(x, "tolist", None)):
        return _plain(x.tolist(), path, file)  # NumPy scalars and arrays
    if x is None:
        return None
    for kind in (bool, str, int, float):
        if isinstance(x, kind):
            return kind(x)
    raise ProtocolError(f"unsupported value of type {type(x).__name__}: use numbers, strings, lists and mappings", _d(path), file, None)
