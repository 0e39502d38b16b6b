"""Reading YAML check files: a `checks:` list is loaded item by item, with libyaml's parser
when available and the pure-Python one otherwise; both give the same checks and problems."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from synth.checks.yaml import load_yaml_checks, parse_yaml_checks, reader
from synth.checks.yaml.events import EventReader, Unsupported
from synth.checks.yaml.schema import Loc
from synth.model import CheckSpec

FILE = "checks/many.yaml"
LOADERS = [pytest.param(True, id="libyaml"), pytest.param(False, id="pure-python")]


def test_libyaml_is_available_here() -> None:
    # The libyaml parametrizations below would silently test the pure-Python parser twice.
    assert yaml.__with_libyaml__


def load(text: str, libyaml: bool) -> tuple[list[CheckSpec], list[str]]:
    specs, problems = parse_yaml_checks(textwrap.dedent(text), FILE, libyaml=libyaml)
    return specs, [str(p) for p in problems]


def described(specs: list[CheckSpec]) -> list[tuple[Any, ...]]:
    """Everything about a spec but its function object (compared by name)."""
    return [
        tuple(
            getattr(spec, f.name).__name__ if f.name == "func" else getattr(spec, f.name)
            for f in dataclasses.fields(spec)
        )
        for spec in specs
    ]


@pytest.mark.parametrize("libyaml", LOADERS)
def test_an_alias_in_a_later_check_uses_an_anchor_of_an_earlier_one(libyaml: bool) -> None:
    specs, problems = load(
        """\
        checks:
          - &base
            name: first
            service: shop
            every: 30s
            tags: &tags [smoke, shop]
            steps: &steps
              - request: {path: /health}
                expect: {status: 200}
          - <<: *base
            name: second
            tags: *tags
          - name: third
            service: other
            steps: *steps
        """,
        libyaml,
    )
    assert problems == []
    assert [(s.name, s.service, s.tags) for s in specs] == [
        ("first", "shop", ("smoke", "shop")),
        ("second", "shop", ("smoke", "shop")),
        ("third", "other", ()),
    ]
    assert [s.schedule.every_s for s in specs] == [30.0, 30.0, 60.0]
    assert [s.source.line for s in specs if s.source] == [2, 10, 13]


@pytest.mark.parametrize("libyaml", LOADERS)
def test_an_alias_to_an_anchor_of_a_later_check_is_invalid_yaml(libyaml: bool) -> None:
    specs, problems = load(
        """\
        checks:
          - name: first
            service: shop
            steps: *later
          - name: second
            service: shop
            steps: &later [{request: {path: /}}]
        """,
        libyaml,
    )
    assert specs == []
    assert problems == [f"{FILE}:4: invalid YAML: found undefined alias 'later'"]


def long_file(count: int, broken: int) -> str:
    """`count` four-line checks; check `broken` has a bad `retries` on its third line."""
    lines = ["# many checks", "checks:"]
    for index in range(count):
        lines += [
            f"  - name: c{index:05d}",
            "    service: web",
            "    retries: many" if index == broken else "    every: 10s",
            f'    steps: [{{request: {{path: "/ok?c={index}"}}}}]',
        ]
    return "\n".join(lines) + "\n"


def test_a_problem_deep_in_a_long_file_names_its_line() -> None:
    specs, problems = parse_yaml_checks(long_file(3001, broken=3000), FILE)
    assert len(specs) == 3000
    lines = {s.name: s.source.line for s in specs if s.source}
    assert [lines["c00000"], lines["c00001"], lines["c02999"]] == [3, 7, 3 + 4 * 2999]
    line = 3 + 4 * 3000 + 2
    assert [str(p) for p in problems] == [
        f"{FILE}:{line}: check 'c03000': retries: Input should be a valid integer, unable to "
        "parse string as an integer"
    ]


@pytest.mark.parametrize("libyaml", LOADERS)
def test_problems_keep_their_order_around_a_streamed_list(libyaml: bool) -> None:
    specs, problems = load(
        """\
        version: 1
        checks:
          - name: a
            service: shop
            steps: [{request: {path: /}}]
          - name: b
            service: shop
            service: shop2
            steps: [{request: {path: /}}]
          - name: c
            service: shop
            steps: []
        extra: {x: 1, x: 2}
        """,
        libyaml,
    )
    assert [s.name for s in specs] == ["a"]
    assert problems == [
        f"{FILE}:8: checks[1].service: duplicate key 'service'",
        f"{FILE}:13: extra.x: duplicate key 'x'",
        f"{FILE}:1: version: a file with 'checks:' holds only that list",
        f"{FILE}:12: check 'c': steps: List should have at least 1 item after validation, not 0",
    ]


@pytest.mark.parametrize("libyaml", LOADERS)
def test_two_checks_lists_load_neither(libyaml: bool) -> None:
    specs, problems = load(
        """\
        checks:
          - {name: a, service: shop, steps: [{request: {path: /}}]}
        checks:
          - {name: b, service: shop, steps: [{request: {path: /}}]}
        """,
        libyaml,
    )
    assert specs == []
    assert problems == [f"{FILE}:3: checks: duplicate key 'checks'"]


def test_libyaml_errors_are_described_like_the_pure_python_parsers() -> None:
    # libyaml says "found character that cannot start any token"; which character helps.
    specs, problems = load("name: c\n\tservice: shop\n", libyaml=True)
    assert specs == []
    assert problems == [
        f"{FILE}:2: invalid YAML: while scanning for the next token, "
        "found character '\\t' that cannot start any token"
    ]


SAME = {
    "single": """\
        name: checkout
        service: shop
        envs: [staging, production]
        cron: "*/5 * * * *"
        description: 2024-01-01
        steps:
          - request: {method: post, path: /api/login, json: {user: demo}}
            expect: {status: [200, 201], body_matches: "ok.*"}
            capture: {token: $.token}
          - tcp: {host: db.internal, port: 5432}
        """,
    "list": """\
        checks:
          - name: good
            service: shop
            steps: [{request: {path: /a}}]
          - name: broken
            service: shop
            retries: many
            timeout: soon
            steps: [{request: {path: /b, metod: GET}}]
          - 42
          - name: dup
            name: dup2
            service: shop
            steps: [{request: {path: /c}}]
        """,
    "flow": "{checks: [{name: a, service: s, steps: [{request: {path: /}}]}], other: 1}\n",
    "tagged": "checks: !!seq\n  - !!map {name: a, service: s, steps: [{request: {path: /}}]}\n",
    "checks-not-a-list": "checks: {name: c}\nextra: 1\n",
    "checks-null": "checks:\n",
    "checks-first-a-map-then-a-list": "checks: {}\nchecks: [{name: a}]\n",
    "anchored-list": "checks: &all\n  - {name: a, service: s, steps: [{request: {path: /}}]}\n"
    "copy: *all\n",
    "anchored-document": "&doc\nname: a\nservice: s\nsteps: [{request: {path: /}}]\n",
    "merged-document": "<<: {name: a, service: s}\nsteps: [{request: {path: /}}]\n",
    "recursive": "checks:\n  - &a {name: a, service: s, steps: [*a]}\n",
    "top-level-list": "- name: c\n",
    "scalar": "just text\n",
    "null": "~\n",
    "empty": "",
    "comment": "# nothing\n",
    "empty-document": "---\n",
    "two-documents": "checks: []\n---\nchecks: []\n",
    "unclosed": "checks:\n  - {name: a\n",
    "undefined-alias": "checks: [*nope]\n",
    "duplicate-anchor": "checks:\n  - &a {name: a}\n  - &a {name: b}\n",
    "tab": "checks:\n\t- name: a\n",
    "unknown-tag": "checks: !custom\n  - {name: a, service: s, steps: [{request: {path: /}}]}\n",
    "python-tag": "checks:\n  - !!python/object:os.system {}\n",
}
SAME["long"] = long_file(60, broken=42)
ONE = "{name: a, service: s, steps: [{request: {path: /}}]}"
SAME |= {
    "scalars": """\
        checks:
          - name: "typed"
            service: 'shop'
            every: 1:30
            retries: 0x2
            follow_redirects: off
            description: 2024-01-01 10:00:00
            runbook: null
            steps:
              - request:
                  path: /a
                  params: {n: 1.5e3, t: yes, s: "007"}
                  body: |
                    literal text
                expect: {status: [200, "2xx"], max_latency: 2s}
        """,
    "quoted-checks-key": f'"checks":\n  - {ONE}\n',
    "non-string-keys": "checks:\n  - {name: a, service: s, 1: x, true: y, steps: [{path: /}]}\n",
    "nested-duplicates": "checks:\n  - name: a\n    service: s\n    steps:\n"
    f"      - request: {{path: /, path: /b}}\n  - {ONE.replace('name: a', 'name: b')}\n",
    "int-and-string-key-duplicate": "name: a\nservice: s\n1: x\n'1': y\nsteps: [{}]\n",
    "merge-as-a-value": "checks:\n  - {name: a, service: <<, steps: [{request: {path: /}}]}\n",
    "value-indicator": "checks:\n  - {name: a, service: =, steps: [{request: {path: /}}]}\n",
    "complex-key": "checks:\n  - {name: a, service: s, [x]: 1, steps: [{path: /}]}\n",
    "tagged-scalar": "checks:\n  - {name: !!str 12, service: s, steps: [{path: /}]}\n",
    "alias-in-a-value": "checks:\n  - {name: a, service: &s s, steps: [{request: {path: *s}}]}\n",
    "explicit-document": f"--- \nchecks:\n  - {ONE}\n...\n",
    "checks-after-other-keys": f"x: 1\nchecks: [{ONE}]\n",
    "checks-list-then-map": f"checks: [{ONE}]\nchecks: {{}}\n",
    "name-not-first": "checks:\n  - {every: 10s, name: c00001, service: s, steps: [{}]}\n"
    "  - {service: s, steps: [{request: {path: /}}], name: b}\n  - {service: s}\n",
    "alias-before-a-name": "checks:\n  - {service: *x, name: a}\n",
    "tag-after-a-name": "checks:\n  - {name: a, service: !x s}\n",
    "merge-after-a-name": "checks:\n  - {name: a, <<: {service: s}}\n"
    f"  - {ONE.replace('name: a', 'name: b')}\n",
}


@pytest.mark.parametrize("text", SAME.values(), ids=SAME.keys())
def test_libyaml_and_pure_python_give_the_same_checks_and_problems(text: str) -> None:
    fast_specs, fast_problems = load(text, libyaml=True)
    slow_specs, slow_problems = load(text, libyaml=False)
    assert described(fast_specs) == described(slow_specs)
    assert fast_problems == slow_problems


@pytest.mark.parametrize("libyaml", LOADERS)
@pytest.mark.parametrize("text", SAME.values(), ids=SAME.keys())
def test_reading_events_directly_gives_what_composing_nodes_gives(text: str, libyaml: bool) -> None:
    # The direct reader hands anchors, tags and merge keys to the composer: either way,
    # the same checks and the same problems on the same lines.
    text = textwrap.dedent(text)
    direct = parse_yaml_checks(text, FILE, libyaml=libyaml)
    composed = parse_yaml_checks(text, FILE, libyaml=libyaml, direct=False)
    assert described(direct[0]) == described(composed[0])
    assert [str(p) for p in direct[1]] == [str(p) for p in composed[1]]


def refused(name: str) -> bool:
    return name not in {"a", "first", "c00001", "c00042"}


@pytest.mark.parametrize("text", SAME.values(), ids=SAME.keys())
def test_keep_skips_the_same_checks_reading_events_or_composing(text: str) -> None:
    # A run process keeps its share. Reading events, it skips a refused check unbuilt,
    # so that check's duplicate keys go unreported there (the agent reports them).
    text = textwrap.dedent(text)
    direct = parse_yaml_checks(text, FILE, keep=refused)
    composed = parse_yaml_checks(text, FILE, keep=refused, direct=False)
    assert described(direct[0]) == described(composed[0])
    assert {str(p) for p in direct[1]} <= {str(p) for p in composed[1]}


def test_a_skipped_check_can_hold_the_anchor_of_a_kept_one() -> None:
    text = textwrap.dedent(
        """\
        checks:
          - name: skipped
            service: shop
            steps: &steps [{request: {path: /}}]
          - {name: first, service: shop, steps: *steps}
        """
    )
    specs, problems = parse_yaml_checks(text, FILE, keep=lambda name: name != "skipped")
    assert ([s.name for s in specs], problems) == (["first"], [])


PLAIN = """\
a: [1, 2.5, true, null, "x", 2024-01-01]
b: {c: {d: [e, {f: g}]}, 1: one}
"""


@pytest.mark.parametrize("libyaml", LOADERS)
def test_the_event_reader_builds_the_data_and_lines_of_plain_yaml(libyaml: bool) -> None:
    loader = (reader._LIBYAML if libyaml else None) or reader._PyLoader
    events = loader(PLAIN + "a: again\n")
    events.get_event(), events.get_event()  # stream and document start
    index: dict[Loc, int] = {}
    duplicates: list[tuple[Loc, int]] = []
    data = EventReader(events).value((), index, duplicates)
    expected = yaml.load(PLAIN, reader._PyLoader)  # a safe loader
    assert data == expected | {"a": "again"}  # the last of a repeated key wins, as in PyYAML
    assert duplicates == [(("a",), 3)]
    assert (index[("a",)], index[("a", 5)]) == (1, 1)
    assert (index[("b", "c", "d", 1, "f")], index[("b", "1")]) == (2, 2)


@pytest.mark.parametrize(
    "text", ["a: &x 1\nb: *x\n", "<<: {a: 1}\n", "a: !!str 1\n", "? [a]\n: 1\n", "a: !t {}\n"]
)
def test_the_event_reader_leaves_anchors_merges_tags_and_complex_keys_to_the_composer(
    text: str,
) -> None:
    events = reader._PyLoader(text)
    events.get_event(), events.get_event()
    with pytest.raises(Unsupported):
        EventReader(events).value((), {}, [])


def test_libyaml_accepts_a_question_mark_the_pure_python_parser_rejects_in_flow() -> None:
    # The one known difference: PyYAML's scanner takes `?` inside a flow mapping for a
    # complex-key indicator. libyaml reads the path as written.
    text = "name: c\nservice: shop\nsteps: [{request: {path: /ok?c=1}}]\n"
    [spec], problems = load(text, libyaml=True)
    assert (spec.name, problems) == ("c", [])
    specs, problems = load(text, libyaml=False)
    assert specs == []
    assert problems == [
        f"{FILE}:3: invalid YAML: while parsing a flow mapping, expected ',' or '}}', but got '?'"
    ]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_file_is_read_as_its_text_reads(tmp_path: Path, newline: str) -> None:
    # load_yaml_checks hands libyaml the file's bytes: the same checks and lines as the
    # text, whatever the line ends, and a file that is not UTF-8 is said to be so.
    text = textwrap.dedent(SAME["scalars"]) + "  - {name: bad, service: s, steps: []}\n"
    path = tmp_path / "checks.yaml"
    path.write_bytes(("\ufeff" + text).replace("\n", newline).encode("utf-8"))
    from_file = load_yaml_checks(path)
    from_text = parse_yaml_checks(text, str(path), source_path=str(path.resolve()))
    assert described(from_file[0]) == described(from_text[0])
    assert from_file[0][0].description == "2024-01-01 10:00:00"
    assert [str(p) for p in from_file[1]] == [str(p) for p in from_text[1]]
    assert [p.line for p in from_file[1]] == [16]
    [step] = from_file[0][0].func.steps  # type: ignore[attr-defined]  # a compiled check
    assert step.body == "literal text\n"
    path.write_bytes(b"name: \xff\n")
    assert [str(p) for p in load_yaml_checks(path)[1]] == [
        f"{path}: cannot read: 'utf-8' codec can't decode byte 0xff in position 6: "
        "invalid start byte"
    ]


@pytest.mark.parametrize("libyaml", LOADERS)
@pytest.mark.parametrize(
    "text",
    [
        f"checks:\n  - {ONE}\n---\nchecks: []\n",  # read from the events
        f"checks:\n  - &a {ONE}\n---\nx: *a\n",  # composed (an anchor)
    ],
    ids=["direct", "composed"],
)
def test_a_second_document_is_a_problem_naming_its_line(text: str, libyaml: bool) -> None:
    specs, problems = load(text, libyaml)
    assert specs == []
    assert len(problems) == 1
    assert problems[0].startswith(f"{FILE}:3:")
    assert "single document" in problems[0]
