"""The declarative check form: schema validation with file:line problems, and templating."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import yaml

from synth.checks.templating import TemplateSyntaxError, references, render, render_text
from synth.checks.yaml import CheckModel, parse_yaml_checks
from synth.checks.yaml.compile import runs_only_synth_code
from synth.model import CheckSpec, Schedule

FILE = "checks/shop.yaml"

FULL = """\
# the example of the docs, every field used
name: checkout
service: shop
envs: [staging, production]
every: 30s
timeout: 20s
retries: 1
tags: [checkout, critical]
playbook: shop-oncall
description: Log in, add to cart, check out
runbook: https://runbooks.example.com/shop/checkout
steps:
  - name: log in
    request:
      method: post
      path: /api/login
      service: shop
      headers: {X-Client: synth}
      json: {username: demo, password: "${secrets.shop_password}"}
      params: {lang: en}
      timeout: 5s
    expect:
      status: 200
      headers: {content-type: {contains: json}, server: synth}
      json:
        - path: $.token
          exists: true
      schema: {type: object, required: [token]}
      body_contains: token
      body_matches: "\\"token\\""
      max_latency: 500ms
    capture:
      token: $.token
      request_id: {header: x-request-id}
    secret_captures: [token]
  - name: list products
    request:
      path: /api/products
      headers: {Authorization: "Bearer ${token}"}
    expect: {status: 200, json: [{path: "$.items[0].price", type: number}]}
  - name: db reachable
    tcp: {host: db.internal, port: 5432}
  - name: dns
    dns: {name: shop.example.com, record_type: A, expect_contains: [10.0.0.1]}
  - name: cert
    tls: {host: shop.example.com, port: 443, min_days: 14}
