"""Reading YAML straight from the parser's events into plain data and a line index.

PyYAML's way is three passes over a tree of objects: compose nodes (one per scalar, list
and mapping, in Python, ~22 for a one-step check), construct the data from them, then
walk them again for the line index (`_Lines`). For a `checks:` list of 20,000 checks that
was ~60% of loading them (measured: 2.9 of 4.8 s). Here one pass over the events builds
the data and the index together, with no node unless a scalar needs its constructor
(an int, a bool, null).

It reads the YAML check files are written in: mappings, lists and scalars, with implicit
or no tags. Anchors, aliases, merge keys (`<<`), explicit tags and complex keys raise
`Unsupported`, and the caller reads the file the composer's way, whose results this
reader matches exactly (tests/unit/test_yaml_loading.py compares them).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from synth.checks.yaml.schema import Loc

Index = dict[Loc, int]
Duplicates = list[tuple[Loc, int]]

_STR = "tag:yaml.org,2002:str"
_NON_SPECIFIC = (None, "!")


class Unsupported(Exception):
    """The document uses a YAML feature this reader leaves to the composer."""


class EventReader:
    """Builds values from a loader's events (PyYAML's parser or libyaml's), resolving and
    constructing scalars with the loader's own resolver and constructors."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self._get = loader.get_event
        self._peek = loader.peek_event
        self._resolve = loader.resolve
        self._constructors: dict[str, Any] = loader.yaml_constructors

    def value(self, loc: Loc, index: Index | None, duplicates: Duplicates) -> Any:
        """The next value (a scalar, list or mapping). Records in `index` the line of
        every location not yet in it (a key's line is where the key is written), and in
        `duplicates` each repeated key; the value of a repeated key is built, as the
        constructor builds it (the last one wins), but not indexed."""
        event = self._get()
        if event.anchor is not None:  # an anchor, or an alias (its anchor's name)
            raise Unsupported("anchors and aliases")
        if index is not None and loc not in index:
            index[loc] = event.start_mark.line + 1
        kind = type(event)
        if kind is ScalarEvent:
            return self.scalar(event)
        if event.tag not in _NON_SPECIFIC:
            raise Unsupported("explicit tags")
        if kind is SequenceStartEvent:
            items = []
            position = 0
            while type(self._peek()) is not SequenceEndEvent:
                items.append(self.value((*loc, position), index, duplicates))
                position += 1
            self._get()
            return items
        if kind is MappingStartEvent:
            return self.mapping(loc, index, duplicates)
        raise Unsupported(kind.__name__)

    def mapping(self, loc: Loc, index: Index | None, duplicates: Duplicates) -> dict[Any, Any]:
        """The entries of a mapping whose start event was taken, up to its end."""
        mapping: dict[Any, Any] = {}
        written: set[str] = set()
        while type(self._peek()) is not MappingEndEvent:
            key_event = self.key_event()
            key = self.scalar(key_event)
            raw = key_event.value
            at = (*loc, raw)
            if raw in written:
                duplicates.append((at, key_event.start_mark.line + 1))
                mapping[key] = self.value(at, None, [])
                continue
            written.add(raw)
            if index is not None:
                index[at] = key_event.start_mark.line + 1
            mapping[key] = self.value(at, index, duplicates)
        self._get()
        return mapping

    def key_event(self) -> Any:
        """The next event, a mapping key: a scalar (a list or mapping as a key is left to
        the composer, which reports it)."""
        event = self._get()
        if type(event) is not ScalarEvent or event.anchor is not None:
            raise Unsupported("complex keys, anchors and aliases")
        return event

    def scalar(self, event: Any) -> Any:
        """A scalar's value as the composer and the constructor make it."""
        if event.tag not in _NON_SPECIFIC:
            raise Unsupported("explicit tags")
        value = event.value
        if not event.implicit[0]:  # quoted, or a block literal: a string
            return value
        tag = self._resolve(yaml.ScalarNode, value, event.implicit)
        if tag == _STR:
            return value
        construct = self._constructors.get(tag)
        if construct is None:  # `<<` (merge) and `=` (value): the composer's to report
            raise Unsupported(tag)
        node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark, style=event.style)
        return construct(self._loader, node)
