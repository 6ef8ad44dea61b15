"""Load YAML safely while remembering where every value came from.

Validation errors must name the file and line, so the loader keeps the composed node tree and
`line_of` walks it along a pydantic error location to the line that holds the bad value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from probe.errors import InputError


def load_with_nodes(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse `path` with the safe loader; return the data and its node tree."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason}); save the file as UTF-8") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        # Parse once (with libyaml when available), then build the data from the same nodes:
        # the node tree is what error messages use for line numbers.
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        data = yaml.constructor.SafeConstructor().construct_document(node) if node else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(
            f"{path}:{line}: malformed YAML ({problem}); fix the syntax at that line"
        ) from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: malformed YAML ({exc}); fix the syntax") from exc
    return data, node


def line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int:
    """The 1-based line of the deepest node reachable along `loc` (a pydantic error path)."""
    if node is None:
        return 1
    best = node.start_mark.line + 1
    current: yaml.Node = node
    for key in loc:
        child: yaml.Node | None = None
        if isinstance(current, yaml.MappingNode):
            for k_node, v_node in current.value:
                if str(k_node.value) == str(key):
                    child = v_node
                    best = k_node.start_mark.line + 1
                    break
        elif (
            isinstance(current, yaml.SequenceNode)
            and isinstance(key, int)
            and 0 <= key < len(current.value)
        ):
            child = current.value[key]
        if child is None:
            break
        current = child
        if isinstance(child, yaml.ScalarNode) or isinstance(key, int):
            best = child.start_mark.line + 1  # a collection value: keep its key's line
    return best