"""


def load(text: str) -> tuple[list[CheckSpec], list[str]]:
    specs, problems = parse_yaml_checks(textwrap.dedent(text), FILE)
    return specs, [str(p) for p in problems]


def only_problem(text: str) -> str:
    specs, problems = load(text)
    assert specs == []
    assert len(problems) == 1, problems
    return problems[0]


def check_with(step_yaml: str, **top: Any) -> str:
    """A valid check around one step (given as YAML indented for a list item)."""
    head = "".join(f"{key}: {value}\n" for key, value in {"name": "c", **top}.items())
    return head + "service: shop\nsteps:\n" + textwrap.dedent(step_yaml)


# -- compiling ----------------------------------------------------------------------------------


def test_the_documented_example_compiles_to_a_check_spec() -> None:
    specs, problems = load(FULL)
    assert problems == []
    [spec] = specs
    assert spec.name == "checkout"
    assert spec.service == "shop"
    assert spec.environments == ("staging", "production")
    assert spec.schedule == Schedule(every_s=30.0)
    assert spec.timeout_s == 20.0
    assert spec.retries == 1
    assert spec.tags == ("checkout", "critical")
    assert spec.playbook == "shop-oncall"
    assert spec.description == "Log in, add to cart, check out"
    assert spec.runbook_url == "https://runbooks.example.com/shop/checkout"
    assert spec.kind == "yaml"
    assert spec.source is not None
    assert (spec.source.path, spec.source.line) == (FILE, 2)
    assert callable(spec.func)


def test_defaults_match_the_python_decorator() -> None:
    [spec], problems = load(check_with("  - request: {path: /}\n"))
    assert problems == []
    assert spec.schedule == Schedule(every_s=60.0)
    assert spec.timeout_s == 30.0
    assert (spec.retries, spec.tags, spec.environments, spec.playbook) == (None, (), (), None)


def test_cron_schedule_and_single_string_envs_and_tags() -> None:
    [spec], problems = load(
        check_with("  - request: {path: /}\n", cron='"*/5 * * * *"', envs="prod", tags="smoke")
    )
    assert problems == []
    assert spec.schedule == Schedule(cron="*/5 * * * *")
    assert spec.environments == ("prod",)
    assert spec.tags == ("smoke",)


def test_a_list_of_checks_loads_the_good_ones_and_names_the_bad_ones_line() -> None:
    specs, problems = load(
        """\
        checks:
          - name: first
            service: shop
            steps: [{request: {path: /a}}]
          - name: broken
            service: shop
            retries: many
            steps: [{request: {path: /b}}]
          - name: third
            service: shop
            steps: [{request: {path: /c}}]
        """
    )
    assert [s.name for s in specs] == ["first", "third"]
    assert [s.source.line for s in specs if s.source] == [2, 9]
    assert len(problems) == 1
    assert problems[0].startswith(f"{FILE}:7: check 'broken': retries:")


def test_every_problem_of_a_check_is_reported_in_line_order() -> None:
    specs, problems = load(
        """\
        name: c
        service: shop
        timeout: soon
        steps:
          - request: {path: /x, metod: GET}
            expect: {status: 999}
        """
    )
    assert specs == []
    assert [p.split(":")[1] for p in problems] == ["3", "5", "6"]
    assert "timeout: not a duration: 'soon'" in problems[0]
    assert "steps[0].request.metod: unknown key 'metod' (did you mean 'method'?)" in problems[1]
    assert "steps[0].expect.status: invalid status 999" in problems[2]


def test_step_names_default_to_what_the_step_does() -> None:
    text = check_with(
        """\
        - request: {method: post, path: "/api/login?next=/"}
        - request: {url: "https://other.example.com/health"}
        - tcp: {host: db.internal, port: 5432}
        - tcp: {}
        - dns: {name: shop.example.com, record_type: aaaa}
        - tls: {port: 8443}
        """
    )
    [_], problems = load(text)
    assert problems == []
    model = CheckModel.model_validate(yaml.safe_load(text))
    assert [step.title(model.service) for step in model.steps] == [
        "POST /api/login",
        "GET /health",
        "tcp db.internal:5432",
        "tcp shop",
        "dns AAAA shop.example.com",
        "tls shop:8443",
    ]


def test_an_empty_file_declares_nothing() -> None:
    assert load("") == ([], [])
    assert load("# only a comment\n") == ([], [])


# -- problems, each at its line -------------------------------------------------------------

CASES = [
    pytest.param(
        "name: c\nservice: shop\nsteps:\n  - request: {path: /x\n",
        5,
        "invalid YAML",
        id="yaml-syntax",
    ),
    pytest.param(
        "name: c\nname: d\nservice: shop\nsteps: [{request: {path: /}}]\n",
        2,
        "name: duplicate key 'name'",
        id="duplicate-key",
    ),
    pytest.param(
        "- name: c\n", 1, "expected a check (a mapping) or checks: [...]", id="top-level-list"
    ),
    pytest.param("checks: {name: c}\n", 1, "checks: expected a list of checks", id="checks-map"),
    pytest.param(
        "service: shop\nsteps: [{request: {path: /}}]\n",
        1,
        "missing required key 'name'",
        id="missing-name",
    ),
    pytest.param("name: c\nservice: shop\n", 1, "missing required key 'steps'", id="missing-steps"),
    pytest.param(
        "name: c d\nservice: shop\nsteps: [{request: {path: /}}]\n",
        1,
        "name: name must be 1-80 characters",
        id="bad-name",
    ),
    pytest.param(
        check_with("  - request: {path: /}\n", every="30s", cron='"* * * * *"'),
        3,
        "cron: give either every or cron, not both",
        id="every-and-cron",
    ),
    pytest.param(
        check_with("  - request: {path: /}\n", cron='"every day"'),
        2,
        "cron: invalid cron expression",
        id="bad-cron",
    ),
    pytest.param(
        check_with("  - request: {path: /}\n", every="500ms"),
        2,
        "every: every must be at least 1s",
        id="every-too-short",
    ),
    pytest.param(
        check_with("  - request: {path: /}\n", timeout="10x"),
        2,
        "timeout: not a duration",
        id="bad-duration",
    ),
    pytest.param(
        check_with("  - request: {path: /}\n", retries="[1]"),
        2,
        "retries: Input should be a valid integer",
        id="wrong-type",
    ),
    pytest.param(
        check_with("  - request: {path: /}\n", colour="red"),
        2,
        "colour: unknown key 'colour'",
        id="unknown-top-key",
    ),
    pytest.param(
        check_with("  - request:\n      path: /\n      hedaers: {}\n"),
        6,
        "unknown key 'hedaers' (did you mean 'headers'?)",
        id="suggestion",
    ),
    pytest.param(
        check_with("  - request: {path: /, method: FETCH}\n"),
        4,
        "steps[0].request.method: unknown method 'FETCH'",
        id="bad-method",
    ),
    pytest.param(
        check_with("  - request: {path: /, url: 'https://x.example/'}\n"),
        4,
        "give either path (on the check's service) or url",
        id="path-and-url",
    ),
    pytest.param(
        check_with("  - request: {url: /relative}\n"), 4, "url must be absolute", id="relative-url"
    ),
    pytest.param(
        check_with("  - request:\n      path: /\n      json: {}\n      form: {}\n"),
        7,
        "request.form: give one of json, form or body",
        id="two-bodies",
    ),
    pytest.param(
        check_with("  - request: {path: /, params: {q: {a: 1}}}\n"),
        4,
        "params.q: expected a string, number or boolean",
        id="bad-param",
    ),
    pytest.param(
        check_with("  - request:\n      path: /\n      headers: {X-N: [1]}\n"),
        6,
        "headers.X-N: Input should be a valid string",
        id="header-type",
    ),
    pytest.param(
        check_with("  - request: {path: '/x/${id'}\n"),
        4,
        "request.path: unclosed '${'",
        id="unclosed-template",
    ),
    pytest.param(
        check_with("  - request: {path: '/x/${1id}'}\n"),
        4,
        "request.path: invalid reference ${1id}",
        id="bad-reference",
    ),
    pytest.param(
        check_with("  - request:\n      path: /\n      json: {user: {password: pw}}\n"),
        6,
        "'password' looks like a credential written inline",
        id="inline-password",
    ),
    pytest.param(
        check_with(
            "  - request:\n      path: /\n      headers:\n        Authorization: Bearer abc123\n"
        ),
        7,
        "'Authorization' looks like a credential written inline",
        id="inline-authorization",
    ),
    pytest.param(
        check_with("  - request: {url: 'https://u:pw@x.example/'}\n"),
        4,
        "url's password as ${secrets.NAME}",
        id="inline-url-password",
    ),
    pytest.param(
        check_with(
            "  - request: {path: /}\n    expect:\n      json:\n        - {path: '$.a..b'}\n"
        ),
        7,
        "expect.json[0].path: invalid JSON path",
        id="bad-json-path",
    ),
    pytest.param(
        check_with(
            "  - request: {path: /}\n    expect:\n      json:\n"
            "        - {path: $.a, type: integer}\n"
        ),
        7,
        "expect.json[0].type: Input should be 'string'",
        id="bad-json-type",
    ),
    pytest.param(
        check_with(
            "  - request: {path: /}\n    expect:\n      json:\n"
            "        - {path: $.a, exists: false, equals: 1}\n"
        ),
        7,
        "expect.json[0].exists: false contradicts equals",
        id="contradiction",
    ),
    pytest.param(
        check_with("  - request: {path: /}\n    expect: {body_matches: '('}\n"),
        5,
        "body_matches: invalid regular expression",
        id="bad-regex",
    ),
    pytest.param(
        check_with("  - request: {path: /}\n    expect: {schema: {type: 12}}\n"),
        5,
        "expect.schema: invalid JSON Schema",
        id="bad-schema",
    ),
    pytest.param(
        check_with("  - request: {path: /}\n    expect: {status: [200, 2xx, 700]}\n"),
        5,
        "invalid status 700",
        id="bad-status",
    ),
    pytest.param(
        check_with("  - request: {path: /}\n    capture: {order-id: $.id}\n"),
        5,
        "capture.order-id: invalid variable name",
        id="bad-variable",
    ),
    pytest.param(
        check_with("  - request: {path: /}\n    capture: {env: $.id}\n"),
        5,
        "capture.env: invalid variable name 'env'",
        id="reserved-variable",
    ),
    pytest.param(
        check_with(
            "  - request: {path: /}\n    capture: {t: $.t}\n    secret_captures: [t, token]\n"
        ),
        6,
        "secret_captures[1]: 'token' is not captured by this step",
        id="secret-capture-not-captured",
    ),
    pytest.param(
        check_with("  - tcp: {port: 5432}\n    expect: {status: 200}\n"),
        5,
        "steps[0].expect: expect applies to request steps, not tcp",
        id="probe-expect",
    ),
    pytest.param(
        check_with("  - tcp: {host: db}\n"),
        4,
        "tcp with a host needs a port",
        id="tcp-without-port",
    ),
    pytest.param(
        check_with("  - dns: {record_type: BOGUS}\n"),
        4,
        "dns.record_type: unknown DNS record type 'BOGUS'",
        id="bad-record-type",
    ),
    pytest.param(
        check_with("  - tls: {min_days: -1}\n"),
        4,
        "tls.min_days: Input should be greater than or equal to 0",
        id="bad-min-days",
    ),
    pytest.param(
        check_with("  - {name: s}\n"),
        4,
        "steps[0]: a step has exactly one of request, tcp, dns, tls or browser",
        id="no-kind",
    ),
    pytest.param(
        check_with("  - {request: {path: /}, tcp: {}}\n"), 4, "not request and tcp", id="two-kinds"
    ),
    pytest.param(
        check_with("  - {name: a, request: {path: /}}\n  - {name: a, tcp: {}}\n"),
        5,
        "steps[1].name: duplicate step name 'a'",
        id="duplicate-step",
    ),
    pytest.param(
        check_with("  - request: {path: /x}\n  - request: {path: /x}\n"),
        5,
        "steps[1]: duplicate step name 'GET /x'",
        id="duplicate-derived-step",
    ),
    pytest.param(
        "name: c\nservice: shop\nsteps: []\n", 3, "List should have at least 1 item", id="no-steps"
    ),
    pytest.param(
        check_with(
            "  - {name: a, request: {path: /login}, capture: {token: $.token}}\n"
            "  - name: b\n"
            "    request:\n"
            "      path: /orders\n"
            '      headers: {Authorization: "Bearer ${tokn}"}\n'
        ),
        8,
        "steps[1].request.headers.Authorization: ${tokn} is used before any step captures it "
        "(captured by earlier steps: token)",
        id="variable-never-captured",
    ),
    pytest.param(
        check_with(
            '  - {name: a, request: {path: "/orders/${order}"}}\n'
            "  - {name: b, request: {path: /new}, capture: {order: $.id}}\n"
        ),
        4,
        "steps[0].request.path: ${order} is used before any step captures it",
        id="variable-captured-later",
    ),
    pytest.param(
        check_with(
            "  - name: a\n"
            "    request: {path: /new}\n"
            "    capture: {order: $.id}\n"
            '    expect: {json: [{path: $.id, equals: "${order}"}]}\n'
        ),
        7,
        "steps[0].expect.json[0].equals: ${order} is used before any step captures it",
        id="variable-of-the-same-step",
    ),
]


@pytest.mark.parametrize(("text", "line", "message"), CASES)
def test_problem_is_reported_at_its_line(text: str, line: int, message: str) -> None:
    problem = only_problem(text)
    assert problem.startswith(f"{FILE}:{line}: "), problem
    assert message in problem


def test_a_problem_names_the_check() -> None:
    problem = only_problem(check_with("  - request: {path: /}\n", retries=11))
    assert problem == (f"{FILE}:2: check 'c': retries: Input should be less than or equal to 10")


def test_json_body_may_reference_variables_and_secrets_but_no_literal_credential() -> None:
    text = check_with(
        """\
        - request: {path: /login}
          capture: {token: $.token}
        - request:
            path: /
            json: {user: demo, password: "${secrets.pw}", token: "${token}", n: 1}
        """
    )
    specs, problems = load(text)
    assert problems == []
    assert len(specs) == 1


def test_literal_dollar_brace_is_written_doubled() -> None:
    specs, problems = load(check_with("  - request: {path: '/price/$${x}'}\n"))
    assert problems == []
    assert len(specs) == 1


# -- templating ---------------------------------------------------------------------------------


VALUES: dict[str, Any] = {
    "token": "abc",
    "id": 42,
    "ratio": 0.5,
    "item": {"a": [1, True, None]},
    "env": "staging",
    "secrets.pw": "hunter2",
}


def lookup(name: str) -> Any:
    if name not in VALUES:
        raise LookupError(name)
    return VALUES[name]


def test_references_lists_every_name_in_order() -> None:
    text = "${token}/${secrets.pw}/${ env }/$${literal}"
    assert references(text) == ["token", "secrets.pw", "env"]
    assert references("no templates $ { here }") == []


@pytest.mark.parametrize(
    "text", ["${}", "${1a}", "${a b}", "${secrets}", "${secrets.}", "${a.b}", "x ${open", "${a}${"]
)
def test_malformed_references_are_rejected(text: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        references(text)


def test_render_text_substitutes_and_writes_non_strings_as_json() -> None:
    assert render_text("Bearer ${token}", lookup) == "Bearer abc"
    assert render_text("/orders/${id}?r=${ratio}", lookup) == "/orders/42?r=0.5"
    assert render_text("${item}", lookup) == '{"a": [1, true, null]}'
    assert render_text("${env}:${secrets.pw}", lookup) == "staging:hunter2"
    assert render_text("cost: $${price} $5", lookup) == "cost: ${price} $5"


def test_render_keeps_the_type_of_a_lone_reference_and_recurses() -> None:
    body = {"id": "${id}", "label": "order ${id}", "list": ["${item}", 7, None], "flag": True}
    assert render(body, lookup) == {
        "id": 42,
        "label": "order 42",
        "list": [{"a": [1, True, None]}, 7, None],
        "flag": True,
    }
    assert render("$${id}", lookup) == "${id}"


def test_an_undefined_name_raises_what_the_lookup_raises() -> None:
    with pytest.raises(LookupError, match="missing"):
        render({"x": ["a ${missing}"]}, lookup)


@pytest.mark.parametrize(
    ("expect", "bounded"),
    [
        ("{status: 200, body_contains: ok, json: [{path: $.id, gt: 0}]}", True),
        ("{body_matches: 'a+b'}", False),
        ("{headers: {content-type: {matches: json}}}", False),
        ("{json: [{path: $.id, matches: '^[0-9]+$'}]}", False),
        ("{schema: {type: object, properties: {id: {type: string, pattern: '^x'}}}}", False),
    ],
)
def test_only_checks_without_regular_expressions_are_bounded(expect: str, bounded: bool) -> None:
    # A bounded check may run on the agent's own loop; a regular expression can backtrack
    # for as long as it likes, so a check with one runs on a worker thread.
    specs, problems = load(
        f"""
        name: c
        service: shop
        steps:
          - name: get
            request: {{method: GET, path: /}}
            expect: {expect}
        """
    )
    assert problems == []
    assert runs_only_synth_code(specs[0]) is bounded
