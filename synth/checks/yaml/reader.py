"""Reading YAML check files: the libyaml-backed loader with a line index, streaming a
`checks:` list one check at a time, each validated and compiled on its own."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    ValidationError,
)
from yaml.composer import Composer, ComposerError

from synth.checks.api import CheckDefinitionError
from synth.checks.problems import LoadProblem
from synth.checks.yaml.compile import compile_check
from synth.checks.yaml.errors import describe_errors, item_label, location_text, yaml_reason
from synth.checks.yaml.events import SKIPPED, EventReader, Unsupported
from synth.checks.yaml.schema import CheckModel, Loc
from synth.model import CheckSpec, SourceLocation

# -- reading files ----------------------------------------------------------------------------

_STR = "tag:yaml.org,2002:str"


class _PyLoader(yaml.SafeLoader):
    """The pure-Python loader; timestamps stay the strings they were written as."""


_PyLoader.add_constructor(
    "tag:yaml.org,2002:timestamp",
    lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
)
_LIBYAML: type[_CLoader] | None = None

if yaml.__with_libyaml__:

    class _CLoader(yaml.CSafeLoader, Composer):
        """libyaml's parser (several times faster than the pure-Python one) under PyYAML's
        composer, which (unlike libyaml's) composes one node at a time: a long `checks:`
        list never exists as one tree of nodes."""

        def __init__(self, stream: str | bytes) -> None:
            super().__init__(stream)
            Composer.__init__(self)

    _CLoader.add_constructor(
        "tag:yaml.org,2002:timestamp",
        lambda loader, node: loader.construct_scalar(node),  # type: ignore[arg-type]
    )
    _LIBYAML = _CLoader


class _Lines:
    """Maps a location in the document (keys and indexes) to its 1-based line; a key's line
    is where the key is written. `root` is the node at `prefix` (one item of `checks:`, or
    the whole document)."""

    def __init__(self, root: yaml.Node, prefix: Loc = ()) -> None:
        self._prefix = prefix
        self._index: dict[Loc, int] = {}
        self.duplicates: list[tuple[Loc, int]] = []
        self._walk(root, prefix, set())

    def _walk(self, node: yaml.Node, loc: Loc, enclosing: set[int]) -> None:
        index = self._index
        if loc not in index:
            index[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            return
        if isinstance(node, _StreamedChecks):  # its items were indexed one at a time
            self.duplicates.extend(node.duplicates)
            return
        if id(node) in enclosing:  # an alias to an enclosing node
            return
        enclosing.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key_node, value_node in node.value:
                key = str(key_node.value)
                at = (*loc, key)
                if key in keys:
                    self.duplicates.append((at, key_node.start_mark.line + 1))
                    continue
                keys.add(key)
                index[at] = key_node.start_mark.line + 1
                self._walk(value_node, at, enclosing)
        elif isinstance(node, yaml.SequenceNode):
            for position, item in enumerate(node.value):
                self._walk(item, (*loc, position), enclosing)
        enclosing.discard(id(node))

    @classmethod
    def indexed(
        cls, prefix: Loc, index: dict[Loc, int], duplicates: list[tuple[Loc, int]]
    ) -> _Lines:
        """The lines of a value read by `EventReader`, which indexed it as it went."""
        lines = cls.__new__(cls)
        lines._prefix, lines._index, lines.duplicates = prefix, index, duplicates
        return lines

    def resolve(self, loc: Loc) -> Loc:
        """The part of `loc` written in the document: validation locations also carry parts
        the file does not have (a missing key, the union member pydantic tried)."""
        found: Loc = ()
        if loc[: len(self._prefix)] == self._prefix:
            found, loc = self._prefix, loc[len(self._prefix) :]
        for part in loc:
            if (*found, part) in self._index:
                found = (*found, part)
        return found

    def line(self, loc: Loc) -> int:
        """The line of `loc`, or of its deepest part written in the document."""
        return self._index.get(self.resolve(loc), 1)


class _StreamedChecks(yaml.SequenceNode):
    """Stands for a `checks:` list whose items were loaded one by one as they were
    composed: what they gave, and the duplicate keys found in them."""

    def __init__(self, tag: str, start: Any) -> None:
        super().__init__(tag, [], start.start_mark, start.end_mark, flow_style=start.flow_style)
        self.specs: list[CheckSpec] = []
        self.problems: list[LoadProblem] = []
        self.duplicates: list[tuple[Loc, int]] = []

    def add(self, loaded: tuple[CheckSpec | None, list[LoadProblem]]) -> None:
        """Keep what loading one item gave: its check, if it loaded, and its problems."""
        spec, found = loaded
        self.problems.extend(found)
        if spec is not None:
            self.specs.append(spec)


def load_yaml_checks(
    path: Path, *, keep: Callable[[str], bool] | None = None
) -> tuple[list[CheckSpec], list[LoadProblem]]:
    """Load the checks of one YAML file; each problem carries the file and line. With
    `keep`, only checks whose name it accepts are validated and compiled."""

    try:
        data = path.read_bytes()
        # Not UTF-8: said as reading it as text says it. The text is not kept: libyaml
        # reads the bytes, where it would copy a str into UTF-8 (2.9 MB more at 20,000
        # checks, in the agent and in every run process).
        data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [LoadProblem(str(path), None, f"cannot read: {exc}")]
    # Specs carry the absolute path, like a Python check's code does; problems the given one.
    return parse_yaml_checks(data, str(path), source_path=os.path.abspath(path), keep=keep)


def parse_yaml_checks(
    text: str | bytes,
    shown: str,
    *,
    source_path: str | None = None,
    libyaml: bool = True,
    keep: Callable[[str], bool] | None = None,
    direct: bool = True,
) -> tuple[list[CheckSpec], list[LoadProblem]]:
    """Compile the checks in YAML `text`; problems name `shown` and the line, the specs'
    sources `source_path` (default: `shown`).

    The items of a `checks:` list are read, validated and compiled one at a time, so a
    file of thousands of checks never holds all their data at once. libyaml parses when
    PyYAML has it; `libyaml=False` uses the pure-Python parser: slower, the same results
    except that it rejects a `?` in a flow mapping (`{path: /a?b=1}`) that libyaml reads.
    The data is read straight from the parser's events (`events.EventReader`); a file
    with anchors, aliases, merge keys or explicit tags is composed into nodes first, as
    PyYAML does, which `direct=False` does for every file (the same results, slower).
    `text` may be UTF-8 bytes."""

    fast = _LIBYAML if libyaml else None
    if fast is not None:
        loader: _CLoader | _PyLoader = fast(text)
    else:
        loader = _PyLoader(text.decode("utf-8") if isinstance(text, bytes) else text)
    error: yaml.YAMLError | None
    try:
        return _Reader(loader, shown, source_path or shown, keep).read(direct=direct)
    except Unsupported:
        error = None
    except yaml.YAMLError as exc:
        error = exc
    finally:
        loader.dispose()
    if error is None:
        return parse_yaml_checks(
            text, shown, source_path=source_path, libyaml=libyaml, keep=keep, direct=False
        )
    if fast is not None:
        # libyaml's messages say less ("found character that cannot start any token"); the
        # pure-Python parser names the character. Broken files are rare: parse it again.
        return parse_yaml_checks(
            text, shown, source_path=source_path, libyaml=False, keep=keep, direct=direct
        )
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    return [], [LoadProblem(shown, line, f"invalid YAML: {yaml_reason(error)}")]


class _Reader:
    """Reads one YAML document through the loader's event API (PyYAML's composer
    interface): a top-level `checks:` list is handled item by item as it is parsed."""

    def __init__(
        self,
        loader: _PyLoader | _CLoader,
        shown: str,
        source_path: str,
        keep: Callable[[str], bool] | None = None,
    ) -> None:
        # PyYAML's stubs type events loosely (optional, two Mark classes): use it untyped.
        self.loader: Any = loader
        self.shown = shown
        self.source_path = source_path
        self.keep = keep

    def _wanted(self, item: Any) -> bool:
        """Whether `keep` accepts the item's name (an item without one is loaded: it is
        reported wherever it is loaded)."""
        if self.keep is None or not isinstance(item, dict):
            return True
        name = item.get("name")
        return not isinstance(name, str) or self.keep(name)

    def read(self, *, direct: bool = True) -> tuple[list[CheckSpec], list[LoadProblem]]:
        if direct:
            return self._read_direct()
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return [], []
        document = loader.get_event()
        start = loader.peek_event()
        streamed: _StreamedChecks | None = None
        if isinstance(start, yaml.MappingStartEvent) and start.anchor is None:
            root: yaml.Node = self._top_mapping()
            streamed = next((v for _, v in root.value if isinstance(v, _StreamedChecks)), None)
        else:
            root = self._compose(None, None)
        _end_of_the_only_document(loader, document)
        lines = _Lines(root)  # before constructing: merge keys (<<) rewrite nodes
        data = loader.construct_document(root)
        if data is None:
            return [], []
        return self._document(lines, data, streamed)

    def _read_direct(self) -> tuple[list[CheckSpec], list[LoadProblem]]:
        """`read`, from the events straight to data (`Unsupported`: compose instead)."""
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return [], []
        document = loader.get_event()
        start = loader.peek_event()
        events = EventReader(loader)
        index: dict[Loc, int] = {}
        duplicates: list[tuple[Loc, int]] = []
        streamed: _StreamedChecks | None = None
        if isinstance(start, yaml.MappingStartEvent) and start.anchor is None:
            if start.tag not in (None, "!"):
                raise Unsupported("explicit tags")
            index[()] = loader.get_event().start_mark.line + 1
            data, streamed = self._top_mapping_direct(events, index, duplicates)
        else:
            data = events.value((), index, duplicates)
        _end_of_the_only_document(loader, document)
        if data is None:
            return [], []
        return self._document(_Lines.indexed((), index, duplicates), data, streamed)

    def _top_mapping_direct(
        self, events: EventReader, index: dict[Loc, int], duplicates: list[tuple[Loc, int]]
    ) -> tuple[dict[Any, Any], _StreamedChecks | None]:
        """`_top_mapping` from the events: the document's mapping, the items of its
        `checks:` list loaded as they come (the list is `[]` in the data)."""
        loader = self.loader
        data: dict[Any, Any] = {}
        written: set[str] = set()
        streamed: _StreamedChecks | None = None
        while not loader.check_event(yaml.MappingEndEvent):
            key_event = events.key_event()
            key = events.scalar(key_event)
            raw = key_event.value
            at: Loc = (raw,)
            line = key_event.start_mark.line + 1
            value_start = loader.peek_event()
            if raw in written:
                duplicates.append((at, line))
                data[key] = events.value(at, None, [])
                continue
            written.add(raw)
            index[at] = line
            if (
                key == "checks"
                and isinstance(value_start, yaml.SequenceStartEvent)
                and value_start.anchor is None
                and value_start.tag in (None, "!")
            ):
                streamed = self._stream_direct(events)
                duplicates.extend(streamed.duplicates)
                data[key] = []
            else:
                data[key] = events.value(at, index, duplicates)
        loader.get_event()
        return data, streamed

    def _stream_direct(self, events: EventReader) -> _StreamedChecks:
        """`_stream_checks` from the events: each item read, validated and compiled."""
        loader = self.loader
        start = loader.get_event()
        tag = loader.resolve(yaml.SequenceNode, None, start.implicit)
        checks = _StreamedChecks(tag, start)
        position = 0
        while not loader.check_event(yaml.SequenceEndEvent):
            base: Loc = ("checks", position)
            index: dict[Loc, int] = {}
            duplicates: list[tuple[Loc, int]] = []
            if self.keep is None:
                item = events.value(base, index, duplicates)
            else:
                item = events.item(base, index, duplicates, self.keep)
                if item is SKIPPED:
                    position += 1
                    continue
            if duplicates:
                checks.duplicates.extend(duplicates)  # the item does not load (see above)
            elif self._wanted(item):
                lines = _Lines.indexed(base, index, duplicates)
                checks.add(_load_one(item, base, lines, self.shown, self.source_path))
            position += 1
        checks.end_mark = loader.get_event().end_mark
        return checks

    def _compose(self, parent: yaml.Node | None, index: int | yaml.Node | None) -> yaml.Node:
        node: yaml.Node = self.loader.compose_node(parent, index)
        return node

    def _top_mapping(self) -> yaml.MappingNode:
        """Compose the document's mapping, loading the items of its `checks:` list as
        they come; that list is a `_StreamedChecks` in the result."""
        loader = self.loader
        start = loader.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.MappingNode, None, start.implicit)
        top = yaml.MappingNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        while not loader.check_event(yaml.MappingEndEvent):
            key = self._compose(top, None)
            value_start = loader.peek_event()
            if (
                _is_checks(key)
                and not any(_is_checks(other) for other, _ in top.value)
                and isinstance(value_start, yaml.SequenceStartEvent)
                and value_start.anchor is None  # an anchored list may be aliased: compose it
            ):
                value: yaml.Node = self._stream_checks()
            else:
                value = self._compose(top, key)
            top.value.append((key, value))
        top.end_mark = loader.get_event().end_mark
        return top

    def _stream_checks(self) -> _StreamedChecks:
        loader = self.loader
        start = loader.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.SequenceNode, None, start.implicit)
        checks = _StreamedChecks(tag, start)
        index = 0
        while not loader.check_event(yaml.SequenceEndEvent):
            node = self._compose(checks, index)
            base: Loc = ("checks", index)
            lines = _Lines(node, base)  # before constructing: merge keys (<<) rewrite nodes
            item = loader.construct_document(node)
            if lines.duplicates:
                # Reported with the document's; a repeated key silently wins in YAML, so
                # don't guess: the item does not load.
                checks.duplicates.extend(lines.duplicates)
            elif self._wanted(item):
                checks.add(_load_one(item, base, lines, self.shown, self.source_path))
            index += 1
        checks.end_mark = loader.get_event().end_mark
        return checks

    def _document(
        self, lines: _Lines, data: Any, streamed: _StreamedChecks | None
    ) -> tuple[list[CheckSpec], list[LoadProblem]]:

        shown = self.shown
        if not isinstance(data, dict):
            return [], [LoadProblem(shown, 1, "expected a check (a mapping) or checks: [...]")]
        problems = [
            LoadProblem(shown, line, f"{location_text(loc)}: duplicate key {loc[-1]!r}")
            for loc, line in lines.duplicates
        ]
        items: list[tuple[Loc, Any]]
        if "checks" in data:
            extra = [key for key in data if key != "checks"]
            if extra:
                problems.append(
                    LoadProblem(
                        shown,
                        lines.line((extra[0],)),
                        f"{extra[0]}: a file with 'checks:' holds only that list",
                    )
                )
            if streamed is not None:
                if any(loc == ("checks",) for loc, _ in lines.duplicates):
                    return [], problems  # two lists: which one is meant? don't guess
                return streamed.specs, problems + streamed.problems
            if not isinstance(data["checks"], list):
                problems.append(
                    LoadProblem(shown, lines.line(("checks",)), "checks: expected a list of checks")
                )
                return [], problems
            items = [(("checks", index), item) for index, item in enumerate(data["checks"])]
        else:
            items = [((), data)]
        specs: list[CheckSpec] = []
        for base, item in items:
            if any(loc[: len(base)] == base for loc, _ in lines.duplicates):
                continue  # reported above; a repeated key silently wins in YAML, so don't guess
            if not self._wanted(item):
                continue
            spec, found = _load_one(item, base, lines, shown, self.source_path)
            problems.extend(found)
            if spec is not None:
                specs.append(spec)
        return specs, problems


def _is_checks(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STR and node.value == "checks"


def _load_one(
    item: Any, base: Loc, lines: _Lines, shown: str, source_path: str
) -> tuple[CheckSpec | None, list[LoadProblem]]:

    label = item_label(item, base)
    if not isinstance(item, dict):
        return None, [LoadProblem(shown, lines.line(base), f"{label}: expected a mapping")]
    try:
        model = CheckModel.model_validate(item)
    except ValidationError as exc:
        problems: list[LoadProblem] = []
        for loc, message in describe_errors(exc):
            written = lines.resolve((*base, *loc))
            where = location_text(written[len(base) :])
            text = f"{label}: {where}: {message}" if where else f"{label}: {message}"
            if not any(p.message == text for p in problems):
                problems.append(LoadProblem(shown, lines.line(written), text))
        return None, sorted(problems, key=lambda p: p.line or 0)
    source = SourceLocation(source_path, lines.line(base))
    try:
        return compile_check(model, source), []
    except CheckDefinitionError as exc:
        return None, [LoadProblem(shown, source.line, f"{label}: {exc.reason}")]


def _end_of_the_only_document(loader: Any, document: Any) -> None:
    """Consume the document's end; ComposerError when another document follows."""
    loader.get_event()
    if not loader.check_event(yaml.StreamEndEvent):
        raise ComposerError(
            "expected a single document in the stream",
            document.start_mark,
            "but found another document",
            loader.get_event().start_mark,
        )
