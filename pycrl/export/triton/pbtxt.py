"""Writing protobuf text format (Triton's ``config.pbtxt``) from plain Python values.

A message is a mapping of field name to value, written in mapping order:

- ``str`` -> a quoted string; :class:`Enum` -> a bare enum token (``TYPE_FP32``);
- ``bool`` / ``int`` / ``float`` -> a scalar;
- a mapping -> a nested message; a list of mappings -> a repeated message;
- a list of scalars -> a repeated scalar (``dims: [ 3, 128, 128 ]``).

This keeps exports free of protobuf and tritonclient: only the tests parse
the result, with ``google.protobuf.text_format`` and Triton's own schema.
"""

from __future__ import annotations

from typing import Any, Mapping

_INDENT = "  "


class Enum(str):
    """An enum value, written without quotes."""


def quote(text: str) -> str:
    """A text-format string literal (C-style escapes; UTF-8 kept as is)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _scalar(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as a text-format scalar")


def _field(name: str, value: Any, depth: int) -> list[str]:
    pad = _INDENT * depth
    if isinstance(value, Mapping):
        return [f"{pad}{name} {{", *_body(value, depth + 1), f"{pad}}}"]
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, Mapping) for v in value):
            lines = [f"{pad}{name} ["]
            for i, item in enumerate(value):
                close = "}," if i < len(value) - 1 else "}"
                lines += [f"{pad}{_INDENT}{{", *_body(item, depth + 2), f"{pad}{_INDENT}{close}"]
            return lines + [f"{pad}]"]
        items = ", ".join(_scalar(v) for v in value)
        return [f"{pad}{name}: [ {items} ]" if items else f"{pad}{name}: [ ]"]
    return [f"{pad}{name}: {_scalar(value)}"]


def _body(message: Mapping[str, Any], depth: int) -> list[str]:
    lines: list[str] = []
    for name, value in message.items():
        lines += _field(name, value, depth)
    return lines


def render(message: Mapping[str, Any], header: str = "") -> str:
    """``message`` as text format, after ``header`` written as ``#`` comment lines."""
    comments = [f"# {line}".rstrip() for line in header.splitlines()]
    return "\n".join([*comments, *_body(message, 0)]) + "\n"
