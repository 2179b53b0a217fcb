"""Where a key of a YAML file stands: key paths as operators read them, with their line numbers.

Configuration and mapping files report every problem with ``file:line: key.path[0].name``.
"""

from __future__ import annotations

import yaml

KeyPath = tuple[str | int, ...]


def dotted(loc: KeyPath) -> str:
    """``("routes", 0, "to")`` -> ``routes[0].to``."""
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def line_map(node: yaml.Node, loc: KeyPath = ()) -> dict[KeyPath, int]:
    """The line of every key path in a composed YAML document (a key's own line for mappings)."""
    lines: dict[KeyPath, int] = {loc: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, child in node.value:
            child_loc = (*loc, key.value)
            lines.update(line_map(child, child_loc))
            lines[child_loc] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            lines.update(line_map(child, (*loc, i)))
    return lines


def nearest_line(lines: dict[KeyPath, int], loc: KeyPath) -> int | None:
    """The line of `loc`, or of its nearest ancestor that has one (a missing key: its parent)."""
    while True:
        if loc in lines:
            return lines[loc]
        if not loc:
            return None
        loc = loc[:-1]
