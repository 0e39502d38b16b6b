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

import collections
import copy
from collections.abc import Callable
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from synth.checks.yaml.schema import Loc
from synth.errors import SynthError

Index = dict[Loc, int]
Duplicates = list[tuple[Loc, int]]

_STR = "tag:yaml.org,2002:str"
_NON_SPECIFIC = (None, "!")
_NODE_EVENTS = frozenset({ScalarEvent, MappingStartEvent, SequenceStartEvent})
_UNCONSTRUCTED = frozenset("<=")  # first characters of plain `<<` (merge) and `=` (value)
SKIPPED = object()
"""What `EventReader.item` returns for an item it skipped."""


class Unsupported(SynthError):
    """The document uses a YAML feature this reader leaves to the composer (caught by the
    reader, which then composes the document instead: never reaches a user)."""


class EventReader:
    """Builds values from a loader's events (PyYAML's parser or libyaml's), resolving and
    constructing scalars with the loader's own resolver and constructors."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader
        self._get = loader.get_event
        self._peek = loader.peek_event
        self._resolve = loader.resolve
        self._constructors: dict[str, Any] = loader.yaml_constructors
        resolvers: dict[str | None, Any] = loader.yaml_implicit_resolvers
        if loader.yaml_path_resolvers or None in resolvers:  # not PyYAML's safe loaders
            raise Unsupported("path and wildcard resolvers")
        # A plain scalar whose first character starts no implicit type ("service", "/ok",
        # "c00042": most of a check file) is a string without trying the resolvers.
        self._typed_first = frozenset(resolvers)

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
            self._entry(self.key_event(), loc, index, duplicates, mapping, written)
        self._get()
        return mapping

    def _entry(
        self,
        key_event: Any,
        loc: Loc,
        index: Index | None,
        duplicates: Duplicates,
        mapping: dict[Any, Any],
        written: set[str],
    ) -> None:
        key = self.scalar(key_event)
        raw = key_event.value
        at = (*loc, raw)
        if raw in written:
            duplicates.append((at, key_event.start_mark.line + 1))
            mapping[key] = self.value(at, None, [])
            return
        written.add(raw)
        if index is not None:
            index[at] = key_event.start_mark.line + 1
        mapping[key] = self.value(at, index, duplicates)

    def item(
        self, loc: Loc, index: Index, duplicates: Duplicates, keep: Callable[[str], bool]
    ) -> Any:
        """`value` for an item of a `checks:` list, except that a mapping whose `name`
        `keep` refuses is skipped unbuilt: SKIPPED. Its events are taken up to its name
        (the parser made them: cheap); a refused item's other events are passed over, a
        kept item is built from the events taken, then the rest. (A skipped item's
        duplicate keys go unreported: only the checks kept are reported.)"""
        start = self._peek()
        if (
            type(start) is not MappingStartEvent
            or start.anchor is not None
            or start.tag not in _NON_SPECIFIC
        ):
            return self.value(loc, index, duplicates)
        taken, name, depth = self._take_to_name()
        if isinstance(name, str) and not keep(name):
            self._pass_over(taken, depth)
            return SKIPPED
        # Build it: the entries taken (complete: they end with the name's value, or the
        # mapping), then the rest as `mapping` does.
        index[loc] = taken[0].start_mark.line + 1
        mapping: dict[Any, Any] = {}
        written: set[str] = set()
        pending = collections.deque(taken[1:])
        replay = copy.copy(self)
        replay._get, replay._peek = pending.popleft, lambda: pending[0]
        while pending and type(pending[0]) is not MappingEndEvent:
            replay._entry(replay.key_event(), loc, index, duplicates, mapping, written)
        if pending:  # its end: it has no name
            return mapping
        while type(self._peek()) is not MappingEndEvent:
            self._entry(self.key_event(), loc, index, duplicates, mapping, written)
        self._get()
        return mapping

    def _take_to_name(self) -> tuple[list[Any], Any, int]:
        """The events of the mapping that starts next up to the value of its first `name`
        key (or to its end), that value if it is a scalar, and the depth left open."""
        taken = [self._get()]
        depth = 1
        get = self._get
        key_next = True  # at depth 1: keys and values alternate
        named = False
        while depth:
            event = get()
            taken.append(event)
            kind = type(event)
            if kind is MappingEndEvent or kind is SequenceEndEvent:
                depth -= 1
            elif kind is not ScalarEvent:  # a list, mapping or alias
                if depth == 1:
                    named, key_next = False, True
                depth += kind is not AliasEvent
            elif depth == 1:
                if not key_next and named:
                    return taken, self._named(event), depth
                named = key_next and event.value == "name"
                key_next = not key_next
        return taken, None, depth

    def _named(self, event: Any) -> Any:
        if event.anchor is not None:
            raise Unsupported("anchors and aliases")
        return self.scalar(event)

    def _pass_over(self, taken: list[Any], depth: int) -> None:
        """Check the events taken of a skipped item, then take the rest of them up to its
        end, building nothing. What the composer would treat otherwise (an anchor a later
        alias may use, an alias, a tag, a merge key) is Unsupported."""
        for event in taken[1:]:  # the mapping's start was checked
            self._passed(event)
        get = self._get
        while depth:
            depth += self._passed(get())

    def _passed(self, event: Any) -> int:
        """How an event passed over changes the depth (Unsupported: see `_pass_over`)."""
        kind = type(event)
        if kind is MappingEndEvent or kind is SequenceEndEvent:
            return -1
        if kind not in _NODE_EVENTS or event.anchor is not None:
            raise Unsupported("anchors and aliases")
        if event.tag not in _NON_SPECIFIC:
            raise Unsupported("explicit tags")
        if kind is not ScalarEvent:
            return 1
        if event.implicit[0] and event.value[:1] in _UNCONSTRUCTED:
            self.scalar(event)  # `<<` and `=`: Unsupported, as when they are built
        return 0

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
        if value and value[0] not in self._typed_first:
            return value
        tag = self._resolve(yaml.ScalarNode, value, event.implicit)
        if tag == _STR:
            return value
        construct = self._constructors.get(tag)
        if construct is None:  # `<<` (merge) and `=` (value): the composer's to report
            raise Unsupported(tag)
        node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark, style=event.style)
        return construct(self._loader, node)
