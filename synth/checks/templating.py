"""`${name}` templates in declarative checks: captured variables, `${secrets.NAME}` and
`${env}`, rendered at run time. `$${` writes a literal `${`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from synth.errors import SynthError

_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET = re.compile(r"secrets\.([A-Za-z0-9_.\-]+)")
SECRETS_PREFIX = "secrets."
RESERVED = frozenset({"env", "secrets"})

Lookup = Callable[[str], Any]
"""Returns the value of a reference (`token`, `secrets.NAME`, `env`); raises what the
caller wants for an undefined one."""


class TemplateSyntaxError(SynthError, ValueError):
    """A string holds a malformed `${...}` reference."""


def references(text: str) -> list[str]:
    """The names a string references (`token`, `secrets.password`, `env`), in order.

    Raises TemplateSyntaxError for `${}` with a bad name or an unclosed `${`.
    """
    if "${" not in text:  # every reference, escape and unclosed one holds it
        return []
    names: list[str] = []
    rest: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        rest.append(text[pos : match.start()])
        pos = match.end()
        name = match.group(1)
        if name is None:  # the `$${` escape
            continue
        name = name.strip()
        if not (_VARIABLE.fullmatch(name) or _SECRET.fullmatch(name)) or name == "secrets":
            raise TemplateSyntaxError(
                f"invalid reference ${{{match.group(1)}}} in {text!r}: use ${{variable}}, "
                "${secrets.NAME} or ${env} (write $${ for a literal ${)"
            )
        names.append(name)
    rest.append(text[pos:])
    if any("${" in part for part in rest):
        raise TemplateSyntaxError(f"unclosed '${{' in {text!r} (write $${{ for a literal ${{)")
    return names


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside a JSON-like value (dict keys excluded)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)


def render_text(text: str, lookup: Lookup) -> str:
    """Substitute every reference in `text`; non-string values are written as JSON."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "${"
        return _as_text(lookup(name.strip()))

    return _TOKEN.sub(substitute, text)


def render(value: Any, lookup: Lookup) -> Any:
    """Render strings inside a JSON-like value, recursively. A string that is exactly one
    reference keeps the referenced value's type (`{"id": "${order_id}"}` sends a number)."""
    if isinstance(value, str):
        match = _TOKEN.fullmatch(value)
        if match is not None and match.group(1) is not None:
            return lookup(match.group(1).strip())
        return render_text(value, lookup)
    if isinstance(value, dict):
        return {key: render(item, lookup) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, lookup) for item in value]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value)
